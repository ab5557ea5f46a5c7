#include "engine/optim.h"

#include <cmath>
#include <cstdlib>

#include "base/error.h"

namespace synth {

AdamW::AdamW(ParamStore& store, AdamWConfig cfg) : store_(store), cfg_(cfg) {
    m = aligned_floats(store.size());
    v = aligned_floats(store.size());
}

AdamW::~AdamW() {
    std::free(m);
    std::free(v);
}

void AdamW::step(float lr) {
    ++t;
    const float b1 = cfg_.beta1, b2 = cfg_.beta2;
    const float c1 = 1.0f - (float)std::pow((double)b1, (double)t);
    const float c2 = 1.0f - (float)std::pow((double)b2, (double)t);
    float* w = store_.data();
    const float* g = store_.grad();
    for (const Param& p : store_.params()) {
        if (!p.trainable) continue;
        const int64_t o = p.offset, n = numel_of(p.shape);
        const float decay = p.decay ? cfg_.weight_decay : 0.0f;
#pragma omp parallel for if (n > 32768)
        for (int64_t i = o; i < o + n; ++i) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            float mh = m[i] / c1, vh = v[i] / c2;
            w[i] -= lr * (mh / (std::sqrt(vh) + cfg_.eps) + decay * w[i]);
        }
    }
}

double clip_grad_norm(ParamStore& store, float max_norm) {
    const int64_t n = store.size();
    float* g = store.grad();
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += (double)g[i] * g[i];
    double norm = std::sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float s = (float)(max_norm / (norm + 1e-6));
        for (int64_t i = 0; i < n; ++i) g[i] *= s;
    }
    return norm;
}

float lr_at(const std::string& schedule, int64_t step, int64_t warmup, int64_t total_steps, float peak, float min_lr) {
    if (warmup > 0 && step < warmup) return peak * (float)(step + 1) / (float)warmup;
    if (schedule == "cosine") {
        if (total_steps <= warmup) return peak;
        double p = std::min(1.0, (double)(step - warmup) / (double)(total_steps - warmup));
        return min_lr + (peak - min_lr) * 0.5f * (1.0f + (float)std::cos(3.141592653589793 * p));
    }
    if (schedule == "rsqrt") return peak * (float)std::sqrt((double)std::max<int64_t>(warmup, 1) / (double)(step + 1));
    if (schedule == "constant") return peak;
    fail("unknown learning-rate schedule '", schedule, "' (cosine, rsqrt, constant)");
}

bool schedule_uses_total(const std::string& schedule) { return schedule == "cosine"; }

}  // namespace synth

// optim.h: AdamW, global gradient-norm clipping and learning-rate schedules.
#pragma once

#include <cstdint>
#include <string>

#include "engine/params.h"

namespace synth {

struct AdamWConfig {
    float beta1 = 0.9f, beta2 = 0.98f, eps = 1e-9f, weight_decay = 0.01f;
};

// AdamW (Loshchilov & Hutter): decoupled weight decay on parameters with decay=true.
// Its moments are flat arrays parallel to the store's block.
class AdamW {
public:
    AdamW(ParamStore& store, AdamWConfig cfg);
    ~AdamW();
    AdamW(const AdamW&) = delete;
    AdamW& operator=(const AdamW&) = delete;
    void step(float lr);
    int64_t t = 0;   // steps taken (bias correction)
    float* m = nullptr;
    float* v = nullptr;

private:
    ParamStore& store_;
    AdamWConfig cfg_;
};

// Scales all gradients so their global L2 norm is at most max_norm (if max_norm > 0).
// Returns the norm before clipping.
double clip_grad_norm(ParamStore& store, float max_norm);

// Linear warm-up to peak over `warmup` steps, then cosine decay to min_lr at total_steps
// ("cosine"), or peak * sqrt(warmup / step) after warm-up ("rsqrt", Vaswani et al.).
float lr_at(const std::string& schedule, int64_t step, int64_t warmup, int64_t total_steps, float peak, float min_lr);
// Whether a schedule's learning rates depend on total_steps (cosine does; rsqrt and constant
// do not, so a finished run continued with more steps is exactly the longer run).
bool schedule_uses_total(const std::string& schedule);

}  // namespace synth

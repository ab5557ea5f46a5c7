#include "models/sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "base/error.h"
#include "base/rng.h"
#include "engine/autograd.h"

namespace synth {

// One token drawn from the last position's logits (V).
static int draw(const float* last, int V, const Sampling& how, Rng& rng) {
    std::vector<double> p(V);
    double mx = last[0], s = 0;
    for (int v = 1; v < V; ++v) mx = std::max(mx, (double)last[v]);
    double floor = -INFINITY;  // logits below the k-th largest are dropped
    if (how.top_k > 0 && how.top_k < V) {
        std::vector<float> sorted(last, last + V);
        std::nth_element(sorted.begin(), sorted.begin() + (how.top_k - 1), sorted.end(), std::greater<float>());
        floor = sorted[how.top_k - 1];
    }
    for (int v = 0; v < V; ++v) s += (p[v] = last[v] < floor ? 0.0 : std::exp((last[v] - mx) / how.temperature));
    double u = rng.uniform() * s;
    int tok = 0;
    while (tok < V - 1 && (u -= p[tok]) > 0) ++tok;
    return tok;
}

void check_sampling(const Sampling& how, int vocab) {
    SYNTH_CHECK(std::isfinite(how.temperature) && how.temperature > 0, "--temperature=", how.temperature,
                " must be a positive finite number");
    SYNTH_CHECK(how.top_k >= 0 && how.top_k <= vocab, "--top-k=", how.top_k, " must lie in [0, ", vocab,
                "] (the vocabulary; 0 = all tokens)");
}

std::vector<int32_t> generate(TransformerLM& model, std::vector<int32_t> out, int n, const Sampling& how,
                              uint64_t seed) {
    check_sampling(how, model.config().vocab);
    SYNTH_CHECK(!out.empty(), "generation needs a prompt of at least one token");
    NoGrad ng;
    StepContext ctx;
    Rng rng(seed);
    const int L = model.config().attn.max_len, V = model.config().vocab;
    const size_t target = out.size() + n;
    while (out.size() < target) {
        scratch().reset();
        std::vector<MixerCache> caches(model.config().layers);
        size_t start = out.size() > (size_t)L / 2 ? out.size() - L / 2 : 0;
        std::vector<int32_t> prompt(out.begin() + start, out.end());
        Tensor logits = model.forward(prompt, 1, (int)prompt.size(), ctx, &caches);
        const float* last = logits.data + (int64_t)(prompt.size() - 1) * V;  // (V)
        while (out.size() < target) {
            const int tok = draw(last, V, how, rng);
            out.push_back(tok);
            if (caches[0].len >= L) break;
            logits = model.forward({tok}, 1, 1, ctx, &caches);
            last = logits.data;
        }
    }
    return out;
}

}  // namespace synth

#include "base/rng.h"

#include <cmath>

namespace synth {

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void Rng::reseed(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& w : s) {
        x += 0x9e3779b97f4a7c15ULL;
        w = splitmix64(x);
    }
}

uint64_t Rng::next_u64() {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double Rng::uniform() { return (double)(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double Rng::normal() {
    // Box-Muller; one draw per call keeps the stream simple to reason about.
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

uint64_t Rng::below(uint64_t n) { return n ? next_u64() % n : 0; }

void Rng::fill_uniform(float* x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; ++i) x[i] = lo + (hi - lo) * (float)uniform();
}

void Rng::fill_normal(float* x, int64_t n, float mean, float std) {
    for (int64_t i = 0; i < n; ++i) x[i] = mean + std * (float)normal();
}

}  // namespace synth

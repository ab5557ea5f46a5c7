// rng.h: seeded, deterministic random numbers.
//
// Rng is xoshiro256** seeded through splitmix64: the same seed gives the same stream on
// every machine. Parameter initialisation draws from one Rng in declaration order.
// Dropout does not use a stream at all: hash_uniform(seed, counter, i) is a pure function
// of its arguments, so a dropout mask does not depend on how many threads computed it nor
// on the order they ran in, and a resumed run can regenerate any step's mask.
#pragma once

#include <cstdint>

namespace synth {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// A uniform float in [0, 1) that depends only on (seed, counter, i): element i of the
// SplitMix64 stream whose state starts at a key mixed from (seed, counter). In a loop over i
// the key is loop-invariant (hoisted) and the rest is one 64-bit mix, which vectorises.
inline float hash_uniform(uint64_t seed, uint64_t counter, uint64_t i) {
    const uint64_t key = splitmix64(seed ^ splitmix64(counter));
    const uint64_t h = splitmix64(key + i * 0x9e3779b97f4a7c15ULL);
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

class Rng {
public:
    explicit Rng(uint64_t seed = 0) { reseed(seed); }
    void reseed(uint64_t seed);
    uint64_t next_u64();
    double uniform();                       // [0, 1)
    double normal();                        // N(0, 1), Box-Muller
    uint64_t below(uint64_t n);             // uniform integer in [0, n)
    void fill_uniform(float* x, int64_t n, float lo, float hi);
    void fill_normal(float* x, int64_t n, float mean, float std);
    // The full state, for checkpoints.
    uint64_t s[4];
};

}  // namespace synth

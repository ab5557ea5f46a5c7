// params.h: every trainable number of a model in one contiguous block.
//
// Modules declare parameters (name, shape, initialisation) while they are constructed;
// finalize() then allocates one block for all values and one for all gradients and
// initialises them in declaration order from one seeded Rng. Zeroing gradients, the
// optimizer, gradient clipping and checkpoints are then single loops over flat arrays
// (llm.c's layout), while each module keeps a Tensor that points into the block.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "engine/tensor.h"

namespace synth {

enum class Init { Zeros, Ones, Normal, GlorotUniform };

// How a parameter's values are drawn.
struct InitSpec {
    Init kind;
    float std = 0.02f;                // Init::Normal
    int64_t fan_in = 0, fan_out = 0;  // Init::GlorotUniform; 0 = the last two dims, a per-head (in, out) matrix
    InitSpec(Init k, float s = 0.02f) : kind(k), std(s) {}
    // Glorot-uniform with explicit fans: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
    static InitSpec glorot(int64_t fan_in, int64_t fan_out);
};

enum class Decay { Yes, No };          // whether AdamW's weight decay applies
enum class Trainable { Yes, No };      // No: in the checkpoint, never updated, no gradient (Rfix)

struct Param {
    std::string name;  // "block0.attn.R.r"
    Shape shape;
    InitSpec init;
    bool trainable;
    bool decay;
    int64_t offset = 0;
    Tensor t;         // data/grad point into the store's blocks after finalize()
};

class ParamStore {
public:
    ParamStore() = default;
    ParamStore(const ParamStore&) = delete;
    ParamStore& operator=(const ParamStore&) = delete;
    ~ParamStore();

    // Declares a parameter. The returned pointer is stable; its data is valid after finalize().
    Tensor* add(const std::string& name, const Shape& shape, InitSpec init, Decay decay, Trainable trainable);
    // A weight (matrix, embedding, synthetic R): trained and decayed.
    Tensor* weight(const std::string& name, const Shape& shape, InitSpec init) {
        return add(name, shape, init, Decay::Yes, Trainable::Yes);
    }
    // A bias, gain or mixture logit: trained, never decayed, whatever its rank (D's per-head
    // biases are (H, L)).
    Tensor* bias(const std::string& name, const Shape& shape, InitSpec init = Init::Zeros) {
        return add(name, shape, init, Decay::No, Trainable::Yes);
    }
    void finalize(uint64_t seed);

    void zero_grad();
    int64_t size() const { return size_; }
    int64_t trainable_count() const;
    float* data() { return data_; }
    float* grad() { return grad_; }
    const std::deque<Param>& params() const { return params_; }
    std::deque<Param>& params() { return params_; }
    const Param* find(const std::string& name) const;

private:
    std::deque<Param> params_;
    float* data_ = nullptr;
    float* grad_ = nullptr;
    int64_t size_ = 0;
    bool final_ = false;
};

}  // namespace synth

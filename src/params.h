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

#include "tensor.h"

namespace synth {

enum class Init { Zeros, Ones, Normal, GlorotUniform };

struct Param {
    std::string name;  // "block0.attn.R"
    Shape shape;
    Init init;
    float std;        // for Init::Normal
    bool trainable;   // false: in the checkpoint, never updated, no gradient (Rfix)
    bool decay;       // AdamW weight decay applies
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
    Tensor* add(const std::string& name, const Shape& shape, Init init, float std = 0.02f, bool trainable = true);
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

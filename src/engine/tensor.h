// tensor.h: float32 tensors and the arenas their memory comes from.
//
// A Tensor is a small value type: a pointer to its values, a pointer to its gradient
// (nullptr when nothing needs it) and up to 4 dimensions, contiguous and row-major.
// Tensors never own memory. Two kinds of memory exist:
//   - parameters, their gradients and the optimizer state live in ParamStore (params.h),
//     one contiguous block each, so zeroing grads, AdamW and checkpoints are single loops;
//   - activations and their gradients come from the scratch Arena, a bump allocator that
//     is reset once per training step. Shapes may change from step to step (variable
//     batch and sequence length); the arena grows to the high-water mark and then stops
//     allocating.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace synth {

struct Tensor {
    float* data = nullptr;
    float* grad = nullptr;  // same shape as data; nullptr if no gradient is tracked
    std::array<int, 4> dims{};
    int ndim = 0;

    int dim(int i) const { return dims[i < 0 ? ndim + i : i]; }
    int64_t numel() const;
    bool has_grad() const { return grad != nullptr; }
    std::string shape_str() const;  // "(2, 3, 5)"
};

using Shape = std::vector<int>;

// How a matrix operand is read: as stored, or transposed (e.g. a (N, K) weight used as (K, N)).
enum class Transpose { No, Yes };

int64_t numel_of(const Shape& s);

// A growable bump allocator of 64-byte aligned float blocks.
class Arena {
public:
    Arena() = default;
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    ~Arena();
    float* alloc(size_t n);       // uninitialised
    float* alloc_zero(size_t n);  // zero-filled
    // Frees everything handed out. If the step overflowed the main block, the block is
    // regrown to the high-water mark, so a steady-state step performs no allocation.
    void reset();
    size_t capacity_bytes() const { return cap_ * sizeof(float); }
    size_t in_use_bytes() const { return (used_ + overflow_total_) * sizeof(float); }  // since reset()

private:
    float* block_ = nullptr;
    size_t cap_ = 0, used_ = 0, overflow_total_ = 0;
    std::vector<float*> overflow_;
};

// The activation arena used by every op.
Arena& scratch();

// A new activation tensor from the scratch arena; its grad is allocated (zeroed) if with_grad.
Tensor new_tensor(const Shape& shape, bool with_grad);
// Same, with values zero-filled.
Tensor zeros(const Shape& shape, bool with_grad);

float* aligned_floats(size_t n);  // zeroed, 64-byte aligned; free with std::free
}  // namespace synth

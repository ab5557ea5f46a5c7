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
//     allocating. Large gradients have a region of their own whose pages the kernel
//     zero-fills on first write and takes back once the backward is done with them
//     (GradientPages): only the gradients backward is working on are resident.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
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

// Large activation gradients as whole huge pages of anonymous memory, which read as zero until
// written. A gradient starts at zero and every backward adds into it (autograd.h), so it needs
// no zeroing pass and no resident memory until its first consumer's backward writes it; once the
// backward of the op that made it has run, nothing reads it again and release() returns its
// pages, which read as zero again for the next step. The peak then holds the gradients of a few
// ops, not of the whole step (docs/performance.md). Gradients under kMinBytes stay in the arena,
// zeroed when allocated: a fault per 4 KB page costs more than zeroing it (3x slower training
// steps at build/lm's quick shape).
class GradientPages {
public:
    static constexpr size_t kMinBytes = size_t(2) << 20;  // one transparent huge page
    float* alloc(size_t n);  // zero; n floats of at least kMinBytes; no two gradients share a page
    // Returns the pages of a gradient from alloc() (anything else is ignored); they read as zero.
    void release(const float* p, size_t n);
    // Returns every page and, if the step overflowed the main block, regrows it to the high-water mark.
    void reset();
    size_t capacity_bytes() const { return cap_; }
    // While measuring, release() records the largest resident size of the gradients just
    // before it returns pages: the peak of a backward pass.
    void measure_peak(bool on) {
        if (on) peak_ = 0;
        measuring_ = on;
    }
    size_t peak_resident_bytes() const { return peak_; }

    GradientPages() = default;
    GradientPages(const GradientPages&) = delete;
    GradientPages& operator=(const GradientPages&) = delete;
    ~GradientPages();

private:
    struct Block {
        char* base = nullptr;  // as mapped
        size_t mapped = 0;
        char* start = nullptr;  // base rounded up to a huge page
        size_t bytes = 0;       // usable from start
    };
    static Block map(size_t bytes);
    bool owns(const char* p) const;
    size_t resident_bytes() const;
    Block main_;
    size_t cap_ = 0, used_ = 0, overflow_total_ = 0;  // bytes
    std::vector<Block> overflow_;
    bool measuring_ = false;
    size_t peak_ = 0;
};

// A growable bump allocator of 64-byte aligned float blocks. Its blocks are mapped pages, not
// malloc's: glibc raises its mmap threshold when a large block it mapped is freed, after which
// blocks of that size come from the heap, and the heap keeps freed memory, so a step that
// regrows the arena kept the outgrown blocks resident too (1040 MB peak instead of 685 for the
// benchmark LM's V in fp32).
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
    size_t capacity_bytes() const { return cap_ * sizeof(float) + grads.capacity_bytes(); }
    // Since reset(), without the gradients, whose pages are resident only while backward uses them.
    size_t in_use_bytes() const { return (used_ + overflow_total_) * sizeof(float); }

    GradientPages grads;  // reset with the arena

private:
    float* block_ = nullptr;
    size_t cap_ = 0, used_ = 0, overflow_total_ = 0;  // floats
    std::vector<std::pair<float*, size_t>> overflow_;  // blocks and their floats
};

// The activation arena used by every op.
Arena& scratch();

// A new activation tensor from the scratch arena; its grad (zero: from the arena's gradient
// pages if large, else zeroed in the arena) is allocated if with_grad.
Tensor new_tensor(const Shape& shape, bool with_grad);
// Same, with values zero-filled.
Tensor zeros(const Shape& shape, bool with_grad);

float* aligned_floats(size_t n);  // zeroed, 64-byte aligned; free with std::free
}  // namespace synth

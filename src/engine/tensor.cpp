#include "engine/tensor.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/error.h"
#include "engine/profile.h"

namespace synth {

int64_t Tensor::numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[i];
    return n;
}

std::string Tensor::shape_str() const {
    std::ostringstream os;
    os << "(";
    for (int i = 0; i < ndim; ++i) os << (i ? ", " : "") << dims[i];
    os << ")";
    return os.str();
}

int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int d : s) n *= d;
    return n;
}

// n floats rounded up to whole 64-byte lines (aligned_alloc needs a multiple of the alignment).
static size_t padded_bytes(size_t n) { return std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64); }

// 64-byte aligned and uninitialised: the pages of a large block become resident (and count
// towards the RSS) only when first written.
static float* aligned_uninit(size_t n) {
    void* p = std::aligned_alloc(64, padded_bytes(n));
    SYNTH_CHECK(p, "out of memory allocating ", padded_bytes(n), " bytes");
    return static_cast<float*>(p);
}

float* aligned_floats(size_t n) {
    float* p = aligned_uninit(n);
    std::memset(p, 0, padded_bytes(n));
    return p;
}

Arena::~Arena() {
    std::free(block_);
    for (float* p : overflow_) std::free(p);
}

float* Arena::alloc(size_t n) {
    n = (n + 15) & ~size_t(15);  // keep every block 64-byte aligned
    if (used_ + n <= cap_) {
        float* p = block_ + used_;
        used_ += n;
        return p;
    }
    float* p = aligned_uninit(n);
    overflow_.push_back(p);
    overflow_total_ += n;
    return p;
}

// Every activation's gradient is zeroed when it is allocated, one pass over all of them per
// step; on one thread the others wait, so large blocks are split over the threads (5-9% faster
// bf16 training steps on 2 threads, results/precision.md).
float* Arena::alloc_zero(size_t n) {
    float* p = alloc(n);
    constexpr size_t kChunk = 1 << 16;  // floats: 256 KB per task
    const int64_t chunks = (int64_t)((n + kChunk - 1) / kChunk);
#pragma omp parallel for if (chunks > 1 && !omp_in_parallel())
    for (int64_t c = 0; c < chunks; ++c) {
        const size_t at = (size_t)c * kChunk;
        std::memset(p + at, 0, std::min(kChunk, n - at) * sizeof(float));
    }
    return p;
}

void Arena::reset() {
    if (!overflow_.empty()) {
        size_t need = used_ + overflow_total_;
        for (float* p : overflow_) std::free(p);
        overflow_.clear();
        std::free(block_);
        cap_ = need + need / 8;
        block_ = aligned_uninit(cap_);
    }
    overflow_total_ = 0;
    used_ = 0;
}

Arena& scratch() {
    static Arena arena;
    return arena;
}

Tensor new_tensor(const Shape& shape, bool with_grad) {
    SYNTH_CHECK(!shape.empty() && shape.size() <= 4, "tensors have 1 to 4 dimensions, got ", shape.size());
    Tensor t;
    t.ndim = (int)shape.size();
    for (int i = 0; i < t.ndim; ++i) {
        SYNTH_CHECK(shape[i] > 0, "tensor dimension ", i, " must be positive, got ", shape[i]);
        t.dims[i] = shape[i];
    }
    size_t n = (size_t)t.numel();
    t.data = scratch().alloc(n);
    if (profile::on()) profile::output_allocated((int64_t)n);
    if (with_grad) t.grad = scratch().alloc_zero(n);
    return t;
}

Tensor zeros(const Shape& shape, bool with_grad) {
    Tensor t = new_tensor(shape, with_grad);
    std::memset(t.data, 0, t.numel() * sizeof(float));
    return t;
}

}  // namespace synth

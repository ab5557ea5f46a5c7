#include "engine/tensor.h"

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/error.h"

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

float* aligned_floats(size_t n) {
    void* p = std::aligned_alloc(64, padded_bytes(n));
    SYNTH_CHECK(p, "out of memory allocating ", padded_bytes(n), " bytes");
    std::memset(p, 0, padded_bytes(n));
    return static_cast<float*>(p);
}

// =====================================================================================
// GradientPages
// =====================================================================================
static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }
static size_t page_bytes() {
    static const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}
// Huge pages: one page fault per 2 MB written rather than one per 4 KB.
constexpr size_t kHugePage = GradientPages::kMinBytes;

GradientPages::Block GradientPages::map(size_t bytes) {
    Block b;
    b.mapped = bytes + kHugePage;  // room to start on a huge page
    void* p = mmap(nullptr, b.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SYNTH_CHECK(p != MAP_FAILED, "out of memory reserving ", b.mapped, " bytes for activation gradients");
    madvise(p, b.mapped, MADV_HUGEPAGE);  // advice: without THP the pages are small
    b.base = static_cast<char*>(p);
    b.start = b.base + (round_up((uintptr_t)b.base, kHugePage) - (uintptr_t)b.base);
    b.bytes = bytes;
    return b;
}

GradientPages::~GradientPages() {
    if (main_.base) munmap(main_.base, main_.mapped);
    for (const Block& b : overflow_) munmap(b.base, b.mapped);
}

float* GradientPages::alloc(size_t n) {
    SYNTH_CHECK(n * sizeof(float) >= kMinBytes, "GradientPages::alloc: ", n, " floats are under kMinBytes");
    const size_t bytes = round_up(n * sizeof(float), kHugePage);
    if (used_ + bytes <= cap_) {
        used_ += bytes;
        return reinterpret_cast<float*>(main_.start + used_ - bytes);
    }
    overflow_.push_back(map(bytes));
    overflow_total_ += bytes;
    return reinterpret_cast<float*>(overflow_.back().start);
}

bool GradientPages::owns(const char* p) const {
    if (p >= main_.start && p < main_.start + cap_) return true;
    for (const Block& b : overflow_)
        if (p >= b.start && p < b.start + b.bytes) return true;
    return false;
}

// Resident bytes of the blocks in use, page by page (mincore).
size_t GradientPages::resident_bytes() const {
    std::vector<unsigned char> in_core;
    size_t total = 0;
    auto count = [&](char* start, size_t bytes) {
        in_core.resize(bytes / page_bytes());
        if (in_core.empty() || mincore(start, bytes, in_core.data()) != 0) return;
        for (unsigned char c : in_core) total += (c & 1) * page_bytes();
    };
    count(main_.start, used_);
    for (const Block& b : overflow_) count(b.start, b.bytes);
    return total;
}

void GradientPages::release(const float* p, size_t n) {
    const char* c = reinterpret_cast<const char*>(p);
    if (!c || !owns(c)) return;
    if (measuring_) peak_ = std::max(peak_, resident_bytes());
    madvise(const_cast<char*>(c), round_up(n * sizeof(float), kHugePage), MADV_DONTNEED);
}

void GradientPages::reset() {
    if (!overflow_.empty()) {
        const size_t need = used_ + overflow_total_;
        for (const Block& b : overflow_) munmap(b.base, b.mapped);
        overflow_.clear();
        if (main_.base) munmap(main_.base, main_.mapped);
        cap_ = round_up(need + need / 8, kHugePage);
        main_ = map(cap_);
    } else if (used_ > 0) {
        madvise(main_.start, used_, MADV_DONTNEED);  // what backward did not release (leaves)
    }
    used_ = overflow_total_ = 0;
}

// =====================================================================================
// Arena
// =====================================================================================
// n floats of fresh pages (64-byte aligned, zero, resident once written); free with unmap_floats.
static float* map_floats(size_t n) {
    void* p = mmap(nullptr, padded_bytes(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SYNTH_CHECK(p != MAP_FAILED, "out of memory allocating ", padded_bytes(n), " bytes of activations");
    return static_cast<float*>(p);
}
static void unmap_floats(float* p, size_t n) {
    if (p) munmap(p, padded_bytes(n));
}

Arena::~Arena() {
    unmap_floats(block_, cap_);
    for (const auto& [p, n] : overflow_) unmap_floats(p, n);
}

float* Arena::alloc(size_t n) {
    n = (n + 15) & ~size_t(15);  // keep every block 64-byte aligned
    if (used_ + n <= cap_) {
        float* p = block_ + used_;
        used_ += n;
        return p;
    }
    float* p = map_floats(n);
    overflow_.emplace_back(p, n);
    overflow_total_ += n;
    return p;
}

// On one thread the others wait, so large blocks are zeroed by all of them (5-9% faster bf16
// training steps on 2 threads when every gradient was zeroed here, results/precision.md).
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
    grads.reset();
    if (!overflow_.empty()) {
        size_t need = used_ + overflow_total_;
        for (const auto& [p, n] : overflow_) unmap_floats(p, n);
        overflow_.clear();
        unmap_floats(block_, cap_);
        cap_ = need + need / 8;
        block_ = map_floats(cap_);
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
    if (with_grad)
        t.grad = n * sizeof(float) >= GradientPages::kMinBytes ? scratch().grads.alloc(n) : scratch().alloc_zero(n);
    return t;
}

Tensor zeros(const Shape& shape, bool with_grad) {
    Tensor t = new_tensor(shape, with_grad);
    std::memset(t.data, 0, t.numel() * sizeof(float));
    return t;
}

}  // namespace synth

#include "engine/gemm/onednn.h"

#include "base/error.h"

// Built with `make ONEDNN=0` (SYNTH_ONEDNN=0, set by the Makefile for this file alone): the same
// API without oneDNN. No bf16 matmul, so --precision=bf16 rounds the operands (precision.h).
#if defined(SYNTH_ONEDNN) && SYNTH_ONEDNN == 0

namespace synth {

static const char kNotBuilt[] = "not built with oneDNN (make ONEDNN=0)";

bool onednn_built() { return false; }

void onednn_gemm(OnednnType type, bool, bool, int, int, int, float, const void*, int, const void*, int, float, float*,
                 int) {
    fail("oneDNN has no ", type == OnednnType::BF16 ? "bf16" : "fp32", " matmul: synth was ", kNotBuilt);
}

void onednn_gemm_batched(OnednnType type, int, int, bool, bool, int, int, int, float, const void*, OnednnBatch, int,
                         const void*, OnednnBatch, int, float, float*, OnednnBatch, int) {
    fail("oneDNN has no ", type == OnednnType::BF16 ? "bf16" : "fp32", " matmul: synth was ", kNotBuilt);
}

void onednn_gemm_epilogue(bool, bool, int, int, int, const void*, int, const void*, int, const float*, bool,
                          const float*, void*, bool, int) {
    fail("oneDNN has no bf16 matmul: synth was ", kNotBuilt);
}

bool onednn_has_bf16() { return false; }
const char* onednn_isa() { return kNotBuilt; }
const char* onednn_version() { return "none"; }

}  // namespace synth

#else

#include <algorithm>
#include <cstring>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

namespace synth {

bool onednn_built() { return true; }

namespace {

using dt = dnnl::memory::data_type;

const dnnl::engine& engine() {
    static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}

// One cached primitive with the memory descriptors its arguments are wrapped in.
struct Matmul {
    dnnl::matmul prim;
    dnnl::memory::desc a, b, c, bias;
};

// Everything a primitive is specialised for. Batch dimensions of 1 (a shared matrix) have
// stride 0 here, whatever the caller passed.
struct Key {
    int type, transA, transB, batch_a, batch_b, batch_c, heads_a, heads_b, heads_c, M, N, K, lda, ldb, ldc;
    int bias, relu, add, c_bf16;  // the epilogue: a bias row, a ReLU, an added matrix, C in bf16
    int unused = 0;                // fills what would be padding, so that copies compare equal byte for byte
    int64_t a_batch, a_head, b_batch, b_head, c_batch, c_head;
    float alpha, beta;
    bool operator==(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) == 0; }
};
static_assert(sizeof(Key) == 20 * sizeof(int) + 6 * sizeof(int64_t) + 2 * sizeof(float), "Key has no padding");

struct KeyHash {
    size_t operator()(const Key& k) const {  // FNV-1a over the bytes
        const unsigned char* p = reinterpret_cast<const unsigned char*>(&k);
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < sizeof(Key); ++i) h = (h ^ p[i]) * 1099511628211ull;
        return (size_t)h;
    }
};

// A row-major op(X) (rows x cols), one matrix (2-D) or a (batch, heads) grid of them (4-D):
// element (r, c) of matrix (i, j) at i*sbatch + j*shead + r*ld + c, or transposed at
// ... + c*ld + r.
dnnl::memory::desc matrices(dt t, bool grid, int batch, int heads, int rows, int cols, int64_t sbatch, int64_t shead,
                            int ld, bool trans) {
    using dims = dnnl::memory::dims;
    const dims inner = trans ? dims{1, ld} : dims{ld, 1};
    if (!grid) return dnnl::memory::desc({rows, cols}, t, inner);
    // A broadcast dimension (size 1) still needs a stride; any will do.
    const int64_t whole = (int64_t)std::max(rows, cols) * ld;
    return dnnl::memory::desc({batch, heads, rows, cols}, t,
                              dims{sbatch ? sbatch : whole, shead ? shead : whole, inner[0], inner[1]});
}

// The fp32 matrix an epilogue adds: C's shape and row stride.
dnnl::memory::desc add_desc(const Key& k) { return dnnl::memory::desc({k.M, k.N}, dt::f32, dnnl::memory::dims{k.ldc, 1}); }

// The primitive for one call's parameters, created on first use by this thread.
const Matmul& matmul_for(const Key& k) {
    thread_local std::unordered_map<Key, std::unique_ptr<Matmul>, KeyHash> cache;
    auto it = cache.find(k);
    if (it != cache.end()) return *it->second;

    const dt t = k.type == (int)OnednnType::BF16 ? dt::bf16 : dt::f32;
    const bool grid = k.batch_c > 1 || k.heads_c > 1;
    const auto a = matrices(t, grid, k.batch_a, k.heads_a, k.M, k.K, k.a_batch, k.a_head, k.lda, k.transA);
    const auto b = matrices(t, grid, k.batch_b, k.heads_b, k.K, k.N, k.b_batch, k.b_head, k.ldb, k.transB);
    const auto c = matrices(k.c_bf16 ? dt::bf16 : dt::f32, grid, k.batch_c, k.heads_c, k.M, k.N, k.c_batch, k.c_head,
                            k.ldc, false);
    const dnnl::memory::desc bias =
        k.bias ? dnnl::memory::desc({1, k.N}, dt::f32, dnnl::memory::format_tag::ab) : dnnl::memory::desc();
    dnnl::primitive_attr attr;
    if (k.alpha != 1.0f) attr.set_output_scales(0, {k.alpha});
    dnnl::post_ops po;
    if (k.beta != 0.0f) po.append_sum(k.beta);  // after the output scale: C = alpha * AB + beta * C
    if (k.relu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);  // after the bias
    if (k.add) po.append_binary(dnnl::algorithm::binary_add, add_desc(k));           // post-op 0 or 1
    attr.set_post_ops(po);
    try {
        const dnnl::matmul::desc d = k.bias ? dnnl::matmul::desc(a, b, bias, c) : dnnl::matmul::desc(a, b, c);
        const dnnl::matmul::primitive_desc pd(d, attr, engine());
        auto m = std::make_unique<Matmul>(Matmul{dnnl::matmul(pd), a, b, c, bias});
        return *cache.emplace(k, std::move(m)).first->second;
    } catch (const dnnl::error& e) {
        fail("oneDNN has no ", t == dt::bf16 ? "bf16" : "fp32", " matmul for ", k.batch_c, "x", k.heads_c, " of ",
             k.M, "x", k.N, "x", k.K, " on this CPU (", onednn_isa(), "): ", e.what());
    }
}

void run(const Key& k, const void* A, const void* B, void* C, const float* bias = nullptr, const float* add = nullptr) {
    const Matmul& m = matmul_for(k);
    thread_local dnnl::stream stream(engine());
    dnnl::memory a(m.a, engine(), const_cast<void*>(A)), b(m.b, engine(), const_cast<void*>(B)), c(m.c, engine(), C);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
    if (k.bias) args.insert({DNNL_ARG_BIAS, dnnl::memory(m.bias, engine(), const_cast<float*>(bias))});
    if (k.add)  // the binary post-op's operand, after the ReLU's eltwise if there is one
        args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(k.relu ? 1 : 0) | DNNL_ARG_SRC_1,
                     dnnl::memory(add_desc(k), engine(), const_cast<float*>(add))});
    m.prim.execute(stream, args);
    stream.wait();
}

}  // namespace

void onednn_gemm(OnednnType type, bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda,
                 const void* B, int ldb, float beta, float* C, int ldc) {
    onednn_gemm_batched(type, 1, 1, transA, transB, M, N, K, alpha, A, {0, 0}, lda, B, {0, 0}, ldb, beta, C, {0, 0},
                        ldc);
}

void onednn_gemm_batched(OnednnType type, int batch, int heads, bool transA, bool transB, int M, int N, int K,
                         float alpha, const void* A, OnednnBatch sa, int lda, const void* B, OnednnBatch sb, int ldb,
                         float beta, float* C, OnednnBatch sc, int ldc) {
    if (M == 0 || N == 0 || batch == 0 || heads == 0) return;
    SYNTH_CHECK((batch == 1 || sc.batch != 0) && (heads == 1 || sc.head != 0),
                "onednn_gemm_batched: every matrix of C needs its own place");
    Key k{};  // every field zero (Key has no padding)
    k.type = (int)type, k.transA = transA, k.transB = transB;
    // A dimension is broadcast (size 1) where its stride is 0 or it has one element.
    auto size = [](int n, int64_t stride) { return n == 1 || stride == 0 ? 1 : n; };
    auto stride = [](int n, int64_t s) { return n == 1 ? 0 : s; };
    k.batch_a = size(batch, sa.batch), k.heads_a = size(heads, sa.head);
    k.batch_b = size(batch, sb.batch), k.heads_b = size(heads, sb.head);
    k.batch_c = batch, k.heads_c = heads;
    k.M = M, k.N = N, k.K = K, k.lda = lda, k.ldb = ldb, k.ldc = ldc;
    k.a_batch = stride(k.batch_a, sa.batch), k.a_head = stride(k.heads_a, sa.head);
    k.b_batch = stride(k.batch_b, sb.batch), k.b_head = stride(k.heads_b, sb.head);
    k.c_batch = stride(batch, sc.batch), k.c_head = stride(heads, sc.head);
    k.alpha = alpha, k.beta = beta;
    run(k, A, B, C);
}

void onednn_gemm_epilogue(bool transA, bool transB, int M, int N, int K, const void* A, int lda, const void* B, int ldb,
                          const float* bias, bool relu, const float* add, void* C, bool c_bf16, int ldc) {
    if (M == 0 || N == 0) return;
    Key k{};  // every field zero (Key has no padding)
    k.type = (int)OnednnType::BF16, k.transA = transA, k.transB = transB;
    k.batch_a = k.batch_b = k.batch_c = k.heads_a = k.heads_b = k.heads_c = 1;
    k.M = M, k.N = N, k.K = K, k.lda = lda, k.ldb = ldb, k.ldc = ldc;
    k.bias = bias != nullptr, k.relu = relu, k.add = add != nullptr, k.c_bf16 = c_bf16;
    k.alpha = 1.0f;
    run(k, A, B, C, bias, add);
}

bool onednn_has_bf16() {
    static const bool ok = [] {
        try {
            const dnnl::memory::desc a({16, 32}, dt::bf16, dnnl::memory::format_tag::ab);
            const dnnl::memory::desc b({32, 16}, dt::bf16, dnnl::memory::format_tag::ab);
            const dnnl::memory::desc c({16, 16}, dt::f32, dnnl::memory::format_tag::ab);
            dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), engine());
            return true;
        } catch (const dnnl::error&) {
            return false;
        }
    }();
    return ok;
}

const char* onednn_isa() {
    switch (dnnl::get_effective_cpu_isa()) {
        case dnnl::cpu_isa::avx512_core_amx: return "AVX-512 with AVX512-BF16 and AMX";
        case dnnl::cpu_isa::avx512_core_bf16: return "AVX-512 with AVX512-BF16";
        case dnnl::cpu_isa::avx512_core_vnni: return "AVX-512 with VNNI";
        case dnnl::cpu_isa::avx512_core: return "AVX-512";
        case dnnl::cpu_isa::avx2_vnni: return "AVX2 with VNNI";
        case dnnl::cpu_isa::avx2: return "AVX2";
        default: return "an older ISA";
    }
}

const char* onednn_version() {
    static const std::string v = [] {
        const dnnl_version_t* d = dnnl_version();
        return std::to_string(d->major) + "." + std::to_string(d->minor) + "." + std::to_string(d->patch);
    }();
    return v.c_str();
}

}  // namespace synth

#endif  // SYNTH_ONEDNN

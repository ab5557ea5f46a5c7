#include "onednn.h"

#include <cstdio>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "common.h"

namespace synth {

namespace {

using dt = dnnl::memory::data_type;

const dnnl::engine& engine() {
    static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}

// One cached primitive with the memory descriptors its arguments are wrapped in.
struct Matmul {
    dnnl::matmul prim;
    dnnl::memory::desc a, b, c;
};

// The primitive for one call's parameters, created on first use by this thread.
const Matmul& matmul_for(OnednnType type, bool transA, bool transB, int M, int N, int K, float alpha, int lda,
                         int ldb, float beta, int ldc) {
    thread_local std::unordered_map<std::string, std::unique_ptr<Matmul>> cache;
    char key[160];
    std::snprintf(key, sizeof key, "%d %d%d %d %d %d %d %d %d %a %a", (int)type, transA, transB, M, N, K, lda, ldb, ldc,
                  alpha, beta);
    auto it = cache.find(key);
    if (it != cache.end()) return *it->second;

    const dt t = type == OnednnType::BF16 ? dt::bf16 : dt::f32;
    using dims = dnnl::memory::dims;
    // Row-major op(A) (M x K): element (m, k) at m*lda + k, or transposed at k*lda + m.
    const dnnl::memory::desc a({M, K}, t, transA ? dims{1, lda} : dims{lda, 1});
    const dnnl::memory::desc b({K, N}, t, transB ? dims{1, ldb} : dims{ldb, 1});
    const dnnl::memory::desc c({M, N}, dt::f32, dims{ldc, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
        dnnl::post_ops po;
        po.append_sum(beta);  // after the output scale: C = alpha * AB + beta * C
        attr.set_post_ops(po);
    }
    try {
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine());
        auto m = std::make_unique<Matmul>(Matmul{dnnl::matmul(pd), a, b, c});
        return *cache.emplace(key, std::move(m)).first->second;
    } catch (const dnnl::error& e) {
        fail("oneDNN has no ", type == OnednnType::BF16 ? "bf16" : "fp32", " matmul for ", M, "x", N, "x", K,
             " on this CPU (", onednn_isa(), "): ", e.what());
    }
}

}  // namespace

void onednn_gemm(OnednnType type, bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda,
                 const void* B, int ldb, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    const Matmul& m = matmul_for(type, transA, transB, M, N, K, alpha, lda, ldb, beta, ldc);
    thread_local dnnl::stream stream(engine());
    dnnl::memory a(m.a, engine(), const_cast<void*>(A)), b(m.b, engine(), const_cast<void*>(B)), c(m.c, engine(), C);
    m.prim.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream.wait();
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

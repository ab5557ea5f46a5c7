#include "runs/footing.h"

namespace synth {

bool Footing::dirty() const {
    return commit.size() >= 6 && commit.compare(commit.size() - 6, 6, "-dirty") == 0;
}

std::string Footing::text() const {
    return cpu + ", OpenBLAS kernel " + blas_kernel + ", " + precision + ", " + gemm_provider + ", " + threads +
           (threads == "1" ? " thread" : " threads");
}

Footing footing_of(const JsonObject& c) {
    const auto get = [&c](const char* k, const std::string& otherwise) { return c.has(k) ? c.at(k) : otherwise; };
    Footing f;
    f.cpu = get("cpu", "unknown CPU");
    f.blas_kernel = get("blas_kernel", "unknown");
    f.precision = get("precision", "fp32");
    f.gemm_provider = get("gemm_provider", f.precision == "fp32" ? "openblas-fp32" : "unknown provider");
    f.threads = get("threads", "unknown");
    f.commit = get("git_commit", "unknown");
    return f;
}

bool same_footing(const Footing& a, const Footing& b, std::string* why) {
    const bool same = a.cpu == b.cpu && a.blas_kernel == b.blas_kernel && a.precision == b.precision &&
                      a.gemm_provider == b.gemm_provider && a.threads == b.threads;
    if (!same && why) *why = a.text() + " vs " + b.text();
    return same;
}

}  // namespace synth

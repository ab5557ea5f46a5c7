// shared_mix_bench.cpp: issue 37's experiment, not part of the build. head_mix with one P for the
// batch (R), on the benchmark shape (B 32, H 4, T 128, D 64, causal): the per-(batch, head) batched
// products synth runs (kernels.h) against one GEMM per head over the batch (shared-mix.patch),
// forward and backward, process CPU time, median of 15 interleaved repetitions.
//   git apply results/bench-speed/shared-mix.patch && make all
//   g++ -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp -std=c++17 -fopenmp -O2 -march=native \
//       results/bench-speed/shared_mix_bench.cpp $(ls build/obj/src/{base,engine,engine/gemm}/*.o) \
//       -o /tmp/shared_mix_bench -lopenblas -ldnnl -lm && /tmp/shared_mix_bench 1
#include <time.h>
#include <omp.h>
#include <algorithm>
#include <cstdio>
#include <vector>
#include "engine/kernels.h"
#include "engine/gemm/blas.h"
#include "engine/gemm/precision.h"
#include "base/rng.h"
using namespace synth;
using namespace synth::kernel;
static double cpu() { timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static double med(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }
int main(int argc, char** argv) {
    blas_select_kernel(argc, argv);
    const int threads = argc > 1 ? atoi(argv[1]) : 1;
    set_threads(threads);
    const int B = 32, H = 4, T = 128, D = 64, reps = 15;
    for (Precision prec : {Precision::Fp32, Precision::Bf16}) {
        std::fprintf(stderr, "%s\n", set_precision(prec).c_str());
        Rng rng(1);
        std::vector<float> p((size_t)H * T * T), v((size_t)B * T * H * D), out(v.size()), vt(v.size()), dout(v.size()),
            dp(p.size()), dv(v.size());
        rng.fill_normal(v.data(), v.size(), 0, 1); rng.fill_normal(dout.data(), dout.size(), 0, 1);
        for (int h = 0; h < H; ++h) for (int i = 0; i < T; ++i) for (int j = 0; j < T; ++j) p[((size_t)h * T + i) * T + j] = j <= i ? 1.0f / (i + 1) : 0.0f;
        const BatchedGemm g{B, H, T, D, T, Strided::contiguous(1, H, T, T), Transpose::No, Strided::heads_of(T, H, D), Transpose::No,
                            Strided::heads_of(T, H, D), {Causal::InnerDim, 0}};
        const SharedMix m{B, H, T, T, D, {Causal::InnerDim, 0}};
        std::vector<double> of, ob, nf, nb;
        for (int r = 0; r < reps; ++r) {
            scratch().reset();
            double t0 = cpu(); batched_gemm_forward(g, p.data(), v.data(), out.data()); double t1 = cpu();
            batched_gemm_backward(g, p.data(), v.data(), dout.data(), dp.data(), dv.data()); double t2 = cpu();
            of.push_back(t1 - t0); ob.push_back(t2 - t1);
            scratch().reset();
            t0 = cpu(); shared_mix_forward(m, p.data(), v.data(), vt.data(), out.data()); t1 = cpu();
            shared_mix_backward(m, p.data(), vt.data(), dout.data(), dp.data(), dv.data()); t2 = cpu();
            nf.push_back(t1 - t0); nb.push_back(t2 - t1);
        }
        std::printf("%s threads=%d  per-(batch,head): fwd %.2f ms bwd %.2f ms | one GEMM per head: fwd %.2f ms bwd %.2f ms | x%.2f fwd x%.2f bwd (CPU ms, median of %d)\n",
                    precision_name(prec), threads, 1e3 * med(of), 1e3 * med(ob), 1e3 * med(nf), 1e3 * med(nb), med(of) / med(nf), med(ob) / med(nb), reps);
    }
}

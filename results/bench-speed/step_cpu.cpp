// step_cpu.cpp: issue 37's measurement driver, not part of the build. The benchmark LM's inference
// pass, training forward, backward and optimizer step in process CPU time at one thread (a shared
// machine preempts a process, which inflates wall time but not CPU time), median of N repetitions.
//   g++ -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp -std=c++17 -fopenmp -O2 -march=native \
//       results/bench-speed/step_cpu.cpp $(ls build/obj/src/{base,engine,engine/gemm,attention,models,train,text,runs}/*.o) \
//       -o /tmp/step_cpu -lopenblas -ldnnl -lm && /tmp/step_cpu R bf16 5
#include <time.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "engine/autograd.h"
#include "engine/gemm/blas.h"
#include "engine/gemm/precision.h"
#include "engine/optim.h"
#include "models/transformer.h"
#include "train/trainer.h"
#include "base/rng.h"
using namespace synth;
static double cpu() { timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static double med(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }
int main(int argc, char** argv) {
    blas_select_kernel(argc, argv);
    const std::string variant = argv[1];
    set_threads(1);
    set_precision(parse_precision(argv[2]));
    const int reps = argc > 3 ? atoi(argv[3]) : 5;
    LmConfig c; c.vocab = 65; c.layers = 4; c.d_ff = 1024; c.dropout = 0;
    c.attn.d_model = 256; c.attn.heads = 4; c.attn.max_len = 128; c.attn.variant = variant; c.attn.causal = true;
    ParamStore store; TransformerLM model(store, c); store.finalize(1);
    AdamW opt(store, AdamWConfig{});
    const int B = 32, T = 128;
    Rng rng(1); std::vector<int32_t> x(B * T), y(B * T);
    for (int i = 0; i < B * T; ++i) x[i] = rng.below(65), y[i] = rng.below(65);
    std::vector<double> inf, fwd, bwd, rest;
    for (int r = 0; r < reps + 1; ++r) {
        double t0 = cpu();
        { NoGrad ng; scratch().reset(); StepContext ctx; model.forward(x, B, T, ctx); }
        double t1 = cpu();
        scratch().reset(); store.zero_grad();
        StepContext ctx{true, 1, (uint64_t)r, 0};
        Tensor l = cross_entropy(model.forward(x, B, T, ctx), y, -1, 0.0f);
        double t2 = cpu();
        backward(l);
        double t3 = cpu();
        clip_grad_norm(store, 1.0f); opt.step(1e-4f);
        double t4 = cpu();
        if (r == 0) continue;
        inf.push_back(t1 - t0); fwd.push_back(t2 - t1); bwd.push_back(t3 - t2); rest.push_back(t4 - t3);
    }
    const double step = med(fwd) + med(bwd) + med(rest);
    std::printf("%-4s %s 1 thread, CPU ms (median of %d): inference %.1f | train fwd %.1f bwd %.1f opt %.1f = %.1f  -> %.0f / %.0f tok/s CPU\n",
                variant.c_str(), argv[2], reps, 1e3 * med(inf), 1e3 * med(fwd), 1e3 * med(bwd), 1e3 * med(rest), 1e3 * step,
                B * T / step, B * T / med(inf));
}

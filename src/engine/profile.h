// profile.h: where a step's time goes, per op kind (--profile or SYNTH_PROFILE=1).
//
// Researchers use it to see why a variant is fast or slow; docs/performance.md shows a table and
// how to read it. When it is on, every op of ops.cpp times its forward (an Op scope at its top),
// backward() times each recorded closure under the op's name, and every matrix product of the
// engine (linear's and the batched attention products, kernels.cpp) is timed as GEMM time of the
// op that runs it, with its nominal FLOPs (2 M N K; a causal product's skipped blocks are counted
// too). train_step times its phases (forward, backward, clip, AdamW), and an outermost NoGrad
// scope is one inference pass. Training steps before the activation arena has kept its size for
// a whole step are warm-up (arena growth, first-touch page faults, oneDNN primitive creation) and
// are dropped with everything recorded before them; the report says how many. The report
// (report()) is a table per mode, training steps and inference passes, on stderr, then the same figures as one JSON line on stderr that starts with
// {"profile": (documented in docs/performance.md). Trainer::run prints one per run; whatever was
// recorded after the last report is printed at exit (build/lm --bench, evaluation).
//
// Bytes are an estimate of the memory an op touches, not a measurement: forward, its inputs read
// and its new output tensors written; backward, the output's gradient and the inputs read, and
// each input gradient read and written.
//
// Off (the default), each hook is one test of a global flag. Timings use the wall clock (ops are
// called outside parallel regions, by one thread); SYNTH_PROFILE=cpu turns the profiler on with
// the process's CPU time instead, which a machine shared with other jobs does not inflate (at one
// thread an op's own work; at n threads the sum over them, so shares stay comparable).
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

#include "engine/tensor.h"

namespace synth::profile {

extern bool g_on;
inline bool on() { return g_on; }
// Turns profiling on (or off) for the rest of the process; on also when SYNTH_PROFILE=1 (or cpu)
// at the first call. On, it registers the report of what is left at exit.
void enable(bool on);

// Timed forward of one op kind `op` (a string literal), counted in the training table when
// gradients are enabled, else in the inference table. Ops do not nest; an inner scope counts
// nothing.
class Op {
public:
    Op(const char* op, std::initializer_list<const Tensor*> inputs) {
        if (g_on) begin(op, inputs);
    }
    ~Op() {
        if (active_) end();
    }
    Op(const Op&) = delete;
    Op& operator=(const Op&) = delete;

private:
    void begin(const char* op, std::initializer_list<const Tensor*> inputs);
    void end();
    bool active_ = false;
};

// Timed matrix products of `flops` nominal FLOPs, added to the running op (forward or backward).
class Gemm {
public:
    explicit Gemm(double flops) {
        if (g_on) begin(flops);
    }
    ~Gemm() {
        if (active_) end();
    }
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;

private:
    void begin(double flops);
    void end();
    bool active_ = false;
    double flops_ = 0, t0_ = 0;
};

// A phase of a training step (train_step): "step" around the whole, and "forward", "backward",
// "zero_grad", "allreduce" (several MPI ranks), "clip", "adamw" inside it.
class Phase {
public:
    explicit Phase(const char* name) {
        if (g_on) begin(name);
    }
    ~Phase() {
        if (name_) end();
    }
    Phase(const Phase&) = delete;
    Phase& operator=(const Phase&) = delete;

private:
    void begin(const char* name);
    void end();
    const char* name_ = nullptr;
    double t0_ = 0;
};

// Hooks of the tape and of NoGrad (autograd.cpp).
void backward_begin(const char* op, const Tensor* inputs, size_t n_inputs, const Tensor& output);
void backward_end();
void inference_begin();  // an outermost NoGrad scope opens
void inference_end();

// Prints the table and the JSON line of everything recorded since the last report to `out`,
// titled `title` (e.g. the run's name), then starts afresh. Nothing when nothing was recorded.
void report(std::FILE* out, const std::string& title);

// What the tests read: one op kind's totals in one mode.
struct OpTotals {
    int64_t fwd_calls = 0, bwd_calls = 0;
    double fwd_s = 0, bwd_s = 0, gemm_s = 0, gemm_flops = 0, bytes = 0;
};
OpTotals totals(const std::string& op, bool train);
double phase_seconds(const std::string& phase);  // training phases; "step" is the whole
void reset();

}  // namespace synth::profile

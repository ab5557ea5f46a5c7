// autograd.h: the tape.
//
// Ops run eagerly. When an op's output needs a gradient, the op pushes one entry onto the
// tape: its name, its inputs and output (for their shapes) and a closure, its backward.
// Because ops run in program order, the tape is already a topological order of the
// computation: backward() seeds d(loss)/d(loss) = 1, runs the closures in reverse, and
// clears the tape. Every backward accumulates (+=) into its inputs' grad buffers, so a
// tensor used twice receives the sum of both contributions (micrograd's rule, at the
// granularity of whole layers). Once an op's closure has run, its output's gradient is read
// by nothing else (its consumers ran before it) and backward() returns its pages if it has
// its own (GradientPages, tensor.h); gradients of tensors no op made (leaves) stay until the reset.
//
// Tracing: run any binary with SYNTH_TRACE=1 and the tape of its first training step is
// printed to stderr, one line per op as it is recorded, then one per backward as it runs
// (the same index, in reverse), after which tracing stops:
//     fwd    0 linear        (32, 64, 128), (128, 128) -> (32, 64, 128)
//     ...
//     bwd    0 linear        (32, 64, 128), (128, 128) -> (32, 64, 128)
// trace_next_step(sink) does the same for the next step, handing the lines to sink.
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace synth {

// Whether ops currently record backward closures (false inside a NoGrad scope).
bool grad_enabled();

// While alive, ops neither allocate gradients nor record: evaluation and decoding.
struct NoGrad {
    NoGrad();
    ~NoGrad();
    NoGrad(const NoGrad&) = delete;
    NoGrad& operator=(const NoGrad&) = delete;

private:
    bool prev_;
};

// Whether an op whose inputs have these grads must produce an output with a gradient.
inline bool needs_grad(std::initializer_list<const Tensor*> inputs) {
    if (!grad_enabled()) return false;
    for (const Tensor* t : inputs)
        if (t->grad) return true;
    return false;
}

// One recorded op. Its inputs are kept only while tracing (for their shapes; an input without
// data, such as a missing bias, is not shown), so recording allocates nothing else per op.
struct TapeEntry {
    const char* op;  // a string literal: "linear"
    std::vector<Tensor> inputs;
    Tensor output;
    std::function<void()> backward;
};

void record(const char* op, const Tensor* inputs, size_t n_inputs, const Tensor& output,
            std::function<void()> backward);
inline void record(const char* op, std::initializer_list<Tensor> inputs, const Tensor& output,
                   std::function<void()> backward) {
    record(op, inputs.begin(), inputs.size(), output, std::move(backward));
}
// loss must be a one-element tensor with a gradient.
void backward(const Tensor& loss);
// Drops recorded closures without running them (e.g. after a forward-only pass).
void clear_tape();
size_t tape_size();

// Traces the tape from now until the end of the next backward(), one line per op to sink.
using TraceSink = std::function<void(const std::string& line)>;
void trace_next_step(TraceSink sink);

// While alive, nothing is traced, and a pending trace waits for the first step after it: the
// memory check's one-sequence probe step (src/train/trainer.cpp) is not the step SYNTH_TRACE=1
// promises, the first training step at the run's shapes (docs/tour.md).
struct UntracedScope {
    UntracedScope();
    ~UntracedScope();
    UntracedScope(const UntracedScope&) = delete;
    UntracedScope& operator=(const UntracedScope&) = delete;

private:
    TraceSink saved_;
};

}  // namespace synth

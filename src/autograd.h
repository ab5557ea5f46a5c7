// autograd.h: the tape.
//
// Ops run eagerly. When an op's output needs a gradient, the op pushes one closure, its
// backward, onto the tape. Because ops run in program order, the tape is already a
// topological order of the computation: backward() seeds d(loss)/d(loss) = 1, walks the
// tape in reverse, and clears it. Every backward accumulates (+=) into its inputs'
// grad buffers, so a tensor used twice receives the sum of both contributions
// (micrograd's rule, at the granularity of whole layers).
#pragma once

#include <functional>

#include "tensor.h"

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

void record(std::function<void()> backward_fn);
// loss must be a one-element tensor with a gradient.
void backward(const Tensor& loss);
// Drops recorded closures without running them (e.g. after a forward-only pass).
void clear_tape();
size_t tape_size();

}  // namespace synth

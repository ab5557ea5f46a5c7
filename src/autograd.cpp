#include "autograd.h"

#include <vector>

#include "common.h"

namespace synth {

static bool g_grad_enabled = true;
static std::vector<std::function<void()>>& tape() {
    static std::vector<std::function<void()>> t;
    return t;
}

bool grad_enabled() { return g_grad_enabled; }

NoGrad::NoGrad() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = prev_; }

void record(std::function<void()> backward_fn) { tape().push_back(std::move(backward_fn)); }

void backward(const Tensor& loss) {
    SYNTH_CHECK(loss.numel() == 1, "backward() needs a scalar loss, got shape ", loss.shape_str());
    SYNTH_CHECK(loss.grad, "backward(): the loss does not depend on anything that needs a gradient");
    loss.grad[0] = 1.0f;
    auto& t = tape();
    for (size_t i = t.size(); i-- > 0;) t[i]();
    t.clear();
}

void clear_tape() { tape().clear(); }
size_t tape_size() { return tape().size(); }

}  // namespace synth

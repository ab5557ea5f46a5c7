#include "engine/autograd.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "base/error.h"
#include "engine/profile.h"

namespace synth {

static bool g_grad_enabled = true;
static std::vector<TapeEntry>& tape() {
    static std::vector<TapeEntry> t;
    return t;
}

// Empty when not tracing. SYNTH_TRACE=1 traces the first step to stderr.
static TraceSink& trace() {
    static TraceSink sink = [] {
        const char* env = std::getenv("SYNTH_TRACE");
        if (!env || std::strcmp(env, "1") != 0) return TraceSink{};
        return TraceSink([](const std::string& line) { std::cerr << line << '\n'; });
    }();
    return sink;
}

// "fwd    3 linear        (2, 5, 7), (7, 3) -> (2, 5, 3)"
static std::string trace_line(const char* direction, size_t index, const TapeEntry& e) {
    char head[64];
    std::snprintf(head, sizeof head, "%s %4zu %-13s", direction, index, e.op);
    std::string line = head;
    const char* sep = " ";
    for (const Tensor& t : e.inputs) {
        if (!t.data) continue;
        line += sep + t.shape_str();
        sep = ", ";
    }
    return line + " -> " + e.output.shape_str();
}

bool grad_enabled() { return g_grad_enabled; }

// An outermost NoGrad scope is one inference pass for the profiler.
NoGrad::NoGrad() : prev_(g_grad_enabled) {
    g_grad_enabled = false;
    if (profile::on() && prev_) profile::inference_begin();
}
NoGrad::~NoGrad() {
    if (profile::on() && prev_) profile::inference_end();
    g_grad_enabled = prev_;
}

void record(const char* op, const Tensor* inputs, size_t n_inputs, const Tensor& output,
            std::function<void()> backward) {
    auto& t = tape();
    t.push_back({op, {}, output, std::move(backward)});
    if (!trace() && !profile::on()) return;
    t.back().inputs.assign(inputs, inputs + n_inputs);  // the profiler counts their bytes
    if (trace()) trace()(trace_line("fwd", t.size() - 1, t.back()));
}

void backward(const Tensor& loss) {
    SYNTH_CHECK(loss.numel() == 1, "backward() needs a scalar loss, got shape ", loss.shape_str());
    SYNTH_CHECK(loss.grad, "backward(): the loss does not depend on anything that needs a gradient");
    loss.grad[0] = 1.0f;
    auto& t = tape();
    for (size_t i = t.size(); i-- > 0;) {
        if (trace()) trace()(trace_line("bwd", i, t[i]));
        if (profile::on()) profile::backward_begin(t[i].op, t[i].inputs.data(), t[i].inputs.size(), t[i].output);
        t[i].backward();
        if (profile::on()) profile::backward_end();
        // Every consumer of the output ran before this op, so its gradient is dead.
        scratch().grads.release(t[i].output.grad, (size_t)t[i].output.numel());
    }
    t.clear();
    trace() = nullptr;  // one step is enough to see the order
}

void clear_tape() { tape().clear(); }
size_t tape_size() { return tape().size(); }

void trace_next_step(TraceSink sink) { trace() = std::move(sink); }

UntracedScope::UntracedScope() : saved_(std::move(trace())) { trace() = nullptr; }
UntracedScope::~UntracedScope() { trace() = std::move(saved_); }

}  // namespace synth

// gradcheck.h: central-difference gradient checking for any composition of synth ops.
//
// The idea (ggml's test-grad0, micrograd's sanity checks): reduce an op's output to a scalar
//     L = sum(out * W),   W a fixed random tensor of out's shape (no gradient),
// so that dL/dout = W exercises every output element with a different weight. The analytic
// gradient dL/dx comes from the tape (ops mul + sum, then synth::backward). The numeric one
// perturbs a single input element by +-eps, reruns the forward under NoGrad and evaluates
// L directly from the output values, in double:
//     dL/dx_i ~ (L(x_i + eps) - L(x_i - eps)) / (2 eps).
// A point passes when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
// Backward rules must accumulate (+=), since a tensor used twice receives both contributions:
// gradcheck therefore runs the backward a second time without zeroing and requires every
// gradient to double, which catches a backward that overwrites (=) its inputs' gradients.
//
// PRECISION. Ops are float32 only: there is no double path to check against, so the forward
// itself rounds at ~6e-8 relative per output. Divided by 2 eps, that noise grows, while the
// truncation error of the central difference grows as eps^2 times the third derivative. The
// defaults (eps = 1e-2, atol = 2e-3, rtol = 2e-2) sit between the two for inputs of unit
// scale: every op in ops.h passes with room to spare, while a backward that is 5% off fails
// on any gradient larger than atol / 0.03 ~ 0.07 (tests/test_ops.cpp checks both).
//
// THREADS. The numeric pass makes hundreds of tiny forward calls. On a shared, oversubscribed
// machine every OpenMP fork/join among them can wait a whole scheduler slice for a descheduled
// thread (test_ops went from 0.5 s to 15 s at load 7 on 2 cores), so that pass runs on one
// thread. The analytic pass keeps the caller's thread count, so parallel backward paths are
// still what gets checked.
//
// CONTRACT for the forward function f:
//   - it reads the inputs through the Tensors it captured (perturbation writes their data in
//     place) and returns a new output of the same shape on every call;
//   - it must be a pure function of the input values: anything random is fixed in the closure
//     (dropout: the same seed and counter on every call, since its mask is a pure function of
//     them);
//   - non-smooth ops need a skip predicate for points within eps of a kink (relu: |x| < eps),
//     otherwise the difference straddles the kink. Only kinks at input values can be skipped.
// Each input must have a gradient buffer (synth::new_tensor(shape, true)). gradcheck zeroes
// those buffers first and leaves the analytic gradient in them on return, so a test can also
// inspect it (e.g. exact zeros at masked positions). The tape is cleared on entry, so
// inputs built by earlier ops act as leaves. Inputs must not share buffers (no input may be a
// reshape view of another). Results are returned, not asserted, so a test can
// equally assert that a wrong backward FAILS.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>

#include "engine/autograd.h"
#include "base/error.h"
#include "engine/ops.h"
#include "base/rng.h"
#include "engine/tensor.h"

namespace synth {

struct GradCheckOptions {
    float eps = 1e-2f;     // perturbation, absolute (inputs are expected at unit scale)
    double atol = 2e-3;
    double rtol = 2e-2;
    int max_points = 48;   // elements checked per input, spread over the tensor
    uint64_t seed = 0x5eedULL;  // for W
    // Returns true for points that must not be checked (non-smooth there):
    // (input index, element index, unperturbed value).
    std::function<bool(int, int64_t, float)> skip;
};

struct GradCheckResult {
    bool ok = true;
    int checked = 0, skipped = 0;
    double max_abs_err = 0.0;
    double max_rel_err = 0.0;  // over points where max(|analytic|, |numeric|) >= atol
    double max_ratio = 0.0;    // max of |a - n| / (atol + rtol * max(|a|, |n|)); <= 1 passes
    // The first point that failed (in input order, then element order), if any.
    int fail_input = -1;
    int64_t fail_index = -1;
    double fail_analytic = 0.0, fail_numeric = 0.0;
    // False if a second backward did not add the same gradient again (the first failure is
    // then that element, and fail_analytic / fail_numeric hold the 2nd / 1st contribution).
    bool accumulates = true;

    std::string summary() const {
        std::ostringstream os;
        os << (ok ? "pass" : "FAIL") << ": " << checked << " points checked, " << skipped << " skipped, max abs err "
           << max_abs_err << ", max rel err " << max_rel_err << ", max err/tolerance " << max_ratio;
        if (!accumulates)
            os << "; backward overwrites instead of accumulating: input " << fail_input << " element " << fail_index
               << " received " << fail_analytic << " from a second backward, " << fail_numeric << " from the first";
        else if (!ok)
            os << "; first failure: input " << fail_input << " element " << fail_index << " analytic "
               << fail_analytic << " numeric " << fail_numeric;
        return os.str();
    }
};

// Which elements of an n-element input to check: all of them if n <= cap, else cap indices
// evenly spread from 0 to n-1 (so the first and last element are always among them).
inline std::vector<int64_t> gradcheck_points(int64_t n, int cap) {
    SYNTH_CHECK(cap >= 2, "gradcheck: max_points must be at least 2, got ", cap);
    std::vector<int64_t> pts;
    if (n <= cap) {
        for (int64_t i = 0; i < n; ++i) pts.push_back(i);
        return pts;
    }
    for (int k = 0; k < cap; ++k) pts.push_back((int64_t)((double)k * (double)(n - 1) / (cap - 1) + 0.5));
    return pts;
}

// A skip predicate for a kink at 0 in every input (relu): points with |x| < eps.
inline std::function<bool(int, int64_t, float)> skip_near_zero(float eps) {
    return [eps](int, int64_t, float x) { return std::fabs(x) < eps; };
}

inline GradCheckResult gradcheck(const std::vector<Tensor>& inputs, const std::function<Tensor()>& f,
                                 const GradCheckOptions& opt = {}) {
    SYNTH_CHECK(grad_enabled(), "gradcheck: called inside a NoGrad scope");
    for (size_t k = 0; k < inputs.size(); ++k)
        SYNTH_CHECK(inputs[k].has_grad(), "gradcheck: input ", k, " ", inputs[k].shape_str(), " has no gradient");

    // Analytic: backward of L = sum(out * W).
    clear_tape();
    for (const Tensor& x : inputs) std::memset(x.grad, 0, x.numel() * sizeof(float));
    const Tensor out = f();
    std::vector<int> shape(out.dims.begin(), out.dims.begin() + out.ndim);
    Tensor W = new_tensor(shape, false);
    // |W| in [0.5, 1.5] with a random sign: every output element carries real weight, even a
    // single-element output such as a loss.
    Rng rng(opt.seed);
    for (int64_t i = 0; i < W.numel(); ++i) {
        const double u = rng.uniform();
        W.data[i] = (float)((u < 0.5 ? -1.0 : 1.0) * (0.5 + 2.0 * std::fabs(u - 0.5)));
    }
    auto run_backward = [&](const Tensor& o) {
        const Tensor L = sum(mul(o, W));
        if (L.has_grad())
            backward(L);
        else
            clear_tape();  // o does not depend on the inputs: the analytic gradient is zero
    };
    run_backward(out);
    std::vector<std::vector<float>> analytic;
    for (const Tensor& x : inputs) analytic.emplace_back(x.grad, x.grad + x.numel());

    GradCheckResult res;
    // Accumulation: a second identical backward must add the same gradient again. Rounding
    // may differ slightly (a GEMM with beta = 1 may fold C in at another point).
    run_backward(f());
    for (size_t k = 0; k < inputs.size() && res.accumulates; ++k)
        for (int64_t i = 0; i < inputs[k].numel(); ++i) {
            const double first = analytic[k][i], second = (double)inputs[k].grad[i] - first;
            if (!(std::fabs(second - first) <= 1e-6 + 1e-4 * std::fabs(first))) {
                res.ok = res.accumulates = false;
                res.fail_input = (int)k;
                res.fail_index = i;
                res.fail_analytic = second;
                res.fail_numeric = first;
                break;
            }
        }
    for (size_t k = 0; k < inputs.size(); ++k)
        std::memcpy(inputs[k].grad, analytic[k].data(), analytic[k].size() * sizeof(float));

    const int64_t n_out = W.numel();
    auto eval_loss = [&]() {
        NoGrad no_grad;
        const Tensor o = f();
        SYNTH_CHECK(o.numel() == n_out, "gradcheck: output size changed from ", n_out, " to ", o.numel());
        double s = 0.0;
        for (int64_t i = 0; i < n_out; ++i) s += (double)o.data[i] * (double)W.data[i];
        return s;
    };

    struct OneThread {  // restores the caller's thread count however the loop exits
        int prev = omp_get_max_threads();
        OneThread() { omp_set_num_threads(1); }
        ~OneThread() { omp_set_num_threads(prev); }
    } one_thread;
    for (size_t k = 0; k < inputs.size(); ++k) {
        float* d = inputs[k].data;
        for (int64_t i : gradcheck_points(inputs[k].numel(), opt.max_points)) {
            const float x0 = d[i];
            if (opt.skip && opt.skip((int)k, i, x0)) {
                ++res.skipped;
                continue;
            }
            const float xp = x0 + opt.eps, xm = x0 - opt.eps;  // the steps as actually stored
            d[i] = xp;
            const double lp = eval_loss();
            d[i] = xm;
            const double lm = eval_loss();
            d[i] = x0;
            const double num = (lp - lm) / ((double)xp - (double)xm);
            const double ana = analytic[k][i];
            const double err = std::fabs(ana - num), scale = std::max(std::fabs(ana), std::fabs(num));
            const double tol = opt.atol + opt.rtol * scale;
            ++res.checked;
            res.max_abs_err = std::max(res.max_abs_err, err);
            if (scale >= opt.atol) res.max_rel_err = std::max(res.max_rel_err, err / scale);
            res.max_ratio = std::max(res.max_ratio, err / tol);
            if (!(err <= tol) && res.ok) {  // also catches NaN; an accumulation failure came first
                res.ok = false;
                res.fail_input = (int)k;
                res.fail_index = i;
                res.fail_analytic = ana;
                res.fail_numeric = num;
            }
        }
    }
    clear_tape();
    return res;
}

}  // namespace synth

// ops.cpp: forward and backward of every op, side by side.
//
// Each op checks its shapes, computes its forward formula, and records its backward formula
// on the tape (autograd.h). How the work is split over threads, summed deterministically and
// skipped above a causal diagonal lives in kernels.h; element loops here are plain OpenMP
// loops with static schedules (same seed + same threads = same bits).
#include "engine/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/autograd.h"
#include "engine/gemm/blas.h"
#include "base/error.h"
#include "engine/fastmath.h"
#include "engine/kernels.h"
#include "engine/profile.h"
#include "base/rng.h"

namespace synth {

using kernel::kParallelMin;
using kernel::Strided;

static Shape shape_of(const Tensor& t) { return Shape(t.dims.begin(), t.dims.begin() + t.ndim); }

// A copy of integer ids in the scratch arena, so a backward closure can keep them
// without allocating (int32 and float have the same size).
static const int32_t* scratch_ids(const std::vector<int32_t>& ids) {
    int32_t* p = reinterpret_cast<int32_t*>(scratch().alloc(ids.size()));
    std::memcpy(p, ids.data(), ids.size() * sizeof(int32_t));
    return p;
}

// Where an inference op writes the bf16 bits of its output y beside its fp32 values, for the
// matrix products y feeds (Bf16Companions, blas.h), or nullptr when there is no such pass. Only
// without gradients: in training the bits would stay in the arena until the step ends.
static uint16_t* bf16_companion_of(const Tensor& y) {
    if (grad_enabled() || !bf16_companions_wanted()) return nullptr;
    const int64_t n = y.numel();
    uint16_t* bits = reinterpret_cast<uint16_t*>(scratch().alloc((size_t)(n + 1) / 2));
    offer_bf16_companion(y.data, n, bits);
    return bits;
}

// =====================================================================================
// linear: y (R, N) = alpha x (R, K) op(W) (+ b)
// =====================================================================================
// The shape checks shared by linear and linear_relu, and their output (x's shape, last dim N).
static Tensor linear_output(const Tensor& x, const Tensor& w, const Tensor& b, Transpose w_layout, const char* name) {
    const bool wt = w_layout == Transpose::Yes;
    SYNTH_CHECK(w.ndim == 2, name, ": weight must be 2-D, got ", w.shape_str());
    const int K = x.dim(-1);
    const int N = wt ? w.dim(0) : w.dim(1);
    SYNTH_CHECK((wt ? w.dim(1) : w.dim(0)) == K, name, ": x ", x.shape_str(), " does not match weight ",
                w.shape_str(), wt ? " (transposed)" : "");
    SYNTH_CHECK(!b.data || (b.ndim == 1 && b.dim(0) == N), name, ": bias must be (", N, ")");
    Shape ys = shape_of(x);
    ys.back() = N;
    return new_tensor(ys, needs_grad({&x, &w, &b}));
}

// y = alpha x op(W) + bias, bias (N) or nullptr: the bias rows are copied into y first and
// the GEMM accumulates onto them.
static void linear_forward(const Tensor& x, const Tensor& w, const float* bias, Transpose w_layout, float alpha,
                           const Tensor& y) {
    const bool wt = w_layout == Transpose::Yes;
    const int K = x.dim(-1), N = y.dim(-1);
    const int64_t R = x.numel() / K;
    if (bias) kernel::fill_rows(bias, R, N, y.data);
    const profile::Gemm prof(2.0 * R * N * K);
    sgemm(false, wt, (int)R, N, K, alpha, x.data, K, w.data, wt ? K : N, bias ? 1.0f : 0.0f, y.data, N);
}

// dx (R, K) += alpha dy op(W)^T, dW += alpha (x^T dy, or dy^T x when W is (N, K)),
// db += the column sums of dy (R, N).
static void linear_backward(const Tensor& x, const Tensor& w, const Tensor& b, Transpose w_layout, float alpha,
                            const float* dy) {
    const bool wt = w_layout == Transpose::Yes;
    const int K = x.dim(-1), N = wt ? w.dim(0) : w.dim(1);
    const int64_t R = x.numel() / K;
    {
        const GemmOperandReuse reuse;  // dy feeds both products: converted to bf16 once
        const profile::Gemm prof(2.0 * R * N * K * ((x.grad ? 1 : 0) + (w.grad ? 1 : 0)));
        if (x.grad) sgemm(false, !wt, (int)R, K, N, alpha, dy, N, w.data, wt ? K : N, 1.0f, x.grad, K);
        if (w.grad) {
            if (wt)  // dW (N, K) += alpha dy^T x
                sgemm(true, false, N, K, (int)R, alpha, dy, N, x.data, K, 1.0f, w.grad, K);
            else  // dW (K, N) += alpha x^T dy
                sgemm(true, false, K, N, (int)R, alpha, x.data, K, dy, N, 1.0f, w.grad, N);
        }
    }
    if (b.grad) kernel::colsum_add(dy, R, N, b.grad);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, Transpose w_layout, float alpha) {
    const profile::Op prof("linear", {&x, &w, &b});
    Tensor y = linear_output(x, w, b, w_layout, "linear");
    linear_forward(x, w, b.data, w_layout, alpha, y);
    if (y.grad) record("linear", {x, w, b}, y, [=] { linear_backward(x, w, b, w_layout, alpha, y.grad); });
    return y;
}

// y = relu(x W + b), fused: the pre-activation is never stored (relu(z) > 0 exactly when
// z > 0, so y alone gives the mask), which saves one (R, N) tensor and its gradient per
// feed-forward layer, and one pass over them. The bias is added in the ReLU's pass, not
// copied into y before the GEMM: one pass over y fewer.
Tensor linear_relu(const Tensor& x, const Tensor& w, const Tensor& b) {
    const profile::Op prof("linear_relu", {&x, &w, &b});
    Tensor y = linear_output(x, w, b, Transpose::No, "linear_relu");
    linear_forward(x, w, nullptr, Transpose::No, 1.0f, y);
    const int N = y.dim(-1);
    const int64_t rows = y.numel() / N;
    uint16_t* y16 = bf16_companion_of(y);  // for the next layer's product, in this pass
#pragma omp parallel for if (rows * N > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        float* yr = y.data + r * N;
        if (b.data) {
#pragma omp simd
            for (int c = 0; c < N; ++c) yr[c] = std::max(yr[c] + b.data[c], 0.0f);
        } else {
#pragma omp simd
            for (int c = 0; c < N; ++c) yr[c] = std::max(yr[c], 0.0f);
        }
        if (y16) kernel::bf16_row(yr, N, y16 + r * N);
    }
    const int64_t n = y.numel();
    if (y.grad) {
        record("linear_relu", {x, w, b}, y, [=] {
            // dz = dy * [y > 0], in place: every consumer of y has already added into y.grad.
#pragma omp parallel for if (n > kParallelMin)
            for (int64_t i = 0; i < n; ++i) y.grad[i] = y.data[i] > 0.0f ? y.grad[i] : 0.0f;
            linear_backward(x, w, b, Transpose::No, 1.0f, y.grad);
        });
    }
    return y;
}

Tensor feed_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                    const Tensor& residual) {
    if (grad_enabled() || gemm_provider() != GemmProvider::Bf16Onednn) {
        const Tensor y = linear(linear_relu(x, w1, b1), w2, b2);
        return residual.data ? add(residual, y) : y;
    }
    const profile::Op prof("feed_forward", {&x, &w1, &b1, &w2, &b2, &residual});
    const int C = x.dim(-1);
    SYNTH_CHECK(w1.ndim == 2 && w2.ndim == 2 && w1.dim(0) == C && w2.dim(0) == w1.dim(1), "feed_forward: x ",
                x.shape_str(), ", w1 ", w1.shape_str(), " and w2 ", w2.shape_str(), " do not chain");
    const int F = w1.dim(1), N = w2.dim(1);
    SYNTH_CHECK((!b1.data || b1.numel() == F) && (!b2.data || b2.numel() == N), "feed_forward: biases must be (", F,
                ") and (", N, ")");
    const int64_t R = x.numel() / C;
    Shape ys = shape_of(x);
    ys.back() = N;
    SYNTH_CHECK(!residual.data || shape_of(residual) == ys, "feed_forward: residual ", residual.shape_str(),
                " is not the output's shape");
    Tensor y = new_tensor(ys, false);
    uint16_t* hidden = reinterpret_cast<uint16_t*>(scratch().alloc((size_t)(R * F + 1) / 2));  // (R, F) bf16
    const profile::Gemm gemm(2.0 * R * F * (C + N));
    sgemm_bias_relu_to_bf16((int)R, F, C, x.data, w1.data, b1.data, hidden);
    sgemm_bf16_bias((int)R, N, F, hidden, w2.data, b2.data, residual.data, y.data);
    return y;
}

// =====================================================================================
// bmm and the attention products: batched over (batch, head), see kernels.h
// =====================================================================================
// The causal block skipping a mask allows a product (only causal and q_offset are read).
static kernel::Causal causal_blocks(const Mask& mask, kernel::Causal::Limit limit) {
    return {mask.causal ? limit : kernel::Causal::None, mask.q_offset};
}

// c = op(a) op(b) per (batch, head) as g lays them out; backward da += dc op(b)^T,
// db += op(a)^T dc.
static void batched_matmul(const char* name, const kernel::BatchedGemm& g, const Tensor& a, const Tensor& b,
                           const Tensor& c) {
    kernel::batched_gemm_forward(g, a.data, b.data, c.data);
    if (c.grad)
        record(name, {a, b}, c, [=] { kernel::batched_gemm_backward(g, a.data, b.data, c.grad, a.grad, b.grad); });
}

Tensor bmm(const Tensor& a, const Tensor& b, Transpose ta, Transpose tb) {
    const profile::Op prof("bmm", {&a, &b});
    SYNTH_CHECK(a.ndim == 4 && b.ndim == 4, "bmm: operands must be 4-D, got ", a.shape_str(), " and ", b.shape_str());
    const int Ba = a.dim(0), Bb = b.dim(0), H = a.dim(1);
    SYNTH_CHECK(b.dim(1) == H, "bmm: head counts differ: ", a.shape_str(), " vs ", b.shape_str());
    SYNTH_CHECK(Ba == Bb || Ba == 1 || Bb == 1, "bmm: batch sizes ", Ba, " and ", Bb, " do not broadcast");
    const bool a_t = ta == Transpose::Yes, b_t = tb == Transpose::Yes;
    const int M = a_t ? a.dim(3) : a.dim(2), K = a_t ? a.dim(2) : a.dim(3);
    const int N = b_t ? b.dim(2) : b.dim(3);
    SYNTH_CHECK((b_t ? b.dim(3) : b.dim(2)) == K, "bmm: inner dimensions differ: ", a.shape_str(), " vs ",
                b.shape_str());
    const int B = std::max(Ba, Bb);
    Tensor c = new_tensor({B, H, M, N}, needs_grad({&a, &b}));
    // c (B, H, M, N) = op(a) op(b), each as stored; a batch of 1 is shared by the whole batch.
    const kernel::BatchedGemm g{B, H, M, N, K,
                                Strided::contiguous(Ba, H, a.dim(2), a.dim(3)), ta,
                                Strided::contiguous(Bb, H, b.dim(2), b.dim(3)), tb,
                                Strided::contiguous(B, H, M, N), {}};
    batched_matmul("bmm", g, a, b, c);
    return c;
}

Tensor head_scores(const Tensor& q, const Tensor& k, int H, const Mask& mask) {
    const profile::Op prof("head_scores", {&q, &k});
    SYNTH_CHECK(q.ndim == 3 && k.ndim == 3 && q.dim(0) == k.dim(0) && q.dim(2) == k.dim(2) && q.dim(2) % H == 0,
                "head_scores: q ", q.shape_str(), " and k ", k.shape_str(), " in ", H, " heads");
    const int B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), D = q.dim(2) / H;
    Tensor c = new_tensor({B, H, Tq, Tk}, needs_grad({&q, &k}));
    // c_h (Tq, Tk) = q_h k_h^T on the heads of q and k in place.
    const kernel::BatchedGemm g{B, H, Tq, Tk, D,
                                Strided::heads_of(Tq, H, D), Transpose::No,
                                Strided::heads_of(Tk, H, D), Transpose::Yes,
                                Strided::contiguous(B, H, Tq, Tk), causal_blocks(mask, kernel::Causal::OutputColumns)};
    batched_matmul("head_scores", g, q, k, c);
    return c;
}

Tensor head_mix(const Tensor& p, const Tensor& v, const Mask& mask) {
    const profile::Op prof("head_mix", {&p, &v});
    SYNTH_CHECK(p.ndim == 4 && v.ndim == 3 && (p.dim(0) == v.dim(0) || p.dim(0) == 1) && p.dim(3) == v.dim(1) &&
                    v.dim(2) % p.dim(1) == 0,
                "head_mix: weights ", p.shape_str(), " and values ", v.shape_str());
    const int B = v.dim(0), H = p.dim(1), Tq = p.dim(2), Tk = p.dim(3), D = v.dim(2) / H;
    Tensor out = new_tensor({B, Tq, H * D}, needs_grad({&p, &v}));
    // out_h (Tq, D) = p_h v_h, written into head h's columns of out.
    const kernel::BatchedGemm g{B, H, Tq, D, Tk,
                                Strided::contiguous(p.dim(0), H, Tq, Tk), Transpose::No,
                                Strided::heads_of(Tk, H, D), Transpose::No,
                                Strided::heads_of(Tq, H, D), causal_blocks(mask, kernel::Causal::InnerDim)};
    batched_matmul("head_mix", g, p, v, out);
    return out;
}

// =====================================================================================
// add (with trailing-shape broadcast of b), mul, scale
// =====================================================================================
Tensor add(const Tensor& a, const Tensor& b) {
    const profile::Op prof("add", {&a, &b});
    const int64_t n = a.numel(), m = b.numel();
    bool trailing = b.ndim <= a.ndim;
    for (int i = 1; trailing && i <= b.ndim; ++i) trailing = a.dim(-i) == b.dim(-i);
    SYNTH_CHECK(trailing, "add: shapes ", a.shape_str(), " and ", b.shape_str(), " do not broadcast");
    Tensor y = new_tensor(shape_of(a), needs_grad({&a, &b}));
    // y[r, c] = a[r, c] + b[c] over the n / m rows of m, without an index modulo per element, so
    // the loops vectorise (docs/performance.md); each y element is the same single float addition.
    if (m == n) {  // same shapes: the residual adds
#pragma omp parallel for simd if (n > kParallelMin)
        for (int64_t i = 0; i < n; ++i) y.data[i] = a.data[i] + b.data[i];
    } else {
#pragma omp parallel for if (n > kParallelMin)
        for (int64_t r = 0; r < n / m; ++r) {
            const float* ar = a.data + r * m;
            float* yr = y.data + r * m;
#pragma omp simd
            for (int64_t c = 0; c < m; ++c) yr[c] = ar[c] + b.data[c];
        }
    }
    if (y.grad) {
        record("add", {a, b}, y, [=] {
            // da += dy; db += dy summed over the leading dims b is broadcast over
            if (a.grad) {
#pragma omp parallel for if (n > kParallelMin)
                for (int64_t i = 0; i < n; ++i) a.grad[i] += y.grad[i];
            }
            if (b.grad) kernel::colsum_add(y.grad, n / m, (int)m, b.grad);
        });
    }
    return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    const profile::Op prof("mul", {&a, &b});
    const int64_t n = a.numel();
    bool same = a.ndim == b.ndim;
    for (int i = 0; same && i < a.ndim; ++i) same = a.dims[i] == b.dims[i];
    SYNTH_CHECK(same, "mul: shapes ", a.shape_str(), " and ", b.shape_str(), " differ");
    Tensor y = new_tensor(shape_of(a), needs_grad({&a, &b}));
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y.data[i] = a.data[i] * b.data[i];
    if (y.grad) {
        record("mul", {a, b}, y, [=] {
#pragma omp parallel for if (n > kParallelMin)
            for (int64_t i = 0; i < n; ++i) {
                if (a.grad) a.grad[i] += y.grad[i] * b.data[i];
                if (b.grad) b.grad[i] += y.grad[i] * a.data[i];
            }
        });
    }
    return y;
}

Tensor scale(const Tensor& a, float s) {
    const profile::Op prof("scale", {&a});
    const int64_t n = a.numel();
    Tensor y = new_tensor(shape_of(a), needs_grad({&a}));
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y.data[i] = a.data[i] * s;
    if (y.grad) {
        record("scale", {a}, y, [=] {
#pragma omp parallel for if (n > kParallelMin)
            for (int64_t i = 0; i < n; ++i) a.grad[i] += y.grad[i] * s;
        });
    }
    return y;
}

// =====================================================================================
// relu, gelu, glu
// =====================================================================================
Tensor relu(const Tensor& x) {
    const profile::Op prof("relu", {&x});
    const int64_t n = x.numel();
    Tensor y = new_tensor(shape_of(x), needs_grad({&x}));
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y.data[i] = x.data[i] > 0.0f ? x.data[i] : 0.0f;
    if (y.grad) {
        record("relu", {x}, y, [=] {
#pragma omp parallel for if (n > kParallelMin)
            for (int64_t i = 0; i < n; ++i) x.grad[i] += x.data[i] > 0.0f ? y.grad[i] : 0.0f;  // branch-free: vectorises
        });
    }
    return y;
}

// gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
static constexpr float kGeluC = 0.7978845608028654f;
Tensor gelu(const Tensor& x) {
    const profile::Op prof("gelu", {&x});
    const int64_t n = x.numel();
    Tensor y = new_tensor(shape_of(x), needs_grad({&x}));
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
        float v = x.data[i];
        y.data[i] = 0.5f * v * (1.0f + std::tanh(kGeluC * (v + 0.044715f * v * v * v)));
    }
    if (y.grad) {
        // dx = dy (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx)
        record("gelu", {x}, y, [=] {
#pragma omp parallel for if (n > kParallelMin)
            for (int64_t i = 0; i < n; ++i) {
                float v = x.data[i];
                float t = std::tanh(kGeluC * (v + 0.044715f * v * v * v));
                float du = kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
                x.grad[i] += y.grad[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
            }
        });
    }
    return y;
}

// glu(x) = a * sigmoid(g) for x = [a | g] along the last dim: (..., 2C) -> (..., C)
Tensor glu(const Tensor& x) {
    const profile::Op prof("glu", {&x});
    SYNTH_CHECK(x.ndim >= 1 && x.dim(-1) % 2 == 0, "glu: the last dim of ", x.shape_str(), " must be even");
    const int C = x.dim(-1) / 2;
    const int64_t rows = x.numel() / (2 * C);
    Shape ys = shape_of(x);
    ys.back() = C;
    Tensor y = new_tensor(ys, needs_grad({&x}));
    auto sigmoid = [](float g) { return 1.0f / (1.0f + std::exp(-g)); };
#pragma omp parallel for if (rows * C > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const float* a = x.data + r * 2 * C;
        for (int c = 0; c < C; ++c) y.data[r * C + c] = a[c] * sigmoid(a[C + c]);
    }
    if (y.grad) {
        // da = dy s,  dg = dy a s (1 - s),  s = sigmoid(g)
        record("glu", {x}, y, [=] {
#pragma omp parallel for if (rows * C > kParallelMin)
            for (int64_t r = 0; r < rows; ++r) {
                const float* a = x.data + r * 2 * C;
                float* da = x.grad + r * 2 * C;
                const float* dy = y.grad + r * C;
                for (int c = 0; c < C; ++c) {
                    const float sg = sigmoid(a[C + c]);
                    da[c] += dy[c] * sg;
                    da[C + c] += dy[c] * a[c] * sg * (1.0f - sg);
                }
            }
        });
    }
    return y;
}

// =====================================================================================
// dropout
// =====================================================================================
// out[i] (+)= in[i] * keep where hash_uniform(seed, counter, i) >= p, else 0 (or nothing):
// the forward applies the mask, the backward applies the same mask to the gradient.
static void apply_dropout_mask(const float* in, float* out, int64_t n, float p, float keep, uint64_t seed,
                               uint64_t counter, kernel::Write write) {
    const bool accumulate = write == kernel::Write::Accumulate;
#pragma omp parallel for simd if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
        const float v = hash_uniform(seed, counter, i) < p ? 0.0f : in[i] * keep;
        out[i] = accumulate ? out[i] + v : v;
    }
}

Tensor dropout(const Tensor& x, float p, uint64_t seed, uint64_t counter) {
    SYNTH_CHECK(p >= 0.0f && p < 1.0f, "dropout probability must be in [0, 1), got ", p);
    if (p == 0.0f) return x;
    const profile::Op prof("dropout", {&x});
    const int64_t n = x.numel();
    const float keep = 1.0f / (1.0f - p);
    Tensor y = new_tensor(shape_of(x), needs_grad({&x}));
    apply_dropout_mask(x.data, y.data, n, p, keep, seed, counter, kernel::Write::Assign);
    if (y.grad)
        record("dropout", {x}, y,
               [=] { apply_dropout_mask(y.grad, x.grad, n, p, keep, seed, counter, kernel::Write::Accumulate); });
    return y;
}

// =====================================================================================
// layernorm
// =====================================================================================
// mean[k] and rstd[k] = 1 / sqrt(var + eps) of N rows of x (C apart), each summed in the order
// c = 0, 1, ... of the plain one-row loop, so with the same numbers; but the N rows' additions
// are independent chains that overlap, where one row's sum waits on each previous addition.
template <int N>
static void row_moments(const float* x, int C, float eps, float* mean, float* rstd) {
    float m[N] = {}, v[N] = {};
    for (int c = 0; c < C; ++c)
        for (int k = 0; k < N; ++k) m[k] += x[(int64_t)k * C + c];
    for (int k = 0; k < N; ++k) m[k] /= C;
    for (int c = 0; c < C; ++c)
        for (int k = 0; k < N; ++k) {
            const float xc = x[(int64_t)k * C + c];
            v[k] += (xc - m[k]) * (xc - m[k]);
        }
    for (int k = 0; k < N; ++k) mean[k] = m[k], rstd[k] = 1.0f / std::sqrt(v[k] / C + eps);
}

Tensor layernorm(const Tensor& x, const Tensor& g, const Tensor& b, float eps) {
    const profile::Op prof("layernorm", {&x, &g, &b});
    const int C = x.dim(-1);
    SYNTH_CHECK(g.numel() == C && b.numel() == C, "layernorm: gain/bias must have ", C, " elements");
    const int64_t R = x.numel() / C;
    Tensor y = new_tensor(shape_of(x), needs_grad({&x, &g, &b}));
    float* mean = scratch().alloc(R);  // saved for backward
    float* rstd = scratch().alloc(R);
    uint16_t* y16 = bf16_companion_of(y);  // for the products y feeds, in this pass
    constexpr int kRows = 8;  // rows whose statistics are summed side by side (row_moments)
#pragma omp parallel for if (R * C > kParallelMin)
    for (int64_t r0 = 0; r0 < R; r0 += kRows) {
        const int64_t r1 = std::min(R, r0 + kRows);
        if (r1 - r0 == kRows) row_moments<kRows>(x.data + r0 * C, C, eps, mean + r0, rstd + r0);
        else
            for (int64_t r = r0; r < r1; ++r) row_moments<1>(x.data + r * C, C, eps, mean + r, rstd + r);
        for (int64_t r = r0; r < r1; ++r) {
            const float *xr = x.data + r * C, m = mean[r], s = rstd[r];
            float* yr = y.data + r * C;
            for (int c = 0; c < C; ++c) yr[c] = (xr[c] - m) * s * g.data[c] + b.data[c];
            if (y16) kernel::bf16_row(yr, C, y16 + r * C);
        }
    }
    if (y.grad) {
        record("layernorm", {x, g, b}, y, [=] {
            // Per row, with xh = (x - mean) * rstd and dxh = dy * g:
            //   dx += rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)),
            //   dg += dy * xh and db += dy, summed over the rows as per-thread partial sums.
            auto row = [&](int64_t r, float* part) {
                float *pg = part, *pb = part + C;
                const float* xr = x.data + r * C;
                const float* dy = y.grad + r * C;
                float m = mean[r], s = rstd[r];
                float sum_dxh = 0.0f, sum_dxh_xh = 0.0f;
                for (int c = 0; c < C; ++c) {
                    float xh = (xr[c] - m) * s;
                    float dxh = dy[c] * g.data[c];
                    sum_dxh += dxh;
                    sum_dxh_xh += dxh * xh;
                    pg[c] += dy[c] * xh;
                    pb[c] += dy[c];
                }
                if (x.grad) {
                    float* dx = x.grad + r * C;
                    sum_dxh /= C;
                    sum_dxh_xh /= C;
                    for (int c = 0; c < C; ++c) {
                        float xh = (xr[c] - m) * s;
                        dx[c] += s * (dy[c] * g.data[c] - sum_dxh - xh * sum_dxh_xh);
                    }
                }
            };
            auto add_partials = [&](const float* part) {
                for (int c = 0; c < C; ++c) {
                    if (g.grad) g.grad[c] += part[c];
                    if (b.grad) b.grad[c] += part[C + c];
                }
            };
            kernel::rows_with_partial_sums(R, 2 * C, R * C > kParallelMin, row, add_partials);
        });
    }
    return y;
}

// =====================================================================================
// masked softmax
// =====================================================================================
Tensor softmax(const Tensor& logits, const Mask& mask) {
    const profile::Op prof("softmax", {&logits});
    SYNTH_CHECK(logits.ndim == 4, "softmax: logits must be (B, H, Tq, Tk), got ", logits.shape_str());
    const int Bl = logits.dim(0), H = logits.dim(1), Tq = logits.dim(2), Tk = logits.dim(3);
    const int Bo = mask.key_pad ? mask.batch : Bl;
    SYNTH_CHECK(Bl == Bo || Bl == 1, "softmax: logits batch ", Bl, " does not match mask batch ", Bo);
    Tensor y = new_tensor({Bo, H, Tq, Tk}, needs_grad({&logits}));
    const Mask m = mask;
    // Output row (bo, h, i) reads logits row (Bl == 1 ? 0 : bo, h, i).
    auto src_row = [=](int bo, int h, int i) { return ((int64_t)(Bl == 1 ? 0 : bo) * H + h) * Tq + i; };
    const int64_t rows = (int64_t)Bo * H * Tq;
    // Keys j >= jmax(i) are causally masked: never read, output 0, no gradient. Skipping them
    // halves the work of a causal softmax, forward and backward.
    auto jmax_of = [=](int i) { return m.causal ? std::max(0, std::min(Tk, i + m.q_offset + 1)) : Tk; };
    uint16_t* y16 = bf16_companion_of(y);  // P's bits for P V, in this pass
#pragma omp parallel for if (rows * Tk > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        int i = (int)(r % Tq), h = (int)((r / Tq) % H), bo = (int)(r / ((int64_t)Tq * H));
        const float* x = logits.data + src_row(bo, h, i) * Tk;
        const uint8_t* pad = m.key_pad ? m.key_pad + (int64_t)bo * Tk : nullptr;
        float* out = y.data + r * Tk;
        const int jmax = jmax_of(i);
        float mx = -std::numeric_limits<float>::infinity();
        if (pad) {
            for (int j = 0; j < jmax; ++j)
                if (!pad[j]) mx = std::max(mx, x[j]);
        } else {
#pragma omp simd reduction(max : mx)
            for (int j = 0; j < jmax; ++j) mx = std::max(mx, x[j]);
        }
        std::memset(out + jmax, 0, (size_t)(Tk - jmax) * sizeof(float));
        if (mx == -std::numeric_limits<float>::infinity()) {  // every key masked
            std::memset(out, 0, (size_t)jmax * sizeof(float));
            if (y16) kernel::bf16_row(out, Tk, y16 + r * Tk);
            continue;
        }
        float s = 0.0f;
        if (pad) {
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < jmax; ++j) {
                float e = pad[j] ? 0.0f : fast_exp(x[j] - mx);
                out[j] = e;
                s += e;
            }
        } else {
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < jmax; ++j) {
                float e = fast_exp(x[j] - mx);
                out[j] = e;
                s += e;
            }
        }
        const float inv = 1.0f / s;
#pragma omp simd
        for (int j = 0; j < jmax; ++j) out[j] *= inv;
        if (y16) kernel::bf16_row(out, Tk, y16 + r * Tk);
    }
    if (y.grad) {
        record("softmax", {logits}, y, [=] {
            // dx = y * (dy - sum(y * dy)) over the unmasked keys; a broadcast logits row sums
            // over the batch serially.
            const int64_t src_rows = (int64_t)Bl * H * Tq;
#pragma omp parallel for if (rows * Tk > kParallelMin)
            for (int64_t sr = 0; sr < src_rows; ++sr) {
                float* dx = logits.grad + sr * Tk;
                int b_first = Bl == 1 ? 0 : (int)(sr / ((int64_t)H * Tq));
                int b_last = Bl == 1 ? Bo : b_first + 1;
                int64_t hi = sr % ((int64_t)H * Tq);
                const int jmax = jmax_of((int)(hi % Tq));
                for (int bo = b_first; bo < b_last; ++bo) {
                    int64_t r = (int64_t)bo * H * Tq + hi;
                    const float* yr = y.data + r * Tk;
                    const float* dy = y.grad + r * Tk;
                    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                    for (int j = 0; j < jmax; ++j) dot += yr[j] * dy[j];
#pragma omp simd
                    for (int j = 0; j < jmax; ++j) dx[j] += yr[j] * (dy[j] - dot);
                }
            }
        });
    }
    return y;
}

// =====================================================================================
// local_conv: y[b, r, c] = sum_k w[b, r, c / (C/H), k] x[b, q_offset + r - pad_left + k, c]
// =====================================================================================
Tensor local_conv(const Tensor& x, const Tensor& w, int pad_left, int q_offset, const uint8_t* key_pad) {
    const profile::Op prof("local_conv", {&x, &w});
    SYNTH_CHECK(x.ndim == 3 && w.ndim == 4, "local_conv: x (B, Tk, C) and w (B or 1, Tq or 1, H, K) expected, got x ",
                x.shape_str(), " w ", w.shape_str());
    const int B = x.dim(0), Tk = x.dim(1), C = x.dim(2), H = w.dim(2), K = w.dim(3), Tq = Tk - q_offset;
    SYNTH_CHECK(q_offset >= 0 && Tq >= 1, "local_conv: query offset ", q_offset, " leaves no query of ", Tk, " keys");
    SYNTH_CHECK(H >= 1 && C % H == 0 && K >= 1, "local_conv: ", H, " kernel heads do not divide ", C, " channels");
    const bool per_position = w.dim(0) == B && w.dim(1) == Tq;
    SYNTH_CHECK(per_position || (w.dim(0) == 1 && w.dim(1) == 1), "local_conv: w ", w.shape_str(),
                " is neither (1, 1, H, K) nor (B, Tq, H, K) for x ", x.shape_str(), " with ", Tq, " queries");
    Tensor y = new_tensor({B, Tq, C}, needs_grad({&x, &w}));
    const int R = C / H, HK = H * K;
    // The padding flags outlive the caller's buffer: the backward needs them.
    uint8_t* pad = nullptr;
    if (key_pad) {
        pad = reinterpret_cast<uint8_t*>(scratch().alloc(((size_t)B * Tk + 3) / 4));
        std::memcpy(pad, key_pad, (size_t)B * Tk);
    }
    // Key j of sequence b is read when it lies in the sequence and is not padding.
    auto key_ok = [=](int b, int j) { return j >= 0 && j < Tk && !(pad && pad[(int64_t)b * Tk + j]); };
    auto w_row = [=](int64_t row) { return w.data + (per_position ? row * HK : 0); };  // row = b * Tq + r
    const int64_t rows = (int64_t)B * Tq;
    const bool parallel = rows * C * K > kParallelMin;
#pragma omp parallel for if (parallel)
    for (int64_t row = 0; row < rows; ++row) {
        const int b = (int)(row / Tq), i = q_offset + (int)(row % Tq);
        const float* wr = w_row(row);
        float* yr = y.data + row * C;
        std::memset(yr, 0, (size_t)C * sizeof(float));
        for (int k = 0; k < K; ++k) {
            const int j = i - pad_left + k;
            if (!key_ok(b, j)) continue;
            const float* xr = x.data + ((int64_t)b * Tk + j) * C;
            for (int h = 0; h < H; ++h) {
                const float wk = wr[h * K + k];
#pragma omp simd
                for (int c = h * R; c < (h + 1) * R; ++c) yr[c] += wk * xr[c];
            }
        }
    }
    if (y.grad) {
        record("local_conv", {x, w}, y, [=] {
            // dx[b, j, c] += sum_k w[b, r, h, k] dy[b, r, c] over the queries r that read key j
            // with tap k (r = j + pad_left - k - q_offset): one key row per iteration, no races.
            if (x.grad) {
#pragma omp parallel for if (parallel)
                for (int64_t key = 0; key < (int64_t)B * Tk; ++key) {
                    const int b = (int)(key / Tk), j = (int)(key % Tk);
                    if (!key_ok(b, j)) continue;
                    float* dx = x.grad + key * C;
                    for (int k = 0; k < K; ++k) {
                        const int r = j + pad_left - k - q_offset;
                        if (r < 0 || r >= Tq) continue;
                        const int64_t row = (int64_t)b * Tq + r;
                        const float* wr = w_row(row);
                        const float* dy = y.grad + row * C;
                        for (int h = 0; h < H; ++h) {
                            const float wk = wr[h * K + k];
#pragma omp simd
                            for (int c = h * R; c < (h + 1) * R; ++c) dx[c] += wk * dy[c];
                        }
                    }
                }
            }
            if (!w.grad) return;
            // dw[.., h, k] += sum over head h's channels of dy[b, r, c] x[b, j, c]: query row
            // `row`'s (H, K) tap products added into `out`.
            auto add_tap_dots = [=](int64_t row, float* out) {
                const int b = (int)(row / Tq), i = q_offset + (int)(row % Tq);
                const float* dy = y.grad + row * C;
                for (int k = 0; k < K; ++k) {
                    const int j = i - pad_left + k;
                    if (!key_ok(b, j)) continue;
                    const float* xr = x.data + ((int64_t)b * Tk + j) * C;
                    for (int h = 0; h < H; ++h) {
                        float s = 0.0f;
#pragma omp simd reduction(+ : s)
                        for (int c = h * R; c < (h + 1) * R; ++c) s += dy[c] * xr[c];
                        out[h * K + k] += s;
                    }
                }
            };
            if (per_position) {
#pragma omp parallel for if (parallel)
                for (int64_t row = 0; row < rows; ++row) add_tap_dots(row, w.grad + row * HK);
            } else {  // one shared kernel: per-thread sums, added in thread order (deterministic)
                kernel::rows_with_partial_sums(rows, HK, parallel, add_tap_dots, [=](const float* part) {
                    for (int t = 0; t < HK; ++t) w.grad[t] += part[t];
                });
            }
        });
    }
    return y;
}

// =====================================================================================
// embedding
// =====================================================================================
Tensor embedding(const Tensor& table, const std::vector<int32_t>& ids, int B, int T) {
    const profile::Op prof("embedding", {&table});
    SYNTH_CHECK(table.ndim == 2, "embedding: table must be (V, C)");
    SYNTH_CHECK((int64_t)ids.size() == (int64_t)B * T, "embedding: ", ids.size(), " ids for a (", B, ", ", T,
                ") batch");
    const int V = table.dim(0), C = table.dim(1);
    for (int32_t id : ids) SYNTH_CHECK(id >= 0 && id < V, "embedding: token id ", id, " outside vocabulary of ", V);
    Tensor y = new_tensor({B, T, C}, needs_grad({&table}));
    const int64_t n = (int64_t)B * T;
#pragma omp parallel for if (n * C > kParallelMin)
    for (int64_t i = 0; i < n; ++i) std::memcpy(y.data + i * C, table.data + (int64_t)ids[i] * C, C * sizeof(float));
    if (y.grad) {
        const int32_t* idp = scratch_ids(ids);
        record("embedding", {table}, y, [=] {
            // Scatter-add: serial over positions, since two positions may share a token.
            for (int64_t i = 0; i < n; ++i) {
                float* dst = table.grad + (int64_t)idp[i] * C;
                const float* src = y.grad + i * C;
                for (int c = 0; c < C; ++c) dst[c] += src[c];
            }
        });
    }
    return y;
}

// =====================================================================================
// cross entropy fused with log-softmax, ignore index, label smoothing
// =====================================================================================
// Row reductions for the cross-entropy over a large vocabulary. `omp simd` lets them run in
// vector lanes (a fixed reordering of the sum, so results stay deterministic); float sums of
// V = 4,000 terms lose < 1e-6 relative, far below what the loss needs.
static float row_max(const float* x, int n) {
    float m = x[0];
#pragma omp simd reduction(max : m)
    for (int i = 1; i < n; ++i) m = std::max(m, x[i]);
    return m;
}

static float row_sum(const float* x, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; ++i) s += x[i];
    return s;
}

static float row_sum_exp(const float* x, int n, float shift) {  // sum_i exp(x[i] - shift)
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; ++i) s += fast_exp(x[i] - shift);
    return s;
}

Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets, int ignore_index,
                     float label_smoothing, LossStats* stats) {
    const profile::Op prof("cross_entropy", {&logits});
    SYNTH_CHECK(logits.ndim == 2, "cross_entropy: logits must be (N, V), got ", logits.shape_str());
    const int N = logits.dim(0), V = logits.dim(1);
    SYNTH_CHECK((int)targets.size() == N, "cross_entropy: ", targets.size(), " targets for ", N, " rows");
    const float eps = label_smoothing;
    SYNTH_CHECK(eps >= 0.0f && eps < 1.0f, "label smoothing must be in [0, 1), got ", eps);
    for (int32_t t : targets)
        SYNTH_CHECK(t == ignore_index || (t >= 0 && t < V), "cross_entropy: target ", t, " outside vocabulary of ", V);
    float* lse = scratch().alloc(N);       // log-sum-exp per row, saved for backward
    float* row_loss = scratch().alloc(N);  // smoothed loss per row
    float* row_nll = scratch().alloc(N);
#pragma omp parallel for if ((int64_t)N * V > kParallelMin)
    for (int r = 0; r < N; ++r) {
        const float* x = logits.data + (int64_t)r * V;
        const float mx = row_max(x, V);
        const float l = mx + std::log(row_sum_exp(x, V, mx)), sx = row_sum(x, V);
        lse[r] = l;
        if (targets[r] == ignore_index) {
            row_loss[r] = row_nll[r] = 0.0f;
            continue;
        }
        float nll = l - x[targets[r]];
        float mean_nll = (float)(l - sx / V);  // mean_v -log p[v]
        row_nll[r] = nll;
        row_loss[r] = (1.0f - eps) * nll + eps * mean_nll;
    }
    double total = 0.0, total_nll = 0.0;
    int64_t count = 0;
    for (int r = 0; r < N; ++r)
        if (targets[r] != ignore_index) {
            total += row_loss[r];
            total_nll += row_nll[r];
            ++count;
        }
    if (stats) {
        stats->sum_nll += total_nll;
        stats->count += count;
    }
    Tensor loss = new_tensor({1}, needs_grad({&logits}));
    loss.data[0] = count ? (float)(total / count) : 0.0f;
    if (loss.grad && count) {
        const int32_t* tg = scratch_ids(targets);
        record("cross_entropy", {logits}, loss, [=] {
            // d/dx_v = g / count * (softmax_v - (1 - eps) [v == t] - eps / V)
            const float g = loss.grad[0] / (float)count;
#pragma omp parallel for if ((int64_t)N * V > kParallelMin)
            for (int r = 0; r < N; ++r) {
                if (tg[r] == ignore_index) continue;
                const float* x = logits.data + (int64_t)r * V;
                float* dx = logits.grad + (int64_t)r * V;
#pragma omp simd
                for (int v = 0; v < V; ++v) dx[v] += g * (fast_exp(x[v] - lse[r]) - eps / V);
                dx[tg[r]] -= g * (1.0f - eps);
            }
        });
    }
    return loss;
}

// =====================================================================================
// split_heads / merge_heads: (B, T, H*D) <-> (B, H, T, D)
// =====================================================================================
Tensor split_heads(const Tensor& x, int H) {
    const profile::Op prof("split_heads", {&x});
    SYNTH_CHECK(x.ndim == 3 && x.dim(2) % H == 0, "split_heads: ", x.shape_str(), " into ", H, " heads");
    const int B = x.dim(0), T = x.dim(1), D = x.dim(2) / H;
    Tensor y = new_tensor({B, H, T, D}, needs_grad({&x}));
    kernel::permute_heads(x.data, y.data, B, T, H, D, kernel::Heads::ToHeads, kernel::Write::Assign);
    if (y.grad)
        record("split_heads", {x}, y, [=] {
            kernel::permute_heads(y.grad, x.grad, B, T, H, D, kernel::Heads::FromHeads, kernel::Write::Accumulate);
        });
    return y;
}

Tensor merge_heads(const Tensor& x) {
    const profile::Op prof("merge_heads", {&x});
    SYNTH_CHECK(x.ndim == 4, "merge_heads: expects (B, H, T, D), got ", x.shape_str());
    const int B = x.dim(0), H = x.dim(1), T = x.dim(2), D = x.dim(3);
    Tensor y = new_tensor({B, T, H * D}, needs_grad({&x}));
    kernel::permute_heads(x.data, y.data, B, T, H, D, kernel::Heads::FromHeads, kernel::Write::Assign);
    if (y.grad)
        record("merge_heads", {x}, y, [=] {
            kernel::permute_heads(y.grad, x.grad, B, T, H, D, kernel::Heads::ToHeads, kernel::Write::Accumulate);
        });
    return y;
}

// =====================================================================================
// slice_seq / concat_seq along the time axis of (B, T, C)
// =====================================================================================
Tensor slice_seq(const Tensor& x, int t0, int t1) {
    const profile::Op prof("slice_seq", {&x});
    SYNTH_CHECK(x.ndim == 3 && 0 <= t0 && t0 < t1 && t1 <= x.dim(1), "slice_seq: [", t0, ", ", t1, ") of ",
                x.shape_str());
    const int B = x.dim(0), T = x.dim(1), C = x.dim(2), n = t1 - t0;
    Tensor y = new_tensor({B, n, C}, needs_grad({&x}));
    for (int b = 0; b < B; ++b)
        std::memcpy(y.data + (int64_t)b * n * C, x.data + ((int64_t)b * T + t0) * C, (size_t)n * C * sizeof(float));
    if (y.grad) {
        record("slice_seq", {x}, y, [=] {
            for (int b = 0; b < B; ++b) {
                float* dx = x.grad + ((int64_t)b * T + t0) * C;
                const float* dy = y.grad + (int64_t)b * n * C;
                for (int64_t i = 0; i < (int64_t)n * C; ++i) dx[i] += dy[i];
            }
        });
    }
    return y;
}

Tensor concat_seq(const Tensor& a, const Tensor& b) {
    const profile::Op prof("concat_seq", {&a, &b});
    SYNTH_CHECK(a.ndim == 3 && b.ndim == 3 && a.dim(0) == b.dim(0) && a.dim(2) == b.dim(2), "concat_seq: ",
                a.shape_str(), " and ", b.shape_str());
    const int B = a.dim(0), Ta = a.dim(1), Tb = b.dim(1), C = a.dim(2), T = Ta + Tb;
    Tensor y = new_tensor({B, T, C}, needs_grad({&a, &b}));
    for (int i = 0; i < B; ++i) {
        std::memcpy(y.data + (int64_t)i * T * C, a.data + (int64_t)i * Ta * C, (size_t)Ta * C * sizeof(float));
        std::memcpy(y.data + ((int64_t)i * T + Ta) * C, b.data + (int64_t)i * Tb * C, (size_t)Tb * C * sizeof(float));
    }
    if (y.grad) {
        record("concat_seq", {a, b}, y, [=] {
            for (int i = 0; i < B; ++i) {
                const float* dy = y.grad + (int64_t)i * T * C;
                if (a.grad)
                    for (int64_t k = 0; k < (int64_t)Ta * C; ++k) a.grad[(int64_t)i * Ta * C + k] += dy[k];
                if (b.grad)
                    for (int64_t k = 0; k < (int64_t)Tb * C; ++k) b.grad[(int64_t)i * Tb * C + k] += dy[Ta * C + k];
            }
        });
    }
    return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
    SYNTH_CHECK(numel_of(shape) == x.numel() && !shape.empty() && shape.size() <= 4, "reshape: cannot view ",
                x.shape_str(), " with ", numel_of(shape), " elements");
    Tensor y = x;
    y.ndim = (int)shape.size();
    for (int i = 0; i < y.ndim; ++i) y.dims[i] = shape[i];
    return y;
}

// =====================================================================================
// sum / mean
// =====================================================================================
static Tensor reduce_scaled(const Tensor& x, float s, const char* name) {
    const profile::Op prof(name, {&x});
    const int64_t n = x.numel();
    double acc = 0.0;
    for (int64_t i = 0; i < n; ++i) acc += x.data[i];
    Tensor y = new_tensor({1}, needs_grad({&x}));
    y.data[0] = (float)(acc * s);
    if (y.grad) {
        record(name, {x}, y, [=] {
            const float g = y.grad[0] * s;
            for (int64_t i = 0; i < n; ++i) x.grad[i] += g;
        });
    }
    return y;
}
Tensor sum(const Tensor& x) { return reduce_scaled(x, 1.0f, "sum"); }
Tensor mean(const Tensor& x) { return reduce_scaled(x, 1.0f / (float)x.numel(), "mean"); }

// =====================================================================================
// crop: (H, L, M) -> (1, H, rows, cols)
// =====================================================================================
Tensor crop(const Tensor& x, int rows, int cols, int row0) {
    const profile::Op prof("crop", {&x});
    SYNTH_CHECK(x.ndim == 3, "crop: expects (H, L, M), got ", x.shape_str());
    const int H = x.dim(0), L = x.dim(1), M = x.dim(2);
    SYNTH_CHECK(row0 >= 0 && rows >= 1 && row0 + rows <= L && cols >= 1 && cols <= M, "crop: rows [", row0, ", ",
                row0 + rows, ") and ", cols, " columns exceed ", x.shape_str());
    Tensor y = new_tensor({1, H, rows, cols}, needs_grad({&x}));
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < rows; ++i)
            std::memcpy(y.data + ((int64_t)h * rows + i) * cols, x.data + ((int64_t)h * L + row0 + i) * M,
                        cols * sizeof(float));
    if (y.grad) {
        record("crop", {x}, y, [=] {
            for (int h = 0; h < H; ++h)
                for (int i = 0; i < rows; ++i) {
                    float* dx = x.grad + ((int64_t)h * L + row0 + i) * M;
                    const float* dy = y.grad + ((int64_t)h * rows + i) * cols;
                    for (int j = 0; j < cols; ++j) dx[j] += dy[j];
                }
        });
    }
    return y;
}

// =====================================================================================
// head_linear: the heads of x (B, T, H*D) times W_h[:, :n] (+ b_h[:n]) -> (B, H, T, n)
// =====================================================================================
Tensor head_linear(const Tensor& x, int H, const Tensor& w, const Tensor& b, int n, const Mask& mask) {
    const profile::Op prof("head_linear", {&x, &w, &b});
    SYNTH_CHECK(x.ndim == 3 && w.ndim == 3 && b.ndim == 2 && H >= 1 && x.dim(2) % H == 0,
                "head_linear: x (B, T, H*D), w (H or 1, D, L), b (H or 1, L) expected, got x ", x.shape_str(),
                " in ", H, " heads");
    const int B = x.dim(0), T = x.dim(1), D = x.dim(2) / H;
    const int w_heads = w.dim(0), L = w.dim(2);  // w_heads = 1: one W shared by all heads
    SYNTH_CHECK((w_heads == H || w_heads == 1) && w.dim(1) == D && b.dim(0) == w_heads && b.dim(1) == L,
                "head_linear: x ", x.shape_str(), " in ", H, " heads vs w ", w.shape_str(), " b ", b.shape_str());
    SYNTH_CHECK(n >= 1 && n <= L, "head_linear: ", n, " outputs requested from ", L);
    Tensor y = new_tensor({B, H, T, n}, needs_grad({&x, &w, &b}));
    // y_h = x_h W_h[:, :n]: the heads of x read in place, W broadcast over the batch (and over
    // the heads when shared); the first n columns of W are a (D, n) matrix with row stride L.
    const kernel::BatchedGemm g{B, H, T, n, D,
                                Strided::heads_of(T, H, D), Transpose::No,
                                Strided::contiguous(1, w_heads, D, L), Transpose::No,
                                Strided::contiguous(B, H, T, n), causal_blocks(mask, kernel::Causal::OutputColumns)};
    kernel::batched_gemm_forward(g, x.data, w.data, y.data);
    // + b_h[:n] on every row (above a causal diagonal too: those entries are masked anyway).
    const int64_t rows = (int64_t)B * H * T;
#pragma omp parallel for if (rows * n > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        float* yr = y.data + r * n;
        const float* bias = b.data + (w_heads == 1 ? 0 : (r / T) % H) * L;
#pragma omp simd
        for (int j = 0; j < n; ++j) yr[j] += bias[j];
    }
    if (y.grad) {
        record("head_linear", {x, w, b}, y, [=] {
            // db_h[:n] += the column sums of dy_h over batch and time (and heads when shared).
            if (b.grad) {
                if (w_heads == 1) kernel::colsum_add(y.grad, rows, n, b.grad);
                else kernel::head_colsum_add(y.grad, B, H, T, n, b.grad, L);
            }
            // dx_h += dy_h W_h[:, :n]^T, dW_h[:, :n] += x_h^T dy_h
            kernel::batched_gemm_backward(g, x.data, w.data, y.grad, x.grad, w.grad);
        });
    }
    return y;
}

// =====================================================================================
// fd_outer: Factorized Dense logits C[i, j] = A[i, j mod a] * B[i, j / a]
// =====================================================================================
Tensor fd_outer(const Tensor& a_factor, const Tensor& b_factor, int n) {
    const profile::Op prof("fd_outer", {&a_factor, &b_factor});
    SYNTH_CHECK(a_factor.ndim == 4 && b_factor.ndim == 4, "fd_outer: 4-D inputs expected");
    const int a = a_factor.dim(3), b = b_factor.dim(3);
    SYNTH_CHECK(n >= 1 && n <= a * b, "fd_outer: ", n, " columns from a=", a, " b=", b);
    const int64_t rows = a_factor.numel() / a;
    SYNTH_CHECK(b_factor.numel() / b == rows, "fd_outer: A ", a_factor.shape_str(), " and B ", b_factor.shape_str(),
                " differ");
    Tensor y = new_tensor({a_factor.dim(0), a_factor.dim(1), a_factor.dim(2), n}, needs_grad({&a_factor, &b_factor}));
    const float *A = a_factor.data, *B = b_factor.data;
#pragma omp parallel for if (rows * n > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
        const float* ar = A + r * a;
        const float* br = B + r * b;
        float* yr = y.data + r * n;
        for (int j = 0; j < n; ++j) yr[j] = ar[j % a] * br[j / a];
    }
    if (y.grad) {
        record("fd_outer", {a_factor, b_factor}, y, [=] {
            // dA[i, j mod a] += dC[i, j] B[i, j / a],  dB[i, j / a] += dC[i, j] A[i, j mod a]
            float *dA = a_factor.grad, *dB = b_factor.grad;
#pragma omp parallel for if (rows * n > kParallelMin)
            for (int64_t r = 0; r < rows; ++r) {
                const float* dy = y.grad + r * n;
                for (int j = 0; j < n; ++j) {
                    if (dA) dA[r * a + j % a] += dy[j] * B[r * b + j / a];
                    if (dB) dB[r * b + j / a] += dy[j] * A[r * a + j % a];
                }
            }
        });
    }
    return y;
}

// =====================================================================================
// mix: sum_c softmax(w[h])_c * comps[c]   (mixing inside the softmax, docs/variants.md)
// =====================================================================================
void mixture_weights(const float* w, int C, float* alpha) {
    float mx = *std::max_element(w, w + C), s = 0.0f;
    for (int c = 0; c < C; ++c) s += (alpha[c] = std::exp(w[c] - mx));
    for (int c = 0; c < C; ++c) alpha[c] /= s;
}

Tensor mix(const std::vector<Tensor>& comps, const Tensor& w) {
    const profile::Op prof("mix", {&w});
    const int C = (int)comps.size();  // components
    SYNTH_CHECK(C >= 1 && C <= 16 && w.ndim == 2 && w.dim(1) == C, "mix: weights ", w.shape_str(), " for ", C,
                " components");
    const int H = w.dim(0), Tq = comps[0].dim(2), Tk = comps[0].dim(3);
    int B = 1;
    bool any_grad = needs_grad({&w});
    for (const Tensor& c : comps) {
        SYNTH_CHECK(c.ndim == 4 && c.dim(1) == H && c.dim(2) == Tq && c.dim(3) == Tk, "mix: component ",
                    c.shape_str(), " does not match ", comps[0].shape_str());
        B = std::max(B, c.dim(0));
        any_grad = any_grad || needs_grad({&c});
    }
    for (const Tensor& c : comps) SYNTH_CHECK(c.dim(0) == 1 || c.dim(0) == B, "mix: batch sizes do not broadcast");
    float* alpha = scratch().alloc((size_t)H * C);  // (H, C), saved for backward
    for (int h = 0; h < H; ++h) mixture_weights(w.data + (int64_t)h * C, C, alpha + (int64_t)h * C);
    Tensor y = new_tensor({B, H, Tq, Tk}, any_grad);
    const int64_t plane = (int64_t)Tq * Tk;
    // The components, copied to the arena so the backward closure can keep them.
    Tensor* cp = reinterpret_cast<Tensor*>(scratch().alloc((sizeof(Tensor) * C + 3) / 4));
    for (int c = 0; c < C; ++c) cp[c] = comps[c];
    // Component c's (Tq, Tk) plane for (batch bi, head h): a batch-1 component serves every bi.
    auto plane_of = [=](const float* base, int bc, int bi, int h) {
        return base + ((int64_t)(bc == 1 ? 0 : bi) * H + h) * plane;
    };
    // y (bi, h) = sum_c alpha[h, c] comp_c (bi, h)
#pragma omp parallel for collapse(2)
    for (int bi = 0; bi < B; ++bi)
        for (int h = 0; h < H; ++h) {
            float* yo = y.data + ((int64_t)bi * H + h) * plane;
            for (int c = 0; c < C; ++c) {
                const float* src = plane_of(cp[c].data, cp[c].dim(0), bi, h);
                const float a = alpha[h * C + c];
                if (c == 0)
                    for (int64_t k = 0; k < plane; ++k) yo[k] = a * src[k];
                else
                    for (int64_t k = 0; k < plane; ++k) yo[k] += a * src[k];
            }
        }
    if (y.grad) {
        std::vector<Tensor> inputs = comps;  // one small vector per mixture layer and step
        inputs.push_back(w);
        record("mix", inputs.data(), inputs.size(), y, [=] {
            // Per head (parallel): dcomp_c += alpha_c dy (summed over the batch for broadcast
            // components); dalpha_c = sum dy * comp_c; dw = alpha * (dalpha - alpha . dalpha),
            // the softmax's Jacobian.
#pragma omp parallel for
            for (int h = 0; h < H; ++h) {
                double dalpha[16] = {0};
                for (int bi = 0; bi < B; ++bi) {
                    const float* dy = y.grad + ((int64_t)bi * H + h) * plane;
                    for (int c = 0; c < C; ++c) {
                        const float* src = plane_of(cp[c].data, cp[c].dim(0), bi, h);
                        double acc = 0.0;
                        for (int64_t k = 0; k < plane; ++k) acc += (double)dy[k] * src[k];
                        dalpha[c] += acc;
                        if (cp[c].grad) {
                            float* dc = const_cast<float*>(plane_of(cp[c].grad, cp[c].dim(0), bi, h));
                            const float a = alpha[h * C + c];
                            for (int64_t k = 0; k < plane; ++k) dc[k] += a * dy[k];
                        }
                    }
                }
                if (w.grad) {
                    double dot = 0.0;
                    for (int c = 0; c < C; ++c) dot += alpha[h * C + c] * dalpha[c];
                    for (int c = 0; c < C; ++c)
                        w.grad[(int64_t)h * C + c] += (float)(alpha[h * C + c] * (dalpha[c] - dot));
                }
            }
        });
    }
    return y;
}

// =====================================================================================
// broadcast_batch: (1, ...) -> (B, ...)
// =====================================================================================
Tensor broadcast_batch(const Tensor& x, int B) {
    const profile::Op prof("broadcast_batch", {&x});
    SYNTH_CHECK(x.ndim >= 1 && x.dim(0) == 1 && B >= 1, "broadcast_batch: ", x.shape_str(), " to a batch of ", B);
    Shape shape = shape_of(x);
    shape[0] = B;
    const int64_t n = x.numel();
    Tensor y = new_tensor(shape, needs_grad({&x}));
    for (int b = 0; b < B; ++b) std::memcpy(y.data + b * n, x.data, n * sizeof(float));
    if (y.grad) {
        record("broadcast_batch", {x}, y, [=] {  // dx += sum_b dy[b]
            for (int b = 0; b < B; ++b)
                for (int64_t i = 0; i < n; ++i) x.grad[i] += y.grad[b * n + i];
        });
    }
    return y;
}

}  // namespace synth

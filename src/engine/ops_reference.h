// ops_reference.h: each op's forward as the plain loop of its definition, in double
// precision, with no threads, blocking or fused passes: what ops.cpp's fast kernels must
// equal (tests/test_ops.cpp compares them), and the shortest statement of what each op is.
// Inputs are float Tensors, shaped as the op of the same name in ops.h takes them.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/ops.h"
#include "engine/tensor.h"

namespace synth::reference {

// x (R, K) or (..., K), w (K, N) or, with Transpose::Yes, (N, K), b (N) or empty -> (R, N)
std::vector<double> linear(const Tensor& x, const Tensor& w, const Tensor& b, Transpose w_layout);

// a (Ba, H, M, K), b (Bb, H, K, N), each transposed in its last two dims with Transpose::Yes
// -> (B, H, M, N); a batch-1 operand is reused for every batch element.
std::vector<double> bmm(const Tensor& a, const Tensor& b, Transpose ta, Transpose tb);

// p (1 or B, H, Tq, Tk), v (B, Tk, H*D) -> (B, Tq, H*D): out[b, i, h*D + d] = sum_j p[b or 0, h, i, j] v[b, j, h*D + d]
std::vector<double> head_mix(const Tensor& p, const Tensor& v);

// x (..., C) -> 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
std::vector<double> gelu(const Tensor& x);

// x (..., 2C) = [a | g] -> (..., C) = a / (1 + exp(-g))
std::vector<double> glu(const Tensor& x);

// logits (Bl, H, Tq, Tk) -> (B, H, Tq, Tk): softmax over the keys the mask allows; a row with
// no allowed key is zeros.
std::vector<double> softmax(const Tensor& logits, const Mask& mask);

// x (B, Tk, C), w (1, 1, H, K) or (B, Tq, H, K), Tq = Tk - q_offset, key_pad (B, Tk) or nullptr
// -> (B, Tq, C): y[b, r, c] = sum over keys j = q_offset + r - pad_left + k in [0, Tk), not padding,
// of w[b, r, c / (C/H), k] x[b, j, c]
std::vector<double> local_conv(const Tensor& x, const Tensor& w, int pad_left, int q_offset, const uint8_t* key_pad);

// x (R, C), g (C), b (C) -> (R, C)
std::vector<double> layernorm(const Tensor& x, const Tensor& g, const Tensor& b, double eps);

// Label-smoothed cross entropy from a log-softmax written out by hand; also the plain NLL sum.
struct CrossEntropy {
    double loss = 0.0, sum_nll = 0.0;
    int64_t count = 0;
};
// logits (N, V), targets (N)
CrossEntropy cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets, int ignore, double eps);

// x (B, T, H*D), w (H or 1, D, L), b (H or 1, L) -> (B, H, T, n)
std::vector<double> head_linear(const Tensor& x, int H, const Tensor& w, const Tensor& b, int n);

// a_factor (.., a), b_factor (.., b) -> (.., n), C[.., j] = A[.., j mod a] * B[.., j / a]
std::vector<double> fd_outer(const Tensor& a_factor, const Tensor& b_factor, int n);

// comps C x (1 or B, H, Tq, Tk), w (H, C) -> (B, H, Tq, Tk) = sum_c softmax(w[h])_c comps[c]
std::vector<double> mix(const std::vector<Tensor>& comps, const Tensor& w);

}  // namespace synth::reference

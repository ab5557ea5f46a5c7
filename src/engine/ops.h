// ops.h: the differentiable operations of synth.
//
// Each op is a function from Tensors to a new Tensor (from the scratch arena). In
// ops.cpp every op's forward formula sits directly above its backward formula, in the
// order listed here; the threading and blocking machinery they call is in kernels.h, and
// a plain double-precision loop for each op, the tests' oracle, is in ops_reference.h.
// An op records its backward on the tape only when its output needs a gradient (see
// autograd.h); gradients always accumulate with +=.
//
// Shapes are written (B, T, C) = (batch, time, channels), H = heads, D = head width.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace synth {

// ---- linear algebra -------------------------------------------------------------
// y = alpha x W (+ b). x (..., K), W (K, N) or, with Transpose::Yes, (N, K) (a tied (V, C)
// embedding as output layer); b (N) or empty Tensor.
// All leading dims of x are flattened into one GEMM, split over the OpenMP threads (blas.h).
// alpha rides on the GEMM for free (attention's 1/sqrt(d_h) on Q, without a scaled copy).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, Transpose w_layout = Transpose::No,
              float alpha = 1.0f);
// relu(linear(x, w, b)) in one op that keeps only its output (the feed-forward layer's first half).
Tensor linear_relu(const Tensor& x, const Tensor& w, const Tensor& b);

// The feed-forward layer linear(linear_relu(x, w1, b1), w2, b2), plus residual if given (an
// add after it): x (..., C), w1 (C, F), b1 (F), w2 (F, N), b2 (N), either bias may be empty,
// residual x's shape with last dim N, or empty. With gradients (or on fp32) it is those ops;
// in inference under onednn-bf16 the bias and the ReLU ride on the first product, which writes
// the hidden (R, F) in bf16 for the second only, and the residual rides on the second: the
// largest activation of a block is never written in fp32, read back for the ReLU, nor
// converted, and the add is no pass of its own (docs/performance.md).
Tensor feed_forward(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                    const Tensor& residual = Tensor{});

// What the softmax masks out, as an additive -inf bias on the logits (docs/variants.md:
// masks apply to synthetic logits exactly as to dot-product logits).
struct Mask {
    bool causal = false;              // key j > query i + q_offset is masked
    int q_offset = 0;                 // position of query row 0 (incremental decoding)
    const uint8_t* key_pad = nullptr; // (B, Tk), 1 = padding key; nullptr = none
    int batch = 1;                    // B of key_pad
};

// Batched matmul over (batch, heads): a (Ba, H, M, K) (or (Ba, H, K, M) with ta = Yes),
// b (Bb, H, K, N) (or (Bb, H, N, K) with tb = Yes); Ba and Bb are each 1 or B (broadcast).
// Output (B, H, M, N). Each (batch, head) GEMM is small, so the loop over them is the
// OpenMP parallel loop and each GEMM is single-threaded (see blas.h).
Tensor bmm(const Tensor& a, const Tensor& b, Transpose ta, Transpose tb);
// Attention on the heads of (B, T, H*D) activations, read in place (no split/merge copies).
// With mask.causal (only causal and q_offset are read) both skip the work above the causal
// diagonal in blocks of 64 query rows; they are meant to sit on either side of
// softmax(logits, mask) with the same mask, which is what makes the skipping exact.
// head_scores: q (B, Tq, H*D), k (B, Tk, H*D) -> (B, H, Tq, Tk), per head Q_h K_h^T. Causal:
// an entry above the diagonal holds its product or 0 (never garbage: a mixture's weight
// gradient multiplies it by its gradient), and that gradient must be 0.
Tensor head_scores(const Tensor& q, const Tensor& k, int H, const Mask& mask = Mask{});
// head_mix: p (B or 1, H, Tq, Tk), v (B, Tk, H*D) -> (B, Tq, H*D), head h's columns P_h V_h.
// Causal: p must be 0 above the diagonal; its gradient there is left incomplete.
Tensor head_mix(const Tensor& p, const Tensor& v, const Mask& mask = Mask{});

// ---- elementwise ------------------------------------------------------------------
// a + b, where b has a's shape or a's trailing shape (broadcast over leading dims).
Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);  // same shapes
Tensor scale(const Tensor& a, float s);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);  // tanh approximation
// Gated linear unit over the last dim (Dauphin et al. 2017; torch's nn.GLU(dim=-1), as fairseq's
// LightConv and DynamicConv layers use it): x (..., 2C) = [a | g] -> (..., C) = a * sigmoid(g).
Tensor glu(const Tensor& x);
// Inverted dropout with keep probability 1-p: the mask is hash_uniform(seed, counter, i),
// so it is reproducible and independent of the thread count. p == 0 returns x itself.
Tensor dropout(const Tensor& x, float p, uint64_t seed, uint64_t counter);

// ---- normalisation and attention softmax ---------------------------------------------
// LayerNorm over the last dim: (x - mean) / sqrt(var + eps) * g + b.
Tensor layernorm(const Tensor& x, const Tensor& g, const Tensor& b, float eps = 1e-5f);

// Softmax over the last dim of logits (Bl, H, Tq, Tk) with the mask added. Output
// (B, H, Tq, Tk) with B = Bl, or mask.batch when a padding mask turns batch-independent
// logits (Bl = 1, e.g. Random Synthesizer) into per-sequence probabilities.
// A row whose keys are all masked gives zeros.
Tensor softmax(const Tensor& logits, const Mask& mask);

// ---- banded depthwise convolution (docs/variants.md, LightConv and DynamicConv) ----------
// y[b, r, c] = sum_k w[b, r, h, k] x[b, i - pad_left + k, c],  i = q_offset + r, h = c / (C/H):
// a convolution over time with K taps per channel, the taps shared by the C/H channels of a
// head (Wu et al. 2019's weight sharing), computed in O(Tq K C), never as a (Tq, Tk) matrix.
// x (B, Tk, C) holds every key; the queries are its last Tq = Tk - q_offset positions (all of
// them without incremental decoding). w (1, 1, H, K) shares one kernel over batch and time
// (LightConv), w (B, Tq, H, K) gives each position its own (DynamicConv, or DropConnect on
// LightConv's kernel). pad_left = K - 1 is causal (keys i-K+1 .. i), (K - 1) / 2 centred, as
// fairseq's padding_l. Keys outside [0, Tk) and padded keys (key_pad (B, Tk), 1 = padding, or
// nullptr) contribute 0, as fairseq zeroes padded inputs before its convolution.
// -> (B, Tq, C)
Tensor local_conv(const Tensor& x, const Tensor& w, int pad_left, int q_offset = 0, const uint8_t* key_pad = nullptr);

// ---- embeddings and loss ------------------------------------------------------------
// table (V, C), ids (n) with n = B*T -> (B, T, C). Backward scatter-adds into the table.
Tensor embedding(const Tensor& table, const std::vector<int32_t>& ids, int B, int T);

struct LossStats {
    double sum_nll = 0;  // summed negative log-likelihood (no smoothing) over counted targets
    int64_t count = 0;   // targets that are not ignore_index
};
// Mean over non-ignored rows of the label-smoothed cross entropy of softmax(logits):
// (1 - eps) * -log p[target] + eps * mean_v(-log p[v]), as torch's label_smoothing.
// logits (N, V), targets (N). Fused log-softmax; returns a (1) tensor. If stats is
// given, it receives the unsmoothed NLL sum, which is what perplexity and bpc use.
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets, int ignore_index,
                     float label_smoothing, LossStats* stats = nullptr);

// ---- reshaping ----------------------------------------------------------------------
Tensor split_heads(const Tensor& x, int H);  // (B, T, H*D) -> (B, H, T, D)
Tensor merge_heads(const Tensor& x);         // (B, H, T, D) -> (B, T, H*D)
Tensor slice_seq(const Tensor& x, int t0, int t1);  // (B, T, C) -> (B, t1-t0, C)
Tensor concat_seq(const Tensor& a, const Tensor& b);  // (B, Ta, C), (B, Tb, C) -> (B, Ta+Tb, C)
// A view of x with a new shape of the same size (shares data and grad; no copy, no tape).
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor sum(const Tensor& x);   // (1)
Tensor mean(const Tensor& x);  // (1)

// ---- synthetic-attention building blocks (docs/variants.md) ----------------------------
// Rows [row0, row0 + rows) and columns [0, cols) of each of x's (L, M) matrices:
// x (H, L, M) -> (1, H, rows, cols). R and FR slice their L-sized parameters to the
// actual length; row0 > 0 selects the query rows of incremental decoding.
Tensor crop(const Tensor& x, int rows, int cols, int row0 = 0);
// Per-head linear map to the first n of L outputs: the heads of x (B, T, H*D), read in
// place, w (H, D, L), b (H, L), or w (1, D, L), b (1, L) for one W2 shared by all heads
// -> (B, H, T, n). This is Dense Synthesizer's W2_h (Eq. for B_i): only the n columns needed
// are computed, and with mask.causal only those below the diagonal (blocks of 64 rows, as
// head_scores: entries above it hold finite unspecified values, their gradient must be 0).
Tensor head_linear(const Tensor& x, int H, const Tensor& w, const Tensor& b, int n, const Mask& mask = Mask{});
// Factorized Dense: C[.., i, j] = A[.., i, j mod a] * B[.., i, j / a] for j < n.
// a_factor (B, H, T, a), b_factor (B, H, T, b) -> (B, H, T, n).
Tensor fd_outer(const Tensor& a_factor, const Tensor& b_factor, int n);
// Repeats a batch-1 tensor (1, ...) B times along dim 0 -> (B, ...); the backward sums the
// copies. Attention dropout needs it for batch-shared probabilities (R, Rfix, FR): one mask
// per sequence, not one for the whole batch.
Tensor broadcast_batch(const Tensor& x, int B);
// Mixture inside the softmax: sum_c alpha[h]_c * comps[c], alpha[h] = softmax(w[h]), w (H, C);
// each comp is (Bc, H, Tq, Tk) with Bc = 1 or B. Output batch is max Bc.
Tensor mix(const std::vector<Tensor>& comps, const Tensor& w);
// The mixture weights of one head: alpha (C) = softmax(w (C)), in the float arithmetic mix()
// uses, so a report of the learnt weights shows what the model computes.
void mixture_weights(const float* w, int C, float* alpha);

}  // namespace synth

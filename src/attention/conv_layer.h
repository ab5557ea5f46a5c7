// attention/conv_layer.h: what the convolution baselines LightConv and DynamicConv share (Wu et
// al. 2019, "Pay Less Attention with Lightweight and Dynamic Convolutions"; fairseq's
// LightConvEncoderLayer / LightConvDecoderLayer in fairseq/models/lightconv.py). The layer
// replaces self-attention (docs/variants.md):
//
//   u   = GLU(x W_in + b_in)              // (B, T, 2d) -> (B, T, d)
//   w   = kernel(u)                       // (1, 1, H, K) or (B, T, H, K), softmax over K
//   w   = DropConnect(w)                  // training: dropout on the normalised taps
//   out = local_conv(u, w) W_out + b_out  // channel c uses head c / (d/H)'s taps
//
// The window is causal (keys i-K+1 .. i) in a decoder and centred ((K-1)/2 keys to the left)
// in an encoder, as fairseq's padding_l. K is the layer's entry of --conv-kernels.
#pragma once

#include "attention/variant.h"

namespace synth {

// --conv-kernels, read by both variants: one kernel size per layer, fairseq's default for
// IWSLT and language modelling ("3,7,15,31,31,31,31"); deeper layers repeat the last entry.
Setting conv_kernels_setting();
// The kernel size of layer cfg.layer; throws naming the flag on a malformed list or a size
// above max(31, 2 L - 1) (L = cfg.max_len): taps beyond it reach no key of any position.
int conv_kernel_size(const AttnConfig& cfg);
// W_in (d, 2d), b_in (2d), W_out (d, d), b_out (d): 3 d^2 + 3 d. fairseq's Linear has biases
// on both projections; the convolution itself has none (its conv_bias is off).
int64_t conv_layer_params(const AttnConfig& cfg);

class ConvLayer : public SequenceMixer {
public:
    // Parameters are named prefix + name + "." + leaf (w_in, b_in, w_out, b_out, and the kernel's own).
    ConvLayer(ParamStore& store, const std::string& prefix, const std::string& name, const AttnConfig& cfg);
    // Incremental decoding keeps the last K-1 GLU outputs in cache->values: all a causal window reads.
    Tensor forward(const Tensor& x, Mask mask, StepContext& ctx, MixerCache* cache) override;

protected:
    // The taps for the GLU outputs u (B, Tq, d) of the queries, softmax-normalised over K:
    // (1, 1, H, K) shared by every position, or (B, Tq, H, K) one kernel per position.
    virtual Tensor kernel(const Tensor& u) = 0;

    AttnConfig cfg_;
    int K_;

private:
    Tensor *w_in_, *b_in_, *w_out_, *b_out_;
};

}  // namespace synth

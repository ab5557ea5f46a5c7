#include "attention/conv_layer.h"

#include <algorithm>
#include <sstream>

#include "base/error.h"

namespace synth {

Setting conv_kernels_setting() {
    return Setting::choice("conv-kernels", "3,7,15,31,31,31,31",
                           "kernel size of each layer's convolution, comma-separated from layer 0 (fairseq's "
                           "default); deeper layers repeat the last",
                           {});
}

static constexpr int kMaxDefaultKernel = 31;

int conv_kernel_size(const AttnConfig& cfg) {
    const std::string& list = cfg.settings.text("conv-kernels");
    std::vector<int> sizes;
    std::stringstream in(list);
    std::string item;
    while (std::getline(in, item, ',')) {
        size_t used = 0;
        int k = 0;
        try {
            k = std::stoi(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        SYNTH_CHECK(!item.empty() && used == item.size() && k >= 1, "--conv-kernels='", list,
                    "': '", item, "' is not a positive kernel size (expected e.g. 3,7,15,31)");
        sizes.push_back(k);
    }
    SYNTH_CHECK(!sizes.empty() && list.back() != ',', "--conv-kernels='", list,
                "' must list kernel sizes, e.g. 3,7,15,31");
    // Against the sequence length: a centred window of 2L - 1 taps already covers every key of
    // every position, so wider kernels only add taps no position reaches (and parameters that
    // grow with K). fairseq's default sizes (up to 31) stay valid at any L.
    const int64_t cap = std::max<int64_t>(kMaxDefaultKernel, 2 * (int64_t)cfg.max_len - 1);
    for (int k : sizes)
        SYNTH_CHECK(k <= cap, "--conv-kernels='", list, "': kernel size ", k, " is wider than any window of a length-",
                    cfg.max_len, " sequence can use (at most ", cap, " = max(31, 2 L - 1) with L=", cfg.max_len, ")");
    return sizes[std::min<size_t>(cfg.layer, sizes.size() - 1)];
}

int64_t conv_layer_params(const AttnConfig& cfg) {
    const int64_t d = cfg.d_model;
    return d * 2 * d + 2 * d + d * d + d;  // W_in, b_in, W_out, b_out
}

ConvLayer::ConvLayer(ParamStore& store, const std::string& prefix, const std::string& name, const AttnConfig& cfg)
    : cfg_(cfg), K_(conv_kernel_size(cfg)) {
    SYNTH_CHECK(cfg.heads >= 1 && cfg.d_model >= 1 && cfg.d_model % cfg.heads == 0, "heads=", cfg.heads,
                " must divide d_model=", cfg.d_model);
    const int d = cfg.d_model;
    const std::string p = prefix + name + ".";
    w_in_ = store.weight(p + "w_in", {d, 2 * d}, cfg.weights);
    b_in_ = store.bias(p + "b_in", {2 * d});
    w_out_ = store.weight(p + "w_out", {d, d}, cfg.weights);
    b_out_ = store.bias(p + "b_out", {d});
}

Tensor ConvLayer::forward(const Tensor& x, Mask mask, StepContext& ctx, MixerCache* cache) {
    const int B = x.dim(0), Tq = x.dim(1), H = cfg_.heads;
    SYNTH_CHECK(!(cache && mask.key_pad), "a convolution decoding incrementally takes no key-padding mask");
    // A causal mask gets a causal window even on a layer built as an encoder's.
    const int pad_left = cfg_.causal || mask.causal ? K_ - 1 : (K_ - 1) / 2;
    Tensor u = glu(linear(x, *w_in_, *b_in_));  // (B, Tq, d)
    Tensor w = kernel(u);                        // (1, 1, H, K) or (B, Tq, H, K)
    if (ctx.train) {
        const uint64_t counter = ctx.next_counter();  // drawn even at rate 0, so later masks do not move
        if (cfg_.attn_dropout > 0.0f) {
            // fairseq's weight dropout draws one mask per (position, sequence, head, tap).
            if (w.dim(0) != B || w.dim(1) != Tq) w = reshape(broadcast_batch(reshape(w, {1, H, K_}), B * Tq), {B, Tq, H, K_});
            w = dropout(w, cfg_.attn_dropout, ctx.seed, counter);  // (B, Tq, H, K)
        }
    }
    Tensor keys = u;  // (B, Tk, d): the queries are its last Tq positions
    if (cache) {
        if (cache->values.data) keys = concat_seq(cache->values, u);
        const int Tk = keys.dim(1);
        cache->values = K_ > 1 ? slice_seq(keys, std::max(0, Tk - (K_ - 1)), Tk) : Tensor{};
        cache->len += Tq;
    }
    Tensor y = local_conv(keys, w, pad_left, keys.dim(1) - Tq, mask.key_pad);  // (B, Tq, d)
    return linear(y, *w_out_, *b_out_);                                         // (B, Tq, d)
}

}  // namespace synth

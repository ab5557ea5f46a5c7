// parity: dumps one forward, backward and AdamW step of a small LM for an independent
// re-computation in PyTorch (scripts/torch_reference.py), variant by variant.
//
//   build/parity --out-dir=/tmp/parity --variants=V,R,R+V
//   python3 scripts/torch_reference.py parity /tmp/parity/*.bin
//   build/parity --out-dir=/tmp/parity --variants=V,R --safetensors
//   python3 scripts/torch_reference.py safetensors /tmp/parity/*.safetensors
//
// For each variant it builds a TransformerLM (default: vocab 23, d 32, 2 layers, 4 heads,
// d_ff 48, L = 16, batch 3 of T = 12 < L tokens, so the L-sized synthesizer parameters are
// sliced; dropout 0), re-draws every parameter at a scale where gradients are far above
// float32 noise (see redraw()), and writes <out-dir>/<variant>.bin holding, in order:
//   param/<name>   every parameter before the step (ParamStore declaration order)
//   x, y           the batch: token ids and next-token targets, (B, T), as floats
//   loss           (1) mean cross entropy;   logits  (B*T, vocab)
//   grad/<name>    d loss / d parameter, every trainable parameter (before clipping)
//   grad_norm      (1) global L2 norm of the gradients before clipping
//   clip           (1) the clipping threshold used, clip-fraction * grad_norm
//   after/<name>   every parameter after clipping to clip = clip-fraction * grad_norm
//                  (so clipping is always active) and one AdamW step
//
// FILE FORMAT (little-endian), shared with scripts/torch_reference.py:
//   magic   8 bytes "SYNTHPT1"
//   meta    u32 byte length, then UTF-8 "key=value\n" lines (the model and optimizer config)
//   count   u32 number of tensors, then per tensor:
//           u32 name length, name bytes, u32 ndim, ndim x u32 dims, prod(dims) x f32 values
//
// With --safetensors it also writes <out-dir>/<variant>.safetensors (src/train/safetensors.h): the
// parameters before the step, with the same metadata as the config, so the reference can
// rebuild the model from the file alone and recompute the logits of <variant>.bin.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "attention/variant.h"
#include "engine/autograd.h"
#include "engine/gemm/blas.h"
#include "train/checkpoint.h"
#include "runs/cli.h"
#include "base/error.h"
#include "runs/findings.h"
#include "base/flags.h"
#include "base/io.h"
#include "engine/optim.h"
#include "base/rng.h"
#include "train/safetensors.h"
#include "train/trainer.h"
#include "models/transformer.h"

namespace synth {
namespace {

struct Options {
    std::string variants = paper_sweep(), out_dir;
    int seed = 1, vocab = 23, tokens = 12, batch = 3, threads = 1;
    bool safetensors = false;
    LmConfig model;  // its Model flags are the metadata the reference rebuilds the model from
    Options() {
        model.attn.d_model = 32, model.layers = 2, model.attn.heads = 4, model.d_ff = 48, model.attn.max_len = 16;
        model.dropout = 0.0f;
    }
    // eps is about the size of a typical gradient entry here, so the step is a smooth function
    // of the clipped gradient; with a tiny eps Adam's first step is lr * sign(g), which would
    // neither see clipping nor tolerate float32 noise flipping the sign of a near-zero entry.
    float lr = 1e-2f, beta1 = 0.9f, beta2 = 0.98f, eps = 1e-3f, weight_decay = 0.1f, clip_fraction = 0.5f;
};

// Appends a tensor file's pieces to a byte string (format in the header comment).
class TensorWriter {
public:
    explicit TensorWriter(const std::string& meta) {
        bytes_ = "SYNTHPT1";
        u32((uint32_t)meta.size());
        bytes_ += meta;
        count_at_ = bytes_.size();
        u32(0);  // patched by finish()
    }
    void add(const std::string& name, const Shape& shape, const float* values) {
        u32((uint32_t)name.size());
        bytes_ += name;
        u32((uint32_t)shape.size());
        for (int d : shape) u32((uint32_t)d);
        bytes_.append(reinterpret_cast<const char*>(values), numel_of(shape) * sizeof(float));
        ++count_;
    }
    const std::string& finish() {
        std::memcpy(&bytes_[count_at_], &count_, 4);
        return bytes_;
    }

private:
    void u32(uint32_t v) { bytes_.append(reinterpret_cast<const char*>(&v), 4); }
    std::string bytes_;
    size_t count_at_;
    uint32_t count_ = 0;
};

// Re-draws every parameter, including the ones initialised to 0 or 1 (biases, LayerNorm gains,
// mixture weights), so that each enters the computation non-trivially: non-uniform mixtures,
// non-zero biases, matrices with std 1/sqrt(fan-in) so activations stay O(1) through the layers,
// and synthetic logits (R, FR) of O(1) size.
void redraw(ParamStore& store, Rng& rng) {
    for (Param& p : store.params()) {
        const int64_t n = numel_of(p.shape);
        const size_t dot = p.name.rfind('.'), owner_dot = p.name.rfind('.', dot - 1);
        const std::string owner = p.name.substr(owner_dot + 1, dot - owner_dot - 1), leaf = p.name.substr(dot + 1);
        float mean = 0.0f, std = 0.0f;
        for (const VariantInfo& v : variants())  // a variant's own scale (e.g. synthetic logits of O(1))
            if (v.name == owner && v.parity_std) std = v.parity_std(leaf, p.shape);
        const bool mixture = p.name.size() >= 6 && p.name.compare(p.name.size() - 6, 6, ".mix.w") == 0;
        if (std == 0.0f) {
            if (mixture) std = 1.0f;
            else if (p.shape.size() >= 2) std = 1.0f / std::sqrt((float)p.shape[p.shape.size() - 2]);
            else if (leaf == "g") mean = 1.0f, std = 0.1f;
            else std = 0.1f;
        }
        rng.fill_normal(p.t.data, n, mean, std);
    }
}

void write_params(TensorWriter& w, const ParamStore& store, const std::string& prefix, bool grads) {
    for (const Param& p : store.params())
        if (!grads || p.trainable) w.add(prefix + p.name, p.shape, grads ? p.t.grad : p.t.data);
}

// The model flags (the field table's Model role, variant settings included) and the step's.
std::string meta_of(const Options& o, const Flags& f, const std::string& variant) {
    std::ostringstream m;
    m.precision(9);
    for (const std::string& key : f.names(FlagRole::Model)) m << key << "=" << config_map(f.dump()).at(key) << "\n";
    m << "variant=" << variant << "\nseed=" << o.seed << "\nvocab=" << o.vocab << "\nbatch=" << o.batch
      << "\ntokens=" << o.tokens << "\nlr=" << o.lr << "\nbeta1=" << o.beta1 << "\nbeta2=" << o.beta2
      << "\neps=" << o.eps << "\nweight_decay=" << o.weight_decay << "\n";
    return m.str();
}

void dump_variant(const Options& o, const Flags& f, const std::string& variant) {
    LmConfig cfg = o.model;
    cfg.vocab = o.vocab;
    cfg.attn.variant = variant;
    ParamStore store;
    TransformerLM model(store, cfg);
    store.finalize(o.seed);
    Rng rng(o.seed);
    redraw(store, rng);

    const int B = o.batch, T = o.tokens;
    std::vector<int32_t> x((size_t)B * T), y((size_t)B * T);
    std::vector<float> xf(x.size()), yf(y.size());
    for (int b = 0; b < B; ++b) {  // y is x shifted by one, as in language-model training
        std::vector<int32_t> stream(T + 1);
        for (int32_t& t : stream) t = (int32_t)rng.below(o.vocab);
        for (int t = 0; t < T; ++t) {
            x[(size_t)b * T + t] = stream[t], y[(size_t)b * T + t] = stream[t + 1];
            xf[(size_t)b * T + t] = (float)stream[t], yf[(size_t)b * T + t] = (float)stream[t + 1];
        }
    }

    const std::string meta = meta_of(o, f, variant), stem = o.out_dir + "/" + variant;
    if (o.safetensors) {
        Checkpoint ck = capture(store, nullptr);
        ck.config = meta;
        export_safetensors(stem + ".safetensors", ck);
    }
    TensorWriter w(meta);
    write_params(w, store, "param/", false);
    w.add("x", {B, T}, xf.data());
    w.add("y", {B, T}, yf.data());

    scratch().reset();
    store.zero_grad();
    StepContext ctx{true, (uint64_t)o.seed, 0, 0};
    Tensor logits = model.forward(x, B, T, ctx);  // (B*T, vocab)
    Tensor loss = cross_entropy(logits, y, -1, 0.0f);
    backward(loss);
    w.add("loss", {1}, loss.data);
    w.add("logits", {B * T, o.vocab}, logits.data);
    write_params(w, store, "grad/", true);

    const float norm = (float)clip_grad_norm(store, 0.0f);  // max_norm 0: measure only
    const float clip = o.clip_fraction * norm;
    w.add("grad_norm", {1}, &norm);
    w.add("clip", {1}, &clip);
    clip_grad_norm(store, clip);
    AdamW opt(store, AdamWConfig{o.beta1, o.beta2, o.eps, o.weight_decay});
    opt.step(o.lr);
    write_params(w, store, "after/", false);

    const std::string path = stem + ".bin";
    write_file_atomic(path, w.finish());
    std::printf("%s: loss %.6f, grad norm %.6g, %lld parameters -> %s\n", variant.c_str(), loss.data[0], norm,
                (long long)store.trainable_count(), path.c_str());
}

int run(int argc, char** argv) {
    Options o;
    Flags f("parity", "Dump a forward, backward and AdamW step of a small LM for scripts/torch_reference.py.");
    f.add("out-dir", &o.out_dir, "directory for the <variant>.bin files (required)");
    f.add("variants", &o.variants, "comma-separated attention variants");
    f.add("seed", &o.seed, "seed of the parameters and the batch");
    f.add("vocab", &o.vocab, "vocabulary size");
    o.model.bind(f);
    f.add("tokens", &o.tokens, "tokens per sequence in the batch, T <= L");
    f.add("batch", &o.batch, "sequences in the batch");
    f.add("lr", &o.lr, "AdamW learning rate");
    f.add("beta1", &o.beta1, "AdamW beta1");
    f.add("beta2", &o.beta2, "AdamW beta2");
    f.add("eps", &o.eps, "AdamW epsilon");
    f.add("weight-decay", &o.weight_decay, "AdamW decoupled weight decay (matrices only)");
    f.add("clip-fraction", &o.clip_fraction, "clip the gradient norm to this fraction of itself (< 1: clipping active)");
    f.add("threads", &o.threads, "threads for OpenMP and OpenBLAS");
    f.add("safetensors", &o.safetensors, "also write <variant>.safetensors: the parameters before the step, config as metadata");
    if (!f.parse(argc, argv)) return 0;
    SYNTH_CHECK(f.positional().empty(), "unexpected argument '", f.positional()[0], "' (flags are --key=value)");
    SYNTH_CHECK(!o.out_dir.empty(), "--out-dir is required");
    SYNTH_CHECK(o.tokens >= 1 && o.tokens <= o.model.attn.max_len, "--tokens=", o.tokens, " must be in [1, --seq=",
                o.model.attn.max_len, "]");
    check_settings(o.model.attn.settings);
    SYNTH_CHECK(o.batch >= 1 && o.vocab >= 1, "--batch and --vocab must be positive");
    SYNTH_CHECK(o.clip_fraction > 0, "--clip-fraction=", o.clip_fraction, " must be positive");
    SYNTH_CHECK(o.threads >= 1, "--threads=", o.threads, " must be >= 1");
    ensure_writable_dir(o.out_dir);
    set_threads(o.threads);
    for (const std::string& v : split_list(o.variants)) dump_variant(o, f, v);
    return 0;
}

}  // namespace
}  // namespace synth

int main(int argc, char** argv) { return synth::cli_main(argc, argv, synth::run); }

// attention/variant.h: what an attention variant is, and the registry that knows them all.
//
// Two levels (docs/variants.md):
//   - a LogitsSource makes the (Tq, Tk) attention logits of every head: V, D, R, Rfix, FR, FD.
//     Sources can be mixed ("R+V"): SynthesizerAttention adds their logits weighted by
//     softmax(w) per (layer, head) before one masked softmax and one value projection;
//   - a SequenceMixer maps a block's input x (B, T, d) to (B, T, d), with a mask, the step's
//     context and, when decoding, a cache. SynthesizerAttention is one; a mixer that is not
//     built from logits (a convolution, a sequence-projected attention) registers a mixer
//     directly.
//
// A variant is one file under src/attention/ that registers a VariantInfo: its name, a one-line
// description, its own settings (which become flags, checkpoint config and parity metadata),
// whether it is sized by L, its parameter count (docs/variants.md) and its factory. Everything that lists,
// validates, counts or builds variants asks this registry. docs/adding-a-variant.md is the recipe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "engine/ops.h"
#include "engine/params.h"

namespace synth {

class Flags;

// ---- settings: the variants' own options ----------------------------------------------------

using SettingValue = std::variant<int, float, bool, std::string>;

struct Setting {
    std::string name;             // the flag name (lower case, hyphens)
    SettingValue value;           // the default
    std::string help;
    enum class Bound { Any, Positive, NonNegative } bound = Bound::Any;  // numbers
    std::vector<std::string> choices;                                    // strings; empty = any

    static Setting integer(std::string name, int value, std::string help, Bound bound = Bound::Any) {
        return {std::move(name), value, std::move(help), bound, {}};
    }
    static Setting boolean(std::string name, bool value, std::string help) {
        return {std::move(name), value, std::move(help), Bound::Any, {}};
    }
    static Setting choice(std::string name, std::string value, std::string help, std::vector<std::string> choices) {
        return {std::move(name), std::move(value), std::move(help), Bound::Any, std::move(choices)};
    }
};

// The values of every registered variant's settings, by name (defaults unless set).
class Settings {
public:
    Settings();  // every registered setting at its default
    int integer(const std::string& name) const { return std::get<int>(at(name)); }
    float real(const std::string& name) const { return std::get<float>(at(name)); }
    bool flag(const std::string& name) const { return std::get<bool>(at(name)); }
    const std::string& text(const std::string& name) const { return std::get<std::string>(at(name)); }
    void set(const std::string& name, SettingValue v);
    const SettingValue& at(const std::string& name) const;  // throws for an unregistered name
    SettingValue& slot(const std::string& name);             // the same, writable (flags bind to it)

private:
    std::map<std::string, SettingValue> values_;
};

// ---- one attention layer's configuration -----------------------------------------------------

struct AttnConfig {
    int d_model = 128;
    int heads = 4;
    int max_len = 128;          // L: the synthesizers are sized by it
    std::string variant = "V";  // "V", "R", "D+V", ...
    Settings settings;          // the variants' own settings, by flag name
    Init weights = Init::Normal;  // the projection matrices: N(0, 0.02), or GlorotUniform
    float attn_dropout = 0.0f;
    bool causal = false;        // a decoder's self-attention: query i sees keys j <= i only
    int layer = 0;              // the block's index, for per-layer settings (a convolution's kernel sizes)
};

// The dropout stream of one step (see ops.h dropout()): in training, each dropout call of
// the step draws its mask from (seed, step, call index), so masks are reproducible and
// independent of the thread count.
struct StepContext {
    bool train = false;
    uint64_t seed = 0;
    uint64_t step = 0;
    uint64_t calls = 0;  // dropout calls so far in this step
    uint64_t next_counter() { return step * 1000003ULL + calls++; }
};

// Incremental decoding state of one sequence mixer: what earlier positions computed that
// later ones need. Tensors are (B, t, C), grown by concat_seq.
struct MixerCache {
    int len = 0;                  // positions already processed
    Tensor values;                // x W_v of earlier positions, (B, len, d)
    std::vector<Tensor> keys;     // per logits source: its cached keys (V: x W_k), or empty
};

// The analysis probe (build/lm --dump-attention): a mixer given one adds the attention
// probabilities of every full (non-incremental) forward to it, so that `mean()` is the map
// averaged over all the sequences seen.
struct AttentionProbe {
    int H = 0, Tq = 0, Tk = 0;
    std::vector<double> sum;  // (H, Tq, Tk)
    int64_t sequences = 0;
    // p (Bp, H, Tq, Tk), standing for B sequences: Bp = B, or Bp = 1 for a batch-shared map.
    void add(const Tensor& p, int B);
    std::vector<float> mean() const;   // (H, Tq, Tk)
};

// ---- the two interfaces ------------------------------------------------------------------------

class LogitsSource {
public:
    virtual ~LogitsSource() = default;
    // x_new (B, Tq, d): the layer inputs at positions [q0, q0 + Tq), q0 = mask.q_offset.
    // Returns logits (B or 1, H, Tq, Tk) with Tk = q0 + Tq. With mask.causal a source may
    // skip the entries above the causal diagonal (V and D do, in blocks): they then hold
    // unspecified but finite values (the product, the bias or 0), since the softmax masks
    // them but a mixture's weight gradient still multiplies them by their zero gradient.
    // `key_cache` is this source's slot in MixerCache (nullptr when not decoding incrementally).
    virtual Tensor logits(const Tensor& x_new, const Mask& mask, Tensor* key_cache) = 0;
};

class SequenceMixer {
public:
    virtual ~SequenceMixer() = default;
    // x (B, T, d) -> (B, T, d). With a cache, x holds only the new positions, which continue
    // the cached ones (the mask's q_offset is set from the cache).
    virtual Tensor forward(const Tensor& x, Mask mask, StepContext& ctx, MixerCache* cache) = 0;
    // The mixture weights alpha = softmax(w) of head h; empty when the mixer mixes nothing.
    virtual std::vector<float> mixture_weights(int /*h*/) const { return {}; }
    // Starts (or, with nullptr, stops) recording attention maps; false when the mixer has no
    // (Tq, Tk) attention map to show.
    virtual bool set_probe(AttentionProbe* /*probe*/) { return false; }
};

// ---- the registry -----------------------------------------------------------------------------

struct VariantInfo {
    std::string name;         // as written in --variants, e.g. "FR"
    std::string description;  // one line, for --help and docs
    std::vector<Setting> settings;
    bool sized_by_L = true;   // parameters sized by the maximum length L: longer inputs are an error
    bool causal_ok = true;    // false: encoder-only (it reads the whole sequence), refused in a decoder
    // The paper's count (docs/variants.md) of the parameters it adds to one layer (for a logits source: its logits).
    std::function<int64_t(const AttnConfig&)> param_count;
    // Exactly one of the two factories: a mixable logits source, or a whole sequence mixer.
    // `prefix` ends with '.'; a source names its parameters prefix + name + "." + ...
    std::function<std::unique_ptr<LogitsSource>(ParamStore&, const std::string& prefix, const AttnConfig&)> make_source;
    std::function<std::unique_ptr<SequenceMixer>(ParamStore&, const std::string& prefix, const AttnConfig&)> make_mixer;
    // Optional, for the PyTorch parity check (build/parity): the std at which to draw its
    // parameter `leaf` so that its contribution is O(1) (0 = the default 1/sqrt(fan-in) rule).
    std::function<float(const std::string& leaf, const Shape& shape)> parity_std;
    // The maximum length L at which the registry-driven tests (tests/variant_list.h) build it:
    // one at which its settings' defaults act, e.g. more positions than its window or kernel,
    // or a window that never applies is never tested. 0: the tests' default (6).
    int test_len = 0;
};

// The factory of a logits source class with the constructor (store, prefix, cfg).
template <class Source>
auto source_factory() {
    return [](ParamStore& s, const std::string& prefix, const AttnConfig& c) -> std::unique_ptr<LogitsSource> {
        return std::make_unique<Source>(s, prefix, c);
    };
}

// Adds a variant (at static-initialisation time, through SYNTH_REGISTER_VARIANT). Throws on
// a repeated name or a setting registered twice with different definitions.
bool register_variant(VariantInfo info);
// Removes a registered variant; false if there is none of that name. For a test's own variants
// (tests/test_lm.cpp registers a faulty one to show the causality check catches it).
bool unregister_variant(const std::string& name);
#define SYNTH_REGISTER_VARIANT(id, ...) \
    static const bool synth_registered_##id [[maybe_unused]] = ::synth::register_variant(__VA_ARGS__)

// Every registered variant, sorted by name.
const std::vector<VariantInfo>& variants();
const VariantInfo& variant_info(const std::string& name);  // throws naming the known ones
// "V, D, ..." for messages, and the logits sources only (those that can be mixed).
std::string variant_names();
std::vector<std::string> logits_source_names();
// Every registered setting, once (several variants may share one, e.g. R's initialisation).
std::vector<Setting> all_settings();
// A setting's value as its flag and a saved config write it ("8", "true", "headwise").
std::string setting_text(const SettingValue& v);
// The variants that read setting `name`.
std::vector<std::string> setting_owners(const std::string& name);

// Parses "R+V" into {"R", "V"}; throws on unknown names, duplicates, empty parts, or a
// mixture that includes a sequence mixer (only logits sources mix).
std::vector<std::string> parse_variant(const std::string& variant);
// Whether any component of `variant` is sized by L.
bool sized_by_L(const std::string& variant);
// Checks every setting's bound and choices (messages name the flag).
void check_settings(const Settings& s);
// A setting the user gave that none of `variants` reads is an error (it would be silently
// ignored): `given` tells whether a flag was given.
void check_settings_used(const std::vector<std::string>& variants, const std::function<bool(const std::string&)>& given);
// Registers every setting as a flag (FlagRole::Model) bound to `s`; a saved config without it
// (older than the variant) means its default.
void add_setting_flags(Flags& f, Settings& s);

// Whether every component of `variant` can be a decoder's (causal) self-attention.
bool causal_ok(const std::string& variant);
// The layer's mixer for cfg.variant: a SynthesizerAttention over the logits sources, or the
// variant's own mixer. Throws when cfg.causal and the variant is encoder-only.
std::unique_ptr<SequenceMixer> make_mixer(ParamStore& store, const std::string& prefix, const AttnConfig& cfg);
// The paper's parameter table (docs/variants.md): the parameters the variant's logits add to one layer (the mixture
// weights included), and all of one layer's mixer parameters (the shared W_v, W_o included).
int64_t paper_logit_params(const AttnConfig& cfg);
int64_t mixer_params(const AttnConfig& cfg);

}  // namespace synth

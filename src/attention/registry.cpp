// The variant registry: names, settings, parsing and factories. It names no variant: each
// registers itself from its own file (SYNTH_REGISTER_VARIANT).
#include <algorithm>
#include <sstream>

#include "attention/synthesizer_attention.h"
#include "attention/variant.h"
#include "base/error.h"
#include "base/flags.h"

namespace synth {

// A function-local static: registrations run during static initialisation, in any order.
static std::vector<VariantInfo>& registry() {
    static std::vector<VariantInfo> r;
    return r;
}

static bool same_setting(const Setting& a, const Setting& b) {
    return a.name == b.name && a.value == b.value && a.help == b.help && a.bound == b.bound && a.choices == b.choices;
}

bool register_variant(VariantInfo info) {
    SYNTH_CHECK(!info.name.empty() && info.name.find_first_of("+,") == std::string::npos, "variant name '", info.name,
                "' must be non-empty without '+' or ','");
    SYNTH_CHECK(bool(info.make_source) != bool(info.make_mixer), "variant ", info.name,
                " must register exactly one of make_source and make_mixer");
    SYNTH_CHECK(bool(info.param_count), "variant ", info.name, " has no parameter count");
    auto& r = registry();
    for (const VariantInfo& v : r) {
        SYNTH_CHECK(v.name != info.name, "variant ", info.name, " registered twice");
        for (const Setting& a : v.settings)
            for (const Setting& b : info.settings)
                SYNTH_CHECK(a.name != b.name || same_setting(a, b), "setting --", a.name, " of ", v.name, " and ",
                            info.name, " is registered with two definitions");
    }
    r.push_back(std::move(info));
    std::sort(r.begin(), r.end(), [](const VariantInfo& a, const VariantInfo& b) { return a.name < b.name; });
    return true;
}

bool unregister_variant(const std::string& name) {
    auto& r = registry();
    const auto it = std::find_if(r.begin(), r.end(), [&](const VariantInfo& v) { return v.name == name; });
    if (it == r.end()) return false;
    r.erase(it);
    return true;
}

const std::vector<VariantInfo>& variants() { return registry(); }

std::string variant_names() {
    std::string s;
    for (const VariantInfo& v : variants()) s += (s.empty() ? "" : ", ") + v.name;
    return s;
}

const VariantInfo& variant_info(const std::string& name) {
    for (const VariantInfo& v : variants())
        if (v.name == name) return v;
    fail("unknown attention variant '", name, "' (known: ", variant_names(), "; logits sources mix, e.g. R+V)");
}

std::vector<std::string> logits_source_names() {
    std::vector<std::string> out;
    for (const VariantInfo& v : variants())
        if (v.make_source) out.push_back(v.name);
    return out;
}

std::vector<Setting> all_settings() {
    std::vector<Setting> out;
    for (const VariantInfo& v : variants())
        for (const Setting& s : v.settings)
            if (std::none_of(out.begin(), out.end(), [&](const Setting& o) { return o.name == s.name; })) out.push_back(s);
    return out;
}

std::string setting_text(const SettingValue& v) {
    return std::visit([](const auto& x) {
        std::ostringstream os;
        os << std::boolalpha << x;
        return os.str();
    }, v);
}

std::vector<std::string> setting_owners(const std::string& name) {
    std::vector<std::string> out;
    for (const VariantInfo& v : variants())
        for (const Setting& s : v.settings)
            if (s.name == name) out.push_back(v.name);
    return out;
}

std::vector<std::string> parse_variant(const std::string& variant) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t plus = variant.find('+', start);
        std::string part = variant.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
        SYNTH_CHECK(!part.empty(), "malformed variant '", variant, "': empty component (use e.g. R+V)");
        try {
            variant_info(part);
        } catch (const Error& e) {
            fail(e.what(), " in '", variant, "'");
        }
        SYNTH_CHECK(std::find(parts.begin(), parts.end(), part) == parts.end(), "variant '", variant, "' repeats ",
                    part);
        parts.push_back(part);
        if (plus == std::string::npos) break;
        start = plus + 1;
    }
    if (parts.size() > 1)
        for (const std::string& p : parts)
            SYNTH_CHECK(variant_info(p).make_source, "variant '", variant, "': ", p,
                        " is a sequence mixer of its own and cannot be mixed (only logits sources mix: ",
                        [] {
                            std::string s;
                            for (const std::string& n : logits_source_names()) s += (s.empty() ? "" : ", ") + n;
                            return s;
                        }(),
                        ")");
    return parts;
}

bool sized_by_L(const std::string& variant) {
    for (const std::string& p : parse_variant(variant))
        if (variant_info(p).sized_by_L) return true;
    return false;
}

bool causal_ok(const std::string& variant) {
    for (const std::string& p : parse_variant(variant))
        if (!variant_info(p).causal_ok) return false;
    return true;
}

// ---- settings --------------------------------------------------------------------------------

Settings::Settings() {
    for (const Setting& s : all_settings()) values_[s.name] = s.value;
}

const SettingValue& Settings::at(const std::string& name) const {
    auto it = values_.find(name);
    SYNTH_CHECK(it != values_.end(), "no attention setting '", name, "' is registered");
    return it->second;
}

SettingValue& Settings::slot(const std::string& name) {
    auto it = values_.find(name);
    SYNTH_CHECK(it != values_.end(), "no attention setting '", name, "' is registered");
    return it->second;
}

void Settings::set(const std::string& name, SettingValue v) {
    SettingValue& s = slot(name);
    SYNTH_CHECK(s.index() == v.index(), "attention setting '", name, "' set with a value of the wrong type");
    s = std::move(v);
}

void check_settings(const Settings& values) {
    for (const Setting& s : all_settings()) {
        const SettingValue& v = values.at(s.name);
        double x = std::holds_alternative<int>(v) ? std::get<int>(v) : std::holds_alternative<float>(v) ? std::get<float>(v) : 0;
        if (s.bound == Setting::Bound::Positive) SYNTH_CHECK(x > 0, "--", s.name, "=", x, " must be positive");
        if (s.bound == Setting::Bound::NonNegative) SYNTH_CHECK(x >= 0, "--", s.name, "=", x, " must be >= 0");
        if (!s.choices.empty()) {
            const std::string& t = std::get<std::string>(v);
            std::string list;
            for (const std::string& c : s.choices) list += (list.empty() ? "" : ", ") + c;
            SYNTH_CHECK(std::find(s.choices.begin(), s.choices.end(), t) != s.choices.end(), "unknown --", s.name, " '",
                        t, "' (", list, ")");
        }
    }
}

void check_settings_used(const std::vector<std::string>& list, const std::function<bool(const std::string&)>& given) {
    for (const Setting& s : all_settings()) {
        if (!given(s.name)) continue;
        const std::vector<std::string> owners = setting_owners(s.name);
        bool used = false;
        for (const std::string& v : list)
            for (const std::string& p : parse_variant(v)) used |= std::count(owners.begin(), owners.end(), p) > 0;
        std::string who;
        for (const std::string& o : owners) who += (who.empty() ? "" : ", ") + o;
        SYNTH_CHECK(used, "--", s.name, " is a setting of ", who, ", which none of the variants of this run uses");
    }
}

void add_setting_flags(Flags& f, Settings& values) {
    for (const Setting& s : all_settings()) {
        std::string owners;
        for (const std::string& o : setting_owners(s.name)) owners += (owners.empty() ? "" : ", ") + o;
        const std::string help = owners + ": " + s.help;
        SettingValue& v = values.slot(s.name);
        if (auto* i = std::get_if<int>(&v)) f.add(s.name, i, help, FlagRole::Model);
        if (auto* r = std::get_if<float>(&v)) f.add(s.name, r, help, FlagRole::Model);
        if (auto* b = std::get_if<bool>(&v)) f.add(s.name, b, help, FlagRole::Model);
        if (auto* t = std::get_if<std::string>(&v)) f.add(s.name, t, help, FlagRole::Model);
        // A checkpoint older than the variant trained with the setting's registered default.
        f.default_when_missing(s.name, setting_text(s.value));
    }
}

// ---- factories and counts --------------------------------------------------------------------

std::unique_ptr<SequenceMixer> make_mixer(ParamStore& store, const std::string& prefix, const AttnConfig& cfg) {
    const std::vector<std::string> parts = parse_variant(cfg.variant);
    const VariantInfo& first = variant_info(parts[0]);
    SYNTH_CHECK(!cfg.causal || first.causal_ok, first.name, " is encoder-only (each output reads the whole sequence, ",
                "so it cannot be causal): it cannot be a decoder's self-attention (build/lm, or mt's decoder); use it "
                "in an encoder (build/cls, or build/mt --placement=encoder)");
    if (first.make_mixer) return first.make_mixer(store, prefix, cfg);
    return std::make_unique<SynthesizerAttention>(store, prefix, cfg);
}

int64_t paper_logit_params(const AttnConfig& cfg) {
    const std::vector<std::string> parts = parse_variant(cfg.variant);
    int64_t n = parts.size() > 1 ? (int64_t)cfg.heads * (int64_t)parts.size() : 0;  // the mixture weights
    for (const std::string& p : parts) n += variant_info(p).param_count(cfg);
    return n;
}

int64_t mixer_params(const AttnConfig& cfg) {
    const VariantInfo& first = variant_info(parse_variant(cfg.variant)[0]);
    if (first.make_mixer) return first.param_count(cfg);
    return paper_logit_params(cfg) + 2 * (int64_t)cfg.d_model * cfg.d_model;  // + W_v, W_o
}

}  // namespace synth

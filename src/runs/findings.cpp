#include "runs/findings.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "base/table.h"
#include "runs/stats.h"

namespace synth {

namespace {

// How a finding reads the paired relative differences d = (a - b) / b, in percent.
enum class Claim {
    Better,       // a beats b: d < 0
    ClearlyWorse, // a is worse than b: d > 0
    Competitive,  // a is not worse than b by more than 3%: d < 3
    AboutEqual,   // |d| <= 3%
    Faster,       // on speed: a's tokens/s above b's, d > 0
    HigherScore,  // on the validation score (accuracy, BLEU), d in points (a - b) > 0
};

struct Comparison {
    const char* finding;
    const char* a;
    const char* b;
    Claim claim;
};

// The paper's findings 1-5 (docs/variants.md); 6 (heads) compares groups, not variants.
const Comparison kComparisons[] = {
    {"1. Trainable R is competitive with V", "R", "V", Claim::Competitive},
    {"1. Fixed R is clearly worse than R", "Rfix", "R", Claim::ClearlyWorse},
    {"2. D is about as good as R", "D", "R", Claim::AboutEqual},
    {"3. R+V beats V", "R+V", "V", Claim::Better},
    {"3. D+V beats V", "D+V", "V", Claim::Better},
    {"4. FR stays close to R (with fewer parameters)", "FR", "R", Claim::Competitive},
    {"4. FD stays close to D (with fewer parameters)", "FD", "D", Claim::Competitive},
    {"5. R is faster per step than V", "R", "V", Claim::Faster},
    // The baselines (docs/variants.md): C4 pre-training, log-perplexity R ~1.97 vs DynamicConv
    // 2.040 and 4.26 vs 2.65 steps/s; and the encoding-only claim against Linformer.
    {"Baselines. R improves on DynamicConv's loss (C4: -3.5%)", "R", "DynamicConv", Claim::Better},
    {"Baselines. R is faster than DynamicConv (C4: 1.6x steps/s)", "R", "DynamicConv", Claim::Faster},
    {"Baselines. FR outperforms Linformer on an encoding-only task", "FR", "Linformer", Claim::HigherScore},
    {"Baselines. FD outperforms Linformer on an encoding-only task", "FD", "Linformer", Claim::HigherScore},
};

// "confirmed", "refuted" or "inconclusive" for the interval of d.
std::string verdict(Claim c, const Interval& d) {
    if (!d.valid()) return "inconclusive (1 seed: no interval)";
    bool yes = false, no = false;
    switch (c) {
        case Claim::Better: yes = d.hi < 0, no = d.lo > 0; break;
        case Claim::ClearlyWorse: yes = d.lo > 0, no = d.hi < 0; break;
        case Claim::Competitive: yes = d.hi < 3, no = d.lo > 3; break;
        case Claim::AboutEqual: yes = d.lo > -3 && d.hi < 3, no = d.lo > 3 || d.hi < -3; break;
        case Claim::Faster:
        case Claim::HigherScore: yes = d.lo > 0, no = d.hi < 0; break;
    }
    const std::string n = " at " + std::to_string(d.n) + " seeds";
    return yes ? "confirmed" + n : no ? "refuted" + n : "inconclusive" + n;
}

// One variant's runs, by seed.
std::map<int, const SeedRun*> by_seed(const std::vector<SeedRun>& runs, const std::string& variant) {
    std::map<int, const SeedRun*> m;
    for (const SeedRun& r : runs)
        if (r.variant == variant) m[r.seed] = &r;
    return m;
}

// The paired per-seed differences of a's `of` against b's, over the seeds both ran (and where
// both are numbers): in percent of b's, or in points (a - b) when `points` (scores).
std::vector<double> paired(const std::map<int, const SeedRun*>& a, const std::map<int, const SeedRun*>& b,
                           double SeedRun::*of, bool points = false) {
    std::vector<double> d;
    for (const auto& [seed, ra] : a) {
        auto rb = b.find(seed);
        if (rb == b.end()) continue;
        const double x = ra->*of, y = rb->second->*of;
        if (std::isnan(x) || std::isnan(y)) continue;
        d.push_back(points ? x - y : 100.0 * (x - y) / y);
    }
    return d;
}

// Keeps in `a` only the seeds whose run in `b` ran on the same machine (or that `b` lacks);
// returns the machines of the seeds it dropped, "A vs B" each, for the reader.
std::vector<std::string> keep_same_machine(std::map<int, const SeedRun*>& a, const std::map<int, const SeedRun*>& b) {
    std::vector<std::string> dropped;
    for (auto it = a.begin(); it != a.end();) {
        auto rb = b.find(it->first);
        if (rb != b.end() && rb->second->machine != it->second->machine) {
            dropped.push_back(it->second->machine + " vs " + rb->second->machine);
            it = a.erase(it);
        } else {
            ++it;
        }
    }
    return dropped;
}

// "+1.23% (95% CI 0.40% to 2.06%)"; the interval only when there is one (2 seeds or more).
std::string signed_with_ci(const Interval& ci, const std::string& unit) {
    std::string s = (ci.mean >= 0 ? "+" : "") + fmt(ci.mean, 2) + unit;
    if (ci.valid()) s += " (95% CI " + fmt(ci.lo, 2) + unit + " to " + fmt(ci.hi, 2) + unit + ")";
    return s;
}

// The variants of `runs` in the order the runs list them, without `except`.
std::vector<std::string> variants_of(const std::vector<SeedRun>& runs, const std::string& except = "") {
    std::vector<std::string> variants;
    for (const SeedRun& r : runs)
        if (r.variant != except && std::find(variants.begin(), variants.end(), r.variant) == variants.end())
            variants.push_back(r.variant);
    return variants;
}

// Which side of 0 the whole interval of a paired difference lies on: `below` or `above`, else
// "no difference resolved", with the number of seeds.
std::string direction(const Interval& ci, const std::string& below, const std::string& above) {
    if (!ci.valid()) return "inconclusive (1 seed: no interval)";
    const std::string n = " at " + std::to_string(ci.n) + " seeds";
    return (ci.hi < 0 ? below : ci.lo > 0 ? above : "no difference resolved") + n;
}

}  // namespace

std::string seeded_findings(const std::vector<SeedRun>& runs, const std::string& score_name, double chance_loss) {
    std::vector<double> v_loss;
    for (const SeedRun& r : runs)
        if (r.variant == "V") v_loss.push_back(r.loss);
    const bool at_chance = std::isfinite(chance_loss) && !v_loss.empty() && mean_of(v_loss) >= 0.99 * chance_loss;
    std::ostringstream os;
    if (at_chance)
        os << "- **No loss or " << (score_name.empty() ? "score" : score_name) << " findings**: V's mean validation loss "
           << fmt(mean_of(v_loss), 4) << " is within 1% of a constant answer's " << fmt(chance_loss, 4)
           << ", so V has not learned the task and a tie between the variants ranks nothing.\n";
    for (const Comparison& c : kComparisons) {
        auto a = by_seed(runs, c.a);
        const auto b = by_seed(runs, c.b);
        const bool on_score = c.claim == Claim::HigherScore, speed = c.claim == Claim::Faster;
        if (at_chance && !speed) continue;
        // Tokens/s of two CPUs measure the CPUs, not the variants.
        const std::vector<std::string> elsewhere = speed ? keep_same_machine(a, b) : std::vector<std::string>{};
        std::string left_out;
        if (!elsewhere.empty()) {
            std::set<std::string> pairs(elsewhere.begin(), elsewhere.end());
            for (const std::string& p : pairs) left_out += (left_out.empty() ? "" : "; ") + p;
            left_out = std::to_string(elsewhere.size()) + (elsewhere.size() == 1 ? " seed" : " seeds") +
                       " left out, whose runs ran on different machines (" + left_out + ")";
        }
        const std::vector<double> d =
            paired(a, b, on_score ? &SeedRun::score : speed ? &SeedRun::speed : &SeedRun::loss, on_score);
        if (d.empty()) {
            if (!left_out.empty()) os << "- **" << c.finding << "**: " << c.a << " vs " << c.b << ": not compared, " << left_out << ".\n";
            continue;
        }
        const Interval ci = ci95(d);
        os << "- **" << c.finding << "**: " << c.a << " vs " << c.b << ", paired "
           << (speed ? "training tokens/s" : on_score ? score_name : "validation loss") << " difference "
           << signed_with_ci(ci, on_score ? " points" : "%");
        const double pa = a.begin()->second->params, pb = b.begin()->second->params;
        if (c.claim == Claim::Competitive && pa != pb) os << ", " << fmt(pa, 0) << " vs " << fmt(pb, 0) << " parameters";
        os << ": " << verdict(c.claim, ci) << (left_out.empty() ? "" : " (" + left_out + ")") << ".";
        // The score beside a loss finding, for the reader (the verdict stays the loss's).
        const std::vector<double> ds = on_score || speed ? std::vector<double>{} : paired(a, b, &SeedRun::score, true);
        if (!ds.empty()) os << " Paired " << score_name << " difference: " << signed_with_ci(ci95(ds), " points") << ".";
        os << "\n";
    }
    std::string s = os.str();
    if (s.empty()) return "";
    return "\nFindings (the paper's 1-5 and its claims against the baselines, docs/variants.md; a claim is confirmed when the whole 95% interval of the "
           "paired per-seed difference agrees with it, \"competitive\" and \"about as good\" meaning within 3%" +
           (score_name.empty() ? "" : "; the " + score_name + " beside a loss finding is for the reader, its verdict is the loss's") +
           "):\n\n" +
           s;
}

std::string heads_findings(const std::map<int, std::vector<SeedRun>>& by_heads) {
    if (!by_heads.count(1) || by_heads.size() < 2) return "";
    std::ostringstream os;
    for (const std::string& v : variants_of(by_heads.at(1))) {
        const auto one = by_seed(by_heads.at(1), v);
        std::string parts;
        int better = 0, worse = 0, compared = 0, n_min = 0;
        for (const auto& [h, runs] : by_heads) {
            if (h == 1) continue;
            const std::vector<double> d = paired(by_seed(runs, v), one, &SeedRun::loss);
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            ++compared;
            n_min = n_min == 0 ? ci.n : std::min(n_min, ci.n);
            better += ci.valid() && ci.hi < 0;
            worse += ci.valid() && ci.lo > 0;
            parts += std::string(parts.empty() ? "" : "; ") + "H=" + std::to_string(h) + " " + signed_with_ci(ci, "%");
        }
        if (compared == 0) continue;
        const std::string n = " at " + std::to_string(n_min) + " seeds";
        const std::string verdict = better > 0 ? "confirmed" + n : worse == compared ? "refuted" + n : "inconclusive" + n;
        os << "- **6. " << v << " needs several heads**: paired validation loss difference against one head: " << parts
           << ": " << verdict << ".\n";
    }
    const std::string s = os.str();
    if (s.empty()) return "";
    return "\n## Finding 6: the number of heads\n\nThe groups above differ only in the number of heads H (d_model fixed, so "
           "each head is d_model / H wide). A variant needs several heads when some H > 1 has a lower validation loss "
           "than H = 1 over the whole 95% interval of the paired per-seed difference; refuted when every H > 1 is worse "
           "over its whole interval. The paper claims it for the synthesizers; V is the contrast.\n\n" + s;
}

std::string placement_findings(const std::map<std::string, std::vector<SeedRun>>& by_placement) {
    if (!by_placement.count("both")) return "";
    const auto v = by_seed(by_placement.at("both"), "V");
    if (v.empty()) return "";
    std::ostringstream os;
    for (const char* where : {"encoder", "decoder", "both"}) {
        if (!by_placement.count(where)) continue;
        const std::vector<SeedRun>& runs = by_placement.at(where);
        for (const std::string& name : variants_of(runs, "V")) {
            const std::vector<double> d = paired(by_seed(runs, name), v, &SeedRun::loss);
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            os << "- **" << name << " in " << (std::string(where) == "both" ? "encoder and decoder" : std::string("the ") + where + " only")
               << "** vs V: paired validation loss difference " << signed_with_ci(ci, "%") << ": "
               << direction(ci, "better than V", "worse than V") << ".\n";
        }
    }
    // Which side the variant costs more on: decoder-only against encoder-only, paired per seed.
    if (by_placement.count("encoder") && by_placement.count("decoder")) {
        for (const std::string& name : variants_of(by_placement.at("decoder"), "V")) {
            const std::vector<double> d =
                paired(by_seed(by_placement.at("decoder"), name), by_seed(by_placement.at("encoder"), name), &SeedRun::loss);
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            os << "- **" << name << " in the decoder only** vs in the encoder only: paired validation loss difference "
               << signed_with_ci(ci, "%") << ": " << direction(ci, "the encoder costs more", "the decoder costs more")
               << ".\n";
        }
    }
    const std::string s = os.str();
    if (s.empty()) return "";
    return "\n## Placement: where the synthesizer replaces self-attention\n\nThe groups above differ only in "
           "--placement: the variant in the encoder's self-attention only, the decoder's only, or both, with V in the "
           "other. Each against V (the same model at every placement), paired per seed; then, where the variant ran "
           "on each side alone, the decoder-only model against the encoder-only one.\n\n" + s;
}

std::string precision_findings(const std::map<std::string, std::vector<SeedRun>>& by_precision) {
    if (!by_precision.count("fp32") || !by_precision.count("bf16")) return "";
    const std::vector<SeedRun>& fp32 = by_precision.at("fp32");
    std::ostringstream os;
    for (const std::string& v : variants_of(by_precision.at("bf16"))) {
        const std::vector<double> d = paired(by_seed(by_precision.at("bf16"), v), by_seed(fp32, v), &SeedRun::loss);
        if (d.empty()) continue;
        const Interval ci = ci95(d);
        const double lo = ci.valid() ? ci.lo : ci.mean, hi = ci.valid() ? ci.hi : ci.mean;
        const std::string n = " at " + std::to_string(ci.n) + (ci.n == 1 ? " seed" : " seeds");
        os << "- **" << v << "** bf16 vs fp32: paired validation loss difference " << signed_with_ci(ci, "%") << ": "
           << (lo > -1 && hi < 1 ? "within 1%" : lo > 1 || hi < -1 ? "outside 1%" : "not resolved against 1%") << n
           << ".\n";
    }
    const std::string s = os.str();
    if (s.empty()) return "";
    return "\n## Precision: bf16 against fp32\n\nThe groups above differ only in --precision (docs/precision.md). "
           "Each variant's bf16 runs against its fp32 runs of the same seeds; the bar is a validation loss within 1% "
           "of fp32.\n\n" + s;
}

std::string flag_findings(const std::string& flag, const std::map<std::string, std::vector<SeedRun>>& by_value) {
    if (by_value.size() < 2) return "";
    // The reference: the group at the flag's default (key ""), else the one with the most runs
    // (the main sweep, beside which an ablation runs a few variants), the first of equals.
    auto ref = by_value.find("");
    if (ref == by_value.end())
        for (auto it = by_value.begin(); it != by_value.end(); ++it)
            if (ref == by_value.end() || it->second.size() > ref->second.size()) ref = it;
    const auto setting = [&flag](const std::string& value) {
        return value.empty() ? flag + " at its default" : flag + "=" + value;
    };
    std::ostringstream os;
    for (const auto& [value, runs] : by_value) {
        if (value == ref->first) continue;
        for (const std::string& v : variants_of(runs)) {
            const std::vector<double> d = paired(by_seed(runs, v), by_seed(ref->second, v), &SeedRun::loss);
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            os << "- **" << v << "** at " << setting(value) << " vs at " << setting(ref->first)
               << ": paired validation loss difference " << signed_with_ci(ci, "%") << ": "
               << direction(ci, "lower", "higher") << ".\n";
        }
    }
    const std::string s = os.str();
    if (s.empty()) return "";
    return "\n## The effect of " + flag + "\n\nThe groups above differ only in " + flag + ". Each variant's runs "
           "at each other setting against its runs at " + setting(ref->first) + ", paired per seed.\n\n" + s;
}

std::string lm_reference_note(const std::string& data, const std::vector<SeedRun>& runs, double v_test_loss) {
    std::vector<double> v;
    for (const SeedRun& r : runs)
        if (r.variant == "V") v.push_back(r.loss);
    if (v.empty()) return "";
    if (data == "tinyshakespeare")
        return "\n**Reference.** nanoGPT's CPU setting (4 layers, d=128, context 64, batch 12, 2,000 iterations) "
               "reaches ~1.88 nats/char validation and its 6x384 baby GPT 1.4697; our V here: " +
               fmt(mean_of(v), 4) + ".\n";
    if (data == "ptb")
        return "\n**Reference.** Zaremba et al.'s small LSTM (2x200, 13 epochs) reaches 115.91 test perplexity; our V "
               "here: " + fmt(std::exp(v_test_loss), 1) + ".\n";
    return "";
}

}  // namespace synth

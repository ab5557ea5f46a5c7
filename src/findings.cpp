#include "findings.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "report.h"
#include "stats.h"

namespace synth {

namespace {

// How a finding reads the paired relative differences d = (a - b) / b, in percent.
enum class Claim {
    Better,       // a beats b: d < 0
    ClearlyWorse, // a is worse than b: d > 0
    Competitive,  // a is not worse than b by more than 3%: d < 3
    AboutEqual,   // |d| <= 3%
    Faster,       // on speed: a's tokens/s above b's, d > 0
    MoreAccurate, // on a classifier's validation accuracy, d in percentage points (a - b) > 0
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
    {"Baselines. FR outperforms Linformer on an encoding-only task", "FR", "Linformer", Claim::MoreAccurate},
    {"Baselines. FD outperforms Linformer on an encoding-only task", "FD", "Linformer", Claim::MoreAccurate},
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
        case Claim::MoreAccurate: yes = d.lo > 0, no = d.hi < 0; break;
    }
    const std::string n = " at " + std::to_string(d.n) + " seeds";
    return yes ? "confirmed" + n : no ? "refuted" + n : "inconclusive" + n;
}

}  // namespace

std::string seeded_findings(const std::vector<SeedRun>& runs) {
    std::ostringstream os;
    for (const Comparison& c : kComparisons) {
        std::map<int, const SeedRun*> a, b;
        for (const SeedRun& r : runs) {
            if (r.variant == c.a) a[r.seed] = &r;
            if (r.variant == c.b) b[r.seed] = &r;
        }
        std::vector<double> d;
        double pa = 0, pb = 0;
        const bool accuracy = c.claim == Claim::MoreAccurate;
        for (const auto& [seed, ra] : a)
            if (b.count(seed)) {
                const SeedRun* rb = b.at(seed);
                if (accuracy) {
                    if (std::isnan(ra->accuracy) || std::isnan(rb->accuracy)) continue;  // not a classifier
                    d.push_back(100.0 * (ra->accuracy - rb->accuracy));
                } else {
                    const bool speed = c.claim == Claim::Faster;
                    const double x = speed ? ra->speed : ra->loss, y = speed ? rb->speed : rb->loss;
                    d.push_back(100.0 * (x - y) / y);
                }
                pa = ra->params, pb = rb->params;
            }
        if (d.empty()) continue;
        const Interval ci = ci95(d);
        const char* unit = accuracy ? " points" : "%";
        os << "- **" << c.finding << "**: " << c.a << " vs " << c.b << ", paired "
           << (c.claim == Claim::Faster ? "training tokens/s" : accuracy ? "validation accuracy" : "validation loss")
           << " difference " << (ci.mean >= 0 ? "+" : "") << fmt(ci.mean, 2) << unit;
        if (ci.valid()) os << " (95% CI " << fmt(ci.lo, 2) << unit << " to " << fmt(ci.hi, 2) << unit << ")";
        if (c.claim == Claim::Competitive && pa != pb) os << ", " << fmt(pa, 0) << " vs " << fmt(pb, 0) << " parameters";
        os << ": " << verdict(c.claim, ci) << ".\n";
    }
    std::string s = os.str();
    if (s.empty()) return "";
    return "\nFindings (the paper's 1-5 and its claims against the baselines, docs/variants.md; a claim is confirmed when the whole 95% interval of the "
           "paired per-seed difference agrees with it, \"competitive\" and \"about as good\" meaning within 3%):\n\n" +
           s;
}

std::string heads_findings(const std::map<int, std::vector<SeedRun>>& by_heads) {
    if (!by_heads.count(1) || by_heads.size() < 2) return "";
    std::vector<std::string> variants;  // in the order H = 1's runs list them
    for (const SeedRun& r : by_heads.at(1))
        if (std::find(variants.begin(), variants.end(), r.variant) == variants.end()) variants.push_back(r.variant);
    std::ostringstream os;
    for (const std::string& v : variants) {
        std::map<int, double> one;
        for (const SeedRun& r : by_heads.at(1))
            if (r.variant == v) one[r.seed] = r.loss;
        std::string parts;
        int better = 0, worse = 0, compared = 0, n_min = 0;
        for (const auto& [h, runs] : by_heads) {
            if (h == 1) continue;
            std::vector<double> d;
            for (const SeedRun& r : runs)
                if (r.variant == v && one.count(r.seed)) d.push_back(100.0 * (r.loss - one.at(r.seed)) / one.at(r.seed));
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            ++compared;
            n_min = n_min == 0 ? ci.n : std::min(n_min, ci.n);
            better += ci.valid() && ci.hi < 0;
            worse += ci.valid() && ci.lo > 0;
            parts += std::string(parts.empty() ? "" : "; ") + "H=" + std::to_string(h) + " " + (ci.mean >= 0 ? "+" : "") +
                     fmt(ci.mean, 2) + "%" +
                     (ci.valid() ? " (95% CI " + fmt(ci.lo, 2) + "% to " + fmt(ci.hi, 2) + "%)" : std::string(" (1 seed)"));
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
    std::map<int, double> v;
    if (by_placement.count("both"))
        for (const SeedRun& r : by_placement.at("both"))
            if (r.variant == "V") v[r.seed] = r.loss;
    if (v.empty()) return "";
    std::ostringstream os;
    for (const char* where : {"encoder", "decoder", "both"}) {
        if (!by_placement.count(where)) continue;
        std::vector<std::string> variants;
        for (const SeedRun& r : by_placement.at(where))
            if (r.variant != "V" && std::find(variants.begin(), variants.end(), r.variant) == variants.end())
                variants.push_back(r.variant);
        for (const std::string& name : variants) {
            std::vector<double> d;
            for (const SeedRun& r : by_placement.at(where))
                if (r.variant == name && v.count(r.seed)) d.push_back(100.0 * (r.loss - v.at(r.seed)) / v.at(r.seed));
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            const std::string n = " at " + std::to_string(ci.n) + (ci.n == 1 ? " seed" : " seeds");
            os << "- **" << name << " in " << (std::string(where) == "both" ? "encoder and decoder" : std::string("the ") + where + " only")
               << "** vs V: paired validation loss difference " << (ci.mean >= 0 ? "+" : "") << fmt(ci.mean, 2) << "%";
            if (ci.valid()) os << " (95% CI " << fmt(ci.lo, 2) << "% to " << fmt(ci.hi, 2) << "%)";
            os << ": " << (!ci.valid() ? "inconclusive (1 seed: no interval)" : ci.hi < 0 ? "better than V" + n
                                        : ci.lo > 0 ? "worse than V" + n : "no difference resolved" + n)
               << ".\n";
        }
    }
    const std::string s = os.str();
    if (s.empty()) return "";
    return "\n## Placement: where the synthesizer replaces self-attention\n\nThe groups above differ only in "
           "--placement: the variant in the encoder's self-attention only, the decoder's only, or both, with V in the "
           "other. Each against V (the same model at every placement), paired per seed.\n\n" + s;
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

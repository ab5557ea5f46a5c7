#include "runs/findings.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "base/table.h"
#include "runs/stats.h"

namespace synth {

namespace {

// What a finding claims of a against b, in the words of the paper.
enum class Claim {
    Better,       // a beats b (one-sided)
    ClearlyWorse, // a is worse than b (one-sided)
    Close,        // competitive / about as good / close: within the margin (TOST)
    HigherScore,  // a's score is higher: judged only on a score (one-sided)
};

struct Comparison {
    const char* finding;
    const char* a;
    const char* b;
    Claim claim;
    // Finding 3's mixtures, which carry more parameters than V: each is also judged against a V
    // of its own parameter count where the report has one (docs/statistics.md).
    bool capacity_controlled = false;
};

// The paper's findings 1-4 (docs/variants.md); 5 (speed) comes from interleaved benchmarks,
// never from training runs (docs/statistics.md); 6 (heads) compares groups, not variants.
const Comparison kComparisons[] = {
    {"1. Trainable R is competitive with V", "R", "V", Claim::Close},
    {"1. Fixed R is clearly worse than R", "Rfix", "R", Claim::ClearlyWorse},
    {"2. D is about as good as R", "D", "R", Claim::Close},
    {"3. R+V beats V", "R+V", "V", Claim::Better, true},
    {"3. D+V beats V", "D+V", "V", Claim::Better, true},
    {"4. FR stays close to R (with fewer parameters)", "FR", "R", Claim::Close},
    {"4. FD stays close to D (with fewer parameters)", "FD", "D", Claim::Close},
    // The baselines (docs/variants.md): C4 pre-training, log-perplexity R ~1.97 vs DynamicConv
    // 2.040; and the encoding-only claim against Linformer.
    {"Baselines. R improves on DynamicConv (C4 log-perplexity: -3.5%)", "R", "DynamicConv", Claim::Better},
    {"Baselines. FR outperforms Linformer on an encoding-only task", "FR", "Linformer", Claim::HigherScore},
    {"Baselines. FD outperforms Linformer on an encoding-only task", "FD", "Linformer", Claim::HigherScore},
};

// The test of a claim on a measure: "better" is a lower loss or a higher score.
ClaimTest test_of(Claim c, const Measure& m) {
    switch (c) {
        case Claim::Better: return m.higher_better ? ClaimTest::Above : ClaimTest::Below;
        case Claim::ClearlyWorse: return m.higher_better ? ClaimTest::Below : ClaimTest::Above;
        case Claim::Close: return ClaimTest::Equivalent;
        case Claim::HigherScore: return ClaimTest::Above;
    }
    return ClaimTest::Equivalent;
}

// One variant's runs, by seed.
std::map<int, const SeedRun*> by_seed(const std::vector<SeedRun>& runs, const std::string& variant) {
    std::map<int, const SeedRun*> m;
    for (const SeedRun& r : runs)
        if (r.variant == variant) m[r.seed] = &r;
    return m;
}

// The paired per-seed differences of a's `of` against b's, over the seeds both ran (and where
// both are numbers): in percent of b's, or in points (a - b) when `points` (scores). With
// `left_out`, only seeds whose two runs share their footing (protocol.h), counting the others.
std::vector<double> paired(const std::map<int, const SeedRun*>& a, const std::map<int, const SeedRun*>& b,
                           double SeedRun::*of, bool points = false, int* left_out = nullptr) {
    std::vector<double> d;
    for (const auto& [seed, ra] : a) {
        auto rb = b.find(seed);
        if (rb == b.end()) continue;
        const double x = ra->*of, y = rb->second->*of;
        if (std::isnan(x) || std::isnan(y)) continue;
        if (left_out && !same_footing(ra->footing, rb->second->footing)) {
            ++*left_out;
            continue;
        }
        d.push_back(points ? x - y : 100.0 * (x - y) / y);
    }
    return d;
}

// The pairs of a finding: the seeds both a and b ran on the same footing (protocol.h), split
// into those of each variant's first sweep (the planned seeds: the sweep of its smallest seed)
// and those a later sweep added; with the seeds left out for their footing.
struct Pairs {
    std::vector<int> planned, added;
    std::vector<std::string> left_out;  // "seed S: footing A vs footing B"
};
Pairs pair_up(const std::map<int, const SeedRun*>& a, const std::map<int, const SeedRun*>& b, double SeedRun::*of) {
    Pairs p;
    if (a.empty() || b.empty()) return p;
    const std::string first_a = a.begin()->second->sweep, first_b = b.begin()->second->sweep;
    for (const auto& [seed, ra] : a) {
        auto rb = b.find(seed);
        if (rb == b.end() || std::isnan(ra->*of) || std::isnan(rb->second->*of)) continue;
        std::string why;
        if (!same_footing(ra->footing, rb->second->footing, &why)) {
            p.left_out.push_back("seed " + std::to_string(seed) + ": " + why);
            continue;
        }
        (ra->sweep == first_a && rb->second->sweep == first_b ? p.planned : p.added).push_back(seed);
    }
    return p;
}

// a's `of` minus b's at `seeds`.
std::vector<double> diffs(const std::map<int, const SeedRun*>& a, const std::map<int, const SeedRun*>& b,
                          const std::vector<int>& seeds, double SeedRun::*of) {
    std::vector<double> d;
    for (int s : seeds) d.push_back(a.at(s)->*of - b.at(s)->*of);
    return d;
}

std::string seed_list(const std::vector<int>& seeds) {
    std::string s;
    for (int x : seeds) s += (s.empty() ? "" : ", ") + std::to_string(x);
    return s;
}

// "+0.0123 nats (95% CI +0.0040 to +0.0206)".
std::string diff_with_ci(const Interval& ci, const std::string& unit, int dec) {
    const auto sg = [dec](double v) { return (v >= 0 ? "+" : "") + fmt(v, dec); };
    std::string s = sg(ci.mean) + " " + unit;
    if (ci.valid()) s += " (95% CI " + sg(ci.lo) + " to " + sg(ci.hi) + ")";
    return s;
}

// The notes after a finding: the pairs left out for their footing, the seeds added later.
std::string pair_notes(const Pairs& p, const std::map<int, const SeedRun*>& a, const std::map<int, const SeedRun*>& b,
                       double SeedRun::*of, const std::string& unit, int dec) {
    std::string s;
    if (!p.left_out.empty()) {
        std::string list;
        for (const std::string& x : p.left_out) list += (list.empty() ? "" : "; ") + x;
        s += " " + std::to_string(p.left_out.size()) + (p.left_out.size() == 1 ? " pair" : " pairs") +
             " left out, whose two runs differ in footing (" + list + ").";
    }
    if (!p.added.empty()) {
        std::vector<int> all = p.planned;
        all.insert(all.end(), p.added.begin(), p.added.end());
        s += " **Seeds grew**: seed" + std::string(p.added.size() == 1 ? " " : "s ") + seed_list(p.added) +
             " came from a later sweep than the planned ones and stay outside the verdict; with them, n = " +
             std::to_string(all.size()) + ", " + diff_with_ci(ci95(diffs(a, b, all, of)), unit, dec) + ".";
    }
    return s;
}

// The seeds a verdict rests on: the planned pairs, or, with none planned (every pair added
// later), the added ones; with the notes to print after it.
struct VerdictSeeds {
    std::vector<int> seeds;
    Pairs notes;
};
VerdictSeeds verdict_seeds(const Pairs& p) {
    if (p.planned.empty()) return {p.added, Pairs{p.added, {}, p.left_out}};
    return {p.planned, p};
}

// What a group's verdicts are judged on: the score where its runs carry one, else the loss.
struct Judged {
    Measure m;
    double SeedRun::*of;
    bool has_score;
};
Judged judged_on(const std::vector<SeedRun>& runs, const std::string& score_name) {
    const bool has_score = !score_name.empty() &&
                           std::any_of(runs.begin(), runs.end(), [](const SeedRun& r) { return !std::isnan(r.score); });
    return {measure_for(has_score ? score_name : ""), has_score ? &SeedRun::score : &SeedRun::loss, has_score};
}

// One finding's line: "- **title**: vs, paired <measure> difference <interval> (its test): <verdict>.",
// with the loss beside a score and the notes on the pairs; a finding with no pair gets a line only
// where pairs were left out for their footing. c.a names a's side; c.claim is what is tested.
std::string finding_line(const std::string& title, const std::string& vs, const Comparison& c,
                         const std::map<int, const SeedRun*>& a, const std::map<int, const SeedRun*>& b,
                         const Judged& j, FindingsFamily& fam) {
    const Measure& m = j.m;
    const Pairs p = pair_up(a, b, j.of);
    fam.left_out(p.left_out.size());
    std::ostringstream os;
    if (p.planned.empty() && p.added.empty()) {
        if (!p.left_out.empty())
            os << "- **" << title << "**: " << vs << ": not compared." << pair_notes(p, a, b, j.of, m.unit, m.decimals)
               << "\n";
        return os.str();
    }
    const VerdictSeeds k = verdict_seeds(p);
    const std::vector<double> d = diffs(a, b, k.seeds, j.of);
    const Interval ci = ci95(d);
    const ClaimTest t = test_of(c.claim, m);
    os << "- **" << title << "**: " << vs << ", paired " << m.name << " difference "
       << diff_with_ci(ci, m.unit, m.decimals);
    if (t == ClaimTest::Equivalent) os << ", margin +-" << fmt(m.margin, 2) << " " << m.unit << " (TOST)";
    else os << " (one-sided)";
    const double pa = a.begin()->second->params, pb = b.begin()->second->params;
    if (c.claim == Claim::Close && pa != pb) os << ", " << fmt(pa, 0) << " vs " << fmt(pb, 0) << " parameters";
    // Which side of the margin a refuted equivalence lies on (a better, or a worse).
    const bool a_better = m.higher_better ? ci.mean > 0 : ci.mean < 0;
    const std::string side = t == ClaimTest::Equivalent
                                 ? std::string(", ") + c.a + (a_better ? " better" : " worse") + " by more than the margin"
                                 : "";
    os << ": " << fam.add(claim_p(t, d, m.margin), ci.n, side) << ".";
    // The loss beside a score finding, for the reader (the verdict stays the score's).
    if (j.has_score)
        os << " Paired validation loss difference: "
           << diff_with_ci(ci95(diffs(a, b, k.seeds, &SeedRun::loss)), "nats", 4) << ".";
    os << pair_notes(k.notes, a, b, j.of, m.unit, m.decimals) << "\n";
    return os.str();
}

// The V a finding-3 mixture is judged against with its capacity controlled: its runs, renamed
// at_width(V, its d-ff), and the finding's title and "a vs b" text.
struct MatchedV {
    std::string name, title, vs;
    std::vector<SeedRun> runs;
};
// For comparison c, where it is capacity controlled and its mixture has more parameters than
// this group's V: of the V's at other widths, the one whose parameter count is nearest the
// mixture's, if within kMatchedParams of it. False when there is none.
bool matched_v(const std::vector<SeedRun>& runs, const Comparison& c, const OtherWidths& widths, MatchedV* out) {
    const auto a = by_seed(runs, c.a), v = by_seed(runs, c.b);
    if (!c.capacity_controlled || a.empty() || v.empty()) return false;
    const double pa = a.begin()->second->params;
    if (!(pa > v.begin()->second->params)) return false;
    double best_params = NAN;
    std::string best_d_ff;
    for (const auto& [d_ff, others] : widths.runs_at) {
        const auto wide = by_seed(others, c.b);
        if (wide.empty()) continue;
        const double params = wide.begin()->second->params, gap = std::fabs(params - pa);
        if (gap <= kMatchedParams * pa && (std::isnan(best_params) || gap < std::fabs(best_params - pa)))
            best_params = params, best_d_ff = d_ff;
    }
    if (std::isnan(best_params)) return false;
    out->name = at_width(c.b, best_d_ff);
    out->runs.clear();
    for (const SeedRun& r : widths.runs_at.at(best_d_ff))
        if (r.variant == c.b) out->runs.push_back(r), out->runs.back().variant = out->name;
    const std::string finding = c.finding;
    out->title = finding.substr(0, finding.find(' ')) + " " + c.a + " beats a parameter-matched " + c.b;
    out->vs = std::string(c.a) + " (d-ff=" + widths.d_ff + ", " + with_commas(pa) + " parameters) vs " + c.b +
              " (d-ff=" + best_d_ff + ", " + with_commas(best_params) + " parameters)";
    return true;
}

// Whether `variant`'s mean validation loss (into `mean`) is within 1% of a constant answer's:
// then it has not learned the task, and a tie with it ranks nothing.
bool at_chance(const std::vector<SeedRun>& runs, const std::string& variant, double chance_loss, double* mean) {
    std::vector<double> loss;
    for (const SeedRun& r : runs)
        if (r.variant == variant) loss.push_back(r.loss);
    if (!std::isfinite(chance_loss) || loss.empty()) return false;
    *mean = mean_of(loss);
    return *mean >= 0.99 * chance_loss;
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

// " (N pairs left out: ...)" for a descriptive line, "" for none.
std::string left_out_note(int n) {
    return n == 0 ? "" : " (" + std::to_string(n) + (n == 1 ? " pair" : " pairs") + " left out: their two runs differ in footing)";
}

// Which side of 0 the whole interval of a paired difference lies on: `below` or `above`, else
// "no difference resolved", with the number of seeds.
std::string direction(const Interval& ci, const std::string& below, const std::string& above) {
    if (!ci.valid()) return "inconclusive (1 seed: no interval)";
    const std::string n = " at " + std::to_string(ci.n) + " seeds";
    return (ci.hi < 0 ? below : ci.lo > 0 ? above : "no difference resolved") + n;
}

}  // namespace

std::string at_width(const std::string& variant, const std::string& d_ff) { return variant + " (d-ff=" + d_ff + ")"; }

std::vector<JudgedPair> judged_pairs(const std::vector<SeedRun>& runs, const std::string& score_name,
                                     double chance_loss, const OtherWidths& widths) {
    double v_mean = NAN;
    if (at_chance(runs, "V", chance_loss, &v_mean)) return {};
    const Judged j = judged_on(runs, score_name);
    std::vector<JudgedPair> out;
    const auto judge = [&](const std::string& finding, const std::string& a, const std::vector<SeedRun>& b_runs,
                           const std::string& b) {
        const Pairs p = pair_up(by_seed(runs, a), by_seed(b_runs, b), j.of);
        const std::vector<int>& seeds = p.planned.empty() ? p.added : p.planned;  // as seeded_findings
        if (!seeds.empty()) out.push_back({finding, a, b, seeds, j.has_score ? NAN : j.m.margin});
    };
    for (const Comparison& c : kComparisons) {
        if (c.claim == Claim::HigherScore && !j.has_score) continue;
        judge(c.finding, c.a, runs, c.b);
        MatchedV mv;
        if (matched_v(runs, c, widths, &mv)) judge(mv.title, c.a, mv.runs, mv.name);
    }
    return out;
}

std::string seeded_findings(const std::vector<SeedRun>& runs, const std::string& score_name, double chance_loss,
                            FindingsFamily* family, const OtherWidths& widths) {
    FindingsFamily own("this group's findings");
    FindingsFamily& fam = family ? *family : own;
    const Judged j = judged_on(runs, score_name);
    const Measure& m = j.m;
    double v_mean = 0;
    const bool chance = at_chance(runs, "V", chance_loss, &v_mean);
    std::ostringstream os;
    if (chance)
        os << "- **No findings**: V's mean validation loss " << fmt(v_mean, 4)
           << " is within 1% of a constant answer's " << fmt(chance_loss, 4)
           << ", so V has not learned the task and a tie between the variants ranks nothing.\n";
    for (const Comparison& c : kComparisons) {
        if (chance) break;
        if (c.claim == Claim::HigherScore && !j.has_score) continue;
        const auto a = by_seed(runs, c.a);
        os << finding_line(c.finding, std::string(c.a) + " vs " + c.b, c, a, by_seed(runs, c.b), j, fam);
        MatchedV mv;
        if (matched_v(runs, c, widths, &mv)) os << finding_line(mv.title, mv.vs, c, a, by_seed(mv.runs, mv.name), j, fam);
    }
    std::string s = os.str();
    if (s.empty()) return "";
    s = "\nFindings (the paper's 1-4 and its claims against the baselines, docs/variants.md), by the protocol of "
        "docs/statistics.md: the paired per-seed difference a - b of the " + m.name + " in " + m.unit +
        " with its 95% t interval; \"competitive\", \"about as good\" and \"close\" by two one-sided tests (TOST) against a "
        "margin of +-" + fmt(m.margin, 2) + " " + m.unit + ", \"beats\" and \"worse\" by a one-sided t test; "
        "each verdict at 5% after Holm's correction across the family of every verdict in this file. Only seeds whose "
        "two runs share CPU, BLAS kernel, precision, GEMM provider and threads are paired. Speed (finding 5) is not "
        "judged from these runs, whose cores other jobs shared: it comes from the interleaved benchmarks on one "
        "machine (results/bench-mixers.md, bench-ptb-mixers.md, bench-mt-mixers.md, bench-listops-mixers.md).\n\n" + s;
    return family ? s : own.resolve(s);
}

std::string baseline_findings(const std::vector<SeedRun>& runs, const std::vector<std::string>& variants,
                              const std::string& baseline, FindingsFamily& family, const std::string& score_name,
                              double chance_loss) {
    std::vector<std::string> others;
    for (const std::string& v : variants)
        if (v != baseline) others.push_back(v);
    if (others.empty()) return "";
    const auto b = by_seed(runs, baseline);
    if (b.empty())
        return "\n" + (std::find(variants.begin(), variants.end(), baseline) == variants.end()
                           ? "No " + baseline + " in this group"
                           : baseline + " has no run with a finite validation loss in this group") +
               ": none of its variants is compared against the baseline (--baseline=" + baseline + ").\n";
    const Judged j = judged_on(runs, score_name);
    const Measure& m = j.m;
    const std::string head =
        "\nEvery variant against " + baseline + " (--baseline), by the protocol of docs/statistics.md: the paired "
        "per-seed difference variant - " + baseline + " of the " + m.name + " in " + m.unit + " with its 95% t "
        "interval; \"beats\" by a one-sided t test (refuted: worse), \"about as good\" by two one-sided tests (TOST) "
        "against a margin of +-" + fmt(m.margin, 2) + " " + m.unit + "; each verdict at 5% after Holm's correction "
        "across its own family (" + family.name() + "), apart from the paper's findings, whose verdicts it leaves as "
        "they are.\n\n";
    double mean = 0;
    if (at_chance(runs, baseline, chance_loss, &mean))
        return head + "- **No comparisons**: " + baseline + "'s mean validation loss " + fmt(mean, 4) +
               " is within 1% of a constant answer's " + fmt(chance_loss, 4) + ", so " + baseline +
               " has not learned the task and a tie with it ranks nothing.\n";
    std::ostringstream os;
    for (const std::string& v : others) {
        const auto a = by_seed(runs, v);
        const Pairs p = pair_up(a, b, j.of);
        family.left_out(p.left_out.size());
        const VerdictSeeds k = verdict_seeds(p);
        os << "- **" << v << " vs " << baseline << "**: ";
        if (a.empty()) {
            os << "not compared (no run of " << v << " with a finite validation loss).\n";
            continue;
        }
        if (k.seeds.empty()) {
            os << "not compared (no common seed" << (p.left_out.empty() ? ")." : " on the same footing).")
               << pair_notes(p, a, b, j.of, m.unit, m.decimals) << "\n";
            continue;
        }
        const std::vector<double> d = diffs(a, b, k.seeds, j.of);
        const Interval ci = ci95(d);
        const bool a_better = m.higher_better ? ci.mean > 0 : ci.mean < 0;
        os << "paired " << m.name << " difference " << diff_with_ci(ci, m.unit, m.decimals) << "; " << v << " beats "
           << baseline << " (one-sided): "
           << family.add(claim_p(m.higher_better ? ClaimTest::Above : ClaimTest::Below, d, 0), ci.n, ", " + v + " worse")
           << "; about as good (TOST, margin +-" << fmt(m.margin, 2) << " " << m.unit << "): "
           << family.add(claim_p(ClaimTest::Equivalent, d, m.margin), ci.n,
                         ", " + v + (a_better ? " better" : " worse") + " by more than the margin")
           << ".";
        if (j.has_score)
            os << " Paired validation loss difference: "
               << diff_with_ci(ci95(diffs(a, b, k.seeds, &SeedRun::loss)), "nats", 4) << ".";
        os << pair_notes(k.notes, a, b, j.of, m.unit, m.decimals) << "\n";
    }
    return head + os.str();
}

std::string heads_findings(const std::map<int, std::vector<SeedRun>>& by_heads, const std::string& score_name,
                           FindingsFamily* family) {
    if (!by_heads.count(1) || by_heads.size() < 2) return "";
    FindingsFamily own("this section's findings");
    FindingsFamily& fam = family ? *family : own;
    bool has_score = false;
    for (const auto& [h, runs] : by_heads)
        for (const SeedRun& r : runs) has_score = has_score || (!score_name.empty() && !std::isnan(r.score));
    const Measure m = measure_for(has_score ? score_name : "");
    double SeedRun::*of = has_score ? &SeedRun::score : &SeedRun::loss;
    std::ostringstream os;
    for (const std::string& v : variants_of(by_heads.at(1))) {
        const auto one = by_seed(by_heads.at(1), v);
        std::string parts, notes;
        for (const auto& [h, runs] : by_heads) {
            if (h == 1) continue;
            const auto many = by_seed(runs, v);
            const Pairs p = pair_up(many, one, of);
            fam.left_out(p.left_out.size());
            const std::vector<int>& seeds = p.planned.empty() ? p.added : p.planned;
            if (seeds.empty()) {
                if (!p.left_out.empty()) notes += " H=" + std::to_string(h) + ": not compared." + pair_notes(p, many, one, of, m.unit, m.decimals);
                continue;
            }
            const Pairs kept = p.planned.empty() ? Pairs{p.added, {}, p.left_out} : p;
            const std::vector<double> d = diffs(many, one, seeds, of);
            const Interval ci = ci95(d);
            parts += std::string(parts.empty() ? "" : "; ") + "H=" + std::to_string(h) + " " +
                     diff_with_ci(ci, m.unit, m.decimals) + ": " +
                     fam.add(claim_p(m.higher_better ? ClaimTest::Above : ClaimTest::Below, d, 0), ci.n);
            const std::string n = pair_notes(kept, many, one, of, m.unit, m.decimals);
            if (!n.empty()) notes += " H=" + std::to_string(h) + ":" + n;
        }
        if (parts.empty() && notes.empty()) continue;
        os << "- **6. " << v << " needs several heads**: paired " << m.name << " difference against one head (one-sided, "
           << "H beats one head): " << (parts.empty() ? "none compared" : parts) << "." << notes << "\n";
    }
    std::string s = os.str();
    if (s.empty()) return "";
    s = "\n## Finding 6: the number of heads\n\nThe groups above differ only in the number of heads H (d_model fixed, so "
        "each head is d_model / H wide). Each H > 1 against H = 1, paired per seed on the " + m.name + " (" + m.unit +
        "), is a one-sided test that H beats one head, in the same Holm family as the findings above "
        "(docs/statistics.md); a variant needs several heads where some H > 1 is confirmed. The paper claims it for "
        "the synthesizers; V is the contrast.\n\n" + s;
    return family ? s : own.resolve(s);
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
            int left = 0;
            const std::vector<double> d = paired(by_seed(runs, name), v, &SeedRun::loss, false, &left);
            const std::string label = std::string(where) == "both" ? "encoder and decoder" : std::string("the ") + where + " only";
            if (d.empty()) {
                if (left) os << "- **" << name << " in " << label << "** vs V: not compared" << left_out_note(left) << ".\n";
                continue;
            }
            const Interval ci = ci95(d);
            os << "- **" << name << " in " << label << "** vs V: paired validation loss difference " << signed_with_ci(ci, "%")
               << ": " << direction(ci, "better than V", "worse than V") << left_out_note(left) << ".\n";
        }
    }
    // Which side the variant costs more on: decoder-only against encoder-only, paired per seed.
    if (by_placement.count("encoder") && by_placement.count("decoder")) {
        for (const std::string& name : variants_of(by_placement.at("decoder"), "V")) {
            int left = 0;
            const std::vector<double> d = paired(by_seed(by_placement.at("decoder"), name),
                                                 by_seed(by_placement.at("encoder"), name), &SeedRun::loss, false, &left);
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            os << "- **" << name << " in the decoder only** vs in the encoder only: paired validation loss difference "
               << signed_with_ci(ci, "%") << ": " << direction(ci, "the encoder costs more", "the decoder costs more")
               << left_out_note(left) << ".\n";
        }
    }
    const std::string s = os.str();
    if (s.empty()) return "";
    return "\n## Placement: where the synthesizer replaces self-attention\n\nThe groups above differ only in "
           "--placement: the variant in the encoder's self-attention only, the decoder's only, or both, with V in the "
           "other. Each against V (the same model at every placement), paired per seed; then, where the variant ran "
           "on each side alone, the decoder-only model against the encoder-only one. Descriptive (not among the "
           "paper's findings, outside the Holm family): the 95% interval of the paired relative difference, only for "
           "seeds whose two runs share their footing.\n\n" + s;
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
           "of fp32. A check of the precision, not one of the paper's findings (outside the Holm family); the two runs "
           "of a pair differ in precision by design.\n\n" + s;
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
            int left = 0;
            const std::vector<double> d = paired(by_seed(runs, v), by_seed(ref->second, v), &SeedRun::loss, false, &left);
            if (d.empty()) continue;
            const Interval ci = ci95(d);
            os << "- **" << v << "** at " << setting(value) << " vs at " << setting(ref->first)
               << ": paired validation loss difference " << signed_with_ci(ci, "%") << ": "
               << direction(ci, "lower", "higher") << left_out_note(left) << ".\n";
        }
    }
    const std::string s = os.str();
    if (s.empty()) return "";
    return "\n## The effect of " + flag + "\n\nThe groups above differ only in " + flag + ". Each variant's runs "
           "at each other setting against its runs at " + setting(ref->first) + ", paired per seed. Descriptive (not among the paper's findings, outside the Holm "
           "family): the 95% interval of the paired relative difference, only for seeds whose two runs share their "
           "footing.\n\n" + s;
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

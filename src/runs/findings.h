// findings.h: the paper's comparisons: its default sweep, its findings 1-6 (docs/variants.md,
// "Findings") judged from seeded runs, and translation's placement ablation. Outside
// src/attention/, this is the one place that names variants: the comparisons are the paper's,
// as data; no code path depends on a name.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "runs/protocol.h"

namespace synth {

// The paper's nine variants, the default sweep of every runner.
inline const char* paper_sweep() { return "V,R,Rfix,D,FR,FD,R+V,D+V,R+D"; }

// One run's numbers, as the findings read them.
struct SeedRun {
    std::string variant;
    int seed;
    double loss;   // validation loss (lower is better)
    double speed;  // training tokens/s
    double params;
    // A higher-is-better validation score in points (a classifier's accuracy x 100,
    // translation's BLEU); NaN for a runner without one.
    double score = NAN;
    // What it ran on (protocol.h): a finding pairs only seeds whose two runs share it.
    Footing footing = {};
    // The sweep that ran it (its run directory's parent): seeds of a variant from a later sweep
    // than its first are "added" and stay outside the verdict (docs/statistics.md).
    std::string sweep = "";
};

// The capacity control of finding 3 (docs/statistics.md, "A parameter-matched V"): the runs of
// the groups of the report that differ from this one only in --d-ff, whose wider (or narrower)
// feed-forward changes V's parameter count and nothing of its mixer.
struct OtherWidths {
    std::string d_ff;                                      // this group's --d-ff
    std::map<std::string, std::vector<SeedRun>> runs_at;   // another group's --d-ff -> its runs
};
// How the findings and the budget name a variant of another group by its --d-ff: "V (d-ff=609)".
std::string at_width(const std::string& variant, const std::string& d_ff);
// A V is parameter-matched to a mixture when its parameter count is within this fraction of the
// mixture's.
constexpr double kMatchedParams = 0.01;

// The Markdown findings of one group of runs (same config but the variant and seed): each of
// the paper's comparisons (its findings 1-4 and its claims against the baselines) whose two
// variants ran with common seeds, judged by the protocol of docs/statistics.md: on the task's
// measure (protocol.h: measure_for; the score `score_name` where the runs carry one, else the
// validation loss in nats), the paired per-seed difference a - b with its 95% t interval;
// "competitive / about as good / close" by TOST against the measure's margin, "beats / worse"
// by a one-sided t test; the verdict Holm-adjusted across `family` (a table's findings; without
// one, across this group's alone). Seeds whose two runs differ in footing are left out, and
// said so; seeds a later sweep added are shown beside the verdict, outside it. Speed (finding 5)
// is not judged from training runs. `chance_loss` is the validation loss of a constant answer
// where the task has one (a balanced binary classifier: ln 2), NaN otherwise: while V's mean
// validation loss is within 1% of it no model has learned the task, so the findings are
// withheld, with a line that says so. After each of finding 3's "M beats V" for a mixture M with
// more parameters than V, where `widths` holds a V whose parameter count is within 1% of M's (the
// nearest, if several), "M beats a parameter-matched V": M against that V, judged the same way,
// one more verdict in the family.
std::string seeded_findings(const std::vector<SeedRun>& runs, const std::string& score_name = "",
                            double chance_loss = NAN, FindingsFamily* family = nullptr,
                            const OtherWidths& widths = {});

// A comparison seeded_findings judges, as the budget follows it (runs/budget.h): the finding,
// its two variants, the seeds of its verdict (same seed, same footing, the planned sweep's: the
// pairing rules of seeded_findings), and the margin in nats where the verdict is on the
// validation loss (NaN where it is on a score).
struct JudgedPair {
    std::string finding, a, b;
    std::vector<int> seeds;
    double loss_margin = NAN;
};
// The pairs seeded_findings(runs, score_name, chance_loss, widths) judges, in its order: none
// while V is at a constant answer's loss. A parameter-matched V is named by at_width.
std::vector<JudgedPair> judged_pairs(const std::vector<SeedRun>& runs, const std::string& score_name = "",
                                     double chance_loss = NAN, const OtherWidths& widths = {});

// Every variant of one group against `baseline` (the report's --baseline, V by default): for
// each other variant of `variants` (the group's, in its table's order; a line each, also for
// one with no finite loss or no seed in common), the paired per-seed difference variant -
// baseline on the task's measure (as seeded_findings) with its 95% t interval, and two verdicts
// by the protocol of docs/statistics.md: "beats the baseline" by a one-sided t test (refuted:
// worse) and "about as good" by TOST against the measure's margin. The verdicts go into
// `family` (one per table, apart from the paper's findings: adding these leaves the findings'
// adjusted p values as they were). Pairs are those of seeded_findings: the same footing only,
// later-added seeds beside the verdict. A group without `baseline` gets one line saying so;
// while the baseline's mean validation loss is within 1% of `chance_loss`, a line withholds
// the verdicts. Empty when the group has no other variant.
std::string baseline_findings(const std::vector<SeedRun>& runs, const std::vector<std::string>& variants,
                              const std::string& baseline, FindingsFamily& family, const std::string& score_name = "",
                              double chance_loss = NAN);

// The paper's finding 6, "synthesizers need several heads", from groups of runs that differ
// only in the number of heads (`by_heads`: H -> the group's runs): for each variant that ran
// with one head and with more, the paired per-seed difference (on the measure of `score_name`,
// as seeded_findings) of every H > 1 against H = 1, with its 95% interval, each a one-sided
// test "H beats one head" in `family` (Holm). The finding holds for a variant where some H > 1
// is confirmed. Empty without H = 1 or without another H.
std::string heads_findings(const std::map<int, std::vector<SeedRun>>& by_heads, const std::string& score_name = "",
                           FindingsFamily* family = nullptr);

// Translation's placement ablation, from groups of runs that differ only in --placement
// (`by_placement`: both | encoder | decoder -> the group's runs): every variant at every
// placement against V (placement=both: V is the same model at any placement), as the paired
// per-seed validation loss difference with its 95% interval; and each variant in the decoder
// only against itself in the encoder only, the same way. Empty without V.
std::string placement_findings(const std::map<std::string, std::vector<SeedRun>>& by_placement);

// The bf16 quality check (docs/precision.md), from groups of runs that differ only in
// --precision (`by_precision`: fp32 | bf16 -> the group's runs): every variant's bf16 runs
// against its fp32 runs of the same seeds, as the paired per-seed validation loss difference.
// The bar is 1%: met when the difference (its whole 95% interval, given 2 seeds or more) lies
// within +-1%. Empty without both precisions.
std::string precision_findings(const std::map<std::string, std::vector<SeedRun>>& by_precision);

// Any other one-flag ablation (--weight-decay, --r-init, ...), from groups of runs that differ
// only in `flag` (`by_value`: its value, "" for a group at the flag's default -> the group's
// runs): each variant's runs at every other value against its runs at the reference value, as
// the paired per-seed validation loss difference with its 95% interval, read as lower, higher
// or no difference resolved. The reference is the group at the default, else the largest group.
// Empty with fewer than two groups or no variant in two of them.
std::string flag_findings(const std::string& flag, const std::map<std::string, std::vector<SeedRun>>& by_value);

// Where the vanilla Transformer lands against published numbers for the same data set
// (docs/references.md), from the mean of V's runs; empty when there is none.
std::string lm_reference_note(const std::string& data, const std::vector<SeedRun>& runs, double v_test_loss);

}  // namespace synth

// findings.h: the paper's comparisons: its default sweep, its findings 1-6 (docs/variants.md,
// "Findings") judged from seeded runs, and translation's placement ablation. Outside
// src/attention/, this is the one place that names variants: the comparisons are the paper's,
// as data; no code path depends on a name.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

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
    // The machine it ran on (run_report.cpp: machine_of): speeds pair only within one.
    std::string machine = "";
};

// The Markdown findings of one group of runs (same config but the variant and seed): each of
// the paper's comparisons (its findings 1-5, and its claims against the baselines) whose two
// variants ran with common seeds, as the mean paired
// per-seed difference with its 95% t interval and a verdict (confirmed / refuted /
// inconclusive at n seeds). Where the runs carry scores, named `score_name` (e.g. "validation
// BLEU"), each loss finding also gives the paired score difference in points, and the claims
// against Linformer are judged on it. A speed claim pairs only seeds whose two runs ran on the
// same machine, and says how many it left out. `chance_loss` is the validation loss of a
// constant answer where the task has one (a balanced binary classifier: ln 2), NaN otherwise:
// while V's mean validation loss is within 1% of it no model has learned the task, so the loss
// and score findings are withheld (a tie at chance would read as "competitive"), with a line
// that says so; the speed findings stand.
std::string seeded_findings(const std::vector<SeedRun>& runs, const std::string& score_name = "",
                            double chance_loss = NAN);

// The paper's finding 6, "synthesizers need several heads", from groups of runs that differ
// only in the number of heads (`by_heads`: H -> the group's runs): for each variant that ran
// with one head and with more, the paired per-seed loss difference of every H > 1 against
// H = 1, with its 95% interval. Confirmed for a variant when some H > 1 is better than one head
// over its whole interval, refuted when every H > 1 is worse over its whole interval.
// Empty without H = 1 or without another H.
std::string heads_findings(const std::map<int, std::vector<SeedRun>>& by_heads);

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

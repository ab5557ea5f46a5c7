// findings.h: the paper's comparisons: its default sweep, and its findings 1-5
// (docs/variants.md, "Findings") judged from seeded runs. Outside src/attention/, this is the
// one place that names variants: the comparisons are the paper's, as data; no code path
// depends on a name.
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
    double accuracy = NAN;  // validation accuracy in [0, 1] of a classifier; NaN for the others
};

// The Markdown findings of one group of runs (same config but the variant and seed): each of
// the paper's comparisons (its findings 1-5, and its claims against the baselines) whose two
// variants ran with common seeds, as the mean paired
// per-seed difference with its 95% t interval and a verdict (confirmed / refuted /
// inconclusive at n seeds).
std::string seeded_findings(const std::vector<SeedRun>& runs);

// Where the vanilla Transformer lands against published numbers for the same data set
// (docs/references.md), from the mean of V's runs; empty when there is none.
std::string lm_reference_note(const std::string& data, const std::vector<SeedRun>& runs, double v_test_loss);

}  // namespace synth

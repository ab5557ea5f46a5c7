// run_report.h: the report step: finished run directories -> STEM.csv, STEM-budget.csv and STEM.md.
//
// The CSV has one row per run (its result.json). The Markdown groups the runs by their
// config (every model and training flag but the seed; groups are labelled by the flags that
// differ between them), shows mean +- std (n) of each metric per variant, and judges the
// paper's findings from the paired per-seed differences (findings.h), each followed across the
// training budget (budget.h), whose every step goes to STEM-budget.csv. The files are written
// to temporaries first and renamed, the Markdown last.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "runs/run_dir.h"

namespace synth {

struct ReportSpec {
    std::string title;                 // the Markdown's first line, without '# '
    std::string intro;                 // paragraphs after it (what the runs are, the units)
    std::vector<std::string> metrics;  // result.json keys summarised per variant, in order
    std::string loss_key = "val_loss", speed_key;  // what the findings compare
    // A higher-is-better validation score (findings.h: SeedRun::score): its result.json key,
    // its name in the findings, and the factor to points (accuracy in [0, 1]: 100).
    std::string score_key, score_name;
    double score_scale = 1;
    bool force = false;  // merge runs of the same flags even if their data differs
    // Group keys that never apply to these runs (lm's --vocab sizes only --bench's random
    // tokens), left out of the "Settings of every run" line.
    std::set<std::string> inapplicable;
    // The validation loss of a constant answer for a group's runs, NaN where the task has none
    // (findings.h: seeded_findings withholds the loss findings while V is at it).
    std::function<double(const std::vector<const RunRecord*>&)> chance_loss;
    // Text after a group's findings (e.g. published reference numbers), from its runs.
    std::function<std::string(const std::vector<const RunRecord*>&)> group_note;
};

void write_report(const std::vector<RunRecord>& runs, const ReportSpec& spec, const std::string& stem);

}  // namespace synth

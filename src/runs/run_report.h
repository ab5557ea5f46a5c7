// run_report.h: the report step: finished run directories -> STEM.csv, STEM-budget.csv and STEM.md.
//
// The CSV has one row per run (its result.json). The Markdown groups the runs by their
// config (every model and training flag but the seed; groups are labelled by the flags that
// differ between them), shows mean +- std (n) of each metric per variant, judges the paper's
// findings from the paired per-seed differences (findings.h; finding 3 also against a V of the
// mixture's parameter count from a group that differs only in --d-ff), each followed across the training
// budget (budget.h), whose every step goes to STEM-budget.csv, compares every variant with the
// baseline (--baseline) in a Holm family of their own, and says where a group trained for less
// than its preset's documented converged budget. The files are written to temporaries first and
// renamed, the Markdown last.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runs/run_dir.h"

namespace synth {

// A preset's documented converged budget (docs/presets.md): `value` of the result.json key
// `key` ("steps", or mt's "epochs"), and the page that documents it; `key` "" for none.
struct ConvergedBudget {
    std::string key;
    double value = 0;
    std::string doc;
};

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
    // Group keys that do not apply under a group's other flags (mt's --epochs when --steps is
    // set), left out of the settings line and the group labels like `inapplicable`.
    std::function<std::set<std::string>(const std::map<std::string, std::string>&)> inapplicable_in;
    // The variant every other is compared with in each group (findings.h: baseline_findings);
    // with `baseline_given` (the user named it), a name no run has is an error.
    std::string baseline = "V";
    bool baseline_given = false;
    // The converged budget of a run's preset, none where its preset documents none.
    std::function<ConvergedBudget(const RunRecord&)> converged;
    // The validation loss of a constant answer for a group's runs, NaN where the task has none
    // (findings.h: seeded_findings withholds the loss findings while V is at it).
    std::function<double(const std::vector<const RunRecord*>&)> chance_loss;
    // Text after a group's findings (e.g. published reference numbers), from its runs.
    std::function<std::string(const std::vector<const RunRecord*>&)> group_note;
};

void write_report(const std::vector<RunRecord>& runs, const ReportSpec& spec, const std::string& stem);

}  // namespace synth

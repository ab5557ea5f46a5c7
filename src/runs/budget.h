// budget.h: the findings followed across the training budget (docs/statistics.md, "Across the
// budget"). A verdict is drawn at the final step; whether it would have been the same had
// training stopped earlier, and whether the models had stopped improving, is read from the
// validation loss of each run's periodic evaluations (metrics.jsonl, runs/run_dir.h):
//
//   - for each pair of variants a finding judges (findings.h: judged_pairs), the paired per-seed
//     gap a - b at every evaluation step its seeds share, with its 95% t interval; a line per pair
//     at 25%, 50%, 75% and 100% of the budget, marked stable, moved or unresolved;
//   - for each variant, the change of its seed-mean loss over the last 20% of the budget: still
//     falling, flat or rising.
//
// The report (run_report.h) prints both per group and writes every step to STEM-budget.csv,
// which scripts/plot_budget.py draws.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/table.h"
#include "runs/findings.h"
#include "runs/run_dir.h"
#include "runs/stats.h"

namespace synth {

// A run's validation loss at its periodic evaluations: step -> loss.
using ValCurve = std::map<int64_t, double>;
// The curve in `dir`/metrics.jsonl: empty without one. Steps whose validation loss is not a
// number (a diverged run writes null) are left out, and so is a last line without its newline:
// metrics.jsonl is written whole, so such a line is one a copy or a crash cut short. A malformed
// complete line is an error naming the file and line.
ValCurve read_val_curve(const std::string& dir);

// A group's curves: variant -> seed -> curve.
using GroupCurves = std::map<std::string, std::map<int, ValCurve>>;
GroupCurves read_group_curves(const std::vector<const RunRecord*>& members);

// ---- the paired gap across the budget ----

// The gap a - b at one evaluation step: in nats and in percent of b's loss, each over the seeds.
struct BudgetPoint {
    int64_t step;
    double fraction;  // of the budget: step / the last step the pair's runs share
    Interval nats, percent;
};
struct PairBudget {
    std::string a, b;
    double margin;  // the finding's margin in nats (NaN where its verdict is on a score)
    std::vector<BudgetPoint> points;  // by step
};
struct GroupBudget {
    std::string group;  // its label in the report: the flags that differ between groups
    std::vector<PairBudget> pairs;
};

// Each judged pair's gap at every evaluation step that the curves of all its verdict's seeds
// share (a seed whose run has no curve drops out); a pair with no such step is left out.
GroupBudget follow_budget(const std::string& group, const GroupCurves& curves, const std::vector<JudgedPair>& pairs);

// The evaluation nearest a fraction of the budget (the earlier of two as near).
const BudgetPoint& nearest_point(const PairBudget& p, double fraction);
// "stable": the 95% interval at 100% of the budget excludes 0, and those at 50% and 75% exclude
// it on the same side; "moved": it excludes 0 at 100% but not so at 50% or 75%; "unresolved":
// the interval at 100% contains 0 (or has one seed), or no evaluation before the last is
// nearest 50% or 75%, so the curve cannot tell.
std::string stability(const PairBudget& p);

// The "Across the budget" paragraph and table of the last group of `groups` (a table's groups
// so far): one row per pair; "" without pairs. The first section of a table says what the
// marks mean, the later ones refer to it.
std::string budget_section(const std::vector<GroupBudget>& groups);
// Every point of every group: group, a, b, step, fraction_of_budget, n, mean_gap, lo, hi (nats),
// mean_gap_pct, lo_pct, hi_pct, margin (nats; empty where there is none).
Table budget_csv(const std::vector<GroupBudget>& groups);

// ---- converged, shown ----

// A fall of the seed-mean validation loss over the last 20% of the budget larger than this
// (percent) reads "still falling" (docs/statistics.md says why 0.5%).
constexpr double kStillFallingPercent = 0.5;

// One variant's seed-mean validation loss from the last evaluation at or before 80% of the budget
// to the last, over the steps all its seeds' curves share.
struct Trend {
    std::string variant;
    int64_t from = 0, to = 0;
    double change_percent = 0;  // (loss at `to` - loss at `from`) / loss at `from`, x 100
};
// The variants of `order` that have a curve with two evaluations or more.
std::vector<Trend> last_fifth_trends(const GroupCurves& curves, const std::vector<std::string>& order);
// "still falling 1.58%", "flat (-0.21%)" or "rising 0.73%".
std::string trend_words(const Trend& t);
// The line under a group's table: each variant's trend; "" when no variant has one.
std::string convergence_note(const GroupCurves& curves, const std::vector<std::string>& order);

}  // namespace synth

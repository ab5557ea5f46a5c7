// protocol.h: the statistical protocol of the findings (docs/statistics.md), as code: one-sided
// t tests and two one-sided tests (TOST) for equivalence within a margin, Holm's step-down
// correction across the findings of a table, the margin and unit of each task's measure, and
// the seeds a group gained after its planned sweep. The footing two paired runs must share is
// footing.h.
#pragma once

#include <string>
#include <vector>

#include "base/json.h"
#include "runs/footing.h"
#include "runs/run_dir.h"
#include "runs/stats.h"

namespace synth {

// ---- tests ----

// The CDF of Student's t distribution with df >= 1 degrees of freedom.
double t_cdf(double t, int df);
// One-sided p values of a one-sample t test on the paired differences d (n >= 2): H1 "the mean
// of d is below `bound`" (p_below) or "above `bound`" (p_above). 1 for n < 2 (no test).
double p_below(const std::vector<double>& d, double bound);
double p_above(const std::vector<double>& d, double bound);
// TOST (Schuirmann): H1 "-margin < mean < margin"; p = the larger of the two one-sided p's.
double p_equivalent(const std::vector<double>& d, double margin);
// Holm's step-down adjusted p values, in the order given: with p sorted ascending p_(1..m),
// adj_(i) = max over j <= i of min(1, (m - j + 1) p_(j)). Rejecting adj <= alpha controls the
// family-wise error rate at alpha.
std::vector<double> holm(const std::vector<double>& p);

// What a finding claims of the paired difference d = a - b (in the measure's unit).
enum class ClaimTest {
    Below,       // d < 0 (a's loss lower; one-sided)
    Above,       // d > 0 (one-sided)
    Equivalent,  // |d| < margin (TOST)
};
// The p value that would confirm the claim, and the one that would refute it: for Below, the
// one-sided test of d > 0 (Above alike, mirrored); for Equivalent, d outside the margin on
// either side (two one-sided tests, Bonferroni: 2 x the smaller p).
struct ClaimP {
    double confirm = 1, refute = 1;
};
ClaimP claim_p(ClaimTest c, const std::vector<double>& d, double margin);

// ---- the measure a task's findings are judged on ----

struct Measure {
    std::string name;   // "validation loss", "validation BLEU", "validation accuracy"
    std::string unit;   // "nats", "BLEU", "points"
    bool higher_better = false;
    double margin = 0;  // of "about as good / competitive / close", in `unit`
    int decimals = 3;
};
// Tasks with a score (translation's BLEU, a classifier's accuracy in points: `score_name`) are
// judged on it, the paper's metric; language models on the loss in nats per token (or per
// character). Margins (docs/statistics.md): 0.02 nats, 0.25 BLEU, 0.5 accuracy points.
Measure measure_for(const std::string& score_name);

// The sweep a run directory belongs to: the name of its parent directory ("" for none).
std::string sweep_of_dir(const std::string& dir);

// The table's lines on its runs' footing: how many ran from a modified tree (a git_commit ending
// -dirty) and how many do not record their CPU; "" when every run is clean and known.
std::string provenance_note(const std::vector<RunRecord>& runs);

// ---- honest splits ----

// The metrics a table may show: without the test_* columns when the runs' test split is their
// validation split (character corpora: Tiny Shakespeare and any --data=FILE, whose results carry
// val_bpc; src/text/corpus.cpp sets test = valid), with `note` saying so; else `metrics`.
std::vector<std::string> honest_metrics(const std::vector<RunRecord>& runs, const std::vector<std::string>& metrics,
                                        std::string* note);

// ---- a table's family of findings ----

// Findings are written with a placeholder for their verdict, registered here; once every
// finding of the table is in, resolve() applies Holm's correction to the family (separately
// to the confirmations and to the refutations) and writes each verdict in place. A placeholder
// names its family, so one text can hold the verdicts of several (each family of its own name),
// and each family's resolve() writes only its own.
class FindingsFamily {
public:
    explicit FindingsFamily(std::string name) : name_(std::move(name)) {}
    // A placeholder for the verdict of a claim with these p values on n seeds; `if_refuted` is
    // added after "refuted" (which side of the margin, say).
    std::string add(const ClaimP& p, int n, const std::string& if_refuted = "");
    // Counts pairs a finding left out for their footing, for the summary.
    void left_out(size_t pairs) { left_out_ += pairs; }
    // `text` with every placeholder of this family replaced by "confirmed | refuted |
    // inconclusive at n seeds (Holm-adjusted p = P, family of m)"; with `summary`, a closing
    // section "The protocol" of summary() (nothing when the family is empty).
    std::string resolve(const std::string& text, bool summary = false) const;
    // One paragraph that names the family and counts its verdicts and the pairs left out; ""
    // when the family is empty.
    std::string summary() const;
    size_t size() const { return tests_.size(); }
    const std::string& name() const { return name_; }

private:
    std::string mark() const { return "@@verdict[" + name_ + "]:"; }
    struct Pending {
        ClaimP p;
        int n;
        std::string if_refuted;
    };
    std::string name_;
    std::vector<Pending> tests_;
    size_t left_out_ = 0;
};

}  // namespace synth

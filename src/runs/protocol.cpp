#include "runs/protocol.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "base/table.h"

namespace synth {

namespace {

// The continued fraction of the regularized incomplete beta function (modified Lentz).
double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (std::fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 300; ++m) {
        const double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2));
        d = 1 + aa * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2));
        d = 1 + aa * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1 / d;
        const double del = d * c;
        h *= del;
        if (std::fabs(del - 1) < 1e-15) break;
    }
    return h;
}

// I_x(a, b).
double incomplete_beta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
    return 1 - front * beta_cf(b, a, 1 - x) / b;
}

// (mean - bound) / (s / sqrt(n)); +-inf when s = 0 and the mean differs from the bound.
double t_statistic(const std::vector<double>& d, double bound) {
    const double m = mean_of(d), se = stddev_of(d) / std::sqrt((double)d.size());
    if (se == 0) return m > bound ? INFINITY : m < bound ? -INFINITY : 0;
    return (m - bound) / se;
}

}  // namespace

double t_cdf(double t, int df) {
    SYNTH_CHECK(df >= 1, "t distribution with ", df, " degrees of freedom");
    if (std::isinf(t)) return t > 0 ? 1 : 0;
    const double tail = 0.5 * incomplete_beta(0.5 * df, 0.5, df / (df + t * t));  // P(T > |t|)
    return t > 0 ? 1 - tail : tail;
}

double p_below(const std::vector<double>& d, double bound) {
    if (d.size() < 2) return 1;
    return t_cdf(t_statistic(d, bound), (int)d.size() - 1);
}

double p_above(const std::vector<double>& d, double bound) {
    if (d.size() < 2) return 1;
    return t_cdf(-t_statistic(d, bound), (int)d.size() - 1);
}

double p_equivalent(const std::vector<double>& d, double margin) {
    return std::max(p_above(d, -margin), p_below(d, margin));
}

std::vector<double> holm(const std::vector<double>& p) {
    const size_t m = p.size();
    std::vector<size_t> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&p](size_t a, size_t b) { return p[a] < p[b]; });
    std::vector<double> adj(m);
    double running = 0;
    for (size_t i = 0; i < m; ++i) {
        running = std::max(running, std::min(1.0, (double)(m - i) * p[order[i]]));
        adj[order[i]] = running;
    }
    return adj;
}

ClaimP claim_p(ClaimTest c, const std::vector<double>& d, double margin) {
    switch (c) {
        case ClaimTest::Below: return {p_below(d, 0), p_above(d, 0)};
        case ClaimTest::Above: return {p_above(d, 0), p_below(d, 0)};
        case ClaimTest::Equivalent:
            return {p_equivalent(d, margin), std::min(1.0, 2 * std::min(p_above(d, margin), p_below(d, -margin)))};
    }
    return {};
}

Measure measure_for(const std::string& score_name) {
    if (score_name.find("BLEU") != std::string::npos) return {score_name, "BLEU", true, 0.25, 2};
    if (score_name.find("accuracy") != std::string::npos) return {score_name, "points", true, 0.5, 2};
    return {"validation loss", "nats", false, 0.02, 4};
}

std::string sweep_of_dir(const std::string& dir) {
    std::string d = dir;
    while (!d.empty() && d.back() == '/') d.pop_back();
    const size_t slash = d.rfind('/');
    if (slash == std::string::npos) return "";
    d.resize(slash);
    const size_t parent = d.rfind('/');
    return parent == std::string::npos ? d : d.substr(parent + 1);
}

std::string provenance_note(const std::vector<RunRecord>& runs) {
    size_t dirty = 0, unknown = 0;
    for (const RunRecord& r : runs) {
        const Footing f = footing_of(r.config);
        dirty += f.dirty();
        unknown += !f.cpu_known();
    }
    std::string s;
    if (dirty)
        s += "\n**Built from a modified tree**: " + std::to_string(dirty) + " of " + std::to_string(runs.size()) +
             " runs ran from a commit with uncommitted changes (git_commit ends -dirty in the CSV's runs' config.json), "
             "so their code is not exactly the commit's.\n";
    if (unknown)
        s += "\n" + std::to_string(unknown) + " of " + std::to_string(runs.size()) +
             " runs predate config.json's cpu field: their CPU is unknown, and they pair only with runs whose CPU is "
             "unknown too and whose OpenBLAS kernel, precision, GEMM provider and threads agree (docs/statistics.md).\n";
    return s;
}

std::vector<std::string> honest_metrics(const std::vector<RunRecord>& runs, const std::vector<std::string>& metrics,
                                        std::string* note) {
    const bool char_level = !runs.empty() && std::all_of(runs.begin(), runs.end(), [](const RunRecord& r) {
        return r.result.has("val_bpc");
    });
    if (!char_level) return metrics;
    std::vector<std::string> kept;
    for (const std::string& m : metrics)
        if (m.compare(0, 5, "test_") != 0) kept.push_back(m);
    if (note && kept.size() != metrics.size())
        *note = "\nA character corpus has no held-out test split here (its test split is the validation split: "
                "src/text/corpus.cpp), so the table shows no test columns; the CSV keeps them, equal to the "
                "validation ones.\n";
    return kept;
}

std::string FindingsFamily::add(const ClaimP& p, int n, const std::string& if_refuted) {
    tests_.push_back({p, n, if_refuted});
    return mark() + std::to_string(tests_.size() - 1) + "@@";
}

namespace {

enum class Verdict { Confirmed, Refuted, Inconclusive };

// Verdict i of a family whose Holm-adjusted confirmations are hc and refutations hr.
Verdict verdict_of(int n, size_t i, const std::vector<double>& hc, const std::vector<double>& hr) {
    if (n < 2) return Verdict::Inconclusive;
    if (hc[i] <= 0.05) return Verdict::Confirmed;
    if (hr[i] <= 0.05) return Verdict::Refuted;
    return Verdict::Inconclusive;
}

}  // namespace

std::string FindingsFamily::resolve(const std::string& text, bool summary) const {
    std::vector<double> confirm, refute;
    for (const Pending& t : tests_) confirm.push_back(t.p.confirm), refute.push_back(t.p.refute);
    const std::vector<double> hc = holm(confirm), hr = holm(refute);
    const std::string m = std::to_string(tests_.size()), own = mark();
    std::string out;
    size_t at = 0;
    for (;;) {
        const size_t k = text.find(own, at);
        if (k == std::string::npos) break;
        const size_t num = k + own.size(), end = text.find("@@", num);
        SYNTH_CHECK(end != std::string::npos, "findings: a broken verdict placeholder");
        const size_t i = std::stoul(text.substr(num, end - num));
        SYNTH_CHECK(i < tests_.size(), "findings: a verdict placeholder of another table");
        const Pending& t = tests_[i];
        const std::string n = " at " + std::to_string(t.n) + (t.n == 1 ? " seed" : " seeds");
        const auto pf = [](double p) { return p < 0.001 ? std::string("< 0.001") : "= " + fmt(p, 3); };
        std::string v;
        switch (verdict_of(t.n, i, hc, hr)) {
            case Verdict::Confirmed: v = "confirmed" + n + " (Holm-adjusted p " + pf(hc[i]) + ", family of " + m + ")"; break;
            case Verdict::Refuted:
                v = "refuted" + n + t.if_refuted + " (Holm-adjusted p of the opposite " + pf(hr[i]) + ", family of " + m + ")";
                break;
            case Verdict::Inconclusive:
                v = t.n < 2 ? "inconclusive (1 seed: no test)"
                            : "inconclusive" + n + " (Holm-adjusted p " + pf(hc[i]) + " for, " + pf(hr[i]) +
                                  " against, family of " + m + ")";
        }
        out += text.substr(at, k - at) + v;
        at = end + 2;
    }
    out += text.substr(at);
    if (summary && !tests_.empty()) out += "\n## The protocol\n\n" + this->summary() + " The rules: docs/statistics.md.\n";
    return out;
}

std::string FindingsFamily::summary() const {
    if (tests_.empty()) return "";
    std::vector<double> confirm, refute;
    for (const Pending& t : tests_) confirm.push_back(t.p.confirm), refute.push_back(t.p.refute);
    const std::vector<double> hc = holm(confirm), hr = holm(refute);
    size_t confirmed = 0, refuted = 0;
    for (size_t i = 0; i < tests_.size(); ++i) {
        const Verdict v = verdict_of(tests_[i].n, i, hc, hr);
        confirmed += v == Verdict::Confirmed;
        refuted += v == Verdict::Refuted;
    }
    return "The family of Holm's correction: " + name_ + ", " + std::to_string(tests_.size()) + " tests (" +
           std::to_string(confirmed) + " confirmed, " + std::to_string(refuted) + " refuted, " +
           std::to_string(tests_.size() - confirmed - refuted) + " inconclusive). " +
           (left_out_ == 0 ? std::string("No pair was left out for its footing")
                           : std::to_string(left_out_) + (left_out_ == 1 ? " pair" : " pairs") +
                                 " left out of the findings because their two runs differ in footing (CPU, "
                                 "OpenBLAS kernel, precision, GEMM provider or threads)") +
           ".";
}

}  // namespace synth

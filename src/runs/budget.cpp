#include "runs/budget.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "base/io.h"
#include "base/json.h"

namespace fs = std::filesystem;

namespace synth {

namespace {

// The steps every curve of `curves` has, in order.
std::vector<int64_t> shared_steps(const std::vector<const ValCurve*>& curves) {
    std::vector<int64_t> steps;
    if (curves.empty()) return steps;
    for (const auto& [step, _] : *curves[0])
        if (std::all_of(curves.begin(), curves.end(), [step = step](const ValCurve* c) { return c->count(step) > 0; }))
            steps.push_back(step);
    return steps;
}

// A non-empty curve of (variant, seed), or null.
const ValCurve* curve_of(const GroupCurves& curves, const std::string& variant, int seed) {
    auto v = curves.find(variant);
    if (v == curves.end()) return nullptr;
    auto s = v->second.find(seed);
    return s == v->second.end() || s->second.empty() ? nullptr : &s->second;
}

// Which side of 0 a 95% interval lies on: +1, -1, or 0 when it contains 0 (or is no interval).
int side_of(const Interval& ci) {
    if (!ci.valid()) return 0;
    return ci.lo > 0 ? 1 : ci.hi < 0 ? -1 : 0;
}

std::string signed_fmt(double v, int dec) { return (v >= 0 ? "+" : "") + fmt(v, dec); }

// "+0.0123 [+0.0040, +0.0206], +0.80%": the gap in nats with its interval, and in percent.
std::string gap_cell(const BudgetPoint& p) {
    std::string s = signed_fmt(p.nats.mean, 4);
    if (p.nats.valid()) s += " [" + signed_fmt(p.nats.lo, 4) + ", " + signed_fmt(p.nats.hi, 4) + "]";
    return s + ", " + signed_fmt(p.percent.mean, 2) + "%";
}

const double kQuarters[] = {0.25, 0.5, 0.75, 1.0};

}  // namespace

ValCurve read_val_curve(const std::string& dir) {
    ValCurve curve;
    const std::string path = dir + "/metrics.jsonl";
    if (!fs::is_regular_file(path)) return curve;
    const std::string text = read_file(path);
    std::vector<std::string> lines = split_lines(text);
    if (!text.empty() && text.back() != '\n') lines.pop_back();  // cut short: not a whole row
    for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].empty()) continue;
        const JsonObject o = parse_json_object(lines[i], path + ":" + std::to_string(i + 1));
        if (o.has("val_loss") && o.at("val_loss") != "null") curve[(int64_t)o.num("step")] = o.num("val_loss");
    }
    return curve;
}

GroupCurves read_group_curves(const std::vector<const RunRecord*>& members) {
    GroupCurves curves;
    for (const RunRecord* r : members)
        curves[r->result.at("variant")][(int)r->result.num("seed")] = read_val_curve(r->dir);
    return curves;
}

GroupBudget follow_budget(const std::string& group, const GroupCurves& curves, const std::vector<JudgedPair>& pairs) {
    GroupBudget g{group, {}};
    for (const JudgedPair& jp : pairs) {
        std::vector<std::pair<const ValCurve*, const ValCurve*>> seeds;  // (a's, b's) per seed
        std::vector<const ValCurve*> all;
        for (int s : jp.seeds) {
            const ValCurve *a = curve_of(curves, jp.a, s), *b = curve_of(curves, jp.b, s);
            if (!a || !b) continue;
            seeds.push_back({a, b});
            all.push_back(a), all.push_back(b);
        }
        const std::vector<int64_t> steps = shared_steps(all);
        if (steps.empty()) continue;
        PairBudget pb{jp.a, jp.b, jp.loss_margin, {}};
        for (int64_t t : steps) {
            std::vector<double> nats, percent;
            for (const auto& [a, b] : seeds) {
                nats.push_back(a->at(t) - b->at(t));
                percent.push_back(100.0 * (a->at(t) - b->at(t)) / b->at(t));
            }
            pb.points.push_back({t, (double)t / (double)steps.back(), ci95(nats), ci95(percent)});
        }
        g.pairs.push_back(pb);
    }
    return g;
}

const BudgetPoint& nearest_point(const PairBudget& p, double fraction) {
    // Distances in steps, which are exact, so that two evaluations as near are a tie.
    const double target = fraction * (double)p.points.back().step;
    const BudgetPoint* best = &p.points.front();
    for (const BudgetPoint& x : p.points)
        if (std::fabs((double)x.step - target) < std::fabs((double)best->step - target)) best = &x;
    return *best;
}

std::string stability(const PairBudget& p) {
    const BudgetPoint &half = nearest_point(p, 0.5), &three = nearest_point(p, 0.75), &end = p.points.back();
    const int at_end = side_of(end.nats);
    if (at_end == 0 || half.step == end.step || three.step == end.step) return "unresolved";
    return side_of(half.nats) == at_end && side_of(three.nats) == at_end ? "stable" : "moved";
}

std::string budget_section(const std::vector<GroupBudget>& groups) {
    const GroupBudget& g = groups.back();
    if (g.pairs.empty()) return "";
    // The columns' steps: those of the pair with the longest budget (the runs' own, unless one
    // was cut short); a pair read at other steps names them in its cells.
    const auto shorter = [](const PairBudget& x, const PairBudget& y) { return x.points.back().step < y.points.back().step; };
    const PairBudget& ref = *std::max_element(g.pairs.begin(), g.pairs.end(), shorter);
    Table t;
    t.columns = {"a - b"};
    for (double q : kQuarters)
        t.columns.push_back(fmt(100 * q, 0) + "% (step " + std::to_string(nearest_point(ref, q).step) + ")");
    t.columns.push_back("across the budget");
    bool on_score = false;
    for (const PairBudget& p : g.pairs) {
        on_score = on_score || std::isnan(p.margin);
        std::vector<std::string> row = {p.a + " - " + p.b};
        for (double q : kQuarters) {
            const BudgetPoint& x = nearest_point(p, q);
            const bool other_step = x.step != nearest_point(ref, q).step;
            row.push_back(gap_cell(x) + (other_step ? " (step " + std::to_string(x.step) + ")" : ""));
        }
        row.push_back(stability(p));
        t.rows.push_back(row);
    }
    const bool explained = std::any_of(groups.begin(), groups.end() - 1, [](const GroupBudget& x) { return !x.pairs.empty(); });
    if (explained) return "\n**Across the budget** (as above):\n\n" + t.to_markdown();
    std::string s =
        "\n**Across the budget.** Each finding's paired per-seed gap a - b of the validation loss, over the seeds of "
        "its verdict, at the evaluations nearest 25%, 50%, 75% and 100% of the budget: nats [95% t interval], % of b. "
        "*stable*: the interval excludes 0 at 100% and on the same side at 50% and 75%; *moved*: it excludes 0 at 100% "
        "but not on that side at 50% or 75%; *unresolved*: it contains 0 at 100%.";
    if (on_score) s += " (The verdicts are on the score, which the runs compute only at the end.)";
    return s + " Every evaluation: the -budget.csv beside this file (docs/statistics.md, section 7).\n\n" + t.to_markdown();
}

Table budget_csv(const std::vector<GroupBudget>& groups) {
    Table t;
    t.columns = {"group", "a", "b", "step", "fraction_of_budget", "n", "mean_gap", "lo", "hi",
                 "mean_gap_pct", "lo_pct", "hi_pct", "margin"};
    for (const GroupBudget& g : groups)
        for (const PairBudget& p : g.pairs)
            for (const BudgetPoint& x : p.points) {
                const bool ci = x.nats.valid();
                t.rows.push_back({g.group, p.a, p.b, std::to_string(x.step), fmt(x.fraction, 4), std::to_string(x.nats.n),
                                  fmt(x.nats.mean, 6), ci ? fmt(x.nats.lo, 6) : "", ci ? fmt(x.nats.hi, 6) : "",
                                  fmt(x.percent.mean, 4), ci ? fmt(x.percent.lo, 4) : "", ci ? fmt(x.percent.hi, 4) : "",
                                  std::isnan(p.margin) ? "" : fmt(p.margin, 4)});
            }
    return t;
}

std::vector<Trend> last_fifth_trends(const GroupCurves& curves, const std::vector<std::string>& order) {
    std::vector<Trend> trends;
    for (const std::string& v : order) {
        auto it = curves.find(v);
        if (it == curves.end()) continue;
        std::vector<const ValCurve*> seeds;
        for (const auto& [_, c] : it->second)
            if (!c.empty()) seeds.push_back(&c);
        const std::vector<int64_t> steps = shared_steps(seeds);
        if (steps.size() < 2) continue;
        const auto mean_at = [&seeds](int64_t step) {
            double s = 0;
            for (const ValCurve* c : seeds) s += c->at(step);
            return s / (double)seeds.size();
        };
        // The last evaluation at or before 80% of the budget, so that "flat" is shown over the
        // last fifth at least (the first evaluation when there is none so early).
        int64_t from = steps.front();
        for (int64_t s : steps)
            if (5 * s <= 4 * steps.back()) from = s;
        const double a = mean_at(from), b = mean_at(steps.back());
        trends.push_back({v, from, steps.back(), 100.0 * (b - a) / a});
    }
    return trends;
}

std::string trend_words(const Trend& t) {
    if (t.change_percent < -kStillFallingPercent) return "still falling " + fmt(-t.change_percent, 2) + "%";
    if (t.change_percent > kStillFallingPercent) return "rising " + fmt(t.change_percent, 2) + "%";
    return "flat (" + signed_fmt(t.change_percent, 2) + "%)";
}

std::string convergence_note(const GroupCurves& curves, const std::vector<std::string>& order) {
    const std::vector<Trend> trends = last_fifth_trends(curves, order);
    if (trends.empty()) return "";
    const Trend& first = trends.front();
    const auto span = [](const Trend& t) {
        return "steps " + std::to_string(t.from) + " to " + std::to_string(t.to) + ", the last " +
               fmt(100.0 * (double)(t.to - t.from) / (double)t.to, 0) + "% of the budget";
    };
    std::string list;
    for (const Trend& t : trends) {
        const bool own_span = t.from != first.from || t.to != first.to;
        list += (list.empty() ? "" : ", ") + t.variant + " " + trend_words(t) + (own_span ? " (" + span(t) + ")" : "");
    }
    return "\n**Converged?** The seed-mean validation loss over " + span(first) + " (a fall of more than " +
           fmt(kStillFallingPercent, 1) + "% is still falling, docs/statistics.md): " + list + ".\n";
}

}  // namespace synth

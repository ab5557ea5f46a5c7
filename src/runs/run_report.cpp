#include "runs/run_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "attention/variant.h"
#include "base/error.h"
#include "runs/budget.h"
#include "runs/findings.h"
#include "runs/protocol.h"
#include "base/io.h"
#include "base/table.h"
#include "runs/stats.h"
#include "train/trainer.h"

namespace synth {

namespace {

// "k=v\n" lines -> map.
std::map<std::string, std::string> group_map(const std::string& group) {
    std::map<std::string, std::string> m;
    std::istringstream is(group);
    for (std::string line; std::getline(is, line);) {
        const size_t eq = line.find('=');
        if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return m;
}

// Variants in the paper's order, then any others by name.
int variant_rank(const std::string& v) {
    const std::vector<std::string> paper = split_list(paper_sweep());
    auto it = std::find(paper.begin(), paper.end(), v);
    return it == paper.end() ? (int)paper.size() : (int)(it - paper.begin());
}

// The machine a run ran on, to tell speeds apart: its CPU (config.json's "cpu"; runs from before
// config.json named it have only the rest), its OpenBLAS kernel (one CPU can run several:
// OPENBLAS_CORETYPE), and a bf16 run's GEMM provider, which the CPU chooses (docs/precision.md).
std::string machine_of(const RunRecord& r) {
    const JsonObject& c = r.config;
    std::string m = c.has("cpu") ? c.at("cpu") + ", " : "";
    m += c.has("blas_kernel") ? "OpenBLAS kernel " + c.at("blas_kernel") : "OpenBLAS kernel unknown";
    if (c.has("gemm_provider") && c.at("gemm_provider") != "openblas-fp32") m += ", " + c.at("gemm_provider");
    return m;
}

// The CSV: one row per run, the union of the result keys in first-seen order.
Table runs_csv(const std::vector<RunRecord>& runs) {
    Table csv;
    csv.columns = {"run", "machine"};
    for (const RunRecord& r : runs)
        for (const auto& [k, v] : r.result.fields)
            if (k != "group" && std::find(csv.columns.begin(), csv.columns.end(), k) == csv.columns.end())
                csv.columns.push_back(k);
    for (const RunRecord& r : runs) {
        std::vector<std::string> row = {r.dir, machine_of(r)};
        for (size_t c = 2; c < csv.columns.size(); ++c) row.push_back(r.result.has(csv.columns[c]) ? r.result.at(csv.columns[c]) : "");
        csv.rows.push_back(row);
    }
    return csv;
}

using Groups = std::map<std::string, std::vector<const RunRecord*>>;  // by the runs' group (run_group)

// The runs by group. The same flags on other data (a file of the same name with other contents)
// is not the same experiment: refuse to average it in (unless forced). Nor may one (variant,
// seed) count twice.
Groups group_runs(const std::vector<RunRecord>& runs, bool force) {
    Groups groups;
    for (const RunRecord& r : runs) groups[r.result.at("group")].push_back(&r);
    for (const auto& [g, members] : groups) {
        std::set<std::pair<std::string, std::string>> seen;
        for (const RunRecord* r : members)
            SYNTH_CHECK(seen.insert({r->result.at("variant"), r->result.at("seed")}).second, "report: ", r->dir,
                        " repeats variant ", r->result.at("variant"), " seed ", r->result.at("seed"),
                        " of the same config: give each run once");
    }
    for (const auto& [g, members] : groups)
        for (const RunRecord* r : members)
            SYNTH_CHECK(force || r->result.at("data_hash") == members[0]->result.at("data_hash"), "report: ", r->dir,
                        " and ", members[0]->dir, " have the same flags but were trained on different data (data_hash ",
                        r->result.at("data_hash"), " vs ", members[0]->result.at("data_hash"),
                        "); report them separately, or --force to merge them anyway");
    return groups;
}

// The flags whose values differ between groups: they label the groups.
std::set<std::string> differing_flags(const Groups& groups) {
    std::set<std::string> differing;
    for (const auto& [g, _] : groups)
        for (const auto& [k, v] : group_map(g))
            for (const auto& [h, __] : groups)
                if (group_map(h)[k] != v) differing.insert(k);
    return differing;
}

// Whether a group key names a setting that applies to the group's runs (ReportSpec:
// inapplicable, inapplicable_in).
bool applies(const std::string& key, const std::map<std::string, std::string>& flags, const ReportSpec& spec) {
    return !spec.inapplicable.count(key) && !(spec.inapplicable_in && spec.inapplicable_in(flags).count(key));
}

// The registered settings the runs' variants read (each part of a mixture), at their registered
// defaults: a group leaves out a setting at its default (run_group), though its runs ran with
// it. A variant this binary does not register adds none.
std::map<std::string, std::string> default_settings_of(const std::vector<RunRecord>& runs) {
    std::set<std::string> parts;
    for (const RunRecord& r : runs) {
        std::istringstream is(r.result.at("variant"));
        for (std::string p; std::getline(is, p, '+');) parts.insert(p);
    }
    std::map<std::string, std::string> m;
    for (const VariantInfo& v : variants())
        if (parts.count(v.name))
            for (const Setting& s : v.settings) m[s.name] = setting_text(s.value);
    return m;
}

// The Markdown's opening: title, intro, the settings every run shares, which metrics are honest
// (no test column that is the validation split), the runs' provenance, and the machines.
// Returns the metrics the tables show.
std::vector<std::string> write_header(std::ostringstream& md, const std::vector<RunRecord>& runs,
                                      const ReportSpec& spec, const Groups& groups,
                                      const std::set<std::string>& differing, bool many_machines, size_t machines) {
    md << "# " << spec.title << "\n\n" << spec.intro << "\n"
       << "Each row is the mean +- sample standard deviation over the seeds (n) of the runs with that variant. "
       << "Produced by the report step from " << runs.size() << " run directories (one row each in the CSV beside this "
       << "file).\n";
    std::map<std::string, std::string> shared = group_map(groups.begin()->first);
    for (const auto& [k, v] : default_settings_of(runs)) shared.insert({k, v});  // a group's own value wins
    std::string common;
    for (const auto& [k, v] : shared)
        if (!differing.count(k) && applies(k, shared, spec)) common += (common.empty() ? "" : ", ") + k + "=" + v;
    md << "\nSettings of every run: " << common << ".\n";
    std::string split_note;
    const std::vector<std::string> metrics = honest_metrics(runs, spec.metrics, &split_note);
    md << split_note << provenance_note(runs);
    if (many_machines)
        md << "\nThe runs ran on " << machines << " machines (the column \"machines\"), so their tokens/s "
           << "compare only within one, and the findings pair only seeds whose two runs shared one "
           << "(docs/statistics.md).\n";
    return metrics;
}

// One variant's row: n, seeds, mean +- std of each metric, and (from several machines) its machines.
std::vector<std::string> variant_row(const std::string& v, const std::vector<const RunRecord*>& runs,
                                     const std::vector<std::string>& metrics, bool many_machines) {
    std::vector<std::string> row = {v, std::to_string(runs.size()), ""};
    for (const RunRecord* r : runs) row[2] += (row[2].empty() ? "" : ",") + r->result.at("seed");
    for (const std::string& m : metrics) {
        std::vector<double> x;
        for (const RunRecord* r : runs)
            if (r->result.has(m) && r->result.at(m) != "null") x.push_back(r->result.num(m));
        // Counts and throughputs print whole; losses, BLEU and the like with 4 decimals.
        const int dec = std::all_of(x.begin(), x.end(), [](double v) { return v == std::floor(v); }) ? 0 : 4;
        row.push_back(x.empty()       ? ""
                      : x.size() == 1 ? fmt(x[0], dec)
                                      : fmt(mean_of(x), dec) + " +- " + fmt(stddev_of(x), dec));
    }
    if (many_machines) {
        std::set<std::string> ran_on;
        for (const RunRecord* r : runs) ran_on.insert(machine_of(*r));
        std::string list;
        for (const std::string& m : ran_on) list += (list.empty() ? "" : "; ") + m;
        row.push_back(list);
    }
    return row;
}

// A line under a group whose runs trained for less than their preset's documented converged
// budget: a gap at a short budget can close, open or turn as training goes on.
std::string budget_note(const std::vector<const RunRecord*>& members, const ReportSpec& spec) {
    if (!spec.converged) return "";
    for (const RunRecord* r : members) {
        const ConvergedBudget b = spec.converged(*r);
        if (b.key.empty() || !r->result.has(b.key) || r->result.at(b.key) == "null") continue;
        const double trained = r->result.num(b.key);
        if (trained >= 0.999 * b.value) return "";
        return "\n**Budget**: trained " + with_commas(trained) + " " + b.key + "; the preset's converged budget is " +
               with_commas(b.value) + " (" + b.doc + "): verdicts at this budget may not hold at convergence.\n";
    }
    return "";
}

// The two Holm families of a table (docs/statistics.md): the paper's findings, and every
// variant against the baseline.
struct Families {
    FindingsFamily paper, baseline;
};

using ByVariant = std::map<std::string, std::vector<const RunRecord*>>;

// A group's variants in the paper's order, with its runs of each into `by_variant`.
std::vector<std::string> variant_order(const std::vector<const RunRecord*>& members, ByVariant& by_variant) {
    for (const RunRecord* r : members) by_variant[r->result.at("variant")].push_back(r);
    std::vector<std::string> order;
    for (const auto& [v, _] : by_variant) order.push_back(v);
    std::stable_sort(order.begin(), order.end(),
                     [](const std::string& a, const std::string& b) { return variant_rank(a) < variant_rank(b); });
    return order;
}

// A group's runs as the findings see them, in the order of its table.
std::vector<SeedRun> seeded_runs(const std::vector<const RunRecord*>& members, const ReportSpec& spec) {
    ByVariant by_variant;
    const std::vector<std::string> order = variant_order(members, by_variant);
    const auto score_of = [&spec](const RunRecord* r) {  // in points; NaN without one
        const std::string& k = spec.score_key;
        return k.empty() || !r->result.has(k) || r->result.at(k) == "null" ? NAN : spec.score_scale * r->result.num(k);
    };
    std::vector<SeedRun> seeded;
    for (const std::string& v : order)
        for (const RunRecord* r : by_variant[v])
            if (r->result.at(spec.loss_key) != "null")  // a non-finite loss takes no part in a finding
                seeded.push_back({v, (int)r->result.num("seed"), r->result.num(spec.loss_key),
                                  spec.speed_key.empty() ? 0.0 : r->result.num(spec.speed_key),
                                  r->result.num("params"),
                                  score_of(r), footing_of(r->config), sweep_of_dir(r->dir)});
    return seeded;
}

// What a group's findings read of the groups that differ from it only in --d-ff: their runs
// (findings.h: OtherWidths), and the group's curves with theirs added under their names there
// (at_width), so that the budget follows a finding against a variant of another width.
struct Widths {
    OtherWidths runs;
    GroupCurves curves;
};
Widths other_widths(const std::string& group, const std::map<std::string, std::vector<SeedRun>>& seeded,
                    const std::map<std::string, GroupCurves>& curves) {
    Widths w{{}, curves.at(group)};
    std::map<std::string, std::string> mine = group_map(group);
    if (!mine.count("d-ff")) return w;
    w.runs.d_ff = mine.at("d-ff");
    mine.erase("d-ff");
    for (const auto& [g, runs] : seeded) {
        std::map<std::string, std::string> theirs = group_map(g);
        if (g == group || !theirs.count("d-ff")) continue;
        const std::string d_ff = theirs.at("d-ff");
        theirs.erase("d-ff");
        if (theirs != mine) continue;
        w.runs.runs_at[d_ff] = runs;
        for (const auto& [variant, by_seed] : curves.at(g)) w.curves[at_width(variant, d_ff)] = by_seed;
    }
    return w;
}

// A group's table (variants in the paper's order), whether each variant's loss still fell at
// the end of its `curves`, its findings (with `widths`, the groups that differ from it only in
// --d-ff) and its comparisons with the baseline (verdicts into `families`), and its budget note,
// written to md. `seeded` is its runs as the findings see them (seeded_runs).
void write_group(std::ostringstream& md, const std::vector<const RunRecord*>& members, const ReportSpec& spec,
                 const std::vector<std::string>& metrics, bool many_machines, Families& families,
                 const GroupCurves& curves, const std::vector<SeedRun>& seeded, const OtherWidths& widths) {
    ByVariant by_variant;
    const std::vector<std::string> order = variant_order(members, by_variant);
    Table t;
    t.columns = {"variant", "n", "seeds"};
    for (const std::string& m : metrics) t.columns.push_back(m);
    if (many_machines) t.columns.push_back("machines");
    for (const std::string& v : order) t.rows.push_back(variant_row(v, by_variant[v], metrics, many_machines));
    const double chance = spec.chance_loss ? spec.chance_loss(members) : NAN;
    md << "\n" << t.to_markdown() << convergence_note(curves, order)
       << seeded_findings(seeded, spec.score_name, chance, &families.paper, widths)
       << baseline_findings(seeded, order, spec.baseline, families.baseline, spec.score_name, chance)
       << budget_note(members, spec);
    if (spec.group_note) md << spec.group_note(members);
}

// The ablations: when the groups differ in one flag only, the findings across its values.
struct Ablations {
    std::map<int, std::vector<SeedRun>> by_heads;              // only in H: finding 6
    std::map<std::string, std::vector<SeedRun>> by_placement;  // only in mt's --placement
    std::map<std::string, std::vector<SeedRun>> by_precision;  // only in --precision
    std::map<std::string, std::vector<SeedRun>> by_value;      // only in one other flag
    std::string other_flag;

    explicit Ablations(const std::set<std::string>& differing)
        : other_flag(differing.size() == 1 && !differing.count("heads") && !differing.count("placement") &&
                             !differing.count("precision")
                         ? *differing.begin()
                         : "") {}
    void add(const std::set<std::string>& differing, const std::map<std::string, std::string>& flags,
             const std::vector<SeedRun>& seeded) {
        if (differing == std::set<std::string>{"heads"}) by_heads[std::stoi(flags.at("heads"))] = seeded;
        if (differing == std::set<std::string>{"placement"}) by_placement[flags.at("placement")] = seeded;
        if (differing == std::set<std::string>{"precision"})
            by_precision[flags.count("precision") ? flags.at("precision") : "fp32"] = seeded;
        if (!other_flag.empty()) by_value[flags.count(other_flag) ? flags.at(other_flag) : ""] = seeded;
    }
    void write(std::ostringstream& md, const std::string& score_name, FindingsFamily* family) const {
        md << heads_findings(by_heads, score_name, family) << placement_findings(by_placement) << precision_findings(by_precision);
        if (!other_flag.empty()) md << flag_findings("--" + other_flag, by_value);
    }
};

// A baseline the user named that no run has is an error naming the variants the runs have.
void check_baseline(const std::vector<RunRecord>& runs, const ReportSpec& spec) {
    std::set<std::string> present;
    for (const RunRecord& r : runs) present.insert(r.result.at("variant"));
    if (!spec.baseline_given || present.count(spec.baseline)) return;
    std::string list;
    for (const std::string& v : present) list += (list.empty() ? "" : ", ") + v;
    fail("--baseline=", spec.baseline, ": no run of the report has variant ", spec.baseline, " (variants present: ", list,
         ")");
}

}  // namespace

void write_report(const std::vector<RunRecord>& runs, const ReportSpec& spec, const std::string& stem) {
    check_baseline(runs, spec);
    const Groups groups = group_runs(runs, spec.force);
    const std::set<std::string> differing = differing_flags(groups);
    std::set<std::string> machines;
    for (const RunRecord& r : runs) machines.insert(machine_of(r));
    const bool many_machines = machines.size() > 1;

    std::ostringstream md;
    const std::vector<std::string> metrics = write_header(md, runs, spec, groups, differing, many_machines, machines.size());
    Families families{FindingsFamily("every verdict in this file"),
                      FindingsFamily("every variant against " + spec.baseline + " in this file")};
    Ablations ablations(differing);
    std::vector<GroupBudget> budget;
    // Every group's runs and curves first: a group's findings can read another's (other_widths).
    std::map<std::string, std::vector<SeedRun>> seeded;
    std::map<std::string, GroupCurves> curves;
    for (const auto& [g, members] : groups) seeded[g] = seeded_runs(members, spec), curves[g] = read_group_curves(members);
    for (const auto& [g, members] : groups) {
        // A group leaves out a variant setting at its registered default (run_group), so a
        // setting another group sets reads "at its default" here.
        std::string label;
        const std::map<std::string, std::string> flags = group_map(g);
        for (const std::string& k : differing)
            if (!spec.inapplicable_in || !spec.inapplicable_in(flags).count(k))
                label += (label.empty() ? "" : ", ") + (flags.count(k) ? k + "=" + flags.at(k) : k + " at its default");
        if (groups.size() > 1) md << "\n## " << label << "\n";
        const Widths widths = other_widths(g, seeded, curves);
        write_group(md, members, spec, metrics, many_machines, families, curves.at(g), seeded.at(g), widths.runs);
        ablations.add(differing, flags, seeded.at(g));
        const double chance = spec.chance_loss ? spec.chance_loss(members) : NAN;
        budget.push_back(
            follow_budget(label, widths.curves, judged_pairs(seeded.at(g), spec.score_name, chance, widths.runs)));
        md << budget_section(budget);
    }
    ablations.write(md, spec.score_name, &families.paper);
    std::string protocol;
    for (const FindingsFamily* f : {&families.paper, &families.baseline})
        if (f->size()) protocol += (protocol.empty() ? "" : "\n\n") + f->summary();
    if (!protocol.empty()) protocol = "\n## The protocol\n\n" + protocol + " The rules: docs/statistics.md.\n";
    write_file_atomic(stem + ".csv", runs_csv(runs).to_csv());
    write_file_atomic(stem + "-budget.csv", budget_csv(budget).to_csv());
    write_file_atomic(stem + ".md", families.baseline.resolve(families.paper.resolve(md.str())) + protocol);
}

}  // namespace synth

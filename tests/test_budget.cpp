// The findings followed across the budget (src/runs/budget.h): fake run directories whose
// validation curves are built so that each pair's gap is known at every step, read back by the
// report step: stable, moved and unresolved gaps, the still-falling and flat marks, the CSV, and a
// metrics.jsonl cut short.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/io.h"
#include "base/json.h"
#include "error_of.h"
#include "runs/budget.h"
#include "runs/run_report.h"
#include "subprocess.h"

using namespace synth;
using synth_test::error_of;
using synth_test::ScratchDir;

namespace {

// A curve: (step, seed) -> validation loss.
using CurveFn = std::function<double(int, int)>;

// A finished run in `root`/<variant>-seed<seed>: result.json's fields (what the report reads)
// and a metrics.jsonl with an evaluation every 100 steps up to 1,000, the loss `f(step, seed)`;
// `flags` ("k=v\n" lines) join its group's.
RunRecord fake_run(const std::string& root, const std::string& variant, int seed, const CurveFn& f,
                   const std::string& flags) {
    const std::string dir = root + "/" + variant + "-seed" + std::to_string(seed);
    std::filesystem::create_directories(dir);
    std::string metrics;
    for (int step = 1; step <= 1000; ++step) {
        JsonObject o;
        o.integer("step", step);
        o.number("train_loss", 3.0);
        if (step % 100 == 0) o.number("val_loss", f(step, seed));
        o.number("lr", 0.001);
        metrics += o.dump() + "\n";
    }
    write_file_atomic(dir + "/metrics.jsonl", metrics);
    JsonObject r;
    r.text("variant", variant);
    r.integer("seed", seed);
    r.integer("params", 10);
    r.number("val_loss", f(1000, seed), 4);
    r.text("data_hash", "0123456789abcdef");
    r.text("group", "d-model=16\nsteps=1000\n" + flags);
    return RunRecord{dir, r};
}

// V falls by 0.1 nats per 100 steps to the end (9% over the last 20%); D is flat.
double v_loss(int step, int seed) { return 3.0 - 0.001 * step + 0.01 * seed; }

std::vector<RunRecord> fake_sweep(const std::string& root, const std::string& flags = "") {
    std::vector<RunRecord> runs;
    const auto add = [&](const std::string& variant, int seed, const CurveFn& f) {
        runs.push_back(fake_run(root, variant, seed, f, flags));
    };
    for (int seed = 1; seed <= 3; ++seed) {
        // R - V = +0.051..+0.053 at every step: stable.
        const auto r = [](int step, int s) { return v_loss(step, s) + 0.05 + 0.001 * s; };
        add("V", seed, v_loss);
        add("R", seed, r);
        // D - R is below 0 at every step: stable; D's own loss is flat (falls 0.0006 of 2.0).
        add("D", seed, [](int step, int s) { return 2.0 + 0.01 * s - 0.000003 * step; });
        // R+V - V is +0.05 up to step 600, then -0.05: positive at 50%, negative at 75% and 100%: moved.
        add("R+V", seed, [](int step, int s) {
            return v_loss(step, s) + (step <= 600 ? 0.05 : -0.05) + 0.002 * s;
        });
        // FR - R is -0.01, 0, +0.01 by seed: its interval contains 0 at every step: unresolved.
        add("FR", seed, [r](int step, int s) { return r(step, s) + 0.01 * (s - 2); });
    }
    return runs;
}

// The line of `text` that holds `marker`, which must be there.
std::string line_with(const std::string& text, const std::string& marker) {
    const size_t at = text.find(marker);
    REQUIRE_MESSAGE(at != std::string::npos, marker, " is not in:\n", text);
    const size_t start = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
    return text.substr(start, text.find('\n', at) - start);
}

ReportSpec loss_spec() {
    ReportSpec spec;
    spec.title = "t";
    spec.metrics = {"val_loss"};
    return spec;
}

}  // namespace

TEST_CASE("budget: each finding's gap across the budget is marked stable, moved or unresolved") {
    ScratchDir dir;
    write_report(fake_sweep(dir / "runs"), loss_spec(), dir / "t");
    const std::string md = read_file(dir / "t.md");
    CHECK(md.find("**Across the budget.**") != std::string::npos);
    CHECK(md.find("| a - b | 25% (step 200) | 50% (step 500) | 75% (step 700) | 100% (step 1000) |") != std::string::npos);
    const std::string rv = line_with(md, "| R - V |");
    CHECK(rv.find("| +0.0520 [") != std::string::npos);  // mean of 0.051, 0.052, 0.053
    CHECK(rv.find("| stable |") != std::string::npos);
    CHECK(line_with(md, "| D - R |").find("| stable |") != std::string::npos);
    CHECK(line_with(md, "| R+V - V |").find("| moved |") != std::string::npos);
    CHECK(line_with(md, "| FR - R |").find("| unresolved |") != std::string::npos);
    // The budget section follows the group's findings, which it must not change.
    CHECK(md.find("**1. Trainable R is competitive with V**") < md.find("**Across the budget.**"));
}

TEST_CASE("budget: groups of a table each get their rows, labelled by the flags that differ; the marks are explained once") {
    ScratchDir dir;
    std::vector<RunRecord> runs = fake_sweep(dir / "a", "lr=0.001\n");
    for (RunRecord& r : fake_sweep(dir / "b", "lr=0.002\n")) runs.push_back(r);
    write_report(runs, loss_spec(), dir / "t");
    const std::string md = read_file(dir / "t.md"), csv = read_file(dir / "t-budget.csv");
    const size_t first = md.find("**Across the budget.**");
    REQUIRE(first != std::string::npos);
    CHECK(md.find("**Across the budget.**", first + 1) == std::string::npos);
    CHECK(md.find("**Across the budget** (as above)") > first);
    CHECK(csv.find("\nlr=0.001,R,V,500,") != std::string::npos);
    CHECK(csv.find("\nlr=0.002,R,V,500,") != std::string::npos);
    CHECK(split_lines(csv).size() == 81);
}

TEST_CASE("budget: a variant whose loss still falls over the last 20% is marked, a flat one is not") {
    ScratchDir dir;
    write_report(fake_sweep(dir / "runs"), loss_spec(), dir / "t");
    const std::string note = line_with(read_file(dir / "t.md"), "**Converged?**");
    CHECK(note.find("steps 800 to 1000, the last 20% of the budget") != std::string::npos);
    // V: from 2.22 to 2.02 (seed mean): -9.01%.
    CHECK(note.find("V still falling 9.01%") != std::string::npos);
    CHECK(note.find("D flat (-0.03%)") != std::string::npos);
    // With an evaluation every 500 steps of 3,000, the span starts at or before 80% (step 2,000,
    // not the nearer 2,500), so a flat mark covers the last fifth at least.
    GroupCurves every500;
    for (int seed = 1; seed <= 2; ++seed)
        for (int step = 500; step <= 3000; step += 500) every500["V"][seed][step] = 5.0 - 0.0001 * step;
    const std::vector<Trend> t = last_fifth_trends(every500, {"V"});
    REQUIRE(t.size() == 1);
    CHECK(t[0].from == 2000);
    CHECK(t[0].change_percent == doctest::Approx(100.0 * (4.7 - 4.8) / 4.8));
    CHECK(convergence_note(every500, {"V"}).find("steps 2000 to 3000, the last 33% of the budget") != std::string::npos);
    // A rise larger than the threshold reads as one.
    CHECK(trend_words({"X", 800, 1000, 2 * kStillFallingPercent}) == "rising " + fmt(2 * kStillFallingPercent, 2) + "%");
    CHECK(trend_words({"X", 800, 1000, -0.5 * kStillFallingPercent}).rfind("flat (", 0) == 0);
}

TEST_CASE("budget: STEM-budget.csv holds every evaluation step of every pair, not a table of runs") {
    ScratchDir dir;
    write_report(fake_sweep(dir / "runs"), loss_spec(), dir / "t");
    const std::string csv = read_file(dir / "t-budget.csv");
    // scripts/reports.sh takes a results/*.csv whose header starts with "run," for a table.
    CHECK(csv.rfind("group,a,b,step,fraction_of_budget,n,mean_gap,lo,hi,mean_gap_pct,lo_pct,hi_pct,margin\n", 0) == 0);
    CHECK(csv.find(",R,V,500,0.5000,3,0.052000,") != std::string::npos);
    CHECK(csv.find(",R+V,V,700,0.7000,3,-0.046000,") != std::string::npos);
    // 4 pairs x 10 evaluations, and the header.
    CHECK(split_lines(csv).size() == 41);
    // The loss margin of the language models' findings, in nats, on every row.
    CHECK(line_with(csv, ",FR,R,1000,").substr(line_with(csv, ",FR,R,1000,").rfind(',') + 1) == "0.0200");
}

TEST_CASE("budget: a metrics.jsonl cut short in its last line is read up to it; a broken line elsewhere is an error") {
    ScratchDir dir;
    std::vector<RunRecord> runs = fake_sweep(dir / "runs");
    const std::string path = runs[0].dir + "/metrics.jsonl";
    std::string text = read_file(path);
    text = text.substr(0, text.rfind("{\"step\": 1000") + 24);  // the last row, cut mid-line
    write_file_atomic(path, text);
    const ValCurve c = read_val_curve(runs[0].dir);
    REQUIRE(c.size() == 9);
    CHECK(c.rbegin()->first == 900);
    // The report reads it too: the pairs with V seed 1 end at the last step they share.
    write_report(runs, loss_spec(), dir / "t");
    CHECK(line_with(read_file(dir / "t.md"), "| R - V |").find("(step 900)") != std::string::npos);
    // A run without metrics.jsonl has no curve, and leaves the report's tables alone.
    std::filesystem::remove(path);
    CHECK(read_val_curve(runs[0].dir).empty());
    write_report(runs, loss_spec(), dir / "u");
    // A malformed complete line is no unfinished write: an error naming the file and line.
    write_file_atomic(path, "{\"step\": 100, \"val_loss\": 2.0}\n{\"step\": 2\n{\"step\": 300}\n");
    CHECK(std::string(error_of([&] { read_val_curve(runs[0].dir); }).c_str()).find(path + ":2") != std::string::npos);
}

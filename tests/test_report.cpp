// The report step's comparisons beyond the paper's findings: every variant against a baseline
// (--baseline) in a Holm family of its own, the variants' settings in the settings line, the
// note on a group trained for less than its preset's converged budget, build/mt's training
// length when --steps overrides --epochs, and finding 3 against a parameter-matched V (a group
// that differs only in --d-ff). Run directories are written by hand here (result.json,
// config.json and metrics.jsonl, as a run writes them), so each verdict is known in advance.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "attention/variant.h"
#include "base/hash.h"
#include "base/io.h"
#include "base/json.h"
#include "base/table.h"
#include "runs/driver.h"
#include "runs/run_report.h"
#include "subprocess.h"

using namespace synth;
using synth_test::ScratchDir;

namespace {

// What the driver of task `task` printed with these flags, run in this process.
struct Driven {
    int status = 0;
    std::string out, err;
};
Driven drive(const std::string& task, const std::vector<std::string>& flags, const std::string& dir) {
    std::vector<std::string> args = {task};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    std::fflush(stdout), std::fflush(stderr);
    const int saved_out = dup(1), saved_err = dup(2);
    const int out = open((dir + "/driven.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open((dir + "/driven.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1), dup2(err, 2);
    Driven d;
    try {
        const std::unique_ptr<Task> t = make_task(task);
        d.status = Driver(*t).run((int)argv.size(), argv.data());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        d.status = 1;
    }
    std::fflush(stdout), std::fflush(stderr);
    dup2(saved_out, 1), dup2(saved_err, 2);
    for (int fd : {out, err, saved_out, saved_err}) close(fd);
    d.out = read_file(dir + "/driven.out");
    d.err = read_file(dir + "/driven.err");
    return d;
}

// A finished build/lm run of Tiny Shakespeare in `dir`, as the runner writes it: result.json
// with the group of its flags, and config.json with its preset.
struct FakeRun {
    std::string variant;
    int seed;
    double loss;
    int steps = 2000;
    std::string preset = "full", data = "tinyshakespeare";
    std::string settings = "";  // group lines of settings away from their defaults ("lr-window=16\n")
    double params = 1000;
    std::string cpu = "";  // config.json's "cpu"; "" for a run that does not record it
};
void write_lm_run(const std::string& dir, const FakeRun& f) {
    std::filesystem::create_directories(dir);
    const std::string group = "d-model=16\ndata=" + f.data + "\nsteps=" + std::to_string(f.steps) + "\n" + f.settings;
    JsonObject r;
    r.text("variant", f.variant);
    r.integer("seed", f.seed);
    r.integer("params", (long long)f.params);
    for (const char* k : {"val_loss", "test_loss"}) r.number(k, f.loss, 4);  // NaN: null, as a run writes it
    for (const char* k : {"val_bpc", "test_bpc"}) r.number(k, f.loss / std::log(2.0), 4);
    r.integer("train_tok_s", 5000);
    r.number("steps_s", 5.0, 3);
    r.integer("steps", f.steps);
    r.text("data", f.data);
    r.text("data_hash", "0123456789abcdef");
    r.text("group_hash", short_hash(group));
    r.text("group", group);
    write_file_atomic(dir + "/result.json", r.dump() + "\n");
    JsonObject c;
    c.text("binary", "lm");
    c.text("group_hash", short_hash(group));
    c.text("flag.seed", std::to_string(f.seed));
    c.text("flag.preset", f.preset);
    c.text("flag.data", f.data);
    if (!f.cpu.empty()) c.text("cpu", f.cpu);
    write_file_atomic(dir + "/config.json", c.dump() + "\n");
}

// V; R within 0.001-0.003 nats of V (about as good); LR, a user's variant, 0.051-0.053 nats
// below V (better, by more than the margin of 0.02 nats).
void write_three_variants(const std::string& sweep, int steps = 2000) {
    for (int seed = 1; seed <= 3; ++seed) {
        const double v = 2.0 + 0.001 * seed;
        const std::string s = "-seed" + std::to_string(seed);
        write_lm_run(sweep + "/V" + s, {"V", seed, v, steps});
        write_lm_run(sweep + "/R" + s, {"R", seed, v + 0.001 * seed, steps});
        write_lm_run(sweep + "/LR" + s, {"LR", seed, v - 0.05 - 0.001 * seed, steps});
    }
}

std::string line_with(const std::string& md, const std::string& marker) {
    const size_t at = md.find(marker);
    REQUIRE_MESSAGE(at != std::string::npos, marker, " is not in:\n", md);
    const size_t start = md.rfind('\n', at) == std::string::npos ? 0 : md.rfind('\n', at) + 1;
    return md.substr(start, md.find('\n', at) - start);
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("report: --baseline compares every other variant with it, a user's own among them, in a family of its own") {
    ScratchDir dir;
    write_three_variants(dir / "runs");
    const Driven d = drive("lm", {"--report", dir / "runs", "--out=" + dir / "t", "--baseline=V"}, dir.path);
    INFO(d.err);
    REQUIRE(d.status == 0);
    // A line for every variant but the baseline, the user's LR among them.
    const std::string lr = line_with(d.out, "**LR vs V**");
    CHECK(has(lr, "paired validation loss difference -0.0520 nats (95% CI -0.0545 to -0.0495)"));
    CHECK(has(lr, "LR beats V (one-sided): confirmed at 3 seeds"));
    CHECK(has(lr, "about as good (TOST, margin +-0.02 nats): refuted at 3 seeds, LR better by more than the margin"));
    const std::string r = line_with(d.out, "**R vs V**");
    CHECK(has(r, "+0.0020 nats"));
    CHECK(has(r, "about as good (TOST, margin +-0.02 nats): confirmed at 3 seeds"));
    CHECK(!has(d.out, "**V vs V**"));
    // A variant without a finite loss gets its line too, saying why it is not compared.
    for (int seed = 1; seed <= 2; ++seed) write_lm_run(dir / ("runs/XR-seed" + std::to_string(seed)), {"XR", seed, NAN});
    const Driven x = drive("lm", {"--report", dir / "runs", "--out=" + dir / "x", "--baseline=V"}, dir.path);
    INFO(x.err);
    REQUIRE(x.status == 0);
    CHECK(has(x.out, "- **XR vs V**: not compared (no run of XR with a finite validation loss)."));
    CHECK(has(x.out, "**LR vs V**: paired validation loss difference -0.0520 nats"));
    std::filesystem::remove_all(dir / "runs/XR-seed1"), std::filesystem::remove_all(dir / "runs/XR-seed2");
    // Two tests for each of 2 variants in the baseline's family; the paper's finding (R vs V)
    // stays in a family of one, as without the comparisons.
    CHECK(has(lr, "family of 4)"));
    CHECK(has(line_with(d.out, "Trainable R is competitive with V**"), "confirmed at 3 seeds (Holm-adjusted p < 0.001, family of 1)"));
    CHECK(has(d.out, "The family of Holm's correction: every verdict in this file, 1 tests"));
    CHECK(has(d.out, "The family of Holm's correction: every variant against V in this file, 4 tests (2 confirmed, 1 "
                     "refuted, 1 inconclusive)"));
    // Another baseline: each other variant against it.
    const Driven by_r = drive("lm", {"--report", dir / "runs", "--out=" + dir / "u", "--baseline=R"}, dir.path);
    REQUIRE(by_r.status == 0);
    CHECK(has(line_with(by_r.out, "**V vs R**"), "about as good (TOST, margin +-0.02 nats): confirmed at 3 seeds"));
    CHECK(has(line_with(by_r.out, "**LR vs R**"), "-0.0540 nats"));
    CHECK(has(line_with(by_r.out, "**LR vs R**"), "LR beats R (one-sided): confirmed at 3 seeds"));
    CHECK(!has(by_r.out, "**LR vs V**"));
}

TEST_CASE("report: a --baseline no run has is an error naming the variants; a group without it says so") {
    ScratchDir dir;
    write_three_variants(dir / "runs");
    const Driven bad = drive("lm", {"--report", dir / "runs", "--out=" + dir / "t", "--baseline=Vanilla"}, dir.path);
    CHECK(bad.status == 1);
    CHECK(has(bad.err, "--baseline=Vanilla: no run of the report has variant Vanilla (variants present: LR, R, V)"));
    CHECK(!std::filesystem::exists(dir / "t.md"));
    // A second group (another --steps) with no V: one line, and the other group's comparisons stand.
    for (int seed = 1; seed <= 2; ++seed) {
        write_lm_run(dir / ("runs/R-steps12000-seed" + std::to_string(seed)), {"R", seed, 1.9, 12000});
        write_lm_run(dir / ("runs/LR-steps12000-seed" + std::to_string(seed)), {"LR", seed, 1.8, 12000});
    }
    const Driven two = drive("lm", {"--report", dir / "runs", "--out=" + dir / "u"}, dir.path);  // --baseline=V by default
    INFO(two.err);
    REQUIRE(two.status == 0);
    CHECK(has(two.out, "No V in this group: none of its variants is compared against the baseline (--baseline=V)."));
    CHECK(has(two.out, "**LR vs V**"));
}

TEST_CASE("report: a group trained for less than its preset's converged budget says so next to its findings") {
    // The budgets of the preset tables, as docs/presets.md documents them; classification has none.
    const auto budget = [](const std::string& task, const std::string& preset, const std::string& data) {
        JsonObject c;
        c.text("flag.preset", preset);
        c.text("flag.data", data);
        return converged_budget(make_task(task)->presets(), c);
    };
    CHECK(budget("lm", "full", "tinyshakespeare").value == 24000);
    CHECK(budget("lm", "full", "tinyshakespeare").key == "steps");
    CHECK(budget("lm", "full", "ptb").value == 3000);
    CHECK(budget("lm", "full", "my.txt").key.empty());  // measured on the two corpora only
    CHECK(budget("lm", "quick", "tinyshakespeare").key.empty());
    CHECK(budget("mt", "full", "multi30k").key == "epochs");
    CHECK(budget("mt", "full", "multi30k").value == 16);
    for (const char* p : {"cpu", "lra", "quick"}) CHECK(budget("cls", p, "multi30k").key.empty());
    CHECK(converged_budget(make_task("lm")->presets(), JsonObject{}).key.empty());  // no config.json

    ScratchDir dir;
    write_three_variants(dir / "short");
    const Driven d = drive("lm", {"--report", dir / "short", "--out=" + dir / "t"}, dir.path);
    INFO(d.err);
    REQUIRE(d.status == 0);
    const std::string note = "**Budget**: trained 2,000 steps; the preset's converged budget is 24,000 (docs/presets.md): "
                             "verdicts at this budget may not hold at convergence.";
    CHECK(has(d.out, note));
    CHECK(d.out.find(note) > d.out.find("**LR vs V**"));  // after the group's verdicts
    write_three_variants(dir / "long", 24000);
    const Driven converged = drive("lm", {"--report", dir / "long", "--out=" + dir / "u"}, dir.path);
    REQUIRE(converged.status == 0);
    CHECK(!has(converged.out, "**Budget**"));
}

TEST_CASE("report: the settings line names the settings the runs' variants read, at their defaults too") {
    // A user's variant with a setting of its own, registered for this test only.
    VariantInfo lr = variant_info("R");
    lr.name = "LR";
    lr.settings = {Setting::integer("lr-window", 8, "window W", Setting::Bound::Positive)};
    register_variant(lr);
    struct Unregister {
        ~Unregister() { unregister_variant("LR"); }
    } unregister;
    ScratchDir dir;
    write_three_variants(dir / "runs");
    const Driven d = drive("lm", {"--report", dir / "runs", "--out=" + dir / "t"}, dir.path);
    INFO(d.err);
    REQUIRE(d.status == 0);
    // The runs' groups leave lr-window out (at its default: run_group), yet the runs used it; so
    // does R's r-init.
    const std::string settings = line_with(d.out, "Settings of every run:");
    CHECK(has(settings, "lr-window=8"));
    CHECK(has(settings, "r-init=" + setting_text(variant_info("R").settings.back().value)));
    CHECK(!has(settings, "fr-rank"));  // FR's: no run here is FR
    // A value the runs' group records (given away from its default) is the one shown.
    for (int seed = 1; seed <= 2; ++seed)
        for (const char* v : {"V", "LR"}) {
            FakeRun run{v, seed, 2.0};
            run.settings = "lr-window=16\n";
            write_lm_run(dir / ("wide/" + std::string(v) + std::to_string(seed)), run);
        }
    const Driven wide = drive("lm", {"--report", dir / "wide", "--out=" + dir / "u"}, dir.path);
    INFO(wide.err);
    REQUIRE(wide.status == 0);
    CHECK(has(line_with(wide.out, "Settings of every run:"), "lr-window=16"));
    CHECK(!has(line_with(wide.out, "Settings of every run:"), "lr-window=8"));
}

TEST_CASE("report: build/mt's summary and settings lines give the length of training that counted") {
    ScratchDir dir;
    const char* en[] = {"the", "dog", "cat", "runs", "sleeps", "a", "red", "big", "house", "sees"};
    const char* de[] = {"der", "hund", "katze", "rennt", "schläft", "ein", "rot", "gross", "haus", "sieht"};
    std::filesystem::create_directories(dir / "toy");
    for (const auto& [split, lines] : {std::pair<std::string, int>{"train", 60}, {"val", 8}, {"test", 4}}) {
        std::string src, tgt;
        for (int i = 0; i < lines; ++i)
            for (int w = 0; w < 3 + i % 4; ++w) {
                const int k = (i * 7 + w * 3) % 10;
                const bool last = w == 2 + i % 4;
                src += std::string(en[k]) + (last ? "\n" : " ");
                tgt += std::string(de[k]) + (last ? "\n" : " ");
            }
        write_file_atomic(dir / ("toy/" + split + ".en"), src);
        write_file_atomic(dir / ("toy/" + split + ".de"), tgt);
    }
    const std::vector<std::string> args = {"--data=" + dir / "toy", "--preset=none", "--variants=V", "--d-model=16",
                                           "--layers=1", "--heads=2", "--d-ff=32", "--max-len=32", "--bpe-vocab=320",
                                           "--batch-tokens=128", "--warmup=1", "--beam=1", "--test-sets=test",
                                           "--threads=1", "--epochs=8", "--log-every=100"};
    std::vector<std::string> by_steps = args;
    by_steps.insert(by_steps.end(), {"--steps=3", "--eval-every=3", "--runs-dir=" + dir / "a"});
    const Driven s = drive("mt", by_steps, dir.path);
    INFO(s.err);
    REQUIRE(s.status == 0);
    CHECK(has(s.err, "mt: training 3 steps (--steps, which overrides --epochs=8: "));
    const std::string settings = line_with(s.err, "Settings of every run:");  // the sweep's report
    CHECK(has(settings, "steps=3"));
    CHECK(!has(settings, "epochs="));
    // By --epochs: the epochs, and no steps=0.
    std::vector<std::string> by_epochs = args;
    by_epochs.insert(by_epochs.end(), {"--steps=0", "--epochs=1", "--runs-dir=" + dir / "b"});
    const Driven e = drive("mt", by_epochs, dir.path);
    INFO(e.err);
    REQUIRE(e.status == 0);
    CHECK(has(e.err, "mt: training 1 epoch of "));
    const std::string line = line_with(e.err, "Settings of every run:");
    CHECK(has(line, "epochs=1"));
    CHECK(!has(line, "steps=0"));
}

namespace {

// Finding 3's capacity control on the lm settings of docs/statistics.md: in runs/seeds, V
// (807,808 parameters) and D+V (907,680) at d-ff 512; in runs/matched, V at another width, of
// `params` parameters; three seeds each, every run on "cpu A" but the wide V's seed 3 on
// `seed3_cpu`. D+V's validation loss is 0.04, 0.05, 0.06 nats below the wide V's (seeds 1-3) and
// 0.09-0.11 below the narrow V's; each run's curve falls by 0.01 nats per 500 steps to its final
// loss, so the gaps hold at every evaluation.
struct Wide {
    std::string d_ff = "609";
    double params = 907524;
    int steps = 2000;
    std::string seed3_cpu = "cpu A";
};
void write_matched_runs(const std::string& runs, const Wide& w) {
    const auto run = [](const std::string& dir, FakeRun f) {
        write_lm_run(dir, f);
        std::string curve;
        for (int step = 500; step <= f.steps; step += 500)
            curve += "{\"step\":" + std::to_string(step) + ",\"val_loss\":" + fmt(f.loss + 0.01 * (f.steps - step) / 500, 4) + "}\n";
        write_file_atomic(dir + "/metrics.jsonl", curve);
    };
    for (int seed = 1; seed <= 3; ++seed) {
        const std::string s = std::to_string(seed);
        const double wide = 1.95 + 0.001 * seed;
        run(runs + "/seeds/V-" + s, {"V", seed, 2.0 + 0.001 * seed, 2000, "full", "tinyshakespeare", "d-ff=512\n", 807808, "cpu A"});
        run(runs + "/seeds/D+V-" + s, {"D+V", seed, wide - 0.03 - 0.01 * seed, 2000, "full", "tinyshakespeare", "d-ff=512\n", 907680, "cpu A"});
        run(runs + "/matched/V-" + w.d_ff + "-" + std::to_string(w.steps) + "-" + s, {"V", seed, wide, w.steps, "full", "tinyshakespeare",
                                                      "d-ff=" + w.d_ff + "\n", w.params, seed == 3 ? w.seed3_cpu : "cpu A"});
    }
}

Driven report_matched(const ScratchDir& dir, const std::string& out) {
    const Driven d = drive("lm", {"--report", dir / "runs/seeds", dir / "runs/matched", "--out=" + dir / out}, dir.path);
    INFO(d.err);
    REQUIRE(d.status == 0);
    return d;
}

}  // namespace

TEST_CASE("report: finding 3 against a parameter-matched V, in the paper's family and across the budget") {
    ScratchDir dir;
    write_matched_runs(dir / "runs", Wide{});
    const Driven d = report_matched(dir, "t");
    // The paired differences -0.04, -0.05, -0.06: mean -0.05, s = 0.01, half width
    // t(0.975, 2) x 0.01 / sqrt(3) = 4.303 (the t table's 3 decimals) x 0.0057735 = 0.024843.
    const std::string line = line_with(d.out, "**3. D+V beats a parameter-matched V**");
    CHECK(has(line, "- **3. D+V beats a parameter-matched V**: D+V (d-ff=512, 907,680 parameters) vs V (d-ff=609, "
                    "907,524 parameters), paired validation loss difference -0.0500 nats (95% CI -0.0748 to -0.0252) "
                    "(one-sided): confirmed at 3 seeds (Holm-adjusted p = "));
    // In the group of the mixture, after its finding against its own V, in the family of the
    // paper's findings (grown by one: D+V beats V, and this).
    CHECK(d.out.find(line) > d.out.find("**3. D+V beats V**: D+V vs V, paired validation loss difference -0.1000 nats"));
    CHECK(d.out.find(line) < d.out.find("## d-ff=609"));
    CHECK(has(line, "family of 2)"));
    CHECK(has(d.out, "The family of Holm's correction: every verdict in this file, 2 tests"));
    // Across the budget: its row in the table and at every evaluation of the budget CSV.
    CHECK(has(line_with(d.out, "| D+V - V (d-ff=609) |"), "| -0.0500 [-0.0748, -0.0252], -2.56% |"));
    CHECK(has(line_with(d.out, "| D+V - V (d-ff=609) |"), "| stable |"));
    const std::string csv = read_file(dir / "t-budget.csv");
    for (const char* step : {"500,0.2500", "1000,0.5000", "1500,0.7500", "2000,1.0000"})
        CHECK(has(csv, "d-ff=512,D+V,V (d-ff=609)," + std::string(step) + ",3,-0.050000,-0.074843,-0.025157,"));
}

TEST_CASE("report: a V more than 1% from the mixture's parameters, or differing in more than --d-ff, is no match") {
    ScratchDir dir;
    // d-ff 618: 916,776 parameters, 1.002% above D+V's 907,680.
    write_matched_runs(dir / "runs", Wide{"618", 916776});
    const Driven far = report_matched(dir, "t");
    CHECK(!has(far.out, "parameter-matched"));
    CHECK(has(far.out, "The family of Holm's correction: every verdict in this file, 1 tests"));
    CHECK(!has(read_file(dir / "t-budget.csv"), "(d-ff="));
    // Beside it d-ff 617 (915,748: 0.89% above) and 609 (907,524: 0.02% below): the nearest is the match.
    write_matched_runs(dir / "runs", Wide{"617", 915748});
    write_matched_runs(dir / "runs", Wide{});
    const Driven near = report_matched(dir, "u");
    CHECK(has(line_with(near.out, "**3. D+V beats a parameter-matched V**"), "vs V (d-ff=609, 907,524 parameters)"));
    CHECK(near.out.find("parameter-matched") == near.out.rfind("parameter-matched"));

    // A V of the matched width that also trained for another number of steps is another experiment.
    ScratchDir other;
    write_matched_runs(other / "runs", Wide{"609", 907524, 4000});
    const Driven steps = report_matched(other, "t");
    CHECK(has(steps.out, "## d-ff=609, steps=4000"));
    CHECK(!has(steps.out, "parameter-matched"));
    CHECK(has(steps.out, "The family of Holm's correction: every verdict in this file, 1 tests"));
    // Beside it the V that differs in --d-ff only: the match, followed across the budget on its
    // own curves, not on those of the longer runs at the same width.
    write_matched_runs(other / "runs", Wide{});
    const Driven both = report_matched(other, "u");
    CHECK(has(line_with(both.out, "**3. D+V beats a parameter-matched V**"), "-0.0500 nats (95% CI -0.0748 to -0.0252)"));
    CHECK(has(read_file(other / "u-budget.csv"), "D+V,V (d-ff=609),2000,1.0000,3,-0.050000,-0.074843,-0.025157,"));
}

TEST_CASE("report: a parameter-matched V's seed on another CPU is left out of the pairs, and counted") {
    ScratchDir dir;
    write_matched_runs(dir / "runs", Wide{"609", 907524, 2000, "cpu B"});
    const Driven d = report_matched(dir, "t");
    // Seeds 1 and 2 only: -0.04, -0.05, half width t(0.975, 1) x 0.0070711 / sqrt(2) = 12.706 x 0.005;
    // one-sided, t = -9 on 1 degree of freedom: p = 1/2 - atan(9)/pi = 0.035, the larger of the
    // family's two, so Holm leaves it as it is.
    const std::string line = line_with(d.out, "**3. D+V beats a parameter-matched V**");
    CHECK(has(line, "paired validation loss difference -0.0450 nats (95% CI -0.1085 to +0.0185) (one-sided): "
                    "confirmed at 2 seeds (Holm-adjusted p = 0.035, family of 2)"));
    CHECK(has(line, "1 pair left out, whose two runs differ in footing (seed 3: cpu A, "));
    CHECK(has(line, " vs cpu B, "));
    CHECK(has(d.out, "1 pair left out of the findings because their two runs differ in footing"));
    CHECK(has(read_file(dir / "t-budget.csv"), "d-ff=512,D+V,V (d-ff=609),2000,1.0000,2,-0.045000,"));
}

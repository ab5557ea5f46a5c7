// Run directories, seeds and the report step: what a run writes, a 2-variant x 2-seed sweep
// merged into mean +- std with a finding's confidence interval, and the statistics and JSON
// underneath.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <string>
#include <vector>

#include "engine/gemm/blas.h"
#include "train/checkpoint.h"
#include "runs/findings.h"
#include "base/flags.h"
#include "runs/run_dir.h"
#include "runs/run_report.h"
#include "train/trainer.h"
#include "models/transformer.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/io.h"
#include "base/json.h"
#include "runs/stats.h"
#include "subprocess.h"
#include "tiny_text.h"

using namespace synth;
using synth_test::ScratchDir;

namespace {

std::vector<std::string> tiny_sweep(const std::string& dir) {
    return {"--data=" + dir + "/tiny.txt", "--preset=none", "--variants=R,V", "--seeds=1,2", "--d-model=16",
            "--layers=1", "--heads=2", "--d-ff=32", "--seq=16", "--batch=4", "--steps=8", "--warmup=2",
            "--eval-every=4", "--eval-batches=2", "--threads=1", "--runs-dir=" + dir + "/runs"};
}

// The JSON file at `path` with `key`'s value replaced (kept a string or a number, as it was).
std::string with_field(const std::string& path, const std::string& key, const std::string& value) {
    JsonObject o = parse_json_object(read_file(path), path);
    const auto it = std::find_if(o.fields.begin(), o.fields.end(), [&](const auto& kv) { return kv.first == key; });
    REQUIRE(it != o.fields.end());
    it->second = value;
    return o.dump() + "\n";
}

}  // namespace

TEST_CASE("runs: t critical values, sample std and the 95% interval") {
    CHECK(t_critical_95(1) == doctest::Approx(12.706));
    CHECK(t_critical_95(4) == doctest::Approx(2.776));
    CHECK(t_critical_95(200) == doctest::Approx(1.972).epsilon(1e-3));
    CHECK(stddev_of({1, 2, 3, 4}) == doctest::Approx(std::sqrt(5.0 / 3.0)));
    const Interval ci = ci95({1.0, 2.0, 3.0});  // mean 2, s 1, half-width 4.303 / sqrt(3)
    CHECK(ci.mean == doctest::Approx(2.0));
    CHECK(ci.hi - ci.mean == doctest::Approx(4.303 / std::sqrt(3.0)));
    CHECK(!ci95({5.0}).valid());
}

TEST_CASE("runs: flat JSON objects round-trip, and malformed ones name the file and the byte") {
    JsonObject o;
    o.text("variant", "R+V \"quoted\"\n");
    o.integer("seed", 3);
    o.number("val_loss", 2.5, 4);
    o.number("nan", NAN);
    const JsonObject back = parse_json_object(o.dump(), "x.json");
    CHECK(back.at("variant") == "R+V \"quoted\"\n");
    CHECK(back.num("seed") == 3);
    CHECK(back.num("val_loss") == 2.5);
    CHECK(back.at("nan") == "null");
    for (const char* bad : {"", "{", "{\"a\": }", "{\"a\": [1]}", "{\"a\": 1,}", "{\"a\": 1} x", "{\"a\" 1}"})
        CHECK_THROWS_WITH_AS(parse_json_object(bad, "bad.json"), doctest::Contains("bad.json: "), Error);
}

TEST_CASE("runs: a 2-variant x 2-seed sweep writes one directory per run and a report with mean +- std and CIs") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    auto r = synth_test::run_process(lm, tiny_sweep(dir.path), dir.path);
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    const std::string sweep = dir / "runs/lm-tiny-none";
    for (const char* run : {"R-seed1", "R-seed2", "V-seed1", "V-seed2"}) {
        CAPTURE(run);
        const std::string d = sweep + "/" + run;
        for (const char* f : {"config.json", "metrics.jsonl", "final.ckpt", "best.ckpt", "result.json"})
            CHECK(std::filesystem::exists(d + "/" + f));
        const JsonObject config = parse_json_object(read_file(d + "/config.json"), "config.json");
        CHECK(config.at("binary") == "lm");
        CHECK(config.at("flag.seed") == std::string(run).substr(std::string(run).size() - 1));
        CHECK(config.has("git_commit"));
        CHECK(config.has("blas_kernel"));
        CHECK(config.at("cpu") == synth::cpu_name());
        const JsonObject result = parse_json_object(read_file(d + "/result.json"), "result.json");
        CHECK(result.at("seed") == config.at("flag.seed"));
        CHECK(std::isfinite(result.num("val_loss")));
        // 8 steps: 8 lines, evaluations at steps 4 and 8.
        const std::string metrics = read_file(d + "/metrics.jsonl");
        CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 8);
        CHECK(metrics.find("\"val_loss\"") != std::string::npos);
    }
    // Different seeds are different runs.
    CHECK(read_file(sweep + "/V-seed1/metrics.jsonl") != read_file(sweep + "/V-seed2/metrics.jsonl"));
    // Quiet by default: no per-run JSON line on stdout, no flag dump on stderr (config.json and
    // result.json hold them); the one-line summary, progress and the table remain.
    CHECK(r.out.empty());
    CHECK(r.err.find("config:\n") == std::string::npos);
    CHECK(r.err.find("seed=") == std::string::npos);
    CHECK(r.err.find("lm: ") != std::string::npos);
    CHECK(r.err.find("| variant") != std::string::npos);
    // --verbose gives the detail: every resolved flag and one JSON line per run.
    std::vector<std::string> loud = tiny_sweep(dir.path);
    for (const std::string& more : {std::string("--verbose"), std::string("--variants=V"), std::string("--seeds=1"),
                                    std::string("--steps=2"), "--run-dir=" + dir / "loud"})
        loud.push_back(more);  // the last occurrence of a flag wins
    auto v = synth_test::run_process(lm, loud, dir.path);
    REQUIRE(v.status == 0);
    CHECK(v.err.find("config:\n") != std::string::npos);
    CHECK(std::count(v.out.begin(), v.out.end(), '\n') == 1);
    CHECK(v.out.find("\"variant\": \"V\"") != std::string::npos);

    // The report step, run explicitly, writes only the stem it is given.
    auto rep = synth_test::run_process(lm, {"--report", "--out=" + dir / "table", sweep}, dir.path);
    INFO("report stderr: ", rep.err);
    REQUIRE(rep.status == 0);
    const std::string md = read_file(dir / "table.md"), csv = read_file(dir / "table.csv");
    CHECK(md.find("| V | 2 | 1,2 |") != std::string::npos);
    CHECK(md.find("| R | 2 | 1,2 |") != std::string::npos);
    CHECK(md.find(" +- ") != std::string::npos);
    CHECK(md.find("Trainable R is competitive with V") != std::string::npos);
    CHECK(md.find("95% CI") != std::string::npos);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);  // a header and one row per run
    CHECK(read_file(sweep + "/report.md") == md);          // the sweep's own report is the same
    CHECK(md.find("steps_s") != std::string::npos);

    // A result.json from before steps_s was recorded: the report derives it as
    // train_tok_s / (batch seq), batch 4 and seq 16 here.
    const std::string old = dir / "old";
    std::filesystem::create_directories(old);
    std::filesystem::copy(sweep + "/V-seed1", old + "/V-seed1", std::filesystem::copy_options::recursive);
    const JsonObject full = parse_json_object(read_file(old + "/V-seed1/result.json"), "result.json");
    CHECK(full.num("steps_s") > 0);
    JsonObject stripped;
    for (size_t i = 0; i < full.fields.size(); ++i)
        if (full.fields[i].first != "steps_s") {
            stripped.fields.push_back(full.fields[i]);
            stripped.quoted.push_back(full.quoted[i]);
        }
    write_file_atomic(old + "/V-seed1/result.json", stripped.dump() + "\n");
    REQUIRE(synth_test::run_process(lm, {"--report", "--out=" + dir / "old-table", old}, dir.path).status == 0);
    const std::string old_csv = read_file(dir / "old-table.csv");
    char derived[32];
    std::snprintf(derived, sizeof derived, "%.3f", full.num("train_tok_s") / (4.0 * 16.0));
    CHECK(old_csv.find(std::string(",") + derived) != std::string::npos);

    // A second report of the same runs is the same bytes; a bad path is named.
    auto again = synth_test::run_process(lm, {"--report", "--out=" + dir / "table2", sweep}, dir.path);
    REQUIRE(again.status == 0);
    CHECK(read_file(dir / "table2.md") == md);
    auto missing = synth_test::run_process(lm, {"--report", "--out=" + dir / "t3", dir / "nope"}, dir.path);
    CHECK(missing.status == 1);
    CHECK(missing.err.find("is not a directory of runs") != std::string::npos);
    auto no_out = synth_test::run_process(lm, {"--report", sweep}, dir.path);
    CHECK(no_out.err.find("--report needs --out=STEM") != std::string::npos);
    // Running the sweep again would overwrite finished runs: refused, before any work.
    auto again_run = synth_test::run_process(lm, tiny_sweep(dir.path), dir.path);
    CHECK(again_run.status == 1);
    CHECK(again_run.err.find("already holds a finished run") != std::string::npos);
    CHECK(read_file(dir / "table.md") == md);
    // Runs of the same flags on other data are not averaged together.
    const std::string other = dir / "other-data";
    std::filesystem::create_directories(other);
    std::filesystem::copy(sweep + "/V-seed1", other + "/V-seed1", std::filesystem::copy_options::recursive);
    // An exact copy repeats a (variant, seed): refused.
    auto twice = synth_test::run_process(lm, {"--report", "--out=" + dir / "t4", sweep, other}, dir.path);
    CHECK(twice.status == 1);
    CHECK(twice.err.find("repeats variant V seed 1 of the same config") != std::string::npos);
    std::string res = read_file(other + "/V-seed1/result.json");
    const size_t at = res.find("\"data_hash\": \"") + 14;
    res[at] = res[at] == '0' ? '1' : '0';
    res.replace(res.find("\"seed\": 1,"), 10, "\"seed\": 7,");
    write_file_atomic(other + "/V-seed1/result.json", res);
    // Its config.json says the same seed (the report refuses a result.json and a config.json
    // that disagree).
    std::string cfg = read_file(other + "/V-seed1/config.json");
    cfg.replace(cfg.find("\"flag.seed\": \"1\""), 16, "\"flag.seed\": \"7\"");
    write_file_atomic(other + "/V-seed1/config.json", cfg);
    auto mixed = synth_test::run_process(lm, {"--report", "--out=" + dir / "t4", sweep, other}, dir.path);
    CHECK(mixed.status == 1);
    CHECK(mixed.err.find("were trained on different data") != std::string::npos);
    auto forced = synth_test::run_process(lm, {"--report", "--force", "--out=" + dir / "t4", sweep, other}, dir.path);
    CHECK(forced.status == 0);
    auto bad_seeds = synth_test::run_process(lm, {"--seeds=1,x", "--runs-dir=" + dir / "r"}, dir.path);
    CHECK(bad_seeds.err.find("--seeds: 'x' is not a seed") != std::string::npos);
}

TEST_CASE("runs: --run-dir names exactly one run") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    std::vector<std::string> args = tiny_sweep(dir.path);
    args.push_back("--run-dir=" + dir / "one");
    auto refused = synth_test::run_process(lm, args, dir.path);
    CHECK(refused.status == 1);
    CHECK(refused.err.find("--run-dir names one run, but --variants and --seeds give 4") != std::string::npos);
    args.push_back("--variants=V");
    args.push_back("--seeds=5");
    auto one = synth_test::run_process(lm, args, dir.path);
    INFO("stderr: ", one.err);
    REQUIRE(one.status == 0);
    CHECK(parse_json_object(read_file(dir / "one/result.json"), "result.json").at("seed") == "5");
    CHECK(!std::filesystem::exists(dir / "runs"));
}

TEST_CASE("runs: generation from a checkpoint is a function of the seed; --eval-only repeats the run's evaluation") {
    const std::string lm = synth_test::binary_or_skip("lm"), mt = synth_test::binary_or_skip("mt");
    if (lm.empty() || mt.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    std::vector<std::string> args = tiny_sweep(dir.path);
    args.push_back("--variants=R+V");
    args.push_back("--seeds=1");
    REQUIRE(synth_test::run_process(lm, args, dir.path).status == 0);
    const std::string run = dir / "runs/lm-tiny-none/R+V-seed1", ck = run + "/final.ckpt";
    auto gen = [&](const std::string& seed, const std::string& top_k) {
        auto r = synth_test::run_process(lm, {"--generate", "--checkpoint=" + ck, "--prompt=the fox", "--tokens=30",
                                              "--seed=" + seed, "--temperature=0.8", "--top-k=" + top_k}, dir.path);
        INFO("stderr: ", r.err);
        REQUIRE(r.status == 0);
        return r.out;
    };
    const std::string a = gen("1", "0");
    CHECK(a.rfind("the fox", 0) == 0);
    CHECK(a.size() == std::string("the fox").size() + 30 + 1);  // 30 characters and a newline
    CHECK(gen("1", "0") == a);
    CHECK(gen("2", "0") != a);
    CHECK(gen("1", "1") == gen("2", "1"));  // top-1 is greedy: the seed no longer matters

    auto eval = synth_test::run_process(lm, {"--eval-only", "--checkpoint=" + ck, "--data=" + dir / "tiny.txt",
                                             "--batch=4"}, dir.path);
    INFO("stderr: ", eval.err);
    REQUIRE(eval.status == 0);
    const JsonObject e = parse_json_object(eval.out, "stdout");
    const JsonObject r = parse_json_object(read_file(run + "/result.json"), "result.json");
    CHECK(e.at("val_loss") == r.at("val_loss"));
    CHECK(e.at("test_loss") == r.at("test_loss"));

    // Checkpoints given to the wrong binary, or a training checkpoint where a kept model is
    // expected, are named as such.
    auto wrong = synth_test::run_process(mt, {"--translate", "--checkpoint=" + ck}, dir.path);
    CHECK(wrong.err.find("holds a 'lm' model (written by build/lm), not a 'seq2seq' model (build/mt)") != std::string::npos);
    args.push_back("--save-every=4");
    args.push_back("--run-dir=" + dir / "saved");
    REQUIRE(synth_test::run_process(lm, args, dir.path).status == 0);
    auto step = synth_test::run_process(mt, {"--translate", "--checkpoint=" + dir / "saved/checkpoint-step4.ckpt"},
                                        dir.path);
    CHECK(step.err.find("is a training checkpoint") != std::string::npos);
    auto resumed_by_mt = synth_test::run_process(
        mt, {"--resume=" + dir / "saved/checkpoint-step4.ckpt", "--variants=R+V", "--runs-dir=" + dir / "mt"}, dir.path);
    CHECK(resumed_by_mt.err.find("holds a 'lm' model (written by build/lm), not a 'seq2seq' model") != std::string::npos);
    write_file_atomic(dir / "short.txt", "to be or not to be\n");
    auto short_data = synth_test::run_process(lm, {"--data=" + dir / "short.txt", "--runs-dir=" + dir / "s"}, dir.path);
    CHECK(short_data.err.find("its training split has 17 tokens, fewer than one window of --seq + 1 = 65 (lower --seq)") !=
          std::string::npos);
    // An empty --prompt is the default one, a newline (as nanoGPT), not an error.
    auto empty = synth_test::run_process(lm, {"--generate", "--checkpoint=" + ck, "--prompt=", "--tokens=3"}, dir.path);
    CHECK(empty.status == 0);
    CHECK(empty.out.rfind("\n", 0) == 0);
}

TEST_CASE("runs: --keep-last bounds the step checkpoints; a killed writer's temporaries are swept at the next start") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    std::filesystem::create_directories(dir / "one");
    // A temporary whose writer is gone (pid 2^22 - 1 beyond any pid_max default) and one of a live
    // process (this test) that must stay.
    write_file_atomic(dir / "one/final.ckpt.tmp.4194303", "half a file");
    const std::string live = dir / ("one/metrics.jsonl.tmp." + std::to_string(::getpid()));
    write_file_atomic(live, "still being written");
    std::vector<std::string> args = tiny_sweep(dir.path);
    for (const char* a : {"--variants=V", "--seeds=1", "--save-every=1", "--keep-last=2"}) args.push_back(a);
    args.push_back("--run-dir=" + dir / "one");
    auto r = synth_test::run_process(lm, args, dir.path);
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    std::vector<std::string> steps;
    for (const auto& e : std::filesystem::directory_iterator(dir / "one")) {
        const std::string n = e.path().filename().string();
        if (n.rfind("checkpoint-step", 0) == 0) steps.push_back(n);
    }
    std::sort(steps.begin(), steps.end());
    CHECK(steps == std::vector<std::string>{"checkpoint-step7.best.ckpt", "checkpoint-step7.ckpt",
                                             "checkpoint-step8.best.ckpt", "checkpoint-step8.ckpt"});
    CHECK(!std::filesystem::exists(dir / "one/final.ckpt.tmp.4194303"));
    CHECK(std::filesystem::exists(live));
}

// The newest step checkpoint of a run directory, or "" if it has none.
static std::string newest_checkpoint(const std::string& dir) {
    std::string best;
    long best_step = -1;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("checkpoint-step", 0) != 0 || n.size() < 5 || n.find(".best.") != std::string::npos ||
            n.compare(n.size() - 5, 5, ".ckpt") != 0)
            continue;
        const long step = std::atol(n.c_str() + 15);
        if (step > best_step) best_step = step, best = e.path().string();
    }
    return best;
}

TEST_CASE("runs: ten kill -9 during a --save-every=1 run, each resumed, end in the uninterrupted run's files") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    std::vector<std::string> args = tiny_sweep(dir.path);
    for (const char* a : {"--variants=R+V", "--seeds=1", "--save-every=1", "--keep-last=3", "--steps=200",
                          "--eval-every=10", "--dropout=0.1"})
        args.push_back(a);
    auto with_dir = [&](const std::string& d) {
        std::vector<std::string> a = args;
        a.push_back("--run-dir=" + d);
        return a;
    };
    const double t0 = now_seconds();
    REQUIRE(synth_test::run_process(lm, with_dir(dir / "whole"), dir.path).status == 0);
    // The kills land at pseudo-random fractions (1-15%) of the uninterrupted run's wall time, so they
    // interrupt it whatever the machine's speed (a sanitizer build, a loaded machine).
    int whole_ms = std::max(20, (int)(1000 * (now_seconds() - t0)));

    // Kill the run at pseudo-random moments, resuming each time from its newest checkpoint.
    const std::string run = dir / "killed";
    uint32_t x = 2024;
    int kills = 0;
    std::string killed_at;  // the checkpoint each killed attempt had resumed from
    for (int attempt = 0; attempt < 200 && kills < 10; ++attempt) {
        std::vector<std::string> a = with_dir(run);
        const std::string ck = std::filesystem::exists(run) ? newest_checkpoint(run) : "";
        if (!ck.empty()) a.push_back("--resume=" + ck);
        x = x * 1664525u + 1013904223u;
        auto r = synth_test::run_process(lm, a, dir.path, std::max(5, (int)(whole_ms * (0.01 + 0.14 * ((x >> 16) % 1000) / 1000.0))));
        if (r.status == 128 + SIGKILL) {
            ++kills;
            killed_at += " " + (ck.empty() ? std::string("start") : ck.substr(ck.rfind("step") + 4));
            continue;
        }
        INFO("stderr: ", r.err);
        REQUIRE(r.status == 0);
        if (!std::filesystem::exists(run + "/result.json")) continue;
        if (kills >= 5) break;
        // It finished before enough kills: the machine ran faster than while timing the whole
        // run (a shared machine's load varies). Start again from nothing with shorter kills.
        std::filesystem::remove_all(run);
        kills = 0, killed_at.clear(), whole_ms = std::max(20, whole_ms / 2);
    }
    CAPTURE(kills);
    MESSAGE("killed " << kills << " times, in attempts resumed from:" << killed_at);
    if (!std::filesystem::exists(run + "/result.json")) {  // finish it if the last attempt was a kill
        std::vector<std::string> a = with_dir(run);
        const std::string ck = std::filesystem::exists(run) ? newest_checkpoint(run) : "";
        if (!ck.empty()) a.push_back("--resume=" + ck);
        REQUIRE(synth_test::run_process(lm, a, dir.path).status == 0);
    }
    CHECK(kills >= 5);  // the loop really interrupted the run (its steps take milliseconds)
    CHECK(read_file(run + "/metrics.jsonl") == read_file(dir / "whole/metrics.jsonl"));
    const Checkpoint a = load_checkpoint(run + "/final.ckpt"), b = load_checkpoint(dir / "whole/final.ckpt");
    REQUIRE(a.params.size() == b.params.size());
    for (size_t i = 0; i < a.params.size(); ++i) CHECK(a.params[i].values == b.params[i].values);
    CHECK(synth_test::result_without_timings(run) == synth_test::result_without_timings(dir / "whole"));
    for (const auto& e : std::filesystem::directory_iterator(run))  // no temporaries left behind
        CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("runs: a divergence, a kill and a full disk during a run leave every tracked file untouched") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty() || std::system("git --version > /dev/null 2>&1") != 0) return;
    ScratchDir dir;
    // A repository like synth's: a committed results table, runs/ ignored.
    const std::string repo = dir / "repo";
    std::filesystem::create_directories(repo + "/results");
    write_file_atomic(repo + "/results/lm-tiny-none.md", "# a committed table\n");
    write_file_atomic(repo + "/.gitignore", "runs/\n");
    write_file_atomic(repo + "/tiny.txt", tiny_text());
    auto sh = [&](const std::string& cmd) { return std::system(("cd '" + repo + "' && " + cmd).c_str()); };
    REQUIRE(sh("git init -q . && git add . && git -c user.name=t -c user.email=t@t commit -qm base") == 0);
    auto clean = [&] {
        const std::string out = dir / "status.txt";
        REQUIRE(sh("git status --porcelain > '" + out + "'") == 0);
        return read_file(out);
    };
    const std::string base = "'" + lm + "' --data=tiny.txt --preset=none --variants=R+V --d-model=16 --layers=1 "
                             "--heads=2 --d-ff=32 --seq=16 --batch=4 --steps=200 --eval-every=20 --eval-batches=2 "
                             "--threads=1 --save-every=5 > out.txt 2> err.txt";
    // Divergence: an absurd learning rate without clipping.
    CHECK(sh(base + " --lr=1e30 --warmup=0 --clip=0") != 0);
    CHECK(read_file(repo + "/err.txt").find("the training loss became") != std::string::npos);
    std::filesystem::remove(repo + "/out.txt");
    std::filesystem::remove(repo + "/err.txt");
    CHECK(clean() == "");
    // A kill mid-run.
    sh("(" + base + " --tag=killed & pid=$!; sleep 0.3; kill -9 $pid; wait $pid) > /dev/null 2>&1");
    std::filesystem::remove(repo + "/out.txt");
    std::filesystem::remove(repo + "/err.txt");
    CHECK(clean() == "");
    // A full disk: files may not grow past 16 KiB, less than one checkpoint (SIGXFSZ ignored, so
    // the write fails with EFBIG as it would with ENOSPC).
    CHECK(sh("(trap '' XFSZ; ulimit -f 16; " + base + " --tag=full)") != 0);
    CHECK(read_file(repo + "/err.txt").find("error: cannot write '") != std::string::npos);
    std::filesystem::remove(repo + "/out.txt");
    std::filesystem::remove(repo + "/err.txt");
    CHECK(clean() == "");
    CHECK(read_file(repo + "/results/lm-tiny-none.md") == "# a committed table\n");
}

TEST_CASE("runs: a run whose memory exceeds the machine's is refused before training, naming the flag") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    std::vector<std::string> args = tiny_sweep(dir.path);
    args.push_back("--batch=2000000000");
    args.push_back("--log-every=1");  // a step that ran would print its line
    auto r = synth_test::run_process(lm, args, dir.path);
    CHECK(r.status == 1);
    CHECK(r.err.find("one training step needs about") != std::string::npos);
    CHECK(r.err.find("lower --batch=2000000000 or --seq=16") != std::string::npos);
    CHECK(r.err.find("step 1/") == std::string::npos);  // no training step ran
}

TEST_CASE("runs: --resume continues the checkpoint's seed; --overwrite starts afresh; --variants may not repeat") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    std::vector<std::string> args = tiny_sweep(dir.path);
    for (const char* a : {"--variants=V", "--seeds=2", "--save-every=4"}) args.push_back(a);
    REQUIRE(synth_test::run_process(lm, args, dir.path).status == 0);
    const std::string run = dir / "runs/lm-tiny-none/V-seed2", ck = run + "/checkpoint-step4.ckpt";
    std::vector<std::string> resume = tiny_sweep(dir.path);
    for (const std::string& a : {std::string("--variants=V"), "--resume=" + ck, std::string("--steps=12")})
        resume.push_back(a);
    resume.erase(std::find(resume.begin(), resume.end(), "--seeds=1,2"));
    // As if the run had started at another commit: resuming it says so, as a changed flag would.
    write_file_atomic(run + "/config.json", with_field(run + "/config.json", "git_commit", "0123abc"));
    auto r = synth_test::run_process(lm, resume, dir.path);  // no --seeds: the checkpoint's seed 2
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find("was started at commit 0123abc, this run is at commit") != std::string::npos);
    CHECK(r.err.find("was trained with --seed") == std::string::npos);  // the seed is the checkpoint's
    CHECK(parse_json_object(read_file(run + "/result.json"), "result.json").at("steps") == "12");
    CHECK(!std::filesystem::exists(dir / "runs/lm-tiny-none/V-seed1337"));
    resume.push_back("--seeds=3");
    auto wrong = synth_test::run_process(lm, resume, dir.path);
    CHECK(wrong.err.find("is a run of seed 2, not --seeds=3") != std::string::npos);
    resume.pop_back();

    // As if the run had started on another CPU, or at another thread count: refused before any
    // step, the directory as it was.
    for (const auto& [key, value, shown] : {std::array<std::string, 3>{"cpu", "Another CPU", "Another CPU, "},
                                            {"threads", "7", ", 7 threads vs "}}) {
        const std::string now = read_file(run + "/config.json"), result = read_file(run + "/result.json"),
                          metrics = read_file(run + "/metrics.jsonl");
        const std::string edited = with_field(run + "/config.json", key, value);
        write_file_atomic(run + "/config.json", edited);
        auto moved = synth_test::run_process(lm, resume, dir.path);
        INFO("stderr: ", moved.err);
        CHECK(moved.status == 1);
        CHECK(moved.err.find("was started on other footing than this run's") != std::string::npos);
        CHECK(moved.err.find(shown) != std::string::npos);
        CHECK(read_file(run + "/metrics.jsonl") == metrics);
        CHECK(read_file(run + "/config.json") == edited);
        CHECK(read_file(run + "/result.json") == result);
        CHECK(std::filesystem::exists(ck));
        write_file_atomic(run + "/config.json", now);
    }

    // --overwrite: the new run's directory keeps nothing of the old one (its step checkpoints).
    std::vector<std::string> again = tiny_sweep(dir.path);
    for (const char* a : {"--variants=V", "--seeds=2", "--overwrite", "--steps=2"}) again.push_back(a);
    REQUIRE(synth_test::run_process(lm, again, dir.path).status == 0);
    CHECK(!std::filesystem::exists(ck));
    CHECK(parse_json_object(read_file(run + "/result.json"), "result.json").at("steps") == "2");

    std::vector<std::string> twice = tiny_sweep(dir.path);
    twice.push_back("--variants=V,R,V");
    CHECK(synth_test::run_process(lm, twice, dir.path).err.find("--variants repeats V") != std::string::npos);
}

TEST_CASE("runs: a group names the variants' settings only where they differ from their defaults") {
    auto group = [](std::vector<std::string> args) {
        LmConfig model;
        Flags f("lm", "");
        model.bind(f);
        args.insert(args.begin(), "lm");
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        REQUIRE(f.parse((int)argv.size(), argv.data()));
        return run_group(f);
    };
    const std::string plain = group({}), unit = group({"--r-init=unit"}), same = group({"--r-init=normal"});
    CHECK(plain.find("d-model=") != std::string::npos);  // model flags are always there
    CHECK(plain.find("r-init") == std::string::npos);    // a setting at its default is not
    CHECK(unit.find("r-init=unit\n") != std::string::npos);
    CHECK(same == plain);
}

// The line of `md` that holds `marker` (a finding's bold head), which must be there.
static std::string line_with(const std::string& md, const std::string& marker) {
    const size_t at = md.find(marker);
    REQUIRE_MESSAGE(at != std::string::npos, marker, " is not in:\n", md);
    const size_t start = md.rfind('\n', at) == std::string::npos ? 0 : md.rfind('\n', at) + 1;
    return md.substr(start, md.find('\n', at) - start);
}

TEST_CASE("runs: the baselines' findings: accuracy in points for classifiers, loss against DynamicConv, no speed") {
    // FR beats Linformer by 2, 3 and 4 points over three seeds: one-sided p = 0.0176, Holm x 2.
    std::vector<SeedRun> runs;
    for (int seed = 1; seed <= 3; ++seed) {
        runs.push_back({"FR", seed, 1.0, 100, 10, 30.0 + (seed + 1)});
        runs.push_back({"Linformer", seed, 1.0, 100, 10, 30.0});
        runs.push_back({"FD", seed, 1.0, 100, 10, 30.0 + (seed == 2 ? 5.0 : -4.0)});  // mixed signs
    }
    std::string md = seeded_findings(runs, "validation accuracy");
    CHECK(md.find("FR vs Linformer, paired validation accuracy difference +3.00 points (95% CI +0.52 to +5.48) (one-sided)") !=
          std::string::npos);
    const size_t fr = md.find("FR vs Linformer"), fd = md.find("FD vs Linformer");
    REQUIRE((fr != std::string::npos && fd != std::string::npos));
    CHECK(md.find("confirmed at 3 seeds (Holm-adjusted p = 0.035, family of 2)", fr) < md.find('\n', fr));
    CHECK(md.find("inconclusive at 3 seeds", fd) < md.find('\n', fd));
    // Without accuracies (a language model) there is no accuracy finding.
    for (SeedRun& r : runs) r.score = NAN;
    CHECK(seeded_findings(runs, "validation accuracy").find("Linformer") == std::string::npos);
    // R against DynamicConv: a lower loss confirmed; fewer tokens/s judge nothing (speed comes
    // from the interleaved benchmarks).
    std::vector<SeedRun> lm;
    for (int seed = 1; seed <= 3; ++seed) {
        lm.push_back({"R", seed, 1.90 + 0.001 * seed, 100.0 + seed, 10});
        lm.push_back({"DynamicConv", seed, 2.00, 200.0, 10});
    }
    md = seeded_findings(lm);
    const size_t loss = md.find("R improves on DynamicConv");
    REQUIRE(loss != std::string::npos);
    CHECK(md.find("confirmed at 3 seeds", loss) < md.find('\n', loss));
    CHECK(md.find("faster than") == std::string::npos);
    CHECK(md.find("Speed (finding 5) is not judged from these runs") != std::string::npos);
}

TEST_CASE("runs: while V is at a constant answer's loss, the findings are withheld") {
    // Every variant at ln 2 on a balanced binary task: a tie that would read as "competitive".
    std::vector<SeedRun> runs;
    for (int seed = 1; seed <= 3; ++seed)
        for (const char* v : {"V", "R", "D", "FR"}) runs.push_back({v, seed, 0.6932, v[0] == 'R' ? 130.0 + seed : 100.0, 10, 50.0});
    std::string md = seeded_findings(runs, "validation accuracy", std::log(2.0));
    CHECK(md.find("No findings") != std::string::npos);
    CHECK(md.find("competitive with V") == std::string::npos);
    CHECK(md.find("D is about as good as R") == std::string::npos);
    // Once V learns (its loss 10% below chance) the findings are judged again.
    for (SeedRun& r : runs)
        if (r.variant == "V") r.loss = 0.62;
    md = seeded_findings(runs, "validation accuracy", std::log(2.0));
    CHECK(md.find("No findings") == std::string::npos);
    CHECK(md.find("competitive with V") != std::string::npos);
    // Without a chance level (a language model) nothing is withheld.
    for (SeedRun& r : runs) r.loss = 0.6932;
    CHECK(seeded_findings(runs, "validation accuracy").find("competitive with V") != std::string::npos);
}

TEST_CASE("runs: a finding pairs only seeds whose two runs share CPU, kernel, precision, provider and threads") {
    // Seed 3's V ran on another CPU: its pair is refused and named.
    const Footing a{"CPU A", "Haswell", "fp32", "openblas-fp32", "1", "abc"};
    Footing b = a;
    b.cpu = "CPU B";
    std::vector<SeedRun> runs;
    for (int seed = 1; seed <= 3; ++seed) {
        runs.push_back({"R", seed, 2.01, 100, 10, NAN, a});
        runs.push_back({"V", seed, 2.00, 100, 10, NAN, seed == 3 ? b : a});
    }
    std::string md = seeded_findings(runs);
    const std::string line = line_with(md, "Trainable R is competitive with V**");
    CHECK(line.find("at 2 seeds") != std::string::npos);
    CHECK(line.find("1 pair left out, whose two runs differ in footing (seed 3: CPU A, OpenBLAS kernel Haswell, fp32, "
                    "openblas-fp32, 1 thread vs CPU B,") != std::string::npos);
    // An unknown CPU does not pair with a known one, though everything else agrees.
    for (SeedRun& r : runs)
        if (r.variant == "V") r.footing = footing_of(JsonObject{});
    for (SeedRun& r : runs)
        if (r.variant == "V") r.footing.blas_kernel = "Haswell", r.footing.threads = "1";
    md = seeded_findings(runs);
    CHECK(md.find("R vs V: not compared. 3 pairs left out") != std::string::npos);
}

TEST_CASE("runs: the report names each run's machine, and each variant's when the runs span several") {
    auto run = [](const std::string& variant, int seed, const std::string& cpu, const std::string& kernel) {
        JsonObject r, c;
        r.text("variant", variant);
        r.integer("seed", seed);
        r.integer("params", 10);
        r.number("val_loss", 2.0, 4);
        r.integer("tok_s", variant == "R" ? 150 : 100);
        r.text("data_hash", "0123456789abcdef");
        r.text("group", "d-model=16\n");
        if (!cpu.empty()) c.text("cpu", cpu);
        c.text("blas_kernel", kernel);
        c.text("gemm_provider", "openblas-fp32");
        return RunRecord{variant + std::to_string(seed), r, c};
    };
    std::vector<RunRecord> runs;
    for (int seed = 1; seed <= 2; ++seed) {
        runs.push_back(run("V", seed, "", "Cooperlake"));  // from before config.json named the CPU
        runs.push_back(run("R", seed, "AMD EPYC (family 26, model 2)", "Haswell"));
    }
    ScratchDir dir;
    ReportSpec spec;
    spec.title = "t";
    spec.metrics = {"val_loss", "tok_s"};
    spec.speed_key = "tok_s";
    write_report(runs, spec, dir / "t");
    const std::string md = read_file(dir / "t.md"), csv = read_file(dir / "t.csv");
    CHECK(csv.find("run,machine,") == 0);
    CHECK(csv.find("R1,\"AMD EPYC (family 26, model 2), OpenBLAS kernel Haswell\",") != std::string::npos);  // quoted: commas
    CHECK(csv.find("V1,OpenBLAS kernel Cooperlake,") != std::string::npos);
    CHECK(md.find("ran on 2 machines") != std::string::npos);
    CHECK(md.find("| machines |") != std::string::npos);
    CHECK(md.find("| AMD EPYC (family 26, model 2), OpenBLAS kernel Haswell |") != std::string::npos);
    CHECK(md.find("R vs V: not compared. 2 pairs left out") != std::string::npos);
    CHECK(md.find("2 of 4 runs predate config.json's cpu field") != std::string::npos);
    // On one machine: no column, and the pairs are compared.
    runs.erase(std::remove_if(runs.begin(), runs.end(), [](const RunRecord& r) { return r.dir[0] == 'V'; }), runs.end());
    for (int seed = 1; seed <= 2; ++seed) runs.push_back(run("V", seed, "AMD EPYC (family 26, model 2)", "Haswell"));
    write_report(runs, spec, dir / "u");
    const std::string one = read_file(dir / "u.md");
    CHECK(one.find("machines") == std::string::npos);
    CHECK(one.find("competitive with V**: R vs V, paired validation loss difference +0.0000 nats") != std::string::npos);
    CHECK(one.find("faster") == std::string::npos);
}


TEST_CASE("runs: a task with a score (translation's BLEU) is judged on it, the loss beside") {
    // R's BLEU 1, 2, 3 points below V's: -2.00 (95% CI -4.48 to +0.48), not within 0.25 BLEU.
    std::vector<SeedRun> runs;
    for (int seed = 1; seed <= 3; ++seed) {
        runs.push_back({"V", seed, 2.00, 100, 10, 34.0});
        runs.push_back({"R", seed, 2.01, 100, 9, 34.0 - seed});
    }
    const std::string md = seeded_findings(runs, "validation BLEU");
    const std::string line = line_with(md, "R vs V, paired validation BLEU");
    CHECK(line.find("difference -2.00 BLEU (95% CI -4.48 to +0.48), margin +-0.25 BLEU (TOST)") != std::string::npos);
    CHECK(line.find("inconclusive at 3 seeds") != std::string::npos);
    CHECK(line.find("Paired validation loss difference: +0.0100 nats") != std::string::npos);
    // Without scores (runs that have none) the loss is the measure, within 0.02 nats: confirmed.
    for (SeedRun& x : runs) x.score = NAN;
    const std::string loss = line_with(seeded_findings(runs, "validation BLEU"), "R vs V, paired validation loss");
    CHECK(loss.find("BLEU") == std::string::npos);
    CHECK(loss.find("confirmed at 3 seeds") != std::string::npos);
}

TEST_CASE("runs: finding 6 tests each H > 1 against one head, paired per seed, one-sided") {
    // R: 0.04 nats better at H = 4 on every seed (confirmed); D: worse at both H (refuted); V: mixed.
    std::map<int, std::vector<SeedRun>> by_heads;
    for (int seed = 1; seed <= 3; ++seed) {
        const double jitter = 0.001 * seed;
        by_heads[1].push_back({"R", seed, 2.0 + jitter, 100, 10});
        by_heads[4].push_back({"R", seed, 1.96 + jitter, 100, 10});
        by_heads[8].push_back({"R", seed, 2.0 + 2 * jitter, 100, 10});
        by_heads[1].push_back({"D", seed, 2.0, 100, 10});
        by_heads[4].push_back({"D", seed, 2.1 + jitter, 100, 10});
        by_heads[8].push_back({"D", seed, 2.2 + jitter, 100, 10});
        by_heads[1].push_back({"V", seed, 2.0, 100, 10});
        by_heads[4].push_back({"V", seed, seed == 2 ? 2.1 : 1.9, 100, 10});
    }
    const std::string md = heads_findings(by_heads);
    auto line_of = [&](const std::string& v) { return line_with(md, "**6. " + v + " needs several heads**"); };
    CHECK(line_of("R").find("H=4 -0.0400 nats") != std::string::npos);
    CHECK(line_of("R").find("H=4 -0.0400 nats (95% CI -0.0400 to -0.0400): confirmed at 3 seeds") != std::string::npos);
    CHECK(line_of("D").find("H=4 +0.1020 nats (95% CI +0.0995 to +0.1045): refuted at 3 seeds") != std::string::npos);
    CHECK(line_of("V").find("inconclusive at 3 seeds") != std::string::npos);
    CHECK(line_of("V").find("H=8") == std::string::npos);  // V did not run with 8 heads
    // Without one head there is nothing to compare against.
    by_heads.erase(1);
    CHECK(heads_findings(by_heads).empty());
}

TEST_CASE("runs: the placement ablation compares every placement of a variant with V, paired per seed") {
    std::map<std::string, std::vector<SeedRun>> by;
    for (int seed = 1; seed <= 3; ++seed) {
        const double j = 0.001 * seed;
        by["both"].push_back({"V", seed, 2.0 + j, 100, 10});
        by["both"].push_back({"R", seed, 2.1 + j, 100, 10});      // +5%: worse
        by["encoder"].push_back({"R", seed, 1.9 + j, 100, 10});   // -5%: better
        by["decoder"].push_back({"R", seed, seed == 2 ? 2.1 : 1.9, 100, 10});  // mixed
    }
    const std::string md = placement_findings(by);
    auto line_of = [&](const std::string& head) { return line_with(md, "**" + head + "** vs V"); };
    CHECK(line_of("R in encoder and decoder").find("worse than V at 3 seeds") != std::string::npos);
    CHECK(line_of("R in the encoder only").find("better than V at 3 seeds") != std::string::npos);
    CHECK(line_of("R in the decoder only").find("no difference resolved at 3 seeds") != std::string::npos);
    CHECK(md.find("**V in") == std::string::npos);  // V is the reference, not a row
    // Decoder only against encoder only: +10.4% at seed 2, -0.05% and -0.16% at 1 and 3: unresolved.
    CHECK(line_with(md, "**R in the decoder only** vs in the encoder only").find("no difference resolved at 3 seeds") !=
          std::string::npos);
    for (SeedRun& r : by["decoder"]) r.loss = 2.0 + 0.001 * r.seed;  // ~+5% on every seed
    CHECK(line_with(placement_findings(by), "**R in the decoder only** vs in the encoder only")
              .find("the decoder costs more at 3 seeds") != std::string::npos);
    by["both"].erase(by["both"].begin());           // seed 1 of V gone: two pairs remain
    CHECK(placement_findings(by).find("at 2 seeds") != std::string::npos);
    by.erase("both");
    CHECK(placement_findings(by).empty());  // without V there is nothing to compare against
}

TEST_CASE("runs: the bf16 quality check compares each variant's bf16 runs with its fp32 runs against a 1% bar") {
    std::map<std::string, std::vector<SeedRun>> by;
    for (int seed = 1; seed <= 3; ++seed) {
        const double j = 0.001 * seed;
        for (const char* v : {"V", "R", "D"}) by["fp32"].push_back({v, seed, 2.0 + j, 100, 10});
        by["bf16"].push_back({"V", seed, 2.0 + j + 0.002, 100, 10});  // +0.1%: within
        by["bf16"].push_back({"R", seed, 2.1 + j, 100, 10});          // +5%: outside
        by["bf16"].push_back({"D", seed, seed == 2 ? 2.06 : 1.98 + j, 100, 10});  // straddles 1%
    }
    const std::string md = precision_findings(by);
    auto line_of = [&](const std::string& v) { return line_with(md, "**" + v + "** bf16 vs fp32"); };
    CHECK(line_of("V").find("within 1% at 3 seeds") != std::string::npos);
    CHECK(line_of("R").find("outside 1% at 3 seeds") != std::string::npos);
    CHECK(line_of("D").find("not resolved against 1% at 3 seeds") != std::string::npos);
    // One seed: the difference itself against the bar, no interval.
    std::map<std::string, std::vector<SeedRun>> one = {{"fp32", {{"V", 1, 2.0, 100, 10}}}, {"bf16", {{"V", 1, 2.01, 100, 10}}}};
    CHECK(line_with(precision_findings(one), "**V**").find("+0.50%: within 1% at 1 seed") != std::string::npos);
    one.erase("fp32");
    CHECK(precision_findings(one).empty());
}

TEST_CASE("runs: a one-flag ablation compares each variant with itself at the reference setting, paired per seed") {
    std::map<std::string, std::vector<SeedRun>> by;
    for (int seed = 1; seed <= 3; ++seed) {
        const double j = 0.001 * seed;
        for (const char* v : {"V", "R", "D"}) by["0.1"].push_back({v, seed, 2.0 + j, 100, 10});
        by["0"].push_back({"R", seed, 1.9 + j, 100, 10});                        // -5%: lower
        by["0"].push_back({"V", seed, 2.1 + j, 100, 10});                        // +5%: higher
        by["0"].push_back({"D", seed, seed == 2 ? 2.1 : 1.95, 100, 10});         // mixed
        by["0"].push_back({"FR", seed, 2.0, 100, 10});                           // no partner: no line
    }
    // With no group at the flag's default, the largest group is the reference: 0.1, 13 runs to 12.
    by["0.1"].push_back({"Rfix", 1, 2.5, 100, 10});
    by["0.1"].push_back({"Rfix", 2, 2.5, 100, 10});
    by["0.1"].push_back({"Rfix", 3, 2.5, 100, 10});
    by["0.1"].push_back({"FD", 1, 2.5, 100, 10});
    const std::string md = flag_findings("--weight-decay", by);
    auto line_of = [&](const std::string& v) { return line_with(md, "**" + v + "** at --weight-decay=0 vs at --weight-decay=0.1"); };
    CHECK(line_of("R").find("difference -5.00% (95% CI") != std::string::npos);
    CHECK(line_of("R").find("lower at 3 seeds") != std::string::npos);
    CHECK(line_of("V").find("higher at 3 seeds") != std::string::npos);
    CHECK(line_of("D").find("no difference resolved at 3 seeds") != std::string::npos);
    CHECK(md.find("**FR**") == std::string::npos);
    // A group at the flag's default is the reference, whatever its size.
    std::map<std::string, std::vector<SeedRun>> init = {{"", {{"R", 1, 2.0, 100, 10}, {"R", 2, 2.0, 100, 10}}},
                                                         {"unit", {{"R", 1, 2.2, 100, 10}, {"R", 2, 2.2, 100, 10}, {"V", 1, 2.0, 100, 10}}}};
    CHECK(line_with(flag_findings("--r-init", init), "**R** at --r-init=unit vs at --r-init at its default")
              .find("+10.00% (95% CI 10.00% to 10.00%): higher at 2 seeds") != std::string::npos);
    init.erase("");
    CHECK(flag_findings("--r-init", init).empty());
}

TEST_CASE("runs: a report labels each group by the flags that differ, a left-out setting as at its default") {
    auto run = [](const std::string& variant, int seed, double loss, const std::string& extra) {
        JsonObject r;
        r.text("variant", variant);
        r.integer("seed", seed);
        r.integer("params", 10);
        r.number("val_loss", loss, 4);
        r.text("data_hash", "0123456789abcdef");
        r.text("group", "d-model=16\nsteps=8\n" + extra);
        return RunRecord{variant + std::to_string(seed) + extra, r};
    };
    std::vector<RunRecord> runs;
    for (int seed = 1; seed <= 2; ++seed) {
        runs.push_back(run("Rfix", seed, 2.0, ""));
        runs.push_back(run("Rfix", seed, 2.2, "r-init=unit\n"));
    }
    ScratchDir dir;
    ReportSpec spec;
    spec.title = "t";
    spec.metrics = {"val_loss"};
    write_report(runs, spec, dir / "t");
    const std::string md = read_file(dir / "t.md");
    CHECK(md.find("\n## r-init at its default\n") != std::string::npos);
    CHECK(md.find("\n## r-init=unit\n") != std::string::npos);
    CHECK(md.find("Settings of every run: d-model=16, steps=8.") != std::string::npos);
    // A key that never applies to these runs stays out of the settings line.
    spec.inapplicable = {"steps"};
    write_report(runs, spec, dir / "u");
    CHECK(read_file(dir / "u.md").find("Settings of every run: d-model=16.") != std::string::npos);
}

#include "runs/run_dir.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "engine/gemm/blas.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "base/error.h"
#include "base/flags.h"
#include "base/io.h"
#include "runs/footing.h"
#include "runs/run_claim.h"
#include "train/trainer.h"

namespace synth {

namespace fs = std::filesystem;

std::vector<int> parse_seeds(const std::string& seeds, int default_seed) {
    if (seeds.empty()) return {default_seed};
    std::vector<int> out;
    for (const std::string& s : split_list(seeds, "--seeds")) {
        char* end = nullptr;
        const long v = std::strtol(s.c_str(), &end, 10);
        SYNTH_CHECK(*end == '\0' && v >= 0 && v <= 2147483647L, "--seeds: '", s, "' is not a seed (an integer >= 0)");
        SYNTH_CHECK(std::find(out.begin(), out.end(), (int)v) == out.end(), "--seeds repeats ", v);
        out.push_back((int)v);
    }
    return out;
}

// A run that starts afresh in a directory an earlier (overwritten, or killed and not resumed)
// run used removes that run's files, so no checkpoint, hypothesis or metric of it survives
// beside the new run's. Files synth does not write are left alone.
static void clear_run_dir(const std::string& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        const bool ours = n == "config.json" || n == "metrics.jsonl" || n == "result.json" || n == "hyps" ||
                          (n.size() > 5 && n.compare(n.size() - 5, 5, ".ckpt") == 0);
        if (ours) fs::remove_all(e.path(), ec);
    }
}

void RunsConfig::bind(Flags& f, const std::string& binary) {
    f.add("seeds", &seeds, "comma-separated seeds, one run per (variant, seed) (default: --seed)");
    f.add("runs-dir", &runs_dir, "runs go to <runs-dir>/" + binary + "-<data>-<preset>[-<tag>]/<variant>-seed<seed>/");
    f.add("run-dir", &run_dir, "the directory of this one run (one variant, one seed), instead of --runs-dir's");
    f.add("take-over", &take_over, "take over a run directory whose claim.json names a writer on another host "
          "that is gone (a stale claim of this host is taken over by itself)");
    f.add("overwrite", &overwrite, "replace the finished runs in the run directories of this invocation");
    f.add("report", &report, "merge the finished run directories given as arguments into --out.{csv,md}; no training");
    f.add("force", &force, "--report: merge runs of the same flags even if they saw different data");
    f.add("out", &out, "--report: the output stem, e.g. results/" + binary + "-<data>-full");
    f.add("baseline", &baseline, "--report: the variant every other is compared with in each group, in a Holm family "
          "of its own (docs/statistics.md)");
    f.add("verbose", &verbose, "also print every resolved flag before training, a line as each run starts, a "
          "progress line every 50 steps (--log-every) and each run's result as a JSON line on stdout (the flags and "
          "results are in the run directory: config.json, result.json, metrics.jsonl)");
}

std::vector<RunsConfig::Run> RunsConfig::plan(const std::string& sweep, const std::vector<std::string>& variants,
                                              int default_seed, bool resuming, const std::string& subdir) const {
    const std::vector<int> list = parse_seeds(seeds, default_seed);
    for (size_t i = 0; i < variants.size(); ++i)
        SYNTH_CHECK(std::find(variants.begin(), variants.begin() + i, variants[i]) == variants.begin() + i,
                    "--variants repeats ", variants[i]);
    SYNTH_CHECK(run_dir.empty() || variants.size() * list.size() == 1, "--run-dir names one run, but --variants and "
                "--seeds give ", variants.size() * list.size(), " (use --runs-dir for several)");
    SYNTH_CHECK(!resuming || list.size() == 1, "--resume continues one run, but --seeds names ", list.size());
    std::vector<Run> runs;
    for (const std::string& v : variants)
        for (int seed : list) {
            const std::string dir = run_dir.empty() ? run_dir_path(runs_dir, sweep, v, seed) : run_dir;
            // One writer per run directory (run_claim.h), claimed before anything in it is touched;
            // with several MPI ranks, rank 0 alone claims and writes it.
            if (dist::is_writer()) {
                ensure_writable_dir(dir);
                claim_run_dir(dir, take_over);
            }
            check_run_dir_free(dir, resuming, overwrite);
            if (dist::is_writer()) {
                if (!resuming) clear_run_dir(dir);
                if (!subdir.empty()) ensure_writable_dir(dir + "/" + subdir);
                sweep_stale_temporaries(dir);  // left by a run killed mid-write
            }
            runs.push_back({v, seed, dir});
        }
    return runs;
}

int RunsConfig::resumed_seed(const Checkpoint& ck, const std::string& path, bool seed_given, int seed) const {
    const std::map<std::string, std::string> config = config_map(ck.config);
    if (!config.count("seed")) return seed;  // not a training checkpoint: check_resume says so
    const std::vector<int> list = parse_seeds(config.at("seed"), 0);
    SYNTH_CHECK(list.size() == 1, "checkpoint ", path, " has no single seed in its config");
    SYNTH_CHECK(!seed_given || seed == list[0], "checkpoint ", path, " is a run of seed ", list[0], ", not --seed=", seed);
    SYNTH_CHECK(seeds.empty() || parse_seeds(seeds, 0) == list, "checkpoint ", path, " is a run of seed ", list[0],
                ", not --seeds=", seeds);
    return list[0];
}

void RunsConfig::execute(const std::vector<Run>& runs, int& seed, const Flags& f, const std::string& binary,
                         int threads, const std::vector<std::string>& group_extra,
                         const std::function<JsonObject(const Run&)>& train, const std::string& sweep,
                         const ReportFn& report) const {
    std::vector<std::string> done;
    for (const Run& run : runs) {
        seed = run.seed;
        const std::string group = run_group(f, group_extra);
        write_run_config(run.dir, f, binary, threads, group);
        JsonObject result = train(run);
        result.text("group_hash", short_hash(group));
        result.text("group", group);
        write_result(run.dir, result);
        if (dist::is_writer() && verbose) {
            std::printf("%s\n", result.dump().c_str());
            std::fflush(stdout);
        }
        done.push_back(run.dir);
    }
    if (!run_dir.empty() || !dist::is_writer()) return;
    const std::string stem = runs_dir + "/" + sweep + "/report";
    check_report_outputs(stem, done);
    report(done, stem, false);
    std::fprintf(stderr, "%s", read_file(stem + ".md").c_str());
}

void check_report_outputs(const std::string& stem, const std::vector<std::string>& dirs) {
    std::vector<std::string> inputs;
    for (const std::string& d : dirs)
        for (const char* f : {"/result.json", "/config.json", "/metrics.jsonl"}) inputs.push_back(d + f);
    for (const char* ext : {".csv", "-budget.csv", ".md"}) check_output_path(stem + ext, inputs, "--out");
}

bool run_report_step(const RunsConfig& c, const std::vector<std::string>& dirs, const RunsConfig::ReportFn& report) {
    if (!c.report) return false;
    SYNTH_CHECK(!c.out.empty(), "--report needs --out=STEM (e.g. --out=results/<name>)");
    SYNTH_CHECK(!dirs.empty(), "--report needs the run directories to merge as arguments");
    check_report_outputs(c.out, dirs);
    report(dirs, c.out, c.force);
    std::printf("%s", read_file(c.out + ".md").c_str());
    return true;
}

std::string run_dir_path(const std::string& runs_dir, const std::string& sweep, const std::string& variant, int seed) {
    return runs_dir + "/" + sweep + "/" + variant + "-seed" + std::to_string(seed);
}

std::string run_group(const Flags& f, const std::vector<std::string>& extra) {
    const std::map<std::string, std::string> values = config_map(f.dump());
    // An attention variant's setting at its registered default (the value an older config
    // without it means) is left out, so that registering a new variant keeps every group.
    std::string out;
    for (FlagRole role : {FlagRole::Model, FlagRole::Training})
        for (const std::string& k : f.names(role))
            if (k != "seed" && !f.at_missing_default(k)) out += k + "=" + values.at(k) + "\n";
    for (const std::string& k : extra) out += k + "=" + values.at(k) + "\n";
    return out;
}

// The commit of the checkout the binary was built in (build/<bin> -> ..), or "unknown".
static std::string git_commit() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return "unknown";
    const std::string cmd = "git -C '" + exe.parent_path().parent_path().string() +
                            "' rev-parse HEAD 2>/dev/null && git -C '" + exe.parent_path().parent_path().string() +
                            "' status --porcelain --untracked-files=no 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return "unknown";
    std::string out;
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
    if (out.size() < 40) return "unknown";
    return out.substr(0, 40) + (out.size() > 41 ? "-dirty" : "");
}

void check_run_dir_free(const std::string& dir, bool resuming, bool overwrite) {
    SYNTH_CHECK(resuming || overwrite || !fs::exists(dir + "/result.json"), "run directory ", dir,
                " already holds a finished run (its result.json); give another --tag, --runs-dir or --run-dir, "
                "or --overwrite to replace it");
}

void write_run_config(const std::string& dir, const Flags& f, const std::string& binary, int threads,
                      const std::string& group) {
    const std::string commit = git_commit();
    JsonObject o;
    o.text("binary", binary);
    o.text("git_commit", commit);
    o.text("cpu", cpu_name());
    o.text("blas_kernel", blas_kernel_name());
    o.text("precision", config_map(f.dump()).at("precision"));
    o.text("gemm_provider", provider_name(gemm_provider()));
    o.integer("threads", threads);  // per rank
    o.integer("ranks", dist::world());
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    o.text("host", host);
    o.text("group_hash", short_hash(group));
    for (const auto& [k, v] : config_map(f.dump())) o.text("flag." + k, v);

    // A config.json already here is a resumed run's (an overwritten run's directory was cleared).
    const std::string path = dir + "/config.json";
    if (fs::exists(path)) {
        JsonObject old;
        try {
            old = parse_json_object(read_file(path), path);
        } catch (const Error&) {  // unreadable: it is replaced below, and nothing can be compared
        }
        // Resumed on other footing, a run would be neither's: its steps before the checkpoint
        // rounded one way, those after another, and config.json would name only the second, so
        // the report would pair it as this machine's run (docs/statistics.md, "4. Equal
        // footing"). Every rank refuses before any step, and nothing in the directory is touched.
        std::string why;
        SYNTH_CHECK(old.fields.empty() || same_footing(footing_of(old), footing_of(o), &why), "run directory ", dir,
                    " was started on other footing than this run's (", why, "): resumed, it would continue with "
                    "other rounding, and the report would pair it as this machine's run. Resume it where it "
                    "started, or start it afresh here with --overwrite");
        // A run resumed by other code will not reproduce the uninterrupted run, as a changed flag would not.
        if (dist::is_writer() && old.has("git_commit") && old.at("git_commit") != commit)
            std::fprintf(stderr, "warning: %s was started at commit %s, this run is at commit %s: it will not reproduce "
                         "the uninterrupted run unless the change left its numbers alone\n", dir.c_str(),
                         old.at("git_commit").c_str(), commit.c_str());
    }
    // A finished run's result.json stays until the resumed run's replaces it (write_result,
    // atomic), so a kill in between loses nothing; until then config.json is the new run's, which
    // the report tells apart (check_run_record).
    if (dist::is_writer()) write_file_atomic(path, o.dump() + "\n");
}

void write_metrics(const std::string& dir, const std::vector<CurveRow>& curve) {
    if (!dist::is_writer()) return;
    std::string out;
    for (const CurveRow& c : curve) {
        JsonObject o;
        o.integer("step", c.step);
        o.number("train_loss", c.train_loss);
        if (!std::isnan(c.val_loss)) o.number("val_loss", c.val_loss);
        if (!std::isnan(c.val_acc)) o.number("val_acc", c.val_acc);
        o.number("lr", c.lr);
        out += o.dump() + "\n";
    }
    write_file_atomic(dir + "/metrics.jsonl", out);
}

std::vector<CurveRow> read_metrics(const std::string& dir, int64_t until, const std::string& name) {
    std::map<int64_t, CurveRow> by_step;
    const std::string path = dir + "/metrics.jsonl";
    if (fs::exists(path)) {
        std::istringstream is(read_file(path));
        int line_no = 0;
        for (std::string line; std::getline(is, line);) {
            ++line_no;
            const JsonObject o = parse_json_object(line, path + ":" + std::to_string(line_no));
            const int64_t s = (int64_t)o.num("step");
            if (s >= 1 && s <= until)
                by_step[s] = CurveRow{s, o.num("train_loss"), o.has("val_loss") ? o.num("val_loss") : NAN, o.num("lr"),
                                      o.has("val_acc") ? o.num("val_acc") : NAN};
        }
    }
    if ((int64_t)by_step.size() != until)
        std::fprintf(stderr, "[%s] warning: %s has %zu of the %lld rows before the checkpoint; the curve will have a gap\n",
                     name.c_str(), path.c_str(), by_step.size(), (long long)until);
    std::vector<CurveRow> rows;
    for (auto& [s, r] : by_step) rows.push_back(r);
    return rows;
}

void write_result(const std::string& dir, const JsonObject& result) {
    if (!dist::is_writer()) return;
    write_file_atomic(dir + "/result.json", result.dump() + "\n");
}

std::string checkpoint_prefix(const TrainConfig& c, const std::string& dir, const std::string& sweep,
                              const std::string& variant, int seed) {
    return c.checkpoint_dir.empty() ? dir + "/checkpoint"
                                    : c.checkpoint_dir + "/" + sweep + "-" + variant + "-seed" + std::to_string(seed);
}

TrainResult train_in_run_dir(Trainer& trainer, const TrainTask& task, int64_t total, const std::string& dir,
                             const Checkpoint* resume, const std::string& resume_path, const std::string& name) {
    trainer.before_save = [&](int64_t) { write_metrics(dir, trainer.curve); };
    if (resume) {
        trainer.resume(*resume, resume_path);
        trainer.curve = read_metrics(dir, trainer.start_step(), name);
    }
    const TrainResult t = trainer.run(task, total);
    write_metrics(dir, trainer.curve);
    return t;
}

// The name of the running executable (build/lm -> "lm"), "" where it cannot be read.
static std::string this_binary() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? "" : exe.filename().string();
}

namespace {

// A result.json value that must be a number in [lo, hi] (an integer if `whole`); `null` (what
// JsonObject::number writes for NaN, a diverged run's loss) passes where `null_ok`.
void check_value(const RunRecord& r, const std::string& key, double lo, double hi, bool whole, bool null_ok = false) {
    if (!r.result.has(key)) return;
    const std::string& s = r.result.at(key);
    if (null_ok && s == "null") return;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    SYNTH_CHECK(!s.empty() && *end == '\0' && std::isfinite(v) && v >= lo && v <= hi && (!whole || v == std::floor(v)),
                "report: run ", r.dir, ": result.json has ", key, " = ", s, ", not ", whole ? "an integer" : "a number",
                " in [", lo, ", ", hi, "]");
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

void check_run_record(const RunRecord& r, const std::string& binary) {
    const JsonObject& res = r.result;
    for (const char* key : {"variant", "seed", "params", "group", "group_hash"})
        SYNTH_CHECK(res.has(key), "report: run ", r.dir, ": result.json has no '", key, "' (not a finished run of ",
                    binary.empty() ? "synth" : binary, "?)");
    SYNTH_CHECK(!res.at("variant").empty(), "report: run ", r.dir, ": result.json has an empty variant");
    check_value(r, "seed", 0, 2147483647.0, true);
    check_value(r, "params", 1, 1e15, true);
    for (const char* key : {"steps", "best_step", "truncated"}) check_value(r, key, 0, 1e15, true);
    SYNTH_CHECK(short_hash(res.at("group")) == res.at("group_hash"), "report: run ", r.dir,
                ": result.json's group_hash ", res.at("group_hash"), " is not the hash of its group (edited by hand?)");
    for (const auto& [k, v] : res.fields) {
        if (ends_with(k, "_loss") || k == "val_ppl" || k == "test_ppl" || ends_with(k, "_bpc"))
            check_value(r, k, 0, 1e30, false, true);
        else if (ends_with(k, "_acc")) check_value(r, k, 0, 1, false, true);
        else if (k.find("bleu") != std::string::npos) check_value(r, k, 0, 100, false, true);
        else if (ends_with(k, "_s") || ends_with(k, "_tok_s")) check_value(r, k, 0, 1e30, false, true);
    }
    ClaimInfo claim;
    if (read_claim(r.dir, claim)) {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        // This process's own claim is the sweep reporting the runs it has just finished.
        SYNTH_CHECK(!(claim.host == host && claim.pid > 0 && claim.pid != (long)getpid() &&
                      (kill((pid_t)claim.pid, 0) == 0 || errno == EPERM)),
                    "report: run ", r.dir, " is being written by ", claim.describe(),
                    " (a resumed or overwritten run): report it when that run has ended");
    }
    const JsonObject& c = r.config;
    if (c.fields.empty()) return;  // a run from before config.json: nothing to compare
    SYNTH_CHECK(binary.empty() || !c.has("binary") || c.at("binary") == binary, "report: run ", r.dir, " is a run of ",
                c.at("binary"), " (its config.json), not of ", binary, ": report it with build/", c.at("binary"));
    SYNTH_CHECK(!c.has("group_hash") || c.at("group_hash") == res.at("group_hash"), "report: run ", r.dir,
                ": config.json (group ", c.at("group_hash"), ") and result.json (group ", res.at("group_hash"),
                ") are of different runs: a run restarted in this directory and not finished?");
    SYNTH_CHECK(!c.has("flag.seed") || c.at("flag.seed") == res.at("seed"), "report: run ", r.dir, ": config.json has seed ",
                c.has("flag.seed") ? c.at("flag.seed") : "", " but result.json seed ", res.at("seed"));
    if (c.has("flag.variants")) {
        const std::vector<std::string> vs = split_list(c.at("flag.variants"));
        SYNTH_CHECK(std::find(vs.begin(), vs.end(), res.at("variant")) != vs.end(), "report: run ", r.dir,
                    ": result.json's variant ", res.at("variant"), " is not among config.json's --variants=",
                    c.at("flag.variants"));
    }
}

std::vector<RunRecord> find_runs(const std::vector<std::string>& paths, const std::string& binary_arg) {
    const std::string binary = binary_arg.empty() ? this_binary() : binary_arg;
    std::vector<std::string> dirs;
    for (const std::string& p : paths) {
        SYNTH_CHECK(fs::is_directory(p), "report: '", p, "' is not a directory of runs");
        if (fs::exists(p + "/result.json")) dirs.push_back(p);
        else
            for (const auto& e : fs::recursive_directory_iterator(p))
                if (e.is_regular_file() && e.path().filename() == "result.json") dirs.push_back(e.path().parent_path());
    }
    std::sort(dirs.begin(), dirs.end());
    dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
    SYNTH_CHECK(!dirs.empty(), "report: no finished run (a directory with result.json) under the given paths");
    std::vector<RunRecord> runs;
    for (const std::string& d : dirs) {
        const std::string config = d + "/config.json";
        runs.push_back({d, parse_json_object(read_file(d + "/result.json"), d + "/result.json"),
                        fs::exists(config) ? parse_json_object(read_file(config), config) : JsonObject()});
        check_run_record(runs.back(), binary);
    }
    return runs;
}

}  // namespace synth

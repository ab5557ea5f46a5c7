// run_dir.h: the directory of one training run, which holds everything the run writes:
//
//   runs/<sweep>/<variant>-seed<seed>/
//     config.json    every resolved flag, and the facts around them: binary, git commit, CPU,
//                    OpenBLAS kernel, precision, GEMM provider, threads, host
//     metrics.jsonl  one object per step: {"step", "train_loss", "lr"} and "val_loss" when evaluated
//     checkpoint-step<N>.ckpt (+ .best.ckpt)  resumable checkpoints (--save-every)
//     final.ckpt     the model to use (build/lm: the last parameters; build/mt: the best), and
//                    best.ckpt (build/lm: the parameters of the best validation loss)
//     result.json    the final metrics, written last: a finished run is a directory that has one
//
// With several MPI ranks (train/dist.h) rank 0 alone writes: the functions below that write
// return at once on the other ranks, which only read (a checkpoint to resume).
//
// A run writes only its own directory, so runs of a sweep never share a file, and it holds an
// exclusive claim on it while it lives (claim.json and a lock, runs/run_claim.h); committed
// tables are made from run directories by an explicit report step
// (`build/lm --report RUNS... --out=STEM`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/hash.h"
#include "base/json.h"
#include "train/trainer.h"

namespace synth {

class Flags;
struct Checkpoint;

// --seeds ("1,2,3", or empty for the single --seed) as integers; throws naming a bad entry.
std::vector<int> parse_seeds(const std::string& seeds, int default_seed);

// <runs_dir>/<sweep>/<variant>-seed<seed> (the variant's '+' kept: it is filesystem-safe).
std::string run_dir_path(const std::string& runs_dir, const std::string& sweep, const std::string& variant, int seed);

// The run's identity for grouping runs into a table: every Model and Training flag but the
// seed (an attention variant's setting only when it differs from its default, so that a new
// variant's settings leave existing groups as they were), and the `extra` flags that change the reported numbers without being either (mt's
// --epochs and decoding flags), as "key=value" lines; and a short hash of it.
std::string run_group(const Flags& f, const std::vector<std::string>& extra = {});

// Before a run starts in `dir`: a directory that already holds a finished run (result.json) is
// refused, so that nothing already written is lost, unless the run resumes it or `overwrite`.
void check_run_dir_free(const std::string& dir, bool resuming, bool overwrite);

void write_run_config(const std::string& dir, const Flags& f, const std::string& binary, int threads,
                      const std::string& group);
// metrics.jsonl from the trainer's curve, atomically.
void write_metrics(const std::string& dir, const std::vector<CurveRow>& curve);
// The rows for steps 1..until_step of a run's metrics.jsonl; warns if some are missing.
std::vector<CurveRow> read_metrics(const std::string& dir, int64_t until_step, const std::string& name);
void write_result(const std::string& dir, const JsonObject& result);

// Where a run's --save-every checkpoints go: <dir>/checkpoint, or with --checkpoint-dir
// <checkpoint_dir>/<sweep>-<variant>-seed<seed>, a name no other run shares.
std::string checkpoint_prefix(const TrainConfig& c, const std::string& dir, const std::string& sweep,
                              const std::string& variant, int seed);
// Trains to `total` steps in run directory `dir`, with metrics.jsonl written before every
// checkpoint (so that no checkpoint's curve lacks rows) and at the end. With `resume` (the
// checkpoint at resume_path), the trainer and the curve's earlier rows are restored first.
TrainResult train_in_run_dir(Trainer& trainer, const TrainTask& task, int64_t total, const std::string& dir,
                             const Checkpoint* resume, const std::string& resume_path, const std::string& name);

// The flags every runner shares for its run directories and the report step.
struct RunsConfig {
    std::string runs_dir = "runs", run_dir, seeds, out, baseline = "V";
    bool overwrite = false, report = false, force = false, take_over = false, verbose = false;

    void bind(Flags& f, const std::string& binary);
    // The (variant, seed) runs of an invocation, each with its directory: <runs_dir>/<sweep>/...,
    // or run_dir for a single run. Each directory is claimed for the rest of the process (one
    // writer per run directory, run_claim.h; --take-over). Checks before any work: --run-dir names one run, no finished
    // run is overwritten unless asked (or resumed), every directory (and `subdir` in it) is
    // writable; sweeps stale temporaries.
    struct Run {
        std::string variant;
        int seed;
        std::string dir;
    };
    std::vector<Run> plan(const std::string& sweep, const std::vector<std::string>& variants, int default_seed,
                          bool resuming, const std::string& subdir = "") const;
    // --resume continues the checkpoint's run, so its seed: the checkpoint's, which --seeds or
    // --seed may repeat but not contradict.
    int resumed_seed(const Checkpoint& ck, const std::string& path, bool seed_given, int seed) const;
    // Trains the planned runs in turn. For each: `seed` (the variable bound to --seed) becomes the
    // run's, so that the saved flags are its own; config.json is written; train(run) returns the
    // run's metrics, to which the run's group (see run_group, with `group_extra`) is added before
    // they are written as result.json, last, and printed as one JSON line. Then a sweep (not a
    // single --run-dir) gets its own report, <runs_dir>/<sweep>/report, printed to stderr.
    using ReportFn = std::function<void(const std::vector<std::string>&, const std::string&, bool)>;
    void execute(const std::vector<Run>& runs, int& seed, const Flags& f, const std::string& binary, int threads,
                 const std::vector<std::string>& group_extra, const std::function<JsonObject(const Run&)>& train,
                 const std::string& sweep, const ReportFn& report) const;
};

// The report's STEM.csv, STEM-budget.csv and STEM.md are output paths that destroy nothing (check_output_path):
// absent or regular files, none a file of the runs it reads, in a writable directory.
void check_report_outputs(const std::string& stem, const std::vector<std::string>& dirs);
// --report: merges the run directories given as arguments into `out` with `report(dirs, stem,
// force)` and prints the Markdown. Returns false when --report was not given.
bool run_report_step(const RunsConfig& c, const std::vector<std::string>& dirs, const RunsConfig::ReportFn& report);

struct RunRecord {
    std::string dir;
    JsonObject result;
    JsonObject config = {};  // its config.json; empty if the run has none
};
// The report trusts nothing it reads: a run's result.json has its identity (variant, seed,
// params, group and its hash), every value in range (seed an int >= 0, params >= 1, losses >= 0
// or null, accuracies in [0, 1], BLEU in [0, 100], speeds >= 0), no live writer holds the
// directory (claim.json), and its config.json (when there is one) is of the same run (group
// hash, seed, variant) and of `binary` (a cls run is refused in an lm report). Every error
// names the run directory.
void check_run_record(const RunRecord& r, const std::string& binary);
// The finished runs under `paths` (each a run directory, or a directory searched recursively),
// in path order, each checked by check_run_record against `binary` ("": the name of the
// running executable, build/lm -> "lm"). Throws if a path does not exist or no finished run is
// found.
std::vector<RunRecord> find_runs(const std::vector<std::string>& paths, const std::string& binary = "");

}  // namespace synth

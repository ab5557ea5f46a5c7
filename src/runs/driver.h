// driver.h: the sequence every runner shares, written once for every Task (task.h):
//
//   parse the flags -> --report (merge finished runs, no training) -> the task's command, if one
//   (--generate, --translate, --bench) -> presets, checks, threads -> resume's checkpoint, the
//   plan of runs and their directories -> data -> memory check -> per (variant, seed): build,
//   train (Trainer, trainer.h), save final.ckpt/best.ckpt, the task's metrics, result.json ->
//   the sweep's report.
//
// Everything that can fail fails in the first second, before any training.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/flags.h"
#include "runs/task.h"
#include "train/checkpoint.h"

namespace synth {

// A checkpoint's network, rebuilt for use (Driver::load_model).
struct LoadedModel {
    ParamStore store;
    std::unique_ptr<TaskModel> model;
    int64_t step = 0;     // the checkpoint's training step
    std::string variant;
};

class Driver {
public:
    explicit Driver(Task& task);
    // The whole sequence; returns the exit status.
    int run(int argc, char** argv);

    // For a task's commands:
    Flags& flags() { return f_; }
    const std::vector<std::string>& argv() const { return argv_; }  // the program's, its name first
    // Presets, derived defaults, every check, then threads and GEMM provider: returns
    // configure_compute()'s description.
    std::string prepare();
    // The network of checkpoint `path` (a run's final.ckpt, best.ckpt or a step checkpoint; a
    // task that keeps only the best takes only kept parameters): of this task's kind, shaped by
    // its Model flags, with its tokenizer's vocabulary.
    void load_model(LoadedModel& m, const std::string& path);

    // Fails before any allocation when training a batch of each of `variants` would not fit in
    // the available memory (check_training_memory, trainer.h); also for --bench.
    void check_memory(const std::vector<std::string>& variants) const;

    // The report of finished runs `dirs`: STEM.csv and STEM.md (run_report.h).
    void report(const std::vector<std::string>& dirs, const std::string& stem, bool force) const;

private:
    void apply_presets();
    void validate() const;
    std::string sweep_name() const;
    // The line that says which runs an invocation trains and where their directories are.
    std::string describe_runs(const std::vector<RunsConfig::Run>& runs, const std::vector<std::string>& variants) const;
    void check_model_kind(const Checkpoint& ck, const std::string& path) const;
    JsonObject train_run(const RunsConfig::Run& run, const Checkpoint* resume);
    int train(const std::string& compute);

    Task& task_;
    Flags f_;
    std::string config_;  // --config: a run directory's config.json to replay
    std::vector<std::string> argv_;
};

// The flags a preset table sets for `preset`, given the flags' current values (Flags::dump()).
// Throws for a preset the table lacks, or one none of whose rows apply.
std::map<std::string, std::string> preset_flags(const std::vector<PresetRow>& table, const std::string& preset,
                                                const Flags& f);
// The converged budget a run's preset documents (PresetRow::converged), from its config.json
// (the preset and the flags a row's condition reads); none for a run without one.
ConvergedBudget converged_budget(const std::vector<PresetRow>& table, const JsonObject& config);
// --help's list of presets: one entry per preset and per conditional row that sets flags.
std::string describe_preset_table(const std::vector<PresetRow>& table);

// A binary's main: the registered task `name`, run by the driver under cli_main (cli.h).
int run_task(const std::string& name, int argc, char** argv);

}  // namespace synth

// task.h: what a runner is. build/lm, build/mt and build/cls are each one Task run by one driver
// (driver.h). The task says what differs between them: its flags and presets, its data, its
// network and loss, its metrics and its report. The driver does what every runner does: the
// report step, resume, the plan of runs, the memory check, run directories and result.json.
//
// A task is one file, src/tasks/<name>.cpp, that registers itself (SYNTH_REGISTER_TASK), and a
// three-line main, src/bin/<name>.cpp. The registry is the one list of tasks: the driver's
// --help and checkpoint errors name tasks from it, scripts/sweep from src/tasks/. docs/tasks.md
// is the recipe for adding one.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attention/variant.h"
#include "base/flags.h"
#include "base/json.h"
#include "runs/findings.h"
#include "runs/run_dir.h"
#include "runs/run_report.h"
#include "train/trainer.h"

namespace synth {

class Driver;

// The flags every task has. A task binds them among its own, in the order its --help lists them.
struct SharedFlags {
    std::string variants = paper_sweep(), preset, tag;
    TrainConfig train;  // each task sets its own defaults before binding
    RunsConfig runs;
};

// One row of a task's preset table: the flags preset `name` sets when they are not given;
// with `when` ("data=ptb"), only when that flag has that value. A preset's matching rows apply
// in table order, so a conditional row overrides the rows before it (docs/presets.md).
// `converged` ("steps=12000": a result.json key and its value) is the budget at which the
// preset's runs were measured to converge, documented in `converged_doc`; "" where none is
// documented. The report notes a group that trained for less (run_report.h).
struct PresetRow {
    std::string name, when;
    std::map<std::string, std::string> flags;
    std::string converged = "", converged_doc = "";
};

// The fields every task's network shares, for the checks the driver makes of every task.
struct ModelShape {
    const AttnConfig* attn;   // d_model, heads, max_len, the variant's settings, attention dropout
    int d_ff;
    float dropout;
    const char* length_flag;  // the flag of attn.max_len: "seq" (lm), "max-len"
};

// A task's network for one variant, built in a store, and what the driver asks of it.
class TaskModel {
public:
    virtual ~TaskModel() = default;
    // The training loss of one sequence as long as the longest the task trains on; the memory
    // check (check_training_memory, trainer.h) scales its activations by memory_sequences().
    virtual Tensor one_sequence_loss(StepContext& ctx) = 0;
    // What the trainer runs: the loss of a step, the validation loss (the driver fills in the
    // config and the tokenizer); `steps` receives the run's number of training steps.
    virtual TrainTask train_task(const TrainConfig& train, int64_t& steps) = 0;
    // After training and saving (the store holds the last parameters, `best` those of the best
    // validation loss): appends the run's metrics to `result`, which holds variant, seed and params.
    virtual void finish(const TrainResult& t, const std::vector<float>& best, const RunsConfig::Run& run,
                        JsonObject& result) = 0;
};

class Task {
public:
    SharedFlags shared;
    virtual ~Task() = default;

    // Who it is: its binary's name (also its sweeps' prefix, runs/<name>-<data>-<preset>), the
    // summary --help prints, and the model kind its checkpoints record (config line model=<kind>).
    virtual std::string name() const = 0;
    virtual std::string summary() const = 0;
    virtual std::string kind() const = 0;
    // true: final.ckpt holds the parameters of the best validation loss, the run's model (mt);
    // false: final.ckpt the last parameters, best.ckpt the best (trainer.h: save_final_and_best).
    virtual bool keeps_best_only() const { return false; }

    // Its flags, the shared ones among them, and its preset table.
    virtual void bind(Flags& f) = 0;
    virtual std::vector<PresetRow> presets() const = 0;
    // Checks of flags whose values choose presets (cls's --task), before the presets apply.
    virtual void check_choices() const {}
    // After the presets: defaults that follow from other flags (mt's --enc-layers from --layers).
    virtual void resolve() {}
    // The shared network fields, and the task's own range checks (driver.h: Driver::validate).
    virtual ModelShape shape() const = 0;
    virtual void validate(const Flags& f) const = 0;
    // A command instead of training (--generate, --translate, --bench): runs it and returns true,
    // or returns false to train.
    virtual bool command(Driver&) { return false; }

    // The <data> of the sweep's name, the flags whose values change the reported numbers though
    // they are neither Model nor Training flags (run_group, run_dir.h), and a subdirectory every
    // run writes (mt's hyps).
    virtual std::string data_name() const = 0;
    virtual std::vector<std::string> group_extra() const { return {}; }
    virtual std::string run_subdir() const { return ""; }

    // Loads (and checks) the data every run of the invocation shares, then: its serialized
    // tokenizer (saved in checkpoints), what a resumed checkpoint's other tokenizer is named
    // against ("vocabulary from the one --data=X gives"), and the summary line's description.
    virtual void load_data() = 0;
    virtual std::string tokenizer() const = 0;
    virtual std::string tokenizer_origin() const = 0;
    virtual std::string describe_data() const = 0;
    // Sets the vocabulary from a checkpoint's tokenizer instead of data (Driver::load_model).
    virtual void use_tokenizer(const std::string& serialized);

    // The network of `variant` in `store`: with the data's vocabulary once it is loaded (or a
    // checkpoint's), else with a stand-in (for the checks before the data).
    virtual std::unique_ptr<TaskModel> build(ParamStore& store, const std::string& variant) const = 0;
    // The memory check: sequences per batch, and the flags that lower them.
    virtual double memory_sequences() const = 0;
    virtual std::string memory_flags() const = 0;

    // The report of finished runs (run_report.h); may fill in metrics older runs lack.
    virtual ReportSpec report_spec(std::vector<RunRecord>& runs) const = 0;
};

// ---- the registry of tasks ------------------------------------------------------------------

using TaskFactory = std::function<std::unique_ptr<Task>()>;
// Registers a task (at start-up, from its own file); a name registered twice is an error at the
// first look-up.
bool register_task(const TaskFactory& make);
#define SYNTH_REGISTER_TASK(id, Type) \
    static const bool synth_task_##id [[maybe_unused]] = \
        ::synth::register_task([] { return std::unique_ptr<::synth::Task>(new Type()); })
// Every registered task's name, sorted.
std::vector<std::string> task_names();
// A new task of that name; throws naming the registered ones.
std::unique_ptr<Task> make_task(const std::string& name);
// The binary whose checkpoints record model=<kind>, or "" for a kind no task has.
std::string binary_of_kind(const std::string& kind);

// The name of a data set for a sweep's name: the last path component (trailing '/' ignored)
// without its extension ("data/moby.txt" -> "moby").
std::string data_stem(const std::string& path);

}  // namespace synth

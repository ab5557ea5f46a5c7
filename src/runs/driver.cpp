#include "runs/driver.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "base/error.h"
#include "base/flags_config.h"
#include "base/io.h"
#include "runs/cli.h"
#include "runs/run_dir.h"
#include "runs/run_report.h"
#include "train/dist.h"

namespace synth {

// ---- the registry of tasks --------------------------------------------------------------------

// Factories, not tasks: a task is built only when asked for, never during static initialisation.
static std::vector<TaskFactory>& task_factories() {
    static std::vector<TaskFactory> factories;
    return factories;
}

bool register_task(const TaskFactory& make) {
    task_factories().push_back(make);
    return true;
}

// name -> factory; throws for a name two tasks share.
static std::map<std::string, const TaskFactory*> task_registry() {
    std::map<std::string, const TaskFactory*> tasks;
    for (const TaskFactory& make : task_factories()) {
        const std::string name = make()->name();
        SYNTH_CHECK(tasks.emplace(name, &make).second, "task '", name, "' is registered twice");
    }
    return tasks;
}

std::vector<std::string> task_names() {
    std::vector<std::string> names;
    for (const auto& [name, _] : task_registry()) names.push_back(name);
    return names;
}

std::unique_ptr<Task> make_task(const std::string& name) {
    const std::map<std::string, const TaskFactory*> tasks = task_registry();
    auto it = tasks.find(name);
    if (it == tasks.end()) {
        std::string list;
        for (const auto& [n, _] : tasks) list += (list.empty() ? "" : ", ") + n;
        fail("unknown task '", name, "' (", list, ")");
    }
    return (*it->second)();
}

std::string binary_of_kind(const std::string& kind) {
    for (const auto& [name, make] : task_registry())
        if ((*make)()->kind() == kind) return name;
    return "";
}

std::string data_stem(const std::string& path) {
    std::string s = path;
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    s = s.substr(s.find_last_of('/') + 1);
    const size_t dot = s.find('.');
    return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

void Task::use_tokenizer(const std::string&) {
    fail("build/", name(), " has no command that loads a checkpoint");
}

// ---- presets ----------------------------------------------------------------------------------

// Whether a row's condition ("flag=value", or none) holds for the flags' current values.
static bool row_applies(const PresetRow& row, const std::map<std::string, std::string>& values) {
    if (row.when.empty()) return true;
    const size_t eq = row.when.find('=');
    auto it = values.find(row.when.substr(0, eq));
    return it != values.end() && it->second == row.when.substr(eq + 1);
}

std::map<std::string, std::string> preset_flags(const std::vector<PresetRow>& table, const std::string& preset,
                                                const Flags& f) {
    if (preset == "none") return {};
    const std::map<std::string, std::string> values = config_map(f.dump());
    std::map<std::string, std::string> p;
    bool known = false, applied = false;
    std::string names, conditions;
    for (const PresetRow& row : table) {
        if (names.find(row.name + ", ") == std::string::npos) names += row.name + ", ";
        if (row.name != preset) continue;
        known = true;
        if (!row.when.empty()) conditions += (conditions.empty() ? "--" : " or --") + row.when;
        if (!row_applies(row, values)) continue;
        applied = true;
        for (const auto& [k, v] : row.flags) p[k] = v;
    }
    SYNTH_CHECK(known, "unknown --preset '", preset, "' (", names, "none)");
    SYNTH_CHECK(applied, "--preset=", preset, " needs ", conditions);
    return p;
}

ConvergedBudget converged_budget(const std::vector<PresetRow>& table, const JsonObject& config) {
    std::map<std::string, std::string> values;  // config.json's "flag.K": the run's flags
    for (const auto& [k, v] : config.fields)
        if (k.compare(0, 5, "flag.") == 0) values[k.substr(5)] = v;
    ConvergedBudget b;
    if (!values.count("preset")) return b;
    for (const PresetRow& row : table) {
        if (row.name != values.at("preset") || row.converged.empty() || !row_applies(row, values)) continue;
        const size_t eq = row.converged.find('=');
        b = {row.converged.substr(0, eq), std::stod(row.converged.substr(eq + 1)), row.converged_doc};
    }
    return b;
}

std::string describe_preset_table(const std::vector<PresetRow>& table) {
    std::vector<std::pair<std::string, std::map<std::string, std::string>>> entries;
    for (const PresetRow& row : table) {
        if (row.flags.empty()) continue;  // a row that only documents a converged budget
        std::map<std::string, std::string> flags;  // the preset's unconditional rows, then this row
        for (const PresetRow& base : table)
            if (base.name == row.name && base.when.empty())
                for (const auto& [k, v] : base.flags) flags[k] = v;
        for (const auto& [k, v] : row.flags) flags[k] = v;
        if (!row.when.empty()) entries.push_back({row.name + ", --" + row.when, flags});
        else if (std::none_of(entries.begin(), entries.end(), [&](const auto& e) { return e.first == row.name; }))
            entries.push_back({row.name, flags});
    }
    return describe_presets(entries);
}

// ---- the driver ---------------------------------------------------------------------------------

Driver::Driver(Task& task) : task_(task), f_(task.name(), task.summary()) {
    task_.bind(f_);
    f_.add("config", &config_, "replay a run's flags from its RUN_DIR/config.json (flags given here override them; "
           "where the run goes is not replayed: --run-dir, --runs-dir, --resume, --overwrite)");
    std::string others;
    for (const std::string& n : task_names())
        if (n != task_.name()) others += (others.empty() ? "" : ", ") + n;
    f_.set_epilog(describe_preset_table(task_.presets()) +
                  (others.empty() ? "" : "other tasks, one binary each (docs/tasks.md): " + others + "\n"));
}

void Driver::apply_presets() {
    task_.check_choices();
    apply_defaults(f_, preset_flags(task_.presets(), task_.shared.preset, f_));
    task_.resolve();
    // Quiet by default (progress_line, train/trainer.h); --verbose keeps a progress line every 50
    // steps and at every evaluation, unless --log-every says how often.
    if (task_.shared.runs.verbose && !f_.given("log-every")) task_.shared.train.log_every = 50;
}

// Range checks (each message names the flag and the value it got), and every variant's network
// built once without allocating, so that a bad variant setting fails now, not mid-sweep.
void Driver::validate() const {
    const ModelShape s = task_.shape();
    require_positive({{"d-model", s.attn->d_model}, {"heads", s.attn->heads}, {"d-ff", s.d_ff},
                      {s.length_flag, s.attn->max_len}});
    require_fraction({{"dropout", s.dropout}, {"attn-dropout", s.attn->attn_dropout}});
    SYNTH_CHECK(s.attn->d_model % s.attn->heads == 0, "--heads=", s.attn->heads, " must divide --d-model=",
                s.attn->d_model);
    task_.validate(f_);
    task_.shared.train.validate();
    check_settings(s.attn->settings);
    const std::vector<std::string> list = split_list(task_.shared.variants, "--variants");
    check_settings_used(list, [&](const std::string& k) { return f_.given(k); });
    for (const std::string& v : list) {
        ParamStore unallocated;
        task_.build(unallocated, v);
    }
}

std::string Driver::prepare() {
    apply_presets();
    validate();
    return task_.shared.train.configure_compute();
}

// The sweep's name: <task>-<data>-<preset>[-<tag>].
std::string Driver::sweep_name() const {
    const SharedFlags& s = task_.shared;
    return task_.name() + "-" + task_.data_name() + "-" + s.preset + (s.tag.empty() ? "" : "-" + s.tag);
}

// A checkpoint records the kind of its model (model=<kind>); one from before that line is
// taken as it is, and fails at its parameters if it is another task's.
void Driver::check_model_kind(const Checkpoint& ck, const std::string& path) const {
    const std::map<std::string, std::string> config = config_map(ck.config);
    auto it = config.find("model");
    if (it == config.end() || it->second == task_.kind()) return;
    const std::string writer = binary_of_kind(it->second);
    fail("checkpoint ", path, " holds a '", it->second, "' model", writer.empty() ? "" : " (written by build/" + writer + ")",
         ", not a '", task_.kind(), "' model (build/", task_.name(), ")");
}

void Driver::load_model(LoadedModel& m, const std::string& path) {
    const Checkpoint ck = load_checkpoint(path);
    SYNTH_CHECK(!task_.keeps_best_only() || ck.adam_m.empty(), "checkpoint ", path, " is a training checkpoint (from "
                "--save-every); build/", task_.name(), " uses the kept parameters, a run's final.ckpt");
    check_model_kind(ck, path);
    f_.load(ck.config, FlagRole::Model);
    task_.use_tokenizer(ck.tokenizer);
    m.step = ck.step;
    m.variant = ck.config_value("variant");
    m.model = task_.build(m.store, m.variant);
    m.store.finalize(0);
    restore(ck, m.store, nullptr);
}

// Fail before the work: training each variant must fit in the available memory (trainer.h).
void Driver::check_memory(const std::vector<std::string>& variants) const {
    for (const std::string& v : variants) {
        ParamStore store;
        const std::unique_ptr<TaskModel> model = task_.build(store, v);
        check_training_memory(
            store, [&](StepContext& ctx) { return model->one_sequence_loss(ctx); }, task_.memory_sequences(), v,
            task_.memory_flags());
    }
}

// Trains one (variant, seed) run in its directory with the shared Trainer (resuming from
// `resume` if given), writes metrics.jsonl, final.ckpt (and best.ckpt), and returns its metrics
// (RunsConfig::execute writes result.json).
JsonObject Driver::train_run(const RunsConfig::Run& run, const Checkpoint* resume) {
    const TrainConfig& tc = task_.shared.train;  // its seed is the run's (RunsConfig::execute)
    ParamStore store;
    const std::unique_ptr<TaskModel> model = task_.build(store, run.variant);
    store.finalize(tc.seed);
    if (dist::is_writer() && task_.shared.runs.verbose)
        std::fprintf(stderr, "[%s] seed %d, %lld trainable parameters, run directory %s\n", run.variant.c_str(), run.seed,
                     (long long)store.trainable_count(), run.dir.c_str());
    int64_t steps = tc.steps;
    TrainTask task = model->train_task(tc, steps);
    task.config = f_.dump() + "model=" + task_.kind() + "\n";
    task.tokenizer = task_.tokenizer();

    Trainer trainer(store, tc, run.variant, checkpoint_prefix(tc, run.dir, sweep_name(), run.variant, run.seed));
    const TrainResult t = train_in_run_dir(trainer, task, steps, run.dir, resume, tc.resume, run.variant);
    save_final_and_best(run.dir, store, trainer.best(), t, steps, task.config + "variant=" + run.variant + "\n",
                        task.tokenizer, task_.keeps_best_only() ? Kept::Best : Kept::LastAndBest);
    JsonObject r;
    r.text("variant", run.variant);
    r.integer("seed", run.seed);
    r.integer("params", store.trainable_count());
    model->finish(t, trainer.best(), run, r);
    return r;
}

void Driver::report(const std::vector<std::string>& dirs, const std::string& stem, bool force) const {
    std::vector<RunRecord> runs = find_runs(dirs, task_.name());
    ReportSpec spec = task_.report_spec(runs);
    spec.force = force;
    spec.baseline = task_.shared.runs.baseline;
    spec.baseline_given = f_.given("baseline");
    spec.converged = [table = task_.presets()](const RunRecord& r) { return converged_budget(table, r.config); };
    write_report(runs, spec, stem);
}

// "9 runs (variants V, R, ...; seed 1337) in runs/lm-tinyshakespeare-quick/", or with --run-dir
// "1 run (variant V; seed 1) in DIR".
std::string Driver::describe_runs(const std::vector<RunsConfig::Run>& runs,
                                  const std::vector<std::string>& variants) const {
    const auto counted = [](const std::string& word, const std::vector<std::string>& items) {
        std::string out = word + (items.size() == 1 ? " " : "s ");
        for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
        return out;
    };
    std::vector<std::string> seeds;  // every variant runs the same seeds
    for (const RunsConfig::Run& r : runs)
        if (r.variant == runs[0].variant) seeds.push_back(std::to_string(r.seed));
    const RunsConfig& c = task_.shared.runs;
    const std::string where = c.run_dir.empty() ? c.runs_dir + "/" + sweep_name() + "/" : c.run_dir;
    return std::to_string(runs.size()) + (runs.size() == 1 ? " run (" : " runs (") + counted("variant", variants) +
           "; " + counted("seed", seeds) + ") in " + where;
}

// Fails in the first second, not after hours: unwritable run or checkpoint directories, a bad
// checkpoint to resume from, missing data, too little memory. Then trains every run.
int Driver::train(const std::string& compute) {
    SharedFlags& s = task_.shared;
    const std::vector<std::string> variants = split_list(s.variants);
    const bool resuming = !s.train.resume.empty();
    Checkpoint resume;
    if (resuming) {
        resume = load_checkpoint(s.train.resume);
        s.train.seed = s.runs.resumed_seed(resume, s.train.resume, f_.given("seed"), s.train.seed);
    }
    const std::vector<RunsConfig::Run> runs = s.runs.plan(sweep_name(), variants, s.train.seed, resuming,
                                                          task_.run_subdir());
    s.train.prepare_checkpoint_dir();
    if (resuming) {
        check_model_kind(resume, s.train.resume);
        // Not --steps when the learning rate does not depend on it: the batch order depends
        // only on the step, so a finished run resumed with more steps is exactly the longer run.
        check_resume(resume, s.train.resume, variants, f_,
                     schedule_uses_total(s.train.schedule) ? std::vector<std::string>{} : std::vector<std::string>{"steps"});
        SYNTH_CHECK(s.train.steps == 0 || resume.step <= s.train.steps, "checkpoint ", s.train.resume, " is at step ",
                    resume.step, ", past --steps=", s.train.steps);
    }
    task_.load_data();
    SYNTH_CHECK(!resuming || resume.tokenizer == task_.tokenizer(), "checkpoint ", s.train.resume, " has a different ",
                task_.tokenizer_origin());
    check_memory(variants);
    const std::string data = task_.describe_data();
    // Two lines, what and where; every resolved flag, and each run's own line, only with
    // --verbose (config.json holds them). With several MPI ranks, rank 0 alone prints.
    if (dist::is_writer()) {
        std::fprintf(stderr, "%s: %s%s\n", task_.name().c_str(), data.empty() ? "" : (data + ", ").c_str(),
                     compute.c_str());
        std::fprintf(stderr, "%s\n", describe_runs(runs, variants).c_str());
        if (s.runs.verbose) std::fprintf(stderr, "config:\n%s", f_.dump().c_str());
    }

    const auto report = [this](const std::vector<std::string>& dirs, const std::string& stem, bool force) {
        this->report(dirs, stem, force);
    };
    s.runs.execute(runs, s.train.seed, f_, task_.name(), s.train.threads, task_.group_extra(),
                   [&](const RunsConfig::Run& run) { return train_run(run, resuming ? &resume : nullptr); },
                   sweep_name(), report);
    return 0;
}

int Driver::run(int argc, char** argv) {
    argv_.assign(argv, argv + argc);
    if (!f_.parse(argc, argv)) return 0;
    if (!config_.empty())  // nanoGPT's config files: the saved flags, the command line on top
        apply_config(f_, flags_of_config_json(read_file(config_), config_),
                     {"config", "run-dir", "runs-dir", "resume", "overwrite", "take-over"}, config_);
    const auto report = [this](const std::vector<std::string>& dirs, const std::string& stem, bool force) {
        this->report(dirs, stem, force);
    };
    if (run_report_step(task_.shared.runs, f_.positional(), report)) return 0;
    SYNTH_CHECK(f_.positional().empty(), "unexpected argument '", f_.positional()[0], "' (flags are --key=value)");
    if (task_.command(*this)) return 0;
    return train(prepare());
}

int run_task(const std::string& name, int argc, char** argv) {
    static std::string task_name;  // cli_main takes a plain function
    task_name = name;
    return cli_main(argc, argv, [](int c, char** v) {
        const std::unique_ptr<Task> task = make_task(task_name);
        Driver driver(*task);
        return driver.run(c, v);
    });
}

}  // namespace synth

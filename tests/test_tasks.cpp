// The task driver (src/runs/driver.h) and its registry of tasks (src/runs/task.h): a fourth,
// toy task defined here, in this file alone, trains, saves, reports and reloads through the
// driver, as docs/tasks.md says a new task does.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "base/io.h"
#include "engine/autograd.h"
#include "error_of.h"
#include "models/transformer.h"
#include "runs/driver.h"
#include "subprocess.h"

using namespace synth;
using synth_test::error_of;
using synth_test::ScratchDir;

namespace {

// A toy task: a decoder-only LM learns to continue the cycle 0, 1, ..., V-1, 0, 1, ...
// (--period tokens long), which it can learn in a few dozen steps.
class ToyTask;

class ToyModel : public TaskModel {
public:
    ToyModel(const ToyTask& task, ParamStore& store, const LmConfig& cfg) : net(store, cfg), task_(task) {}
    Tensor one_sequence_loss(StepContext& ctx) override {
        const int T = net.config().attn.max_len;
        return cross_entropy(net.forward(std::vector<int32_t>(T, 0), 1, T, ctx), std::vector<int32_t>(T, 0), -1, 0.0f);
    }
    TrainTask train_task(const TrainConfig& tc, int64_t& steps) override;
    void finish(const TrainResult& t, const std::vector<float>&, const RunsConfig::Run&, JsonObject& r) override {
        r.number("val_loss", loss(), 4);
        r.integer("best_step", t.best_step);
        r.text("data_hash", "cycle");
    }
    // Mean NLL of continuing the cycle from each offset.
    double loss();

    TransformerLM net;

private:
    const ToyTask& task_;
    std::vector<int32_t> x_, y_;
};

class ToyTask : public Task {
public:
    int period = 5, batch = 4;
    LmConfig model;
    bool loaded = false;

    ToyTask() {
        shared.preset = "tiny";
        model.attn.d_model = 16, model.layers = 1, model.attn.heads = 2, model.d_ff = 32, model.attn.max_len = 8;
        model.dropout = 0.0f;
    }
    std::string name() const override { return "toy"; }
    std::string summary() const override { return "A toy task: continue a cycle of tokens."; }
    std::string kind() const override { return "toy-lm"; }
    void bind(Flags& f) override {
        f.add("period", &period, "the cycle's length, also the vocabulary", FlagRole::Model);
        f.add("variants", &shared.variants, "attention variants");
        f.add("preset", &shared.preset, "tiny | none");
        model.bind(f);
        f.add("batch", &batch, "sequences per step", FlagRole::Training);
        shared.train.bind(f);
        f.add("tag", &shared.tag, "suffix of the sweep's name");
        shared.runs.bind(f, "toy");
    }
    std::vector<PresetRow> presets() const override {
        return {{"tiny", "", {{"steps", "30"}, {"warmup", "5"}, {"eval-every", "10"}, {"lr", "1e-2"}, {"min-lr", "1e-3"}}}};
    }
    ModelShape shape() const override { return {&model.attn, model.d_ff, model.dropout, "seq"}; }
    void validate(const Flags&) const override { require_positive({{"period", period}, {"batch", batch}}); }
    std::string data_name() const override { return "cycle" + std::to_string(period); }
    void load_data() override { loaded = true; }
    std::string tokenizer() const override { return "cycle of " + std::to_string(period); }
    std::string tokenizer_origin() const override { return "cycle from --period"; }
    std::string describe_data() const override { return "a cycle of " + std::to_string(period) + " tokens"; }
    void use_tokenizer(const std::string&) override {}
    std::unique_ptr<TaskModel> build(ParamStore& store, const std::string& variant) const override {
        LmConfig c = model;
        c.vocab = period;
        c.attn.variant = variant;
        return std::make_unique<ToyModel>(*this, store, c);
    }
    double memory_sequences() const override { return batch; }
    std::string memory_flags() const override { return "--batch"; }
    ReportSpec report_spec(std::vector<RunRecord>&) const override {
        ReportSpec spec;
        spec.title = "Toy";
        spec.metrics = {"params", "val_loss"};
        return spec;
    }
};

// Row r of a batch starts the cycle at offset (step + r) mod period.
void cycle_batch(int period, int B, int T, int64_t step, std::vector<int32_t>& x, std::vector<int32_t>& y) {
    x.resize((size_t)B * T), y.resize((size_t)B * T);
    for (int r = 0; r < B; ++r)
        for (int t = 0; t < T; ++t) {
            x[(size_t)r * T + t] = (int32_t)((step + r + t) % period);
            y[(size_t)r * T + t] = (int32_t)((step + r + t + 1) % period);
        }
}

TrainTask ToyModel::train_task(const TrainConfig& tc, int64_t& steps) {
    TrainTask task;
    task.loss = [this](int64_t step, StepContext& ctx, int64_t& tokens) {
        const int B = task_.batch, T = net.config().attn.max_len;
        cycle_batch(task_.period, B, T, step, x_, y_);
        tokens = (int64_t)B * T;
        return cross_entropy(net.forward(x_, B, T, ctx), y_, -1, 0.0f);
    };
    task.validate = [this] { return loss(); };
    steps = tc.steps;
    return task;
}

double ToyModel::loss() {
    return mean_eval_loss(1, [&](size_t, StepContext& ctx, LossStats& st) {
        std::vector<int32_t> x, y;
        const int T = net.config().attn.max_len;
        cycle_batch(task_.period, task_.period, T, 0, x, y);
        cross_entropy(net.forward(x, task_.period, T, ctx), y, -1, 0.0f, &st);
    });
}

SYNTH_REGISTER_TASK(toy, ToyTask);

// The driver on a new ToyTask with these flags; its stdout and stderr go to files in `dir`, or
// its stderr to `err_fd` when given.
int drive_toy(const std::vector<std::string>& flags, const std::string& dir, int err_fd = -1) {
    std::vector<std::string> args = {"toy"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    std::fflush(stdout), std::fflush(stderr);
    const int saved_out = dup(1), saved_err = dup(2);
    const int out = open((dir + "/toy.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open((dir + "/toy.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1), dup2(err_fd >= 0 ? err_fd : err, 2);
    int status = 0;
    try {
        const std::unique_ptr<Task> task = make_task("toy");
        status = Driver(*task).run((int)argv.size(), argv.data());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        status = 1;
    }
    std::fflush(stdout), std::fflush(stderr);
    dup2(saved_out, 1), dup2(saved_err, 2);
    for (int fd : {out, err, saved_out, saved_err}) close(fd);
    return status;
}

// What the driver on a ToyTask with these flags writes to its stderr when that is a terminal
// (a pseudo-terminal in raw mode, so the bytes arrive as written).
std::string toy_on_terminal(const std::vector<std::string>& flags, const std::string& dir) {
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0);
    REQUIRE(grantpt(master) == 0);
    REQUIRE(unlockpt(master) == 0);
    const int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    REQUIRE(slave >= 0);
    termios raw;
    tcgetattr(slave, &raw);
    cfmakeraw(&raw);
    tcsetattr(slave, TCSANOW, &raw);
    // Read while the driver writes, so that a full terminal buffer never blocks it; the read ends
    // (EIO) once the last descriptor of the slave side is closed.
    std::string screen;
    std::thread reader([&] {
        char buf[4096];
        for (ssize_t n; (n = read(master, buf, sizeof buf)) > 0;) screen.append(buf, (size_t)n);
    });
    const int status = drive_toy(flags, dir, slave);
    close(slave);
    reader.join();
    close(master);
    CHECK(status == 0);
    return screen;
}

}  // namespace

TEST_CASE("tasks: the registry is the one list of tasks and of the kinds their checkpoints record") {
    const std::vector<std::string> names = task_names();
    for (const char* n : {"cls", "lm", "mt", "toy"})
        CHECK(std::find(names.begin(), names.end(), n) != names.end());
    CHECK(std::is_sorted(names.begin(), names.end()));
    CHECK(binary_of_kind("lm") == "lm");
    CHECK(binary_of_kind("seq2seq") == "mt");
    CHECK(binary_of_kind("cls") == "cls");
    CHECK(binary_of_kind("toy-lm") == "toy");
    CHECK(binary_of_kind("nothing") == "");
    CHECK(make_task("mt")->kind() == "seq2seq");
    CHECK(error_of([] { make_task("tts"); }) == doctest::Contains("unknown task 'tts' (cls, lm, mt, toy)"));
}

TEST_CASE("tasks: a data set's name for a sweep is its file or directory name without extension") {
    CHECK(data_stem("tinyshakespeare") == "tinyshakespeare");
    CHECK(data_stem("data/moby.txt") == "moby");
    CHECK(data_stem("/data/multi30k_en_de/") == "multi30k_en_de");
    CHECK(data_stem(".hidden") == ".hidden");
}

TEST_CASE("tasks: a preset table's rows apply in order, a conditional row only when its flag matches") {
    std::string data = "tinyshakespeare", preset = "full";
    int steps = 1;
    Flags f("t", "test");
    f.add("data", &data, "data");
    f.add("steps", &steps, "steps");
    const std::vector<PresetRow> table = {{"quick", "", {{"steps", "10"}}},
                                          {"full", "", {{"steps", "100"}, {"lr", "1e-3"}}},
                                          {"full", "data=ptb", {{"steps", "300"}}},
                                          {"lra", "data=listops", {{"steps", "5000"}}}};
    CHECK(preset_flags(table, "full", f) == std::map<std::string, std::string>{{"steps", "100"}, {"lr", "1e-3"}});
    REQUIRE(f.parse(std::vector<std::string>{"--data=ptb"}));
    CHECK(preset_flags(table, "full", f) == std::map<std::string, std::string>{{"steps", "300"}, {"lr", "1e-3"}});
    CHECK(preset_flags(table, "none", f).empty());
    CHECK(error_of([&] { preset_flags(table, "huge", f); }) ==
          doctest::Contains("unknown --preset 'huge' (quick, full, lra, none)"));
    CHECK(error_of([&] { preset_flags(table, "lra", f); }) == doctest::Contains("--preset=lra needs --data=listops"));
    const std::string help = describe_preset_table(table);
    CHECK(help.find("  full: --lr=1e-3 --steps=100\n") != std::string::npos);
    CHECK(help.find("  full, --data=ptb: --lr=1e-3 --steps=300\n") != std::string::npos);
    CHECK(help.find("  lra, --data=listops: --steps=5000\n") != std::string::npos);
}

TEST_CASE("tasks: a fourth task, defined in one file, trains, saves, reports and reloads through the driver") {
    ScratchDir dir;
    const std::string runs = dir / "runs";
    const int status = drive_toy({"--runs-dir=" + runs, "--variants=V,R", "--seeds=1,2", "--log-every=100"}, dir.path);
    INFO(read_file(dir / "toy.err"));
    REQUIRE(status == 0);
    const std::string sweep = runs + "/toy-cycle5-tiny";
    for (const char* run : {"V-seed1", "V-seed2", "R-seed1", "R-seed2"}) {
        CAPTURE(run);
        const std::string d = sweep + "/" + run;
        const JsonObject r = parse_json_object(read_file(d + "/result.json"), d);
        CHECK(r.at("variant") == std::string(run).substr(0, 1));
        CHECK(r.num("val_loss") < std::log(5.0));  // better than a uniform guess
        CHECK(r.has("group_hash"));
        CHECK(std::filesystem::exists(d + "/config.json"));
        CHECK(std::filesystem::exists(d + "/metrics.jsonl"));
        const Checkpoint final_ck = load_checkpoint(d + "/final.ckpt");
        CHECK(final_ck.config_value("model") == "toy-lm");
        CHECK(final_ck.step == 30);
        CHECK(load_checkpoint(d + "/best.ckpt").step == (int64_t)r.num("best_step"));
    }
    CHECK(read_file(sweep + "/report.md").find("# Toy") == 0);
    // Seeds differ; the same seed trains the same run again (below).
    const std::string v1 = synth_test::result_without_timings(sweep + "/V-seed1");
    CHECK(v1 != synth_test::result_without_timings(sweep + "/V-seed2"));

    // The report step merges the runs again; a finished run is not overwritten.
    REQUIRE(drive_toy({"--report", sweep, "--out=" + dir / "merged"}, dir.path) == 0);
    CHECK(read_file(dir / "merged.csv") == read_file(sweep + "/report.csv"));
    CHECK(drive_toy({"--runs-dir=" + runs, "--variants=V", "--seeds=1"}, dir.path) == 1);
    CHECK(read_file(dir / "toy.err").find("already holds a finished run") != std::string::npos);
    CHECK(drive_toy({"--runs-dir=" + runs, "--variants=V", "--seeds=1", "--overwrite", "--log-every=100"}, dir.path) == 0);
    CHECK(synth_test::result_without_timings(sweep + "/V-seed1") == v1);

    // A kept model loads back as the task's network, with the loss it had.
    const std::unique_ptr<Task> task = make_task("toy");
    Driver driver(*task);
    LoadedModel m;
    driver.load_model(m, sweep + "/R-seed1/final.ckpt");
    CHECK(m.variant == "R");
    CHECK(m.step == 30);
    const JsonObject r1 = parse_json_object(read_file(sweep + "/R-seed1/result.json"), "R-seed1");
    CHECK(static_cast<ToyModel&>(*m.model).loss() == doctest::Approx(r1.num("val_loss")).epsilon(1e-3));

    // Bad flags fail before any work, naming the flag; another task's checkpoint is named as such.
    CHECK(drive_toy({"--runs-dir=" + runs, "--period=0"}, dir.path) == 1);
    CHECK(read_file(dir / "toy.err").find("--period=0 must be positive") != std::string::npos);
    CHECK(drive_toy({"--runs-dir=" + runs, "--heads=3"}, dir.path) == 1);
    CHECK(read_file(dir / "toy.err").find("--heads=3 must divide --d-model=16") != std::string::npos);
    Checkpoint other = load_checkpoint(sweep + "/R-seed1/final.ckpt");
    other.config += "model=seq2seq\n";
    save_checkpoint(dir / "other.ckpt", other);
    CHECK(error_of([&] { driver.load_model(m, dir / "other.ckpt"); }) ==
          doctest::Contains("holds a 'seq2seq' model (written by build/mt), not a 'toy-lm' model (build/toy)"));
}

TEST_CASE("tasks: progress is quiet by default: a log gets one line per run, a terminal a live line") {
    // The policy (train/trainer.h): the last step always keeps its line; --log-every keeps every
    // N-th step's and every evaluation's; in between a terminal redraws a live line at most every
    // kRedrawSeconds, and a log gets a kept line only once the last is kLogSeconds old.
    const double just = 0.001, soon = kRedrawSeconds, late = kLogSeconds;
    CHECK(progress_line(300, 300, 0, true, false, just, just) == ProgressLine::Kept);
    CHECK(progress_line(300, 300, 0, true, true, just, just) == ProgressLine::Kept);
    CHECK(progress_line(100, 300, 0, true, false, just, just) == ProgressLine::None);
    CHECK(progress_line(101, 300, 0, false, false, late - 1, late - 1) == ProgressLine::None);
    CHECK(progress_line(101, 300, 0, false, false, late, just) == ProgressLine::Kept);
    CHECK(progress_line(101, 300, 0, false, true, just, just) == ProgressLine::None);
    CHECK(progress_line(101, 300, 0, false, true, late, soon) == ProgressLine::Live);
    CHECK(progress_line(150, 300, 50, false, false, just, just) == ProgressLine::Kept);
    CHECK(progress_line(150, 300, 50, false, true, just, just) == ProgressLine::Kept);
    CHECK(progress_line(100, 300, 70, true, false, just, just) == ProgressLine::Kept);
    CHECK(progress_line(151, 300, 50, false, false, just, just) == ProgressLine::None);
    CHECK(progress_line(151, 300, 50, false, true, just, soon) == ProgressLine::Live);

    // A tiny sweep whose stderr is a file: what and where, then one line per run (its last step)
    // before the report, none rewritten in place; --log-every and --verbose keep more.
    ScratchDir dir;
    const auto progress_lines = [&](const std::vector<std::string>& extra) {
        std::vector<std::string> flags = {"--runs-dir=" + dir / "runs", "--variants=V,R", "--overwrite"};
        flags.insert(flags.end(), extra.begin(), extra.end());
        REQUIRE(drive_toy(flags, dir.path) == 0);
        const std::string err = read_file(dir / "toy.err");
        INFO(err);
        CHECK(err.find('\r') == std::string::npos);
        const std::string before_report = err.substr(0, err.find("# Toy"));
        std::vector<std::string> lines;
        for (size_t at = 0, nl; (nl = before_report.find('\n', at)) != std::string::npos; at = nl + 1)
            lines.push_back(before_report.substr(at, nl - at));
        int steps = 0;
        for (const std::string& l : lines) steps += l.find("] step ") != std::string::npos;
        return std::make_pair((int)lines.size(), steps);
    };
    const auto quiet = progress_lines({});
    CHECK(quiet.second == 2);                   // V's and R's step 30/30
    CHECK(quiet.first == 2 + 2);                // what and where, then each run's last line
    CHECK(read_file(dir / "toy.err").find("\n2 runs (variants V, R; seed 1337) in " + dir / "runs/toy-cycle5-tiny/\n") !=
          std::string::npos);
    CHECK(read_file(dir / "toy.err").find("] step 30/30  loss ") != std::string::npos);
    CHECK(read_file(dir / "toy.err").find("  done in ") != std::string::npos);
    CHECK(progress_lines({"--log-every=15"}).second == 2 * 4);  // steps 10, 15, 20 (evaluations), 30
    CHECK(progress_lines({"--verbose"}).second == 2 * 3);       // the evaluations at 10, 20, 30

    // On a terminal: a live line from the first step on, each redraw starting with '\r', and of
    // each run only its last step's line stays on screen.
    const std::string screen = toy_on_terminal({"--runs-dir=" + dir / "runs", "--variants=V,R", "--overwrite"}, dir.path);
    INFO(screen);
    CHECK(screen.find("\r[V] step 1/30  loss ") != std::string::npos);
    int shown = 0;
    for (size_t at = 0, nl; (nl = screen.find('\n', at)) != std::string::npos; at = nl + 1) {
        const std::string line = screen.substr(at, nl - at);
        if (line.find("] step ") == std::string::npos) continue;
        const std::string visible = line.substr(line.rfind('\r') + 1);
        CHECK(visible.find("] step 30/30  loss ") != std::string::npos);
        CHECK(visible.find("  done in ") != std::string::npos);
        ++shown;
    }
    CHECK(shown == 2);
}

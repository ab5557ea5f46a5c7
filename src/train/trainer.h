// trainer.h: the training loop every task shares (src/runs/task.h).
//
// One step is: the task's loss on the step's batch -> backward -> clip the global gradient
// norm -> AdamW at the step's learning rate. Around it the Trainer keeps the evaluation
// cadence and the parameters of the best validation loss, stops on a non-finite
// loss naming the last good checkpoint, saves resumable checkpoints, prints a progress line
// and records the loss curve. The batch order, the learning rate and the dropout masks are
// functions of (seed, step), so the parameters, the AdamW state, the step and the best
// parameters so far are all a resumed run needs to continue exactly as the uninterrupted run.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attention/variant.h"
#include "engine/gemm/blas.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "engine/optim.h"

namespace synth {

class Flags;

// The training recipe's flags (each binary sets its own defaults before bind()).
struct TrainConfig {
    int seed = 1337, threads = default_threads();
    int steps = 1000;
    int warmup = 100;
    float lr = 1e-3f, min_lr = 1e-4f;
    std::string schedule = "cosine";  // cosine | rsqrt | constant (optim.h)
    std::string precision = "fp32";   // fp32 | bf16 (precision.h)
    float weight_decay = 0.1f, beta2 = 0.99f, adam_eps = 1e-8f;
    float clip = 1.0f;
    int eval_every = 200;  // 0: once per epoch
    int log_every = 0;     // 0: quiet (progress_line); the runners' --verbose makes it 50
    int save_every = 0;    // 0: never
    int keep_last = 0;     // keep only the newest N step checkpoints (0: all)
    std::string checkpoint_dir, resume;  // checkpoint_dir empty: the run directory
    std::string allreduce = "mpi";       // several ranks: mpi | ordered (train/dist.h)
    bool profile = false;  // --profile (or SYNTH_PROFILE=1): per-op times on stderr (engine/profile.h)

    void bind(Flags& f);
    void validate() const;
    // Gives the process its threads (set_threads), its GEMM provider for --precision
    // (set_precision) and turns on the profiler for --profile. Returns what a runner's summary line says of them: "OpenBLAS kernel
    // Haswell, 2 threads, precision bf16: rounded-bf16 (...)".
    std::string configure_compute() const;
    // With --save-every and --checkpoint-dir: the directory exists and is writable. (Its stale
    // temporaries are not swept: other hosts' runs may be writing there.)
    void prepare_checkpoint_dir() const;
    AdamWConfig adamw() const { return AdamWConfig{0.9f, beta2, adam_eps, weight_decay}; }
};

// What a runner supplies: the loss of a step and the validation loss.
struct TrainTask {
    // Builds step `step`'s batch (a function of the seed and the step) and returns the scalar
    // training loss; `tokens` receives the tokens the step counts towards throughput.
    std::function<Tensor(int64_t step, StepContext& ctx, int64_t& tokens)> loss;
    std::function<double()> validate;  // mean validation loss, without gradients
    // With several ranks (train/dist.h): how many terms the mean that the last loss() returned is
    // over (target tokens that are not padding, labelled rows), which weights this rank's gradient
    // so that the sum over ranks is the global batch's mean. Setting it says that loss() trains
    // this rank's slice (dist::rank_slice); with several ranks, Trainer::run refuses a task without it.
    std::function<double()> loss_count;
    // Optional (classification): the accuracy of the evaluation validate() just ran, recorded
    // beside its loss in the curve and the progress line.
    std::function<double()> val_accuracy;
    int64_t steps_per_epoch = 0;       // > 0: epochs in the progress line, eval_every 0 = once per epoch
    std::string tokens_unit = "tok/s"; // what the progress line calls the throughput
    std::string config;                // saved with checkpoints (the resolved flags)
    std::string tokenizer;             // saved with checkpoints
};

// How the progress of step `step` of `total` is shown on stderr. Quiet by default, like a
// careful command-line tool: each run's last step keeps its line (it ends with a newline), and
// with log_every > 0 so do every log_every-th step and every evaluation. Between kept lines, a
// terminal gets a live line rewritten in place (at most every kRedrawSeconds), and a log (a file,
// a pipe, a Slurm job's output) a kept line once the last one is kLogSeconds old: a long run's log
// still shows it moving, and `make run` (nine runs of a few minutes each on a loaded 2-core
// machine) still fits on one screen when piped. A pure function of its arguments, so that the
// tests check it without a clock or a terminal; `since_kept` and `since_drawn` are the seconds
// since the last kept line (or the start) and since the last line of either kind.
enum class ProgressLine { None, Live, Kept };
constexpr double kRedrawSeconds = 0.1, kLogSeconds = 300;
ProgressLine progress_line(int64_t step, int64_t total, int log_every, bool evaluated, bool terminal,
                           double since_kept, double since_drawn);

struct CurveRow {
    int64_t step;
    double train_loss, val_loss, lr;  // val_loss NaN between evaluations
    double val_acc = NAN;             // with TrainTask::val_accuracy, at evaluations
};

struct TrainResult {
    double best_val = 0, last_val = 0;
    int64_t best_step = 0, tokens = 0, steps = 0;  // steps: all of them, those before a resume too
    double compute_s = 0, wall_s = 0;  // compute: the training steps only; wall: everything, validation included
    double allreduce_s = 0;            // of compute_s, the gradient all-reduce (several ranks; this process)
    double tokens_per_s() const { return tokens / compute_s; }
    double steps_per_s() const { return steps / compute_s; }
};

class Trainer {
public:
    // name: the variant, which labels progress lines and checkpoints; checkpoints are
    // <checkpoint_prefix>-step<N>.ckpt, with the best parameters so far in .best.ckpt beside each.
    Trainer(ParamStore& store, const TrainConfig& cfg, std::string name, std::string checkpoint_prefix);
    // --resume: restores the parameters, the AdamW state, the counters, the best parameters.
    void resume(const Checkpoint& ck, const std::string& path);
    // Trains steps [start, total); the store then holds the last parameters, best() the best.
    TrainResult run(const TrainTask& task, int64_t total_steps);
    const std::vector<float>& best() const { return best_; }  // a flat copy of the store's data

    int64_t start_step() const { return start_; }
    std::vector<CurveRow> curve;  // one row per step; a resumed run's runner restores the rows before start_step()
    // Runs before each checkpoint is written (e.g. the run's metrics up to that step), so a kill
    // between the two never leaves a checkpoint whose curve lacks rows.
    std::function<void(int64_t step)> before_save;

private:
    // What a progress line reports after step `step`.
    struct Progress {
        int64_t step, total;
        double lr, seconds_per_step, allreduce_seconds_per_step;
        bool evaluated, improved;
        double acc;  // NaN without an accuracy
    };
    // Where the progress output of one run() stands, from its start at `start` (now_seconds()).
    // Its end closes a live line left on screen (by an error, which then prints on a line of its own).
    struct ProgressState {
        explicit ProgressState(double start);
        ~ProgressState();
        ProgressState(const ProgressState&) = delete;
        ProgressState& operator=(const ProgressState&) = delete;
        bool terminal;                    // stderr is a terminal: live lines
        double kept, drawn = -INFINITY;   // when the last kept line, and the last line, were shown
        size_t live_width = 0;            // the width of the live line on screen (0: none)
    };
    bool evaluate(const TrainTask& task, int64_t step, double* acc);
    std::string progress_text(const TrainTask& task, const Progress& p) const;
    void show_progress(const TrainTask& task, const Progress& p, ProgressState& state) const;
    void save(const TrainTask& task, int64_t step, const std::vector<float>& best);

    ParamStore& store_;
    TrainConfig cfg_;
    AdamW opt_;
    std::string name_, prefix_;
    int64_t start_ = 0;
    TrainResult r_;
    double prev_wall_s_ = 0;
    std::vector<float> best_;
    std::string last_checkpoint_;
    std::vector<std::string> saved_;  // this process's step checkpoints, oldest first
};

// This rank's part of a step with several ranks: loss() sets `count` (the terms its mean is over,
// TrainTask::loss_count) and `tokens`; train_step replaces both by their sums over the ranks.
struct StepShare {
    double count = 1;
    int64_t tokens = 0;
};

// The evaluation every task's validation is: the mean loss (nats per counted target, no label
// smoothing) of n batches without gradients, the activation arena reset before each;
// batch(i, ctx, stats) runs batch i's cross_entropy into stats.
double mean_eval_loss(size_t n, const std::function<void(size_t i, StepContext& ctx, LossStats& stats)>& batch);

// One optimisation step: zero the gradients, loss() (forward), backward, clip the global
// gradient norm to `clip` (0 = off), AdamW at `lr`. Returns the loss.
// With several ranks (dist::world() > 1), loss() is this rank's slice of the global batch and
// fills *share: the ranks' (count, count * loss, tokens) are summed in rank order, this rank's
// backward starts from count / total count, one all-reduce (`reduce`) sums the gradient arena,
// and every rank then clips and steps alike. Returns the global batch's loss on every rank.
float train_step(ParamStore& store, AdamW& opt, const std::function<Tensor()>& loss, float lr, float clip,
                 StepShare* share = nullptr, dist::Reduce reduce = dist::Reduce::Mpi);

// Fail before the work: the memory of training the model declared in `store` (not yet
// finalized): its parameters with their gradients, AdamW moments and best copy, and one step's
// activations, measured by running `one_sequence_loss` (a step on a single sequence; the store
// is finalized first) and scaled by `sequences` per batch (with several ranks: this rank's
// slice), against the available memory (shared by the ranks on this node).
// Throws naming `name` and `lower` (the flags to lower) when it does not fit.
void check_training_memory(ParamStore& store, const std::function<Tensor(StepContext&)>& one_sequence_loss,
                           double sequences, const std::string& name, const std::string& lower);

// What a run keeps as its model: the last parameters in final.ckpt and the best in best.ckpt
// (build/lm, build/cls), or the parameters of the best validation loss in final.ckpt alone
// (build/mt, which selects its model by validation loss).
enum class Kept { LastAndBest, Best };
// The end of a run: with LastAndBest, <dir>/final.ckpt with the store's (last) parameters at step
// `steps` and <dir>/best.ckpt with `best`, those of t.best_step; with Best, <dir>/final.ckpt with
// `best` at t.best_step. Each with `config` (the flags, the model kind and the variant) and
// `tokenizer`.
void save_final_and_best(const std::string& dir, const ParamStore& store, const std::vector<float>& best,
                         const TrainResult& t, int64_t steps, const std::string& config, const std::string& tokenizer,
                         Kept kept = Kept::LastAndBest);

// The file of the best parameters saved beside a training checkpoint.
std::string best_companion(const std::string& checkpoint_path);
// A checkpoint of `values` (a flat copy of the store's data) with the store's table.
Checkpoint capture_values(const ParamStore& store, const std::vector<float>& values);

}  // namespace synth

#include "train/trainer.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/gemm/blas.h"
#include "base/error.h"
#include "base/flags.h"
#include "base/io.h"
#include "engine/gemm/precision.h"
#include "engine/profile.h"
#include "base/table.h"
#include "base/clock.h"
#include "base/rng.h"

namespace synth {

void TrainConfig::bind(Flags& f) {
    f.add("seed", &seed, "seed of initialisation, data order and dropout", FlagRole::Training);
    f.add("threads", &threads,
          "threads for OpenMP and OpenBLAS (default: SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else the cores)",
          FlagRole::Training);
    f.add("steps", &steps, "training steps", FlagRole::Training);
    f.add("precision", &precision,
          "fp32 | bf16: bf16 rounds every matrix product's operands to bf16 and accumulates in fp32 (docs/precision.md)",
          FlagRole::Training);
    f.default_when_missing("precision", "fp32");  // configs from before the flag were fp32
    f.add("lr", &lr, "peak learning rate", FlagRole::Training);
    f.add("min-lr", &min_lr, "final learning rate of the cosine schedule", FlagRole::Training);
    f.add("warmup", &warmup, "linear warm-up steps", FlagRole::Training);
    f.add("schedule", &schedule, "learning-rate schedule after warm-up: cosine | rsqrt | constant", FlagRole::Training);
    f.add("weight-decay", &weight_decay, "AdamW weight decay (weight matrices only)", FlagRole::Training);
    f.add("beta2", &beta2, "AdamW beta2", FlagRole::Training);
    f.add("adam-eps", &adam_eps, "AdamW epsilon", FlagRole::Training);
    f.add("clip", &clip, "global gradient-norm clip (0 = off)", FlagRole::Training);
    f.add("eval-every", &eval_every, "steps between validation evaluations", FlagRole::Training);
    f.add("log-every", &log_every,
          "steps between kept progress lines (0: only each run's last, with a line rewritten in place on a terminal "
          "and a line every 5 minutes in a log; --verbose: 50); a line's loss is the mean of the last N (or 50) steps");
    f.add("save-every", &save_every, "save a resumable checkpoint every N steps (0 = never)");
    f.add("keep-last", &keep_last, "keep only the newest N --save-every checkpoints this process wrote (0 = all)");
    f.add("checkpoint-dir", &checkpoint_dir, "where --save-every checkpoints go (default: the run directory)");
    f.add("resume", &resume, "continue training one variant from a --save-every checkpoint (same model flags)");
    f.add("allreduce", &allreduce,
          "with several MPI ranks: mpi (MPI_Allreduce) | ordered (each gradient summed in rank order, independent of "
          "MPI's algorithm; docs/distributed.md)");
    f.add("profile", &profile,
          "print where the time goes, per op kind (forward, backward, GEMM share, bytes), as a table and a JSON line on "
          "stderr after each run and at exit (also SYNTH_PROFILE=1; docs/performance.md)");
}

std::string TrainConfig::configure_compute() const {
    set_threads(threads);
    profile::enable(profile);
    const std::string line = set_precision(parse_precision(precision));
    const std::string ranks = dist::world() > 1 ? std::to_string(dist::world()) + " MPI ranks x " : "";
    return "OpenBLAS kernel " + blas_kernel_name() + blas_kernel_note() + ", " + ranks + std::to_string(threads) +
           " threads, " + line;
}

void TrainConfig::validate() const {
    require_positive({{"lr", lr}, {"beta2", beta2}, {"adam-eps", adam_eps}});
    require_non_negative({{"steps", steps}, {"log-every", log_every}, {"warmup", warmup}, {"min-lr", min_lr},
                          {"weight-decay", weight_decay}, {"clip", clip}, {"eval-every", eval_every},
                          {"save-every", save_every}, {"keep-last", keep_last}});
    require_fraction({{"beta2", beta2}});
    SYNTH_CHECK(threads >= 1 && threads <= 256, "--threads=", threads, " must be in [1, 256]");
    lr_at(schedule, 0, 0, 1, 1, 0);  // rejects an unknown schedule now, not after training
    // The schedule's settings against each other: cosine decays from --lr to --min-lr, so a
    // floor above the peak would make it climb.
    SYNTH_CHECK(schedule != "cosine" || min_lr <= lr, "--min-lr=", min_lr, " is above --lr=", lr,
                ": the cosine schedule decays from --lr down to --min-lr (give --min-lr <= --lr)");
    // A warmup longer than the run never reaches --lr. Presets set warmups for their own step
    // counts, so a short --steps under a preset is common: said, not refused.
    if (steps > 0 && warmup > steps && dist::is_writer())
        std::fprintf(stderr, "warning: --warmup=%d is beyond --steps=%d: the learning rate never reaches --lr=%g "
                     "(at most %g); give --warmup <= --steps\n", warmup, steps, lr, lr * (double)steps / warmup);
    parse_precision(precision);
    dist::parse_reduce(allreduce);
}

void TrainConfig::prepare_checkpoint_dir() const {
    if (!checkpoint_dir.empty() && save_every > 0) ensure_writable_dir(checkpoint_dir);
}

Trainer::Trainer(ParamStore& store, const TrainConfig& cfg, std::string name, std::string checkpoint_prefix)
    : store_(store), cfg_(cfg), opt_(store, cfg.adamw()), name_(std::move(name)),
      prefix_(std::move(checkpoint_prefix)) {
    r_.best_val = INFINITY;
    r_.last_val = NAN;
    best_.assign(store.data(), store.data() + store.size());
}

void Trainer::resume(const Checkpoint& ck, const std::string& path) {
    r_.best_step = (int64_t)ck.config_number("best-step");
    if (r_.best_step > 0) {
        // Restored through the store, which checks every name and shape.
        const std::string best_path = best_companion(path);
        const Checkpoint b = load_checkpoint(best_path);
        SYNTH_CHECK(b.step == r_.best_step && b.best_val == ck.best_val, "checkpoint ", best_path, " holds step ", b.step,
                    ", not the best parameters (step ", r_.best_step, ") that ", path, " expects beside it");
        restore(b, store_, nullptr);
        std::copy(store_.data(), store_.data() + store_.size(), best_.begin());
    }
    restore(ck, store_, &opt_);
    start_ = ck.step;
    r_.best_val = ck.best_val;
    r_.compute_s = ck.config_number("compute-seconds");
    r_.tokens = (int64_t)ck.config_number("tokens");
    prev_wall_s_ = ck.config_number("wall-seconds");
    last_checkpoint_ = path;
    if (dist::is_writer())
        std::fprintf(stderr, "[%s] resumed from %s at step %lld (best validation loss so far %s)\n", name_.c_str(),
                 path.c_str(), (long long)start_, fmt(r_.best_val, 4).c_str());
}

void Trainer::save(const TrainTask& task, int64_t step, const std::vector<float>& best) {
    const std::string path = prefix_ + "-step" + std::to_string(step) + ".ckpt";
    if (!dist::is_writer()) {  // rank 0 writes the run's files (train/dist.h)
        last_checkpoint_ = path;
        return;
    }
    if (before_save) before_save(step);
    if (r_.best_step > 0) {  // first, so that a complete training checkpoint always has its companion
        Checkpoint b = capture_values(store_, best);
        b.step = r_.best_step;
        b.best_val = r_.best_val;
        save_checkpoint(best_companion(path), b);
    }
    Checkpoint ck = capture(store_, &opt_);
    ck.config = task.config + "variant=" + name_ + "\nbest-step=" + std::to_string(r_.best_step) +
                "\ncompute-seconds=" + fmt(r_.compute_s, 3) + "\ntokens=" + std::to_string(r_.tokens) +
                "\nwall-seconds=" + fmt(r_.wall_s, 3) + "\n";
    ck.tokenizer = task.tokenizer;
    ck.step = step;
    ck.best_val = r_.best_val;
    save_checkpoint(path, ck);
    last_checkpoint_ = path;
    // --keep-last: the older step checkpoints go only once the new one is safely in place.
    saved_.push_back(path);
    while (cfg_.keep_last > 0 && (int)saved_.size() > cfg_.keep_last) {
        std::remove(saved_.front().c_str());
        std::remove(best_companion(saved_.front()).c_str());
        saved_.erase(saved_.begin());
    }
}

// Evaluates after step `step` (every rank; rank 0's numbers decide, as ranks with other thread
// counts may round differently) and keeps the parameters of a new best. Returns whether it is one.
bool Trainer::evaluate(const TrainTask& task, int64_t step, double* acc) {
    r_.last_val = dist::broadcast(task.validate());
    if (task.val_accuracy) *acc = dist::broadcast(task.val_accuracy());
    if (!(r_.last_val < r_.best_val)) return false;
    r_.best_val = r_.last_val;
    r_.best_step = step;
    std::copy(store_.data(), store_.data() + store_.size(), best_.begin());
    return true;
}

ProgressLine progress_line(int64_t step, int64_t total, int log_every, bool evaluated, bool terminal,
                           double since_kept, double since_drawn) {
    if (step == total || (log_every > 0 && (step % log_every == 0 || evaluated))) return ProgressLine::Kept;
    if (terminal) return since_drawn >= kRedrawSeconds ? ProgressLine::Live : ProgressLine::None;
    return since_kept >= kLogSeconds ? ProgressLine::Kept : ProgressLine::None;
}

// "[V] step 300/2000  epoch 0.50  loss 1.8412  val 1.9011 (best)  lr 9.21e-04  15230 tok/s fp32  ETA 1m52s",
// and at the last step "done in 4m31s" (the run's wall time) in place of the ETA. The loss is the
// mean training loss of the last --log-every steps (50 when it is 0), so that it reads the same
// whichever lines were shown before.
std::string Trainer::progress_text(const TrainTask& task, const Progress& p) const {
    const size_t window = std::min(curve.size(), (size_t)(cfg_.log_every > 0 ? cfg_.log_every : 50));
    double sum = 0;
    for (size_t i = curve.size() - window; i < curve.size(); ++i) sum += curve[i].train_loss;
    const double loss = window > 0 ? sum / (double)window : NAN;
    const std::string epoch =
        task.steps_per_epoch > 0 ? "  epoch " + fmt((double)p.step / task.steps_per_epoch, 2) : "";
    const std::string val = p.evaluated ? "  val " + fmt(r_.last_val, 4) +
                                              (std::isnan(p.acc) ? "" : " acc " + fmt(p.acc, 4)) +
                                              (p.improved ? " (best)" : "")
                                        : "";
    const std::string ranks = dist::world() > 1 ? "  " + std::to_string(dist::world()) + " ranks, all-reduce " +
                                                      fmt(1e3 * p.allreduce_seconds_per_step, 1) + " ms/step"
                                                : "";
    const std::string when = p.step == p.total ? "done in " + hms(r_.wall_s)
                                               : "ETA " + hms(p.seconds_per_step * (double)(p.total - p.step));
    char line[512];
    std::snprintf(line, sizeof line, "[%s] step %lld/%lld%s  loss %.4f%s  lr %.2e  %.0f %s %s%s  %s", name_.c_str(),
                  (long long)p.step, (long long)p.total, epoch.c_str(), loss, val.c_str(), p.lr, r_.tokens_per_s(),
                  task.tokens_unit.c_str(), cfg_.precision.c_str(), ranks.c_str(), when.c_str());
    return line;
}

Trainer::ProgressState::ProgressState(double start) : terminal(isatty(fileno(stderr))), kept(start) {}

Trainer::ProgressState::~ProgressState() {
    if (live_width > 0) std::fputc('\n', stderr);
}

// Shows the line progress_line() asks for. A live line starts with '\r' and is padded with spaces
// over the longer line it replaces (no terminal escape codes, so a dumb terminal shows it too); a
// kept line over a live one does the same and ends with a newline.
void Trainer::show_progress(const TrainTask& task, const Progress& p, ProgressState& state) const {
    const double now = now_seconds();
    const ProgressLine how = progress_line(p.step, p.total, cfg_.log_every, p.evaluated, state.terminal,
                                           now - state.kept, now - state.drawn);
    if (how == ProgressLine::None) return;
    std::string line = progress_text(task, p);
    const size_t width = line.size();
    if (state.live_width > width) line.append(state.live_width - width, ' ');
    if (state.terminal) line.insert(0, "\r");
    if (how == ProgressLine::Kept) line += '\n';
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    state.live_width = how == ProgressLine::Live ? width : 0;
    state.drawn = now;
    if (how == ProgressLine::Kept) state.kept = now;
}

TrainResult Trainer::run(const TrainTask& task, int64_t total) {
    SYNTH_CHECK(start_ <= total, "the checkpoint is at step ", start_, ", past the ", total, " steps of this run");
    const int64_t eval_every = cfg_.eval_every > 0 ? cfg_.eval_every : task.steps_per_epoch;
    SYNTH_CHECK(eval_every > 0, "--eval-every must be positive");
    // Several ranks (train/dist.h): each trains on its slice of the step's global batch, and
    // every rank holds the same parameters, which the start and the end check. Dropout masks are
    // drawn per rank (a rank's rows would otherwise repeat rank 0's masks), so runs with dropout
    // agree across different N in distribution only; without dropout, within rounding.
    const bool several = dist::world() > 1;
    const dist::Reduce reduce = dist::parse_reduce(cfg_.allreduce);
    // A task that does not slice its batch would have every rank train the whole batch: N times
    // the work for one rank's result. Setting loss_count is the task's word that it slices.
    SYNTH_CHECK(!several || task.loss_count, "[", name_, "] this task does not share its batches between MPI ranks "
                "yet (TrainTask::loss_count unset), so ", dist::world(), " ranks would each train the whole batch: "
                "start one process (docs/distributed.md)");
    if (several) dist::check_same(store_.data(), store_.size(), "parameters at the start of training");
    const uint64_t dropout_seed =
        several ? splitmix64((uint64_t)cfg_.seed ^ ((uint64_t)(dist::rank() + 1) << 40)) : (uint64_t)cfg_.seed;
    const double allreduce_start = dist::allreduce_seconds();
    if (profile::on()) profile::reset();  // this run's profile only (not the memory check's step)
    const double t_start = now_seconds();
    ProgressState progress(t_start);
    for (int64_t step = start_; step < total; ++step) {
        const float lr = lr_at(cfg_.schedule, step, cfg_.warmup, total, cfg_.lr, cfg_.min_lr);
        StepContext ctx{true, dropout_seed, (uint64_t)step, 0};
        const double t0 = now_seconds();
        int64_t tokens = 0;
        StepShare share;
        const float l = train_step(
            store_, opt_,
            [&] {
                Tensor loss = task.loss(step, ctx, tokens);
                share.count = task.loss_count ? task.loss_count() : 1.0;
                share.tokens = tokens;
                return loss;
            },
            lr, cfg_.clip, several ? &share : nullptr, reduce);
        r_.compute_s += now_seconds() - t0;
        r_.tokens += several ? share.tokens : tokens;
        SYNTH_CHECK(std::isfinite(l), "[", name_, "] the training loss became ", l, " at step ", step + 1, " of ", total,
                    " (lower --lr or raise --warmup); this run has no result, and the runs after it in this invocation did not "
                    "start; ",
                    last_checkpoint_.empty() ? "no checkpoint was saved (see --save-every)"
                                             : "the last good checkpoint is " + last_checkpoint_ +
                                                   " (continue from it with --resume=" + last_checkpoint_ + ")");
        const bool eval_now = (step + 1) % eval_every == 0 || step + 1 == total;
        bool improved = false;
        double acc = NAN;
        if (eval_now) improved = evaluate(task, step + 1, &acc);
        curve.push_back({step + 1, l, eval_now ? r_.last_val : NAN, lr, acc});
        r_.wall_s = prev_wall_s_ + now_seconds() - t_start;
        if (cfg_.save_every > 0 && (step + 1) % cfg_.save_every == 0) save(task, step + 1, best_);
        if (dist::is_writer()) {
            const double per_step = 1.0 / (double)(step + 1 - start_);
            const Progress p{step + 1, total, lr, (now_seconds() - t_start) * per_step,
                             (dist::allreduce_seconds() - allreduce_start) * per_step, eval_now, improved, acc};
            show_progress(task, p, progress);
        }
    }
    r_.wall_s = prev_wall_s_ + now_seconds() - t_start;
    r_.steps = total;
    r_.allreduce_s += dist::allreduce_seconds() - allreduce_start;
    if (several) dist::check_same(store_.data(), store_.size(), "parameters at the end of training");
    if (profile::on()) profile::report(stderr, name_ + " (" + cfg_.precision + ")");
    return r_;
}

float train_step(ParamStore& store, AdamW& opt, const std::function<Tensor()>& loss, float lr, float clip,
                 StepShare* share, dist::Reduce reduce) {
    const profile::Phase step("step");
    scratch().reset();
    {
        const profile::Phase phase("zero_grad");
        store.zero_grad();
    }
    Tensor l;
    {
        const profile::Phase phase("forward");
        l = loss();  // (1)
    }
    // One rank: the loss is the step's. Several (train/dist.h): the global loss is
    // sum_r count_r * loss_r / sum_r count_r (dist::share_weight), so rank r's backward starts from
    // its weight and the all-reduce's sum is then the global mean's gradient.
    float step_loss = l.data[0];
    if (dist::world() == 1) {
        const profile::Phase phase("backward");
        backward(l);
    } else {
        const StepShare local = share ? *share : StepShare{};
        const std::vector<double> sums =
            dist::sum_ordered({local.count, local.count * (double)l.data[0], (double)local.tokens});
        if (share) *share = StepShare{sums[0], (int64_t)sums[2]};
        step_loss = sums[0] > 0 ? (float)(sums[1] / sums[0]) : 0.0f;
        {
            const profile::Phase phase("backward");
            backward(scale(l, (float)dist::share_weight(local.count, sums[0])));
        }
        const profile::Phase phase("allreduce");
        dist::allreduce_sum(store.grad(), store.size(), reduce);
    }
    {
        const profile::Phase phase("clip");
        clip_grad_norm(store, clip);
    }
    const profile::Phase phase("adamw");
    opt.step(lr);
    return step_loss;
}

void check_training_memory(ParamStore& store, const std::function<Tensor(StepContext&)>& one_sequence_loss,
                           double sequences, const std::string& name, const std::string& lower) {
    const double available = available_memory_bytes() / dist::local_ranks();  // the node's ranks share it
    if (available <= 0) return;
    auto gib = [](double b) { return fmt(b / (1 << 30), 2) + " GiB"; };
    int64_t n = 0;
    for (const Param& p : store.params()) n += numel_of(p.shape);
    const double params = 5.0 * sizeof(float) * n;  // values, gradients, m, v, best
    SYNTH_CHECK(params < 0.9 * available, "[", name, "] the model's ", n, " parameters need about ", gib(params),
                " with their gradients and AdamW state, but ", gib(available), " are available: lower the model size");
    store.finalize(0);
    AdamW opt(store, AdamWConfig{});
    StepContext ctx{true, 0, 0, 0};
    UntracedScope untraced;  // SYNTH_TRACE=1 traces the first training step, not this probe
    scratch().grads.measure_peak(true);  // gradients are resident only while backward uses them
    train_step(store, opt, [&] { return one_sequence_loss(ctx); }, 0.0f, 0.0f);
    scratch().grads.measure_peak(false);
    const double activations = (double)scratch().in_use_bytes() + (double)scratch().grads.peak_resident_bytes();
    const double need = params + activations * sequences;
    scratch().reset();
    SYNTH_CHECK(need < 0.9 * available, "[", name, "] one training step needs about ", gib(need), ", but ",
                gib(available), " are available: lower ", lower);
}

double mean_eval_loss(size_t n, const std::function<void(size_t, StepContext&, LossStats&)>& batch) {
    NoGrad ng;
    StepContext ctx;
    LossStats st;
    for (size_t i = 0; i < n; ++i) {
        scratch().reset();
        batch(i, ctx, st);
    }
    return st.sum_nll / (double)st.count;
}

void save_final_and_best(const std::string& dir, const ParamStore& store, const std::vector<float>& best,
                         const TrainResult& t, int64_t steps, const std::string& config, const std::string& tokenizer,
                         Kept kept) {
    if (!dist::is_writer()) return;
    Checkpoint final_ck = kept == Kept::Best ? capture_values(store, best) : capture(store, nullptr);
    final_ck.step = kept == Kept::Best ? t.best_step : steps;
    Checkpoint best_ck = kept == Kept::Best ? Checkpoint() : capture_values(store, best);
    best_ck.step = t.best_step;
    for (Checkpoint* ck : {&final_ck, &best_ck}) {
        ck->config = config;
        ck->tokenizer = tokenizer;
        ck->best_val = t.best_val;
    }
    save_checkpoint(dir + "/final.ckpt", final_ck);
    if (kept == Kept::LastAndBest) save_checkpoint(dir + "/best.ckpt", best_ck);
}

std::string best_companion(const std::string& path) {
    const std::string ext = ".ckpt";
    const bool has_ext = path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
    return (has_ext ? path.substr(0, path.size() - ext.size()) : path) + ".best.ckpt";
}

Checkpoint capture_values(const ParamStore& store, const std::vector<float>& values) {
    Checkpoint ck = capture(store, nullptr);
    for (size_t i = 0; i < ck.params.size(); ++i) {
        const Param& p = store.params()[i];
        std::copy(values.begin() + p.offset, values.begin() + p.offset + (int64_t)ck.params[i].values.size(),
                  ck.params[i].values.begin());
    }
    return ck;
}

}  // namespace synth

#include "train/trainer.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "engine/autograd.h"
#include "engine/gemm/blas.h"
#include "base/error.h"
#include "base/flags.h"
#include "base/io.h"
#include "engine/gemm/precision.h"
#include "base/table.h"
#include "base/clock.h"

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
    f.add("log-every", &log_every, "steps between progress lines");
    f.add("save-every", &save_every, "save a resumable checkpoint every N steps (0 = never)");
    f.add("keep-last", &keep_last, "keep only the newest N --save-every checkpoints this process wrote (0 = all)");
    f.add("checkpoint-dir", &checkpoint_dir, "where --save-every checkpoints go (default: the run directory)");
    f.add("resume", &resume, "continue training one variant from a --save-every checkpoint (same model flags)");
}

std::string TrainConfig::configure_compute() const {
    set_threads(threads);
    const std::string line = set_precision(parse_precision(precision));
    return "OpenBLAS kernel " + blas_kernel_name() + blas_kernel_note() + ", " + std::to_string(threads) + " threads, " + line;
}

void TrainConfig::validate() const {
    require_positive({{"lr", lr}, {"log-every", log_every}, {"beta2", beta2}, {"adam-eps", adam_eps}});
    require_non_negative({{"steps", steps}, {"warmup", warmup}, {"min-lr", min_lr}, {"weight-decay", weight_decay},
                          {"clip", clip}, {"eval-every", eval_every}, {"save-every", save_every},
                          {"keep-last", keep_last}});
    require_fraction({{"beta2", beta2}});
    SYNTH_CHECK(threads >= 1 && threads <= 256, "--threads=", threads, " must be in [1, 256]");
    lr_at(schedule, 0, 0, 1, 1, 0);  // rejects an unknown schedule now, not after training
    parse_precision(precision);
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
    std::fprintf(stderr, "[%s] resumed from %s at step %lld (best validation loss so far %s)\n", name_.c_str(),
                 path.c_str(), (long long)start_, fmt(r_.best_val, 4).c_str());
}

void Trainer::save(const TrainTask& task, int64_t step, const std::vector<float>& best) {
    const std::string path = prefix_ + "-step" + std::to_string(step) + ".ckpt";
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

TrainResult Trainer::run(const TrainTask& task, int64_t total) {
    SYNTH_CHECK(start_ <= total, "the checkpoint is at step ", start_, ", past the ", total, " steps of this run");
    const int64_t eval_every = cfg_.eval_every > 0 ? cfg_.eval_every : task.steps_per_epoch;
    SYNTH_CHECK(eval_every > 0, "--eval-every must be positive");
    const double t_start = now_seconds();
    double window_loss = 0;
    int window = 0;
    for (int64_t step = start_; step < total; ++step) {
        const float lr = lr_at(cfg_.schedule, step, cfg_.warmup, total, cfg_.lr, cfg_.min_lr);
        StepContext ctx{true, (uint64_t)cfg_.seed, (uint64_t)step, 0};
        const double t0 = now_seconds();
        int64_t tokens = 0;
        const float l = train_step(store_, opt_, [&] { return task.loss(step, ctx, tokens); }, lr, cfg_.clip);
        r_.compute_s += now_seconds() - t0;
        r_.tokens += tokens;
        SYNTH_CHECK(std::isfinite(l), "[", name_, "] the training loss became ", l, " at step ", step + 1, " of ", total,
                    " (lower --lr or raise --warmup); this run has no result, and the runs after it in this invocation did not "
                    "start; ",
                    last_checkpoint_.empty() ? "no checkpoint was saved (see --save-every)"
                                             : "the last good checkpoint is " + last_checkpoint_ +
                                                   " (continue from it with --resume=" + last_checkpoint_ + ")");
        window_loss += l;
        ++window;
        const bool eval_now = (step + 1) % eval_every == 0 || step + 1 == total;
        bool improved = false;
        double acc = NAN;
        if (eval_now) {
            r_.last_val = task.validate();
            if (task.val_accuracy) acc = task.val_accuracy();
            improved = r_.last_val < r_.best_val;
            if (improved) {
                r_.best_val = r_.last_val;
                r_.best_step = step + 1;
                std::copy(store_.data(), store_.data() + store_.size(), best_.begin());
            }
        }
        curve.push_back({step + 1, l, eval_now ? r_.last_val : NAN, lr, acc});
        r_.wall_s = prev_wall_s_ + now_seconds() - t_start;
        if (cfg_.save_every > 0 && (step + 1) % cfg_.save_every == 0) save(task, step + 1, best_);
        if ((step + 1) % cfg_.log_every == 0 || eval_now) {
            const double eta = (now_seconds() - t_start) / (double)(step + 1 - start_) * (double)(total - step - 1);
            std::string epoch = task.steps_per_epoch > 0 ? "  epoch " + fmt((double)(step + 1) / task.steps_per_epoch, 2) : "";
            std::string val = eval_now ? "  val " + fmt(r_.last_val, 4) + (std::isnan(acc) ? "" : " acc " + fmt(acc, 4)) +
                                             (improved ? " (best)" : "")
                                       : "";
            std::fprintf(stderr, "[%s] step %lld/%lld%s  loss %.4f%s  lr %.2e  %.0f %s %s  ETA %s\n", name_.c_str(),
                         (long long)(step + 1), (long long)total, epoch.c_str(), window_loss / window, val.c_str(), lr,
                         r_.tokens_per_s(), task.tokens_unit.c_str(), cfg_.precision.c_str(), hms(eta).c_str());
            window_loss = 0;
            window = 0;
        }
    }
    r_.wall_s = prev_wall_s_ + now_seconds() - t_start;
    r_.steps = total;
    return r_;
}

float train_step(ParamStore& store, AdamW& opt, const std::function<Tensor()>& loss, float lr, float clip) {
    scratch().reset();
    store.zero_grad();
    Tensor l = loss();  // (1)
    backward(l);
    clip_grad_norm(store, clip);
    opt.step(lr);
    return l.data[0];
}

void check_training_memory(ParamStore& store, const std::function<Tensor(StepContext&)>& one_sequence_loss,
                           double sequences, const std::string& name, const std::string& lower) {
    const double available = available_memory_bytes();
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
    train_step(store, opt, [&] { return one_sequence_loss(ctx); }, 0.0f, 0.0f);
    const double need = params + (double)scratch().in_use_bytes() * sequences;
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

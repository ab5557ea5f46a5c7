// lm: train and evaluate Synthesizer variants as decoder-only language models.
//
//   build/lm --data=tinyshakespeare --preset=quick            # the default sweep
//   build/lm --data=ptb --variants=V,R,R+V --preset=full
//   build/lm --bench --variants=V,R                           # throughput, one JSON line each
//
// Every variant trains with the same seed, so the same initialisation stream and the same
// data order. Results are merged by variant into results/lm-<data>-<preset>.{csv,md}
// (so a sweep can be split across processes) with a per-step loss curve CSV beside them.
#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>

#include "autograd.h"
#include "blas.h"
#include "checkpoint.h"
#include "cli.h"
#include "common.h"
#include "data.h"
#include "flags.h"
#include "io.h"
#include "optim.h"
#include "report.h"
#include "rng.h"
#include "transformer.h"

extern char** environ;

namespace synth {
namespace {

struct Options {
    std::string data = "tinyshakespeare", variants = "V,R,Rfix,D,FR,FD,R+V,D+V,R+D", preset = "quick";
    std::string results_dir = "results", schedule = "cosine", r_init = "normal", tag;
    std::string checkpoint_dir = "checkpoints", resume;
    int seed = 1337, threads = 2, d_model = 128, layers = 4, heads = 4, d_ff = 512, seq = 64, batch = 32;
    int steps = 1000, warmup = 100, eval_every = 200, eval_batches = 20, log_every = 50;
    int fr_rank = 8, fd_a = 0, sample = 0, vocab = 65, bench_steps = 10, bench_infer_steps = 20, save_every = 0;
    float lr = 1e-3f, min_lr = 1e-4f, weight_decay = 0.1f, clip = 1.0f, dropout = 0.1f, attn_dropout = 0.0f;
    float beta2 = 0.99f;
    bool share_w2 = false, bench = false, bench_one = false, report_only = false;
};

// Presets set the defaults of flags the user did not give. `full` is the documented run
// behind the committed tables; `quick` sweeps the nine default variants in under 10 minutes.
void apply_preset(Options& o, Flags& f) {
    std::map<std::string, std::string> p;
    if (o.preset == "quick")
        p = {{"d-model", "128"}, {"layers", "2"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"}, {"batch", "16"},
             {"steps", "300"}, {"warmup", "30"}, {"eval-every", "100"}, {"eval-batches", "10"}, {"lr", "2e-3"},
             {"min-lr", "2e-4"}, {"dropout", "0.0"}};
    else if (o.preset == "full") {
        // Exactly nanoGPT's CPU setting (README: 4 layers, 4 heads, d=128, context 64, batch 12,
        // 2,000 iterations, lr 1e-3 decayed to 1e-4, dropout 0), so V can be compared with its ~1.88.
        p = {{"d-model", "128"}, {"layers", "4"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"}, {"batch", "12"},
             {"steps", "2000"}, {"warmup", "100"}, {"eval-every", "250"}, {"eval-batches", "20"}, {"lr", "1e-3"},
             {"min-lr", "1e-4"}, {"dropout", "0.0"}};
        // PTB's 10k-word output layer makes a step ~2.6x dearer than on characters: the same shape
        // for 800 steps (0.6M tokens, 0.66 epochs) is what fits the session budget this table had.
        if (o.data == "ptb") p["steps"] = "800", p["eval-every"] = "200";
    }
    else if (o.preset != "none")
        fail("unknown --preset '", o.preset, "' (quick, full, none)");
    std::vector<std::string> args;
    for (auto& [k, v] : p)
        if (!f.given(k)) args.push_back("--" + k + "=" + v);
    f.parse(args);
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double peak_rss_mb() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

std::string hms(double s) {
    char buf[32];
    int t = (int)std::lround(s);
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, t / 60 % 60);
    else std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
    return buf;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        SYNTH_CHECK(!item.empty(), "empty entry in list '", s, "'");
        out.push_back(item);
    }
    SYNTH_CHECK(!out.empty(), "empty list '", s, "'");
    return out;
}

LmConfig model_config(const Options& o, const std::string& variant, int vocab) {
    LmConfig c;
    c.vocab = vocab;
    c.layers = o.layers;
    c.d_ff = o.d_ff;
    c.dropout = o.dropout;
    c.attn.d_model = o.d_model;
    c.attn.heads = o.heads;
    c.attn.max_len = o.seq;
    c.attn.variant = variant;
    c.attn.share_w2 = o.share_w2;
    c.attn.fr_rank = o.fr_rank;
    c.attn.fd_a = o.fd_a;
    c.attn.r_init = o.r_init;
    c.attn.attn_dropout = o.attn_dropout;
    return c;
}

// Range checks; each message names the flag and the value it got.
void validate(const Options& o) {
    require_positive({{"d-model", o.d_model}, {"layers", o.layers}, {"heads", o.heads}, {"d-ff", o.d_ff},
                      {"seq", o.seq}, {"batch", o.batch}, {"steps", o.steps}, {"eval-every", o.eval_every},
                      {"eval-batches", o.eval_batches}, {"log-every", o.log_every}, {"fr-rank", o.fr_rank},
                      {"vocab", o.vocab}, {"bench-steps", o.bench_steps}, {"bench-infer-steps", o.bench_infer_steps}});
    require_non_negative({{"warmup", o.warmup}, {"fd-a", o.fd_a}, {"sample", o.sample}, {"save-every", o.save_every}});
    SYNTH_CHECK(o.d_model % o.heads == 0, "--heads=", o.heads, " must divide --d-model=", o.d_model);
    SYNTH_CHECK(o.fd_a == 0 || o.seq % o.fd_a == 0, "--fd-a=", o.fd_a, " must divide --seq=", o.seq);
    SYNTH_CHECK(o.threads >= 1 && o.threads <= 256, "--threads=", o.threads, " must be in [1, 256]");
    require_positive({{"lr", o.lr}});
    require_non_negative({{"min-lr", o.min_lr}, {"clip", o.clip}, {"weight-decay", o.weight_decay}});
    require_fraction({{"dropout", o.dropout}, {"attn-dropout", o.attn_dropout}, {"beta2", o.beta2}});
    lr_at(o.schedule, 0, 0, 1, 1, 0);  // rejects an unknown schedule now, not after training
    for (const std::string& v : split_list(o.variants)) parse_variant(v);
}

// One training step on a (B, T) batch; returns the mean loss.
float train_step(TransformerLM& model, ParamStore& store, AdamW& opt, const std::vector<int32_t>& x,
                 const std::vector<int32_t>& y, int B, int T, Ctx& ctx, float lr, float clip) {
    scratch().reset();
    store.zero_grad();
    Tensor logits = model.forward(x, B, T, ctx);
    Tensor loss = cross_entropy(logits, y, -1, 0.0f);
    backward(loss);
    clip_grad_norm(store, clip);
    opt.step(lr);
    return loss.data[0];
}

// Mean NLL per token over the given batches, without gradients.
double evaluate(TransformerLM& model, const std::vector<LmBatch>& batches) {
    NoGrad ng;
    Ctx ctx;
    LossStats st;
    for (const LmBatch& b : batches) {
        scratch().reset();
        cross_entropy(model.forward(b.x, b.rows, b.seq, ctx), b.y, -1, 0.0f, &st);
    }
    return st.sum_nll / (double)st.count;
}

// Samples n tokens with incremental decoding (cached keys/values and synthetic rows).
std::string sample_text(TransformerLM& model, const LmCorpus& corpus, int n, uint64_t seed) {
    NoGrad ng;
    Ctx ctx;
    Rng rng(seed);
    const int L = model.config().attn.max_len;
    std::vector<int32_t> out = {corpus.valid[0]};
    while ((int)out.size() <= n) {
        // Re-prime from the last L/2 tokens whenever the context is full.
        scratch().reset();
        std::vector<AttnCache> caches(model.config().layers);
        size_t start = out.size() > (size_t)L / 2 ? out.size() - L / 2 : 0;
        std::vector<int32_t> prompt(out.begin() + start, out.end());
        Tensor logits = model.forward(prompt, 1, (int)prompt.size(), ctx, &caches);
        const float* last = logits.data + (int64_t)(prompt.size() - 1) * corpus.vocab;
        while ((int)out.size() <= n) {
            double mx = last[0], s = 0;
            for (int v = 1; v < corpus.vocab; ++v) mx = std::max(mx, (double)last[v]);
            std::vector<double> p(corpus.vocab);
            for (int v = 0; v < corpus.vocab; ++v) s += (p[v] = std::exp(last[v] - mx));
            double u = rng.uniform() * s;
            int tok = 0;
            while (tok < corpus.vocab - 1 && (u -= p[tok]) > 0) ++tok;
            out.push_back(tok);
            if (caches[0].len >= L) break;
            logits = model.forward({tok}, 1, 1, ctx, &caches);
            last = logits.data;
        }
    }
    return corpus.decode(out);
}

using Row = std::vector<std::string>;
const std::vector<std::string> kCurveColumns = {"variant", "step", "train_loss", "val_loss", "lr"};

// Replaces the variant's rows of <stem>-curves.csv by `curve`, under the results lock (other
// processes may be sweeping other variants into the same file).
void write_curve(const std::string& stem, const std::string& variant, const std::vector<Row>& curve) {
    FileLock lock(stem + ".lock");
    Table curves = Table::load_or_empty(stem + "-curves.csv", kCurveColumns);
    curves.remove("variant", variant);
    curves.rows.insert(curves.rows.end(), curve.begin(), curve.end());
    write_file_atomic(stem + "-curves.csv", curves.to_csv());
}

// The variant's curve rows for steps 1..step, as the checkpointed run wrote them.
std::vector<Row> curve_until(const std::string& stem, const std::string& variant, int64_t step) {
    FileLock lock(stem + ".lock");
    Table curves = Table::load_or_empty(stem + "-curves.csv", kCurveColumns);
    std::map<int64_t, Row> by_step;
    for (const Row& r : curves.rows) {
        int64_t s = std::atoll(r[1].c_str());
        if (r[0] == variant && s >= 1 && s <= step) by_step[s] = r;
    }
    if ((int64_t)by_step.size() != step)
        std::fprintf(stderr, "[%s] warning: %s-curves.csv has %zu of the %lld loss-curve rows before the checkpoint; "
                     "the curve will have a gap\n", variant.c_str(), stem.c_str(), by_step.size(), (long long)step);
    std::vector<Row> rows;
    for (auto& [s, r] : by_step) rows.push_back(r);
    return rows;
}

// What a run saves with its checkpoints, where, and where it resumes from (--save-every, --resume).
struct CheckpointPlan {
    std::string config;     // the resolved flags (Flags::dump())
    std::string tokenizer;  // the corpus's serialized tokenizer
    std::string prefix;     // checkpoints are <prefix><variant>-step<N>.ckpt
    std::string stem;       // the results files <stem>.csv, <stem>-curves.csv, <stem>.lock
    const Checkpoint* resume = nullptr;
};

struct VariantResult {
    std::string variant;
    int64_t params;
    double val_loss, test_loss, tok_s, wall_s;
};

// curve: receives one row per step (variant, step, train_loss, val_loss, lr). A resumed run
// starts at the checkpoint's step with the rows before it from the existing curves CSV; the
// data order, learning rate and dropout masks are functions of (seed, step), so the model,
// the AdamW state and the step are all it needs to continue exactly as the first run would.
VariantResult train_variant(const Options& o, const LmCorpus& corpus, const std::string& variant,
                            const CheckpointPlan& plan, std::vector<Row>& curve) {
    const double t_start = now_s();
    ParamStore store;
    TransformerLM model(store, model_config(o, variant, corpus.vocab));
    store.finalize(o.seed);
    AdamWConfig ac;
    ac.beta2 = o.beta2;
    ac.eps = 1e-8f;
    ac.weight_decay = o.weight_decay;
    AdamW opt(store, ac);
    std::fprintf(stderr, "[%s] %lld trainable parameters\n", variant.c_str(), (long long)store.trainable_count());

    std::vector<LmBatch> all_val = eval_lm_batches(corpus.valid, o.batch, o.seq), val;
    for (int i = 0; i < std::min<int>(o.eval_batches, all_val.size()); ++i)
        val.push_back(all_val[(size_t)i * all_val.size() / std::min<int>(o.eval_batches, all_val.size())]);

    const int B = o.batch, T = o.seq;
    std::vector<int32_t> x((size_t)B * T), y((size_t)B * T);
    double train_time = 0, last_val = NAN, window_loss = 0;
    int window = 0;
    int start = 0;
    double prev_train_s = 0, prev_wall_s = 0, best_val = INFINITY;  // carried over by checkpoints
    std::string last_checkpoint;
    if (plan.resume) {
        const Checkpoint& ck = *plan.resume;
        restore(ck, store, &opt);
        start = (int)ck.step;
        prev_train_s = ck.config_number("train-seconds");
        prev_wall_s = ck.config_number("wall-seconds");
        best_val = ck.best_val;
        curve = curve_until(plan.stem, variant, start);
        last_checkpoint = o.resume;
        std::fprintf(stderr, "[%s] resumed from %s at step %d (best validation loss so far %s)\n", variant.c_str(),
                     o.resume.c_str(), start, fmt(best_val, 4).c_str());
    }
    for (int step = start; step < o.steps; ++step) {
        sample_lm_batch(corpus.train, B, T, o.seed, step, x.data(), y.data());
        float lr = lr_at(o.schedule, step, o.warmup, o.steps, o.lr, o.min_lr);
        Ctx ctx{true, (uint64_t)o.seed, (uint64_t)step, 0};
        double t0 = now_s();
        float loss = train_step(model, store, opt, x, y, B, T, ctx, lr, o.clip);
        train_time += now_s() - t0;
        SYNTH_CHECK(std::isfinite(loss), "[", variant, "] the training loss became ", loss, " at step ", step + 1,
                    " of ", o.steps, " (lower --lr or raise --warmup); the results table was not updated for this variant; ",
                    last_checkpoint.empty() ? "no checkpoint was saved (see --save-every)"
                                            : "the last good checkpoint is " + last_checkpoint +
                                                  " (continue from it with --resume=" + last_checkpoint + ")");
        window_loss += loss;
        ++window;
        bool eval_now = (step + 1) % o.eval_every == 0 || step + 1 == o.steps;
        std::string val_field;
        if (eval_now) {
            last_val = evaluate(model, val);
            val_field = fmt(last_val, 4);
            best_val = std::min(best_val, last_val);
        }
        curve.push_back({variant, std::to_string(step + 1), fmt(loss, 4), val_field, fmt(lr, 6)});
        if (o.save_every > 0 && (step + 1) % o.save_every == 0) {
            Checkpoint ck = capture(store, &opt);
            ck.config = plan.config + "variant=" + variant + "\ntrain-seconds=" + fmt(prev_train_s + train_time, 3) +
                        "\nwall-seconds=" + fmt(prev_wall_s + now_s() - t_start, 3) + "\n";
            ck.tokenizer = plan.tokenizer;
            ck.step = step + 1;
            ck.best_val = best_val;
            const std::string path = plan.prefix + variant + "-step" + std::to_string(step + 1) + ".ckpt";
            save_checkpoint(path, ck);
            write_curve(plan.stem, variant, curve);  // so a resumed run finds the curve up to here
            last_checkpoint = path;
        }
        if ((step + 1) % o.log_every == 0 || eval_now) {
            double tok_s = (double)B * T * (step + 1) / (prev_train_s + train_time);
            double eta = (now_s() - t_start) / (step + 1 - start) * (o.steps - step - 1);
            std::fprintf(stderr, "[%s] step %d/%d  loss %.4f  %s lr %.2e  %.0f tok/s  ETA %s\n", variant.c_str(),
                         step + 1, o.steps, window_loss / window,
                         eval_now ? ("val " + fmt(last_val, 4) + " ").c_str() : "", lr, tok_s, hms(eta).c_str());
            window_loss = 0;
            window = 0;
        }
    }
    VariantResult r;
    r.variant = variant;
    r.params = store.trainable_count();
    r.val_loss = evaluate(model, all_val);
    r.test_loss = corpus.test_is_valid ? r.val_loss : evaluate(model, eval_lm_batches(corpus.test, o.batch, o.seq));
    r.tok_s = (double)B * T * o.steps / (prev_train_s + train_time);
    r.wall_s = prev_wall_s + now_s() - t_start;
    if (o.sample > 0)
        std::printf("--- sample from %s ---\n%s\n---\n", variant.c_str(), sample_text(model, corpus, o.sample, o.seed).c_str());
    return r;
}

// The six findings of PAPER.md, checked against this table's numbers.
std::string findings(const std::map<std::string, VariantResult>& r, bool is_char) {
    auto has = [&](const char* v) { return r.count(v) > 0; };
    auto m = [&](const char* v) { return r.at(v).val_loss; };
    auto show = [&](const char* v) {
        return std::string(v) + " " + fmt(m(v), 4) + (is_char ? " nats (" + fmt(m(v) / std::log(2.0), 3) + " bpc)"
                                                              : " nats (ppl " + fmt(std::exp(m(v)), 1) + ")");
    };
    auto pct = [&](const char* a, const char* b) {
        return std::string(a) + " vs " + b + ": " + (m(a) >= m(b) ? "+" : "") + fmt(100.0 * (m(a) - m(b)) / m(b), 1) + "% loss";
    };
    // "Competitive" = within 3% of V's validation loss.
    auto close = [&](const char* a, const char* b) { return std::fabs(m(a) - m(b)) <= 0.03 * m(b); };
    std::ostringstream os;
    os << "\n## Findings (PAPER.md 1-5), from the validation losses above\n\n";
    if (has("V") && has("R") && has("Rfix"))
        os << "1. **Trainable R vs V; Rfix vs R.** " << show("R") << " vs " << show("V") << ": "
           << (close("R", "V") ? "competitive (within 3%)" : m("R") < m("V") ? "R is better" : "R is clearly worse")
           << " (" << pct("R", "V") << ")"
           << ". " << show("Rfix") << ": " << (m("Rfix") > m("R") + 0.01 ? "worse than R — confirmed." : "not worse than R — refuted here.")
           << "\n";
    if (has("D") && has("R"))
        os << "2. **D about as good as R.** " << show("D") << " vs " << show("R") << ": "
           << (std::fabs(m("D") - m("R")) <= 0.03 * m("R") ? "within 3% — confirmed."
               : m("D") < m("R")                            ? "D is better than R by more than 3% — D is at least as good."
                                                            : "D is worse than R by more than 3% — not confirmed.")
           << " (" << pct("D", "R") << ")"
           << "\n";
    if (has("V") && (has("R+V") || has("D+V"))) {
        os << "3. **Mixtures with V beat V.** ";
        for (const char* mv : {"R+V", "D+V"})
            if (has(mv)) os << show(mv) << " vs " << show("V") << (m(mv) < m("V") ? " (better); " : " (not better); ");
        os << "\n";
    }
    if ((has("FR") && has("R")) || (has("FD") && has("D"))) {
        os << "4. **Factorized close to full, with fewer parameters.** ";
        for (auto [f, full] : {std::pair<const char*, const char*>{"FR", "R"}, {"FD", "D"}})
            if (has(f) && has(full))
                os << show(f) << " with " << r.at(f).params << " params vs " << show(full) << " with "
                   << r.at(full).params << " (" << fmt(100.0 * (m(f) - m(full)) / m(full), 1) << "% loss difference); ";
        os << "\n";
    }
    if (has("V") && has("R"))
        os << "5. **R faster than V.** Training throughput R " << fmt(r.at("R").tok_s, 0) << " tok/s vs V "
           << fmt(r.at("V").tok_s, 0) << " tok/s: R is " << fmt(r.at("R").tok_s / r.at("V").tok_s, 2)
           << "x V's speed (wall-clock throughput of this run, model shape above; other jobs may have shared the "
              "cores, so results/bench.md, measured on a quiet machine, is the controlled comparison).\n";
    return os.str();
}

std::string data_stem(const std::string& data) {
    std::string s = data.substr(data.find_last_of('/') + 1);
    size_t dot = s.find('.');
    return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

// ---- --bench: throughput on random tokens, one child process per variant ------------------

void bench_one(const Options& o, const std::string& variant) {
    ParamStore store;
    TransformerLM model(store, model_config(o, variant, o.vocab));
    store.finalize(o.seed);
    AdamW opt(store, AdamWConfig{});
    const int B = o.batch, T = o.seq;
    Rng rng(o.seed);
    std::vector<int32_t> x((size_t)B * T), y((size_t)B * T);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (int32_t)rng.below(o.vocab), y[i] = (int32_t)rng.below(o.vocab);
    auto run = [&](int steps, bool train) {
        double t0 = now_s();
        for (int s = 0; s < steps; ++s) {
            Ctx ctx{train, (uint64_t)o.seed, (uint64_t)s, 0};
            if (train) {
                train_step(model, store, opt, x, y, B, T, ctx, 1e-4f, 1.0f);
            } else {
                NoGrad ng;
                scratch().reset();
                model.forward(x, B, T, ctx);
            }
        }
        return (double)B * T * steps / (now_s() - t0);
    };
    run(3, true);
    double train = run(o.bench_steps, true);
    run(2, false);
    double infer = run(o.bench_infer_steps, false);
    std::printf("{\"variant\":\"%s\",\"params\":%lld,\"train_tokens_per_s\":%.1f,\"infer_tokens_per_s\":%.1f,"
                "\"peak_rss_mb\":%.1f,\"batch\":%d,\"seq\":%d,\"d_model\":%d,\"layers\":%d,\"heads\":%d,\"d_ff\":%d,"
                "\"vocab\":%d,\"threads\":%d,\"kernel\":\"%s\"}\n",
                variant.c_str(), (long long)store.trainable_count(), train, infer, peak_rss_mb(), B, T, o.d_model,
                o.layers, o.heads, o.d_ff, o.vocab, o.threads, blas_kernel_name().c_str());
    std::fflush(stdout);
}

// Each variant runs in a fresh process so its peak RSS is its own.
void bench_all(const Options& o, int argc, char** argv) {
    for (const std::string& v : split_list(o.variants)) {
        std::vector<std::string> args(argv, argv + argc);
        args.push_back("--variants=" + v);  // the last occurrence of a flag wins
        args.push_back("--bench-one");
        std::vector<char*> cargs;
        for (auto& a : args) cargs.push_back(a.data());
        cargs.push_back(nullptr);
        pid_t pid;
        int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, cargs.data(), environ);
        SYNTH_CHECK(rc == 0, "cannot start the benchmark process: ", std::strerror(rc));
        int status = 0;
        waitpid(pid, &status, 0);
        SYNTH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "benchmark of ", v, " failed");
    }
}

// --resume: the model must have exactly the checkpoint's shape (see synth::check_resume).
void check_lm_resume(const Options& o, const Flags& f, const Checkpoint& ck) {
    check_resume(ck, o.resume, split_list(o.variants), f.dump(),
                 {"d-model", "layers", "heads", "d-ff", "seq", "vocab", "fr-rank", "fd-a", "share-w2"},
                 {"data", "seed", "threads", "batch", "steps", "lr", "min-lr", "warmup", "schedule", "weight-decay",
                  "beta2", "clip", "dropout", "attn-dropout"});
    SYNTH_CHECK(ck.step <= o.steps, "checkpoint ", o.resume, " is at step ", ck.step, ", past --steps=", o.steps);
}

int run(int argc, char** argv) {
    Options o;
    Flags f("lm", "Train and evaluate Synthesizer variants as decoder-only Transformer language models.");
    f.add("data", &o.data, "tinyshakespeare | ptb | PATH to a UTF-8 text file (character level)");
    f.add("variants", &o.variants, "comma-separated attention variants: V, D, R, Rfix, FR, FD, mixtures like R+V");
    f.add("preset", &o.preset, "quick | full | none: defaults for the flags not given");
    f.add("seed", &o.seed, "seed of initialisation, data order and dropout");
    f.add("threads", &o.threads, "threads for OpenMP and OpenBLAS");
    f.add("d-model", &o.d_model, "model width d");
    f.add("layers", &o.layers, "Transformer blocks");
    f.add("heads", &o.heads, "attention heads H");
    f.add("d-ff", &o.d_ff, "feed-forward width");
    f.add("seq", &o.seq, "context length = the synthesizers' maximum length L");
    f.add("batch", &o.batch, "sequences per step");
    f.add("vocab", &o.vocab, "vocabulary size for --bench (random tokens)");
    f.add("steps", &o.steps, "training steps");
    f.add("lr", &o.lr, "peak learning rate");
    f.add("min-lr", &o.min_lr, "final learning rate of the cosine schedule");
    f.add("warmup", &o.warmup, "linear warm-up steps");
    f.add("schedule", &o.schedule, "cosine | rsqrt | constant");
    f.add("weight-decay", &o.weight_decay, "AdamW weight decay (matrices only)");
    f.add("beta2", &o.beta2, "AdamW beta2");
    f.add("clip", &o.clip, "global gradient-norm clip (0 = off)");
    f.add("dropout", &o.dropout, "residual and embedding dropout");
    f.add("attn-dropout", &o.attn_dropout, "dropout on attention probabilities");
    f.add("eval-every", &o.eval_every, "steps between validation evaluations");
    f.add("eval-batches", &o.eval_batches, "validation batches per evaluation (spread over the split)");
    f.add("log-every", &o.log_every, "steps between progress lines");
    f.add("fr-rank", &o.fr_rank, "FR: rank k of R1 R2^T");
    f.add("fd-a", &o.fd_a, "FD: a (0 = divisor of L nearest sqrt(L))");
    f.add("share-w2", &o.share_w2, "D: share W2 across heads (as mesh-tensorflow)");
    f.add("r-init", &o.r_init, "R/FR initialisation: normal (N(0, 0.02)) or glorot");
    f.add("sample", &o.sample, "after training, print N sampled tokens per variant");
    f.add("results-dir", &o.results_dir, "where the CSV and Markdown results go");
    f.add("tag", &o.tag, "suffix for result file names (e.g. heads1)");
    f.add("save-every", &o.save_every,
          "save a checkpoint every N steps (0 = never); each is kept as <checkpoint-dir>/<results name>-<variant>-step<N>.ckpt");
    f.add("checkpoint-dir", &o.checkpoint_dir, "where --save-every writes checkpoints");
    f.add("resume", &o.resume, "continue training one variant from this checkpoint (same model flags)");
    f.add("report-only", &o.report_only, "rewrite the Markdown report from the merged CSV without training");
    f.add("bench", &o.bench, "throughput benchmark on random tokens instead of training");
    f.add("bench-steps", &o.bench_steps, "--bench: timed training steps per variant");
    f.add("bench-infer-steps", &o.bench_infer_steps, "--bench: timed forward-only steps per variant");
    f.add("bench-one", &o.bench_one, "internal: benchmark one variant in this process");
    if (!f.parse(argc, argv)) return 0;
    SYNTH_CHECK(f.positional().empty(), "unexpected argument '", f.positional()[0], "' (flags are --key=value)");
    apply_preset(o, f);
    validate(o);
    set_threads(o.threads);

    if (o.bench_one) {
        bench_one(o, o.variants);
        return 0;
    }
    if (o.bench) {
        std::fprintf(stderr, "lm --bench: OpenBLAS kernel %s, %d threads\n", blas_kernel_name().c_str(), o.threads);
        bench_all(o, argc, argv);
        return 0;
    }

    // Fail in the first second, not after hours: an unwritable results or checkpoint directory,
    // a bad checkpoint to resume from, or missing data.
    ensure_writable_dir(o.results_dir);
    if (o.save_every > 0) ensure_writable_dir(o.checkpoint_dir);
    Checkpoint resume;
    if (!o.resume.empty()) {
        resume = load_checkpoint(o.resume);
        check_lm_resume(o, f, resume);
    }
    LmCorpus corpus = load_lm_corpus(o.data);
    SYNTH_CHECK(o.resume.empty() || resume.tokenizer == corpus.serialize_tokenizer(), "checkpoint ", o.resume,
                " has a different vocabulary from the one --data=", o.data, " gives (was it trained on other data?)");
    const bool is_char = corpus.kind == "char";
    const std::string name = "lm-" + data_stem(o.data) + "-" + o.preset + (o.tag.empty() ? "" : "-" + o.tag);
    const std::string stem = o.results_dir + "/" + name;
    const CheckpointPlan plan{f.dump(), corpus.serialize_tokenizer(), o.checkpoint_dir + "/" + name + "-", stem,
                              o.resume.empty() ? nullptr : &resume};
    std::fprintf(stderr, "lm: %s (%s level, vocab %d, %zu train / %zu valid / %zu test tokens), OpenBLAS kernel %s, %d threads\n",
                 o.data.c_str(), corpus.kind.c_str(), corpus.vocab, corpus.train.size(), corpus.valid.size(),
                 corpus.test.size(), blas_kernel_name().c_str(), o.threads);
    std::fprintf(stderr, "config:\n%s", f.dump().c_str());

    const std::string metric = is_char ? "bpc" : "ppl";
    const std::vector<std::string> cols = {"variant", "params", "val_loss", "val_" + metric, "test_loss", "test_" + metric,
                                           "train_tok_s", "wall_s", "steps", "seed"};
    auto metric_of = [&](double nats) { return is_char ? nats / std::log(2.0) : std::exp(nats); };
    auto report = [&](const Table& table) {
        std::map<std::string, VariantResult> all;
        for (const auto& row : table.rows)
            all[row[0]] = VariantResult{row[0], std::stoll(row[1]), std::stod(row[2]), std::stod(row[4]),
                                        std::stod(row[6]), std::stod(row[7])};
        std::ostringstream md;
        md << "# LM: " << o.data << ", preset " << o.preset << "\n\n"
           << "Decoder-only pre-LN Transformer, d=" << o.d_model << ", layers=" << o.layers << ", heads=" << o.heads
           << ", d_ff=" << o.d_ff << ", context L=" << o.seq << ", batch=" << o.batch << ", steps=" << o.steps
           << ", lr=" << o.lr << " (" << o.schedule << "), dropout=" << o.dropout << ", seed=" << o.seed << ", "
           << o.threads << " threads, OpenBLAS kernel " << blas_kernel_name() << ".\n"
           << "Losses are mean NLL per token in nats over the whole split (non-overlapping windows of L tokens); "
           << (is_char ? "bpc = nats / ln 2" : "ppl = exp(nats)")
           << (corpus.test_is_valid ? "; this data set has no test split, so test = validation" : "")
           << ". `params` counts trainable parameters.\n"
           << "Produced by `build/lm --data=" << o.data << " --preset=" << o.preset << "`.\n\n"
           << table.to_markdown() << findings(all, is_char);
        // Published reference points (../shared/data/REFERENCES.md) for where V lands.
        if (o.data == "tinyshakespeare" && all.count("V"))
            md << "\n**Reference.** nanoGPT's CPU setting (4 layers, d=128, context 64, batch 12, 2,000 iterations) "
                  "reaches ~1.88 nats/char validation and its 6x384 baby GPT 1.4697; our V here: "
               << fmt(all.at("V").val_loss, 4) << ".\n";
        if (o.data == "ptb" && all.count("V"))
            md << "\n**Reference.** Zaremba et al.'s small LSTM (2x200, 13 epochs) reaches 115.91 test perplexity; our V "
                  "here: "
               << fmt(std::exp(all.at("V").test_loss), 1) << " after " << o.steps << " steps.\n";
        return md.str();
    };
    for (const std::string& v : (o.report_only ? std::vector<std::string>{} : split_list(o.variants))) {
        std::vector<Row> curve;
        VariantResult r = train_variant(o, corpus, v, plan, curve);
        // Several processes may sweep different variants into the same files: merge under a lock,
        // re-reading what the others wrote.
        FileLock lock(stem + ".lock");
        Table table = Table::load_or_empty(stem + ".csv", cols);
        Table curves = Table::load_or_empty(stem + "-curves.csv", kCurveColumns);
        curves.remove("variant", v);
        curves.rows.insert(curves.rows.end(), curve.begin(), curve.end());
        table.upsert({v, std::to_string(r.params), fmt(r.val_loss, 4), fmt(metric_of(r.val_loss), is_char ? 3 : 1),
                      fmt(r.test_loss, 4), fmt(metric_of(r.test_loss), is_char ? 3 : 1), fmt(r.tok_s, 0), fmt(r.wall_s, 0),
                      std::to_string(o.steps), std::to_string(o.seed)},
                     "variant");
        write_file_atomic(stem + ".md", report(table));
        write_file_atomic(stem + ".csv", table.to_csv());
        write_file_atomic(stem + "-curves.csv", curves.to_csv());
    }
    if (o.report_only) {
        FileLock lock(stem + ".lock");
        write_file_atomic(stem + ".md", report(Table::load_or_empty(stem + ".csv", cols)));
    }
    std::printf("%s", read_file(stem + ".md").c_str());
    return 0;
}

}  // namespace
}  // namespace synth

int main(int argc, char** argv) { return synth::cli_main(argc, argv, synth::run); }

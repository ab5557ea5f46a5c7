// lm: train and evaluate Synthesizer variants as decoder-only language models.
//
//   build/lm --data=tinyshakespeare --preset=quick            # the default sweep
//   build/lm --data=ptb --variants=V,R,R+V --preset=full
//   build/lm --bench --variants=V,R                           # throughput, one JSON line each
//
// Every variant trains with the same seeds, so the same initialisation streams and the same
// data order. Each (variant, seed) is one run that writes only its own directory,
// runs/lm-<data>-<preset>/<variant>-seed<seed>/ (src/runs/run_dir.h); the invocation's runs are then
// summarised in runs/lm-<data>-<preset>/report.{csv,md}. Committed tables come from the
// report step: build/lm --report RUN_DIRS... --out=results/<name>.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>

#include "engine/autograd.h"
#include "engine/gemm/blas.h"
#include "train/checkpoint.h"
#include "runs/cli.h"
#include "base/clock.h"
#include "base/error.h"
#include "text/corpus.h"
#include "runs/findings.h"
#include "base/flags.h"
#include "base/io.h"
#include "base/table.h"
#include "base/rng.h"
#include "runs/stats.h"
#include "runs/run_report.h"
#include "runs/run_dir.h"
#include "train/trainer.h"
#include "models/transformer.h"

extern char** environ;

namespace synth {
namespace {

// Flags that are neither model nor training flags but change the reported numbers: a run's
// group (src/runs/run_dir.h) includes them.
const std::vector<std::string> kGroupExtra = {};

struct Options {
    std::string data = "tinyshakespeare", variants = paper_sweep(), preset = "quick";
    std::string tag;
    int batch = 32, eval_batches = 20, sample = 0, vocab = 65, bench_steps = 10, bench_infer_steps = 20;
    bool bench = false, bench_one = false, generate = false, eval_only = false;
    std::string checkpoint, prompt, dump_attention;
    int tokens = 200;
    float temperature = 1.0f;
    int top_k = 0;
    LmConfig model;     // the variant is set per run
    TrainConfig train;  // lm's defaults: below
    RunsConfig runs;
    Options() {
        model.attn.d_model = 128, model.layers = 4, model.attn.heads = 4, model.d_ff = 512, model.attn.max_len = 64;
        train.weight_decay = 0.1f, train.beta2 = 0.99f, train.adam_eps = 1e-8f;
    }
};

// Presets set the defaults of flags the user did not give. `full` is the documented run
// behind the committed tables (nanoGPT's CPU setting); `quick` sweeps the nine default
// variants in minutes (docs/presets.md).
std::map<std::string, std::string> preset_flags(const std::string& preset, const std::string& data) {
    std::map<std::string, std::string> p;
    if (preset == "quick")
        p = {{"d-model", "128"}, {"layers", "2"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"}, {"batch", "16"},
             {"steps", "300"}, {"warmup", "30"}, {"eval-every", "100"}, {"eval-batches", "10"}, {"lr", "2e-3"},
             {"min-lr", "2e-4"}, {"dropout", "0.0"}};
    else if (preset == "full") {
        p = {{"d-model", "128"}, {"layers", "4"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"}, {"batch", "12"},
             {"steps", "2000"}, {"warmup", "100"}, {"eval-every", "250"}, {"eval-batches", "20"}, {"lr", "1e-3"},
             {"min-lr", "1e-4"}, {"dropout", "0.0"}};
        // PTB: the budget where V converges (docs/presets.md): 6.6 epochs, with dropout against
        // the word-level overfitting.
        if (data == "ptb")
            p["batch"] = "32", p["steps"] = "3000", p["lr"] = "2e-3", p["dropout"] = "0.2", p["eval-batches"] = "40";
    }
    else if (preset != "none")
        fail("unknown --preset '", preset, "' (quick, full, none)");
    return p;
}

double peak_rss_mb() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

LmConfig model_config(const Options& o, const std::string& variant, int vocab) {
    LmConfig c = o.model;
    c.vocab = vocab;
    c.attn.variant = variant;
    return c;
}

// Range checks (each message names the flag and the value it got), and every variant's model
// built once without allocating, so that a bad variant setting fails now, not mid-sweep.
void validate(const Options& o, const Flags& f) {
    const LmConfig& m = o.model;
    require_positive({{"d-model", m.attn.d_model}, {"layers", m.layers}, {"heads", m.attn.heads}, {"d-ff", m.d_ff},
                      {"seq", m.attn.max_len}, {"batch", o.batch}, {"steps", o.train.steps},
                      {"eval-every", o.train.eval_every}, {"eval-batches", o.eval_batches}, {"vocab", o.vocab},
                      {"bench-steps", o.bench_steps}, {"bench-infer-steps", o.bench_infer_steps}});
    require_non_negative({{"sample", o.sample}});
    require_fraction({{"dropout", m.dropout}, {"attn-dropout", m.attn.attn_dropout}});
    SYNTH_CHECK(m.attn.d_model % m.attn.heads == 0, "--heads=", m.attn.heads, " must divide --d-model=", m.attn.d_model);
    o.train.validate();
    check_settings(m.attn.settings);
    const std::vector<std::string> list = split_list(o.variants);
    check_settings_used(list, [&](const std::string& k) { return f.given(k); });
    for (const std::string& v : list) {
        ParamStore unallocated;
        TransformerLM check(unallocated, model_config(o, v, o.vocab));
    }
}

// Mean NLL per token over the given batches, without gradients.
double evaluate(TransformerLM& model, const std::vector<LmBatch>& batches) {
    NoGrad ng;
    StepContext ctx;
    LossStats st;
    for (const LmBatch& b : batches) {
        scratch().reset();
        cross_entropy(model.forward(b.x, b.rows, b.seq, ctx), b.y, -1, 0.0f, &st);
    }
    return st.sum_nll / (double)st.count;
}

// How --generate and --sample draw each token.
struct Sampling {
    float temperature = 1.0f;  // logits / temperature before the softmax
    int top_k = 0;             // keep only the k most likely tokens (0 = all)
};

// Continues `prompt` by n tokens with incremental decoding (cached keys/values and synthetic
// rows), drawing from softmax(logits / temperature) over the top k; the seed fixes the draws.
std::vector<int32_t> generate(TransformerLM& model, std::vector<int32_t> out, int n, const Sampling& how,
                              uint64_t seed) {
    SYNTH_CHECK(!out.empty(), "generation needs a prompt of at least one token");
    NoGrad ng;
    StepContext ctx;
    Rng rng(seed);
    const int L = model.config().attn.max_len, V = model.config().vocab;
    const size_t target = out.size() + n;
    while (out.size() < target) {
        // Re-prime from the last L/2 tokens whenever the context is full.
        scratch().reset();
        std::vector<MixerCache> caches(model.config().layers);
        size_t start = out.size() > (size_t)L / 2 ? out.size() - L / 2 : 0;
        std::vector<int32_t> prompt(out.begin() + start, out.end());
        Tensor logits = model.forward(prompt, 1, (int)prompt.size(), ctx, &caches);
        const float* last = logits.data + (int64_t)(prompt.size() - 1) * V;  // (V)
        while (out.size() < target) {
            std::vector<double> p(V);
            double mx = last[0], s = 0;
            for (int v = 1; v < V; ++v) mx = std::max(mx, (double)last[v]);
            double floor = -INFINITY;  // logits below the k-th largest are dropped
            if (how.top_k > 0 && how.top_k < V) {
                std::vector<float> sorted(last, last + V);
                std::nth_element(sorted.begin(), sorted.begin() + (how.top_k - 1), sorted.end(), std::greater<float>());
                floor = sorted[how.top_k - 1];
            }
            for (int v = 0; v < V; ++v) s += (p[v] = last[v] < floor ? 0.0 : std::exp((last[v] - mx) / how.temperature));
            double u = rng.uniform() * s;
            int tok = 0;
            while (tok < V - 1 && (u -= p[tok]) > 0) ++tok;
            out.push_back(tok);
            if (caches[0].len >= L) break;
            logits = model.forward({tok}, 1, 1, ctx, &caches);
            last = logits.data;
        }
    }
    return out;
}

std::string data_stem(const std::string& data) {
    std::string s = data.substr(data.find_last_of('/') + 1);
    size_t dot = s.find('.');
    return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

// The sweep's name: lm-<data>-<preset>[-<tag>].
std::string run_name(const Options& o) {
    return "lm-" + data_stem(o.data) + "-" + o.preset + (o.tag.empty() ? "" : "-" + o.tag);
}

// A hash of the data a run saw: the tokenizer and every token of the three splits.
std::string corpus_hash(const LmCorpus& c) {
    std::string bytes = c.serialize_tokenizer();
    for (const std::vector<int32_t>* split : {&c.train, &c.valid, &c.test})
        bytes.append(reinterpret_cast<const char*>(split->data()), split->size() * sizeof(int32_t));
    return short_hash(bytes);
}

// Trains one (variant, seed) run in its directory with the shared Trainer (resuming from
// `resume` if given), writes metrics.jsonl, final.ckpt and best.ckpt, evaluates it on the whole
// validation and test splits and returns its metrics (RunsConfig::execute writes result.json).
JsonObject train_run(const Options& o, const Flags& f, const LmCorpus& corpus, const std::string& variant, int seed,
                     const std::string& dir, const Checkpoint* resume) {
    TrainConfig tc = o.train;
    tc.seed = seed;
    ParamStore store;
    TransformerLM model(store, model_config(o, variant, corpus.vocab));
    store.finalize(tc.seed);
    std::fprintf(stderr, "[%s] seed %d, %lld trainable parameters, run directory %s\n", variant.c_str(), seed,
                 (long long)store.trainable_count(), dir.c_str());

    std::vector<LmBatch> all_val = eval_lm_batches(corpus.valid, o.batch, o.model.attn.max_len), val;
    const int n_val = std::min<int>(o.eval_batches, all_val.size());
    for (int i = 0; i < n_val; ++i) val.push_back(all_val[(size_t)i * all_val.size() / n_val]);

    const int B = o.batch, T = o.model.attn.max_len;
    std::vector<int32_t> x((size_t)B * T), y((size_t)B * T);
    TrainTask task;
    task.loss = [&](int64_t step, StepContext& ctx, int64_t& tokens) {
        sample_lm_batch(corpus.train, B, T, tc.seed, step, x.data(), y.data());
        tokens = (int64_t)B * T;
        return cross_entropy(model.forward(x, B, T, ctx), y, -1, 0.0f);
    };
    task.validate = [&] { return evaluate(model, val); };
    task.config = f.dump() + "model=lm\n";
    task.tokenizer = corpus.serialize_tokenizer();

    Trainer trainer(store, tc, variant, checkpoint_prefix(o.train, dir, run_name(o), variant, seed));
    const TrainResult t = train_in_run_dir(trainer, task, tc.steps, dir, resume, o.train.resume, variant);
    save_final_and_best(dir, store, trainer.best(), t, tc.steps, f.dump() + "model=lm\nvariant=" + variant + "\n",  // as a kept model
                        corpus.serialize_tokenizer());

    const bool is_char = corpus.kind == "char";
    const double val_loss = evaluate(model, all_val);
    const double test_loss = corpus.test_is_valid ? val_loss : evaluate(model, eval_lm_batches(corpus.test, o.batch, T));
    auto metric = [&](double nats) { return is_char ? nats / std::log(2.0) : std::exp(nats); };
    const std::string m = is_char ? "bpc" : "ppl";
    JsonObject r;
    r.text("variant", variant);
    r.integer("seed", seed);
    r.integer("params", store.trainable_count());
    r.number("val_loss", val_loss, 4);
    r.number("val_" + m, metric(val_loss), is_char ? 3 : 1);
    r.number("test_loss", test_loss, 4);
    r.number("test_" + m, metric(test_loss), is_char ? 3 : 1);
    r.number("best_val_loss", t.best_val, 4);
    r.integer("best_step", t.best_step);
    r.number("train_tok_s", t.tokens_per_s(), 0);
    r.number("steps_s", t.steps_per_s(), 3);
    r.number("wall_s", t.wall_s, 0);
    r.integer("steps", tc.steps);
    r.text("data", o.data);
    r.text("data_hash", corpus_hash(corpus));
    if (o.sample > 0)
        std::printf("--- sample from %s ---\n%s\n---\n", variant.c_str(),
                    corpus.decode(generate(model, {corpus.valid[0]}, o.sample, Sampling{}, seed)).c_str());
    return r;
}

// Fail before the work: training `variant` must fit in the available memory (trainer.h).
void check_memory(const Options& o, const std::string& variant, int vocab) {
    ParamStore store;
    TransformerLM model(store, model_config(o, variant, vocab));
    const int T = o.model.attn.max_len;
    const std::vector<int32_t> x(T, 0);  // one sequence
    check_training_memory(
        store, [&](StepContext& ctx) { return cross_entropy(model.forward(x, 1, T, ctx), x, -1, 0.0f); }, o.batch,
        variant, "--batch=" + std::to_string(o.batch) + " or --seq=" + std::to_string(T));
}

// ---- --bench: throughput on random tokens, one child process per variant ------------------

void bench_one(const Options& o, const std::string& variant) {
    ParamStore store;
    TransformerLM model(store, model_config(o, variant, o.vocab));
    store.finalize(o.train.seed);
    AdamW opt(store, AdamWConfig{});
    const int B = o.batch, T = o.model.attn.max_len;
    Rng rng(o.train.seed);
    std::vector<int32_t> x((size_t)B * T), y((size_t)B * T);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (int32_t)rng.below(o.vocab), y[i] = (int32_t)rng.below(o.vocab);
    auto run = [&](int steps, bool train) {
        double t0 = now_seconds();
        for (int s = 0; s < steps; ++s) {
            StepContext ctx{train, (uint64_t)o.train.seed, (uint64_t)s, 0};
            if (train) {
                train_step(store, opt, [&] { return cross_entropy(model.forward(x, B, T, ctx), y, -1, 0.0f); }, 1e-4f, 1.0f);
            } else {
                NoGrad ng;
                scratch().reset();
                model.forward(x, B, T, ctx);
            }
        }
        return (double)B * T * steps / (now_seconds() - t0);
    };
    run(3, true);
    double train = run(o.bench_steps, true);
    run(2, false);
    double infer = run(o.bench_infer_steps, false);
    const LmConfig& m = o.model;
    std::printf("{\"variant\":\"%s\",\"params\":%lld,\"train_tokens_per_s\":%.1f,\"infer_tokens_per_s\":%.1f,"
                "\"peak_rss_mb\":%.1f,\"batch\":%d,\"seq\":%d,\"d_model\":%d,\"layers\":%d,\"heads\":%d,\"d_ff\":%d,"
                "\"vocab\":%d,\"threads\":%d,\"cpu\":\"%s\",\"kernel\":\"%s\",\"precision\":\"%s\",\"gemm\":\"%s\"}\n",
                variant.c_str(), (long long)store.trainable_count(), train, infer, peak_rss_mb(), B, T, m.attn.d_model,
                m.layers, m.attn.heads, m.d_ff, o.vocab, o.train.threads, cpu_name().c_str(), blas_kernel_name().c_str(),
                o.train.precision.c_str(), provider_name(gemm_provider()));
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

// ---- from a checkpoint: --generate and --eval-only ------------------------------------------

// A model rebuilt from a build/lm checkpoint (final.ckpt, best.ckpt or a step checkpoint): its
// Model flags restore the shape, its tokenizer the vocabulary.
struct LoadedLm {
    LmCorpus tokenizer;  // only the tokenizer fields are set
    ParamStore store;
    int64_t step = 0;    // the checkpoint's training step
    std::unique_ptr<TransformerLM> model;
};

void load_lm(LoadedLm& m, Options& o, Flags& f) {
    SYNTH_CHECK(!o.checkpoint.empty(), "--generate, --eval-only and --dump-attention need --checkpoint=FILE (a run's "
                "final.ckpt, best.ckpt or a step checkpoint)");
    const Checkpoint ck = load_checkpoint(o.checkpoint);
    m.step = ck.step;
    const std::string kind = config_map(ck.config).count("model") ? ck.config_value("model") : "";
    SYNTH_CHECK(kind != "seq2seq", "checkpoint ", o.checkpoint, " holds a translation model (written by build/mt), "
                "not a language model");
    SYNTH_CHECK(kind == "lm" || ck.config_value("variant") != "", "checkpoint ", o.checkpoint, " is not a language model");
    f.load(ck.config, FlagRole::Model);
    LmCorpus& t = m.tokenizer;
    if (ck.tokenizer.rfind("synth-char-vocab", 0) == 0) t.kind = "char", t.chars = CharTokenizer::deserialize(ck.tokenizer);
    else t.kind = "word", t.words = WordTokenizer::deserialize(ck.tokenizer);
    t.vocab = t.kind == "char" ? t.chars.size() : t.words.size();
    LmConfig cfg = model_config(o, ck.config_value("variant"), t.vocab);
    cfg.dropout = 0.0f;
    m.model = std::make_unique<TransformerLM>(m.store, cfg);
    m.store.finalize(0);
    restore(ck, m.store, nullptr);
}

// The model of --checkpoint and the corpus of --data, which must have its vocabulary.
LmCorpus load_lm_with_data(LoadedLm& m, Options& o, Flags& f) {
    load_lm(m, o, f);
    LmCorpus corpus = load_lm_corpus(o.data);
    SYNTH_CHECK(corpus.serialize_tokenizer() == m.tokenizer.serialize_tokenizer(), "checkpoint ", o.checkpoint,
                " has a different vocabulary from the one --data=", o.data, " gives (was it trained on other data?)");
    return corpus;
}

int generate_text(Options& o, Flags& f) {
    SYNTH_CHECK(o.temperature > 0, "--temperature=", o.temperature, " must be positive");
    require_non_negative({{"tokens", o.tokens}, {"top-k", o.top_k}});
    LoadedLm m;
    load_lm(m, o, f);
    const LmCorpus& t = m.tokenizer;
    std::vector<int32_t> prompt = t.kind == "char" ? t.chars.encode(o.prompt) : t.words.encode(o.prompt, "--prompt");
    SYNTH_CHECK(!prompt.empty(), "--prompt is empty: give at least one token of text to continue");
    const std::vector<int32_t> out = generate(*m.model, prompt, o.tokens, Sampling{o.temperature, o.top_k},
                                              (uint64_t)o.train.seed);
    std::printf("%s\n", t.decode(out).c_str());
    return 0;
}

int eval_only(Options& o, Flags& f) {
    LoadedLm m;
    const LmCorpus corpus = load_lm_with_data(m, o, f);
    const int T = m.model->config().attn.max_len;
    const double val = evaluate(*m.model, eval_lm_batches(corpus.valid, o.batch, T));
    const double test = corpus.test_is_valid ? val : evaluate(*m.model, eval_lm_batches(corpus.test, o.batch, T));
    JsonObject r;
    r.text("checkpoint", o.checkpoint);
    r.text("data", o.data);
    r.number("val_loss", val, 4);
    r.number("test_loss", test, 4);
    std::printf("%s\n", r.dump().c_str());
    return 0;
}

// Rows of numbers as a JSON array, 5 significant digits: "[a, b, ...]".
std::string json_row(const float* v, int n) {
    std::string s = "[";
    char buf[32];
    for (int i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, "%s%.5g", i ? ", " : "", v[i]);
        s += buf;
    }
    return s + "]";
}

// --dump-attention=FILE: for the analyses of docs/analysis.md, each layer's attention maps
// averaged over --eval-batches validation batches (the probabilities after the softmax, per
// head, (H, L, L); null for a mixer without such a map) and the mixture weights alpha per
// layer and head, with the checkpoint's step, as one JSON file (scripts/plot_attention.py
// draws it).
int dump_attention(Options& o, Flags& f) {
    LoadedLm m;
    const LmCorpus corpus = load_lm_with_data(m, o, f);
    const LmConfig& cfg = m.model->config();
    const std::vector<SequenceMixer*> mixers = m.model->mixers();
    std::vector<AttentionProbe> probes(mixers.size());
    std::vector<bool> mapped(mixers.size());
    for (size_t l = 0; l < mixers.size(); ++l) mapped[l] = mixers[l]->set_probe(&probes[l]);
    std::vector<LmBatch> val = eval_lm_batches(corpus.valid, o.batch, cfg.attn.max_len);
    if ((int)val.size() > o.eval_batches) val.resize(o.eval_batches);
    evaluate(*m.model, val);
    for (SequenceMixer* mx : mixers) mx->set_probe(nullptr);

    const std::vector<std::string> parts = parse_variant(cfg.attn.variant);
    std::string out = "{\"checkpoint\": ";
    append_json_string(out, o.checkpoint, "--checkpoint");
    out += ", \"variant\": \"" + cfg.attn.variant + "\", \"step\": " + std::to_string(m.step) + ", \"layers\": " + std::to_string(cfg.layers) +
                      ", \"heads\": " + std::to_string(cfg.attn.heads) + ", \"sequences\": " +
                      std::to_string(probes.empty() ? 0 : probes[0].sequences) + ",\n \"components\": [";
    for (size_t c = 0; c < parts.size(); ++c) out += (c ? ", \"" : "\"") + parts[c] + "\"";
    out += "],\n \"alphas\": [";  // (layers, H, components); empty rows without a mixture
    for (size_t l = 0; l < mixers.size(); ++l) {
        out += l ? ", [" : "[";
        for (int h = 0; h < cfg.attn.heads; ++h) {
            const std::vector<float> a = mixers[l]->mixture_weights(h);
            out += (h ? ", " : "") + json_row(a.data(), (int)a.size());
        }
        out += "]";
    }
    out += "],\n \"maps\": [";
    for (size_t l = 0; l < mixers.size(); ++l) {
        out += l ? ",\n  " : "\n  ";
        if (!mapped[l] || probes[l].sequences == 0) {
            out += "null";
            continue;
        }
        const AttentionProbe& p = probes[l];
        const std::vector<float> mean = p.mean();  // (H, Tq, Tk)
        out += "[";
        for (int h = 0; h < p.H; ++h) {
            out += h ? ", [" : "[";
            for (int i = 0; i < p.Tq; ++i)
                out += (i ? ", " : "") + json_row(mean.data() + ((int64_t)h * p.Tq + i) * p.Tk, p.Tk);
            out += "]";
        }
        out += "]";
    }
    out += "]}\n";
    write_file_atomic(o.dump_attention, out);
    std::fprintf(stderr, "wrote %s: %s, step %lld, %lld validation sequences\n", o.dump_attention.c_str(),
                 cfg.attn.variant.c_str(), (long long)m.step, (long long)(probes.empty() ? 0 : probes[0].sequences));
    return 0;
}

// The report of finished LM runs: STEM.csv and STEM.md (src/runs/run_report.h).
void report(const std::vector<std::string>& dirs, const std::string& stem, bool force) {
    std::vector<RunRecord> runs = find_runs(dirs);
    // Every LM step trains batch x seq tokens, so a run whose result.json predates steps_s
    // gives it exactly as train_tok_s / (batch seq).
    for (RunRecord& r : runs)
        if (!r.result.has("steps_s")) {
            const std::map<std::string, std::string> g = config_map(r.result.at("group"));
            r.result.number("steps_s", r.result.num("train_tok_s") / (std::stod(g.at("batch")) * std::stod(g.at("seq"))), 3);
        }
    ReportSpec spec;
    spec.force = force;
    spec.title = "LM: decoder-only pre-LN Transformer";
    spec.intro = "Losses are mean NLL per token in nats over the whole split (non-overlapping windows of L tokens); "
                 "bpc = nats / ln 2, ppl = exp(nats). best_val_loss is the best of the periodic evaluations (a subset "
                 "of the validation split). `params` counts trainable parameters; train_tok_s and steps_s are the "
                 "training throughput of each run (other jobs may have shared the cores: results/bench.md is the controlled "
                 "comparison).\n";
    const bool is_char = runs[0].result.has("val_bpc");
    const std::string m = is_char ? "bpc" : "ppl";
    spec.metrics = {"params", "val_loss", "val_" + m, "test_loss", "test_" + m, "train_tok_s", "steps_s"};
    spec.speed_key = "train_tok_s";
    spec.inapplicable = {"vocab"};
    spec.group_note = [](const std::vector<const RunRecord*>& members) {
        std::vector<SeedRun> v;
        std::vector<double> test;
        for (const RunRecord* r : members) {
            v.push_back({r->result.at("variant"), 0, r->result.num("val_loss"), 0, 0});
            if (r->result.at("variant") == "V") test.push_back(r->result.num("test_loss"));
        }
        return test.empty() ? std::string() : lm_reference_note(members[0]->result.at("data"), v, mean_of(test));
    };
    write_report(runs, spec, stem);
}

int run(int argc, char** argv) {
    Options o;
    Flags f("lm", "Train and evaluate Synthesizer variants as decoder-only Transformer language models.");
    f.add("data", &o.data, "tinyshakespeare | ptb | PATH to a UTF-8 text file (character level)", FlagRole::Training);
    f.add("variants", &o.variants, "comma-separated attention variants: " + variant_names() + ", mixtures like R+V");
    f.add("preset", &o.preset, "quick | full | none: defaults for the flags not given");
    o.model.bind(f);
    f.add("vocab", &o.vocab, "vocabulary size for --bench (random tokens)", FlagRole::Model);
    f.add("batch", &o.batch, "sequences per step", FlagRole::Training);
    o.train.bind(f);
    f.add("eval-batches", &o.eval_batches, "validation batches per evaluation (spread over the split)");
    f.add("sample", &o.sample, "after training, print N sampled tokens per run");
    f.add("tag", &o.tag, "suffix of the sweep's name (e.g. heads1)");
    o.runs.bind(f, "lm");
    f.add("generate", &o.generate, "continue --prompt by --tokens tokens with the model of --checkpoint; no training");
    f.add("eval-only", &o.eval_only, "the validation and test loss of --checkpoint's model on --data; no training");
    f.add("dump-attention", &o.dump_attention, "write FILE.json: --checkpoint's attention maps averaged over "
          "--eval-batches validation batches, and its mixture weights (docs/analysis.md); no training");
    f.add("checkpoint", &o.checkpoint, "--generate, --eval-only, --dump-attention: the checkpoint to load (a run's "
          "final.ckpt, best.ckpt or a step checkpoint)");
    f.add("prompt", &o.prompt, "--generate: the text to continue");
    f.add("tokens", &o.tokens, "--generate: how many tokens to add");
    f.add("temperature", &o.temperature, "--generate: logits are divided by it before the softmax");
    f.add("top-k", &o.top_k, "--generate: sample only among the k most likely tokens (0 = all)");
    f.add("bench", &o.bench, "throughput benchmark on random tokens instead of training");
    f.add("bench-steps", &o.bench_steps, "--bench: timed training steps per variant");
    f.add("bench-infer-steps", &o.bench_infer_steps, "--bench: timed forward-only steps per variant");
    f.add("bench-one", &o.bench_one, "internal: benchmark one variant in this process");
    f.set_epilog(describe_presets({{"quick", preset_flags("quick", "")}, {"full", preset_flags("full", "")},
                                   {"full, --data=ptb", preset_flags("full", "ptb")}}));
    if (!f.parse(argc, argv)) return 0;
    if (run_report_step(o.runs, f.positional(), report)) return 0;
    SYNTH_CHECK(f.positional().empty(), "unexpected argument '", f.positional()[0], "' (flags are --key=value)");
    if (o.generate || o.eval_only || !o.dump_attention.empty()) {
        SYNTH_CHECK(o.generate + o.eval_only + !o.dump_attention.empty() == 1,
                    "--generate, --eval-only and --dump-attention are separate commands: give one");
        o.train.configure_compute();
        return o.generate ? generate_text(o, f) : o.eval_only ? eval_only(o, f) : dump_attention(o, f);
    }
    apply_defaults(f, preset_flags(o.preset, o.data));
    validate(o, f);
    const std::string compute = o.train.configure_compute();

    if (o.bench_one) {
        bench_one(o, o.variants);
        return 0;
    }
    if (o.bench) {
        std::fprintf(stderr, "lm --bench: %s\n", compute.c_str());
        bench_all(o, argc, argv);
        return 0;
    }

    const std::vector<std::string> variants = split_list(o.variants);
    // Fail in the first second, not after hours: unwritable run or checkpoint directories, a bad
    // checkpoint to resume from, or missing data.
    const std::string sweep = run_name(o);
    Checkpoint resume;
    if (!o.train.resume.empty()) {
        resume = load_checkpoint(o.train.resume);
        o.train.seed = o.runs.resumed_seed(resume, o.train.resume, f.given("seed"), o.train.seed);
    }
    const std::vector<RunsConfig::Run> runs = o.runs.plan(sweep, variants, o.train.seed, !o.train.resume.empty());
    o.train.prepare_checkpoint_dir();
    if (!o.train.resume.empty()) {
        check_resume(resume, o.train.resume, "lm", variants, f);
        SYNTH_CHECK(resume.step <= o.train.steps, "checkpoint ", o.train.resume, " is at step ", resume.step,
                    ", past --steps=", o.train.steps);
    }
    LmCorpus corpus = load_lm_corpus(o.data);
    SYNTH_CHECK(o.train.resume.empty() || resume.tokenizer == corpus.serialize_tokenizer(), "checkpoint ",
                o.train.resume, " has a different vocabulary from the one --data=", o.data,
                " gives (was it trained on other data?)");
    for (const auto& [split, tokens] : {std::pair<const char*, size_t>{"training", corpus.train.size()},
                                        {"validation", corpus.valid.size()}, {"test", corpus.test.size()}})
        SYNTH_CHECK(tokens >= (size_t)o.model.attn.max_len + 1, "--data=", o.data, ": its ", split, " split has ", tokens,
                    " tokens, fewer than one window of --seq + 1 = ", o.model.attn.max_len + 1, " (lower --seq)");
    for (const std::string& v : variants) check_memory(o, v, corpus.vocab);
    std::fprintf(stderr, "lm: %s (%s level, vocab %d, %zu train / %zu valid / %zu test tokens), %s\n",
                 o.data.c_str(), corpus.kind.c_str(), corpus.vocab, corpus.train.size(), corpus.valid.size(),
                 corpus.test.size(), compute.c_str());
    std::fprintf(stderr, "config:\n%s", f.dump().c_str());

    o.runs.execute(runs, o.train.seed, f, "lm", o.train.threads, kGroupExtra,
                   [&](const RunsConfig::Run& run) {
                       return train_run(o, f, corpus, run.variant, run.seed, run.dir,
                                        o.train.resume.empty() ? nullptr : &resume);
                   },
                   sweep, report);
    return 0;
}

}  // namespace
}  // namespace synth

int main(int argc, char** argv) { return synth::cli_main(argc, argv, synth::run); }

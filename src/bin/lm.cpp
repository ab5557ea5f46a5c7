// lm: train and evaluate Synthesizer variants as decoder-only language models.
//
//   build/lm --data=tinyshakespeare --preset=quick            # the default sweep
//   build/lm --data=ptb --variants=V,R,R+V --preset=full
//   build/lm --bench --variants=V,R                           # throughput, one JSON line each
//
// Every variant trains with the same seed, so the same initialisation stream and the same
// data order. Results are merged by variant into results/lm-<data>-<preset>.{csv,md}
// (so a sweep can be split across processes) with a per-step loss curve CSV beside them.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
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
#include "findings.h"
#include "flags.h"
#include "io.h"
#include "report.h"
#include "rng.h"
#include "trainer.h"
#include "transformer.h"

extern char** environ;

namespace synth {
namespace {

struct Options {
    std::string data = "tinyshakespeare", variants = paper_sweep(), preset = "quick";
    std::string results_dir = "results", tag;
    int batch = 32, eval_batches = 20, sample = 0, vocab = 65, bench_steps = 10, bench_infer_steps = 20;
    bool bench = false, bench_one = false, report_only = false;
    LmConfig model;     // the variant is set per run
    TrainConfig train;  // lm's defaults: below
    Options() {
        model.attn.d_model = 128, model.layers = 4, model.attn.heads = 4, model.d_ff = 512, model.attn.max_len = 64;
        train.weight_decay = 0.1f, train.beta2 = 0.99f, train.adam_eps = 1e-8f;
    }
};

// Presets set the defaults of flags the user did not give. `full` is the documented run
// behind the committed tables (nanoGPT's CPU setting); `quick` sweeps the nine default
// variants in minutes (docs/presets.md).
void apply_preset(const Options& o, Flags& f) {
    std::map<std::string, std::string> p;
    if (o.preset == "quick")
        p = {{"d-model", "128"}, {"layers", "2"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"}, {"batch", "16"},
             {"steps", "300"}, {"warmup", "30"}, {"eval-every", "100"}, {"eval-batches", "10"}, {"lr", "2e-3"},
             {"min-lr", "2e-4"}, {"dropout", "0.0"}};
    else if (o.preset == "full") {
        p = {{"d-model", "128"}, {"layers", "4"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"}, {"batch", "12"},
             {"steps", "2000"}, {"warmup", "100"}, {"eval-every", "250"}, {"eval-batches", "20"}, {"lr", "1e-3"},
             {"min-lr", "1e-4"}, {"dropout", "0.0"}};
        if (o.data == "ptb") p["steps"] = "800", p["eval-every"] = "200";
    }
    else if (o.preset != "none")
        fail("unknown --preset '", o.preset, "' (quick, full, none)");
    std::vector<std::string> args;
    for (auto& [k, v] : p)
        if (!f.given(k)) args.push_back("--" + k + "=" + v);
    f.parse(args);
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

// Samples n tokens with incremental decoding (cached keys/values and synthetic rows).
std::string sample_text(TransformerLM& model, const LmCorpus& corpus, int n, uint64_t seed) {
    NoGrad ng;
    StepContext ctx;
    Rng rng(seed);
    const int L = model.config().attn.max_len;
    std::vector<int32_t> out = {corpus.valid[0]};
    while ((int)out.size() <= n) {
        // Re-prime from the last L/2 tokens whenever the context is full.
        scratch().reset();
        std::vector<MixerCache> caches(model.config().layers);
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

Row curve_row(const std::string& variant, const CurveRow& c) {
    return {variant, std::to_string(c.step), fmt(c.train_loss, 4), std::isnan(c.val_loss) ? "" : fmt(c.val_loss, 4),
            fmt(c.lr, 6)};
}

// Replaces the variant's rows of <stem>-curves.csv by `curve`. The caller holds the results lock
// (other processes may be sweeping other variants into the same file).
void replace_curve(const std::string& stem, const std::string& variant, const std::vector<CurveRow>& curve) {
    Table curves = Table::load_or_empty(stem + "-curves.csv", kCurveColumns);
    curves.remove("variant", variant);
    for (const CurveRow& c : curve) curves.rows.push_back(curve_row(variant, c));
    write_file_atomic(stem + "-curves.csv", curves.to_csv());
}

// The variant's curve rows for steps 1..step, as the checkpointed run wrote them.
std::vector<CurveRow> curve_until(const std::string& stem, const std::string& variant, int64_t step) {
    FileLock lock(stem + ".lock");
    Table curves = Table::load_or_empty(stem + "-curves.csv", kCurveColumns);
    std::map<int64_t, CurveRow> by_step;
    for (const Row& r : curves.rows) {
        int64_t s = std::atoll(r[1].c_str());
        if (r[0] == variant && s >= 1 && s <= step)
            by_step[s] = CurveRow{s, std::atof(r[2].c_str()), r[3].empty() ? NAN : std::atof(r[3].c_str()),
                                  std::atof(r[4].c_str())};
    }
    if ((int64_t)by_step.size() != step)
        std::fprintf(stderr, "[%s] warning: %s-curves.csv has %zu of the %lld loss-curve rows before the checkpoint; "
                     "the curve will have a gap\n", variant.c_str(), stem.c_str(), by_step.size(), (long long)step);
    std::vector<CurveRow> rows;
    for (auto& [s, r] : by_step) rows.push_back(r);
    return rows;
}

struct VariantResult {
    int64_t params;
    double val_loss, test_loss, tok_s, wall_s;
    std::vector<CurveRow> curve;
};

// Trains one variant with the shared Trainer (resuming from `resume` if given), then
// evaluates it on the whole validation and test splits.
VariantResult train_variant(const Options& o, const Flags& f, const LmCorpus& corpus, const std::string& variant,
                            const std::string& name, const Checkpoint* resume) {
    ParamStore store;
    TransformerLM model(store, model_config(o, variant, corpus.vocab));
    store.finalize(o.train.seed);
    std::fprintf(stderr, "[%s] %lld trainable parameters\n", variant.c_str(), (long long)store.trainable_count());

    std::vector<LmBatch> all_val = eval_lm_batches(corpus.valid, o.batch, o.model.attn.max_len), val;
    const int n_val = std::min<int>(o.eval_batches, all_val.size());
    for (int i = 0; i < n_val; ++i) val.push_back(all_val[(size_t)i * all_val.size() / n_val]);

    const int B = o.batch, T = o.model.attn.max_len;
    std::vector<int32_t> x((size_t)B * T), y((size_t)B * T);
    TrainTask task;
    task.loss = [&](int64_t step, StepContext& ctx, int64_t& tokens) {
        sample_lm_batch(corpus.train, B, T, o.train.seed, step, x.data(), y.data());
        tokens = (int64_t)B * T;
        return cross_entropy(model.forward(x, B, T, ctx), y, -1, 0.0f);
    };
    task.validate = [&] { return evaluate(model, val); };
    task.config = f.dump();
    task.tokenizer = corpus.serialize_tokenizer();

    const std::string stem = o.results_dir + "/" + name;
    Trainer trainer(store, o.train, variant, o.train.checkpoint_dir + "/" + name + "-" + variant, /*keep_best=*/false);
    // So that a resumed run finds the curve up to its checkpoint.
    trainer.after_save = [&](int64_t) {
        FileLock lock(stem + ".lock");
        replace_curve(stem, variant, trainer.curve);
    };
    if (resume) {
        trainer.resume(*resume, o.train.resume);
        trainer.curve = curve_until(stem, variant, trainer.start_step());
    }
    const TrainResult t = trainer.run(task, o.train.steps);

    VariantResult r;
    r.params = store.trainable_count();
    r.val_loss = evaluate(model, all_val);
    r.test_loss = corpus.test_is_valid ? r.val_loss : evaluate(model, eval_lm_batches(corpus.test, o.batch, T));
    r.tok_s = t.tokens_per_s();
    r.wall_s = t.wall_s;
    r.curve = trainer.curve;
    if (o.sample > 0)
        std::printf("--- sample from %s ---\n%s\n---\n", variant.c_str(),
                    sample_text(model, corpus, o.sample, o.train.seed).c_str());
    return r;
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
                "\"vocab\":%d,\"threads\":%d,\"kernel\":\"%s\"}\n",
                variant.c_str(), (long long)store.trainable_count(), train, infer, peak_rss_mb(), B, T, m.attn.d_model,
                m.layers, m.attn.heads, m.d_ff, o.vocab, o.train.threads, blas_kernel_name().c_str());
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

// The Markdown report of a merged LM table.
std::string report(const Options& o, const Table& table, const LmCorpus& corpus) {
    const bool is_char = corpus.kind == "char";
    std::map<std::string, FindingRow> all;
    for (const auto& row : table.rows)
        all[row[0]] = FindingRow{std::stoll(row[1]), std::stod(row[2]), std::stod(row[4]), std::stod(row[6])};
    const LmConfig& m = o.model;
    std::ostringstream md;
    md << "# LM: " << o.data << ", preset " << o.preset << "\n\n"
       << "Decoder-only pre-LN Transformer, d=" << m.attn.d_model << ", layers=" << m.layers << ", heads=" << m.attn.heads
       << ", d_ff=" << m.d_ff << ", context L=" << m.attn.max_len << ", batch=" << o.batch << ", steps=" << o.train.steps
       << ", lr=" << o.train.lr << " (" << o.train.schedule << "), dropout=" << m.dropout << ", seed=" << o.train.seed
       << ", " << o.train.threads << " threads, OpenBLAS kernel " << blas_kernel_name() << ".\n"
       << "Losses are mean NLL per token in nats over the whole split (non-overlapping windows of L tokens); "
       << (is_char ? "bpc = nats / ln 2" : "ppl = exp(nats)")
       << (corpus.test_is_valid ? "; this data set has no test split, so test = validation" : "")
       << ". `params` counts trainable parameters.\n"
       << "Produced by `build/lm --data=" << o.data << " --preset=" << o.preset << "`.\n\n"
       << table.to_markdown() << lm_findings(all, is_char) << lm_reference_note(o.data, all, o.train.steps);
    return md.str();
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
    f.add("sample", &o.sample, "after training, print N sampled tokens per variant");
    f.add("results-dir", &o.results_dir, "where the CSV and Markdown results go");
    f.add("tag", &o.tag, "suffix for result file names (e.g. heads1)");
    f.add("report-only", &o.report_only, "rewrite the Markdown report from the merged CSV without training");
    f.add("bench", &o.bench, "throughput benchmark on random tokens instead of training");
    f.add("bench-steps", &o.bench_steps, "--bench: timed training steps per variant");
    f.add("bench-infer-steps", &o.bench_infer_steps, "--bench: timed forward-only steps per variant");
    f.add("bench-one", &o.bench_one, "internal: benchmark one variant in this process");
    if (!f.parse(argc, argv)) return 0;
    SYNTH_CHECK(f.positional().empty(), "unexpected argument '", f.positional()[0], "' (flags are --key=value)");
    apply_preset(o, f);
    validate(o, f);
    set_threads(o.train.threads);

    if (o.bench_one) {
        bench_one(o, o.variants);
        return 0;
    }
    if (o.bench) {
        std::fprintf(stderr, "lm --bench: OpenBLAS kernel %s, %d threads\n", blas_kernel_name().c_str(), o.train.threads);
        bench_all(o, argc, argv);
        return 0;
    }

    // Fail in the first second, not after hours: an unwritable results or checkpoint directory,
    // a bad checkpoint to resume from, or missing data.
    ensure_writable_dir(o.results_dir);
    if (o.train.save_every > 0) ensure_writable_dir(o.train.checkpoint_dir);
    Checkpoint resume;
    if (!o.train.resume.empty()) {
        resume = load_checkpoint(o.train.resume);
        check_resume(resume, o.train.resume, split_list(o.variants), f);
        SYNTH_CHECK(resume.step <= o.train.steps, "checkpoint ", o.train.resume, " is at step ", resume.step,
                    ", past --steps=", o.train.steps);
    }
    LmCorpus corpus = load_lm_corpus(o.data);
    SYNTH_CHECK(o.train.resume.empty() || resume.tokenizer == corpus.serialize_tokenizer(), "checkpoint ",
                o.train.resume, " has a different vocabulary from the one --data=", o.data,
                " gives (was it trained on other data?)");
    const bool is_char = corpus.kind == "char";
    const std::string name = "lm-" + data_stem(o.data) + "-" + o.preset + (o.tag.empty() ? "" : "-" + o.tag);
    const std::string stem = o.results_dir + "/" + name;
    std::fprintf(stderr, "lm: %s (%s level, vocab %d, %zu train / %zu valid / %zu test tokens), OpenBLAS kernel %s, %d threads\n",
                 o.data.c_str(), corpus.kind.c_str(), corpus.vocab, corpus.train.size(), corpus.valid.size(),
                 corpus.test.size(), blas_kernel_name().c_str(), o.train.threads);
    std::fprintf(stderr, "config:\n%s", f.dump().c_str());

    const std::string metric = is_char ? "bpc" : "ppl";
    const std::vector<std::string> cols = {"variant", "params", "val_loss", "val_" + metric, "test_loss", "test_" + metric,
                                           "train_tok_s", "wall_s", "steps", "seed"};
    auto metric_of = [&](double nats) { return fmt(is_char ? nats / std::log(2.0) : std::exp(nats), is_char ? 3 : 1); };
    auto render = [&](const Table& t) { return report(o, t, corpus); };
    for (const std::string& v : (o.report_only ? std::vector<std::string>{} : split_list(o.variants))) {
        VariantResult r = train_variant(o, f, corpus, v, name, o.train.resume.empty() ? nullptr : &resume);
        merge_results(stem, cols,
                      {v, std::to_string(r.params), fmt(r.val_loss, 4), metric_of(r.val_loss), fmt(r.test_loss, 4),
                       metric_of(r.test_loss), fmt(r.tok_s, 0), fmt(r.wall_s, 0), std::to_string(o.train.steps),
                       std::to_string(o.train.seed)},
                      "variant", render, [&] { replace_curve(stem, v, r.curve); });
    }
    if (o.report_only) {
        FileLock lock(stem + ".lock");
        write_file_atomic(stem + ".md", render(Table::load_or_empty(stem + ".csv", cols)));
    }
    std::printf("%s", read_file(stem + ".md").c_str());
    return 0;
}

}  // namespace
}  // namespace synth

int main(int argc, char** argv) { return synth::cli_main(argc, argv, synth::run); }

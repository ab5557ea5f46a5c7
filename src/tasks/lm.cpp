// lm: Synthesizer variants as decoder-only language models (build/lm).
//
//   build/lm --data=tinyshakespeare --preset=quick            # the default sweep
//   build/lm --data=ptb --variants=V,R,R+V --preset=full
//   build/lm --bench --variants=V,R                           # throughput, one JSON line each
//
// Every variant trains with the same seeds, so the same initialisation streams and the same
// data order. Each (variant, seed) is one run that writes only its own directory,
// runs/lm-<data>-<preset>/<variant>-seed<seed>/ (src/runs/run_dir.h); the invocation's runs are
// then summarised in runs/lm-<data>-<preset>/report.{csv,md}. Committed tables come from the
// report step: build/lm --report RUN_DIRS... --out=results/<name>. Besides training: --generate,
// --eval-only and --dump-attention use a run's checkpoint; --bench measures throughput.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/clock.h"
#include "base/error.h"
#include "base/io.h"
#include "base/rng.h"
#include "engine/autograd.h"
#include "engine/gemm/blas.h"
#include "models/sampling.h"
#include "models/transformer.h"
#include "runs/child.h"
#include "runs/driver.h"
#include "runs/stats.h"
#include "text/corpus.h"
#include "train/dist.h"

namespace synth {
namespace {

// Mean NLL per token over the given batches, without gradients.
double evaluate(TransformerLM& model, const std::vector<LmBatch>& batches) {
    return mean_eval_loss(batches.size(), [&](size_t i, StepContext& ctx, LossStats& st) {
        const LmBatch& b = batches[i];
        cross_entropy(model.forward(b.x, b.rows, b.seq, ctx), b.y, -1, 0.0f, &st);
    });
}

// A hash of the data a run saw: the tokenizer and every token of the three splits.
std::string corpus_hash(const LmCorpus& c) {
    std::string bytes = c.serialize_tokenizer();
    for (const std::vector<int32_t>* split : {&c.train, &c.valid, &c.test})
        bytes.append(reinterpret_cast<const char*>(split->data()), split->size() * sizeof(int32_t));
    return short_hash(bytes);
}

class LmTask;

// One variant's LM, trained on windows of the corpus.
class LmModel : public TaskModel {
public:
    LmModel(const LmTask& task, ParamStore& store, const LmConfig& cfg) : net(store, cfg), task_(task) {}
    Tensor one_sequence_loss(StepContext& ctx) override;
    TrainTask train_task(const TrainConfig& train, int64_t& steps) override;
    void finish(const TrainResult& t, const std::vector<float>& best, const RunsConfig::Run& run,
                JsonObject& result) override;

    TransformerLM net;

private:
    const LmTask& task_;
    std::vector<LmBatch> all_val_, val_;  // the validation split; the periodic evaluations' subset
    std::vector<int32_t> x_, y_;          // a step's batch (B, T)
};

class LmTask : public Task {
public:
    std::string data = "tinyshakespeare";
    int batch = 32, eval_batches = 20, sample = 0, vocab = 65, bench_steps = 10, bench_infer_steps = 20;
    bool bench = false, bench_one = false, generate = false, eval_only = false;
    std::string checkpoint, prompt, dump_attention;
    int tokens = 200;
    float temperature = 1.0f;
    int top_k = 0;
    LmConfig model;     // the variant is set per run
    LmCorpus corpus;    // the data, or only a checkpoint's tokenizer
    bool has_vocab = false;

    LmTask() {
        shared.preset = "quick";
        model.attn.d_model = 128, model.layers = 4, model.attn.heads = 4, model.d_ff = 512, model.attn.max_len = 64;
        TrainConfig& t = shared.train;
        t.weight_decay = 0.1f, t.beta2 = 0.99f, t.adam_eps = 1e-8f;
    }
    std::string name() const override { return "lm"; }
    std::string summary() const override {
        return "Train and evaluate Synthesizer variants as decoder-only Transformer language models.";
    }
    std::string kind() const override { return "lm"; }

    void bind(Flags& f) override {
        f.add("data", &data, "tinyshakespeare | ptb | PATH to a UTF-8 text file (character level)", FlagRole::Training);
        f.add("variants", &shared.variants, "comma-separated attention variants: " + variant_names() + ", mixtures like R+V");
        f.add("preset", &shared.preset, "quick | full | none: defaults for the flags not given");
        model.bind(f);
        f.add("vocab", &vocab, "vocabulary size for --bench (random tokens)", FlagRole::Model);
        f.add("batch", &batch, "sequences per step", FlagRole::Training);
        shared.train.bind(f);
        f.add("eval-batches", &eval_batches, "validation batches per evaluation (spread over the split)");
        f.add("sample", &sample, "after training, print N sampled tokens per run");
        f.add("tag", &shared.tag, "suffix of the sweep's name (e.g. heads1)");
        shared.runs.bind(f, "lm");
        f.add("generate", &generate, "continue --prompt by --tokens tokens with the model of --checkpoint; no training");
        f.add("eval-only", &eval_only, "the validation and test loss of --checkpoint's model on --data; no training");
        f.add("dump-attention", &dump_attention, "write FILE.json: --checkpoint's attention maps averaged over "
              "--eval-batches validation batches, and its mixture weights (docs/analysis.md); no training");
        f.add("checkpoint", &checkpoint, "--generate, --eval-only, --dump-attention: the checkpoint to load (a run's "
              "final.ckpt, best.ckpt or a step checkpoint)");
        f.add("prompt", &prompt, "--generate: the text to continue (empty: a newline, as nanoGPT)");
        f.add("tokens", &tokens, "--generate: how many tokens to add");
        f.add("temperature", &temperature, "--generate: logits are divided by it before the softmax");
        f.add("top-k", &top_k, "--generate: sample only among the k most likely tokens (0 = all)");
        f.add("bench", &bench, "throughput benchmark on random tokens instead of training");
        f.add("bench-steps", &bench_steps, "--bench: timed training steps per variant");
        f.add("bench-infer-steps", &bench_infer_steps, "--bench: timed forward-only steps per variant");
        f.add("bench-one", &bench_one, "internal: benchmark one variant in this process");
    }

    // `full` is the documented run behind the committed tables (nanoGPT's CPU setting); `quick`
    // sweeps the nine default variants in minutes (docs/presets.md). PTB's full run is the budget
    // where V converges: 6.6 epochs, with dropout against the word-level overfitting.
    std::vector<PresetRow> presets() const override {
        return {{"quick", "", {{"d-model", "128"}, {"layers", "2"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"},
                               {"batch", "16"}, {"steps", "300"}, {"warmup", "30"}, {"eval-every", "100"},
                               {"eval-batches", "10"}, {"lr", "2e-3"}, {"min-lr", "2e-4"}, {"dropout", "0.0"}}},
                {"full", "", {{"d-model", "128"}, {"layers", "4"}, {"heads", "4"}, {"d-ff", "512"}, {"seq", "64"},
                              {"batch", "12"}, {"steps", "2000"}, {"warmup", "100"}, {"eval-every", "250"},
                              {"eval-batches", "20"}, {"lr", "1e-3"}, {"min-lr", "1e-4"}, {"dropout", "0.0"}}},
                // Converged budgets, as measured in docs/presets.md: Tiny Shakespeare at 24,000 steps
                // (full's 2,000 are nanoGPT's; at 12,000 every variant still fell), PTB at its preset's 3,000.
                {"full", "data=tinyshakespeare", {}, "steps=24000", "docs/presets.md"},
                {"full", "data=ptb", {{"batch", "32"}, {"steps", "3000"}, {"lr", "2e-3"}, {"dropout", "0.2"},
                                      {"eval-batches", "40"}}, "steps=3000", "docs/presets.md"}};
    }

    ModelShape shape() const override { return {&model.attn, model.d_ff, model.dropout, "seq"}; }
    void validate(const Flags&) const override {
        require_positive({{"layers", model.layers}, {"batch", batch}, {"steps", shared.train.steps},
                          {"eval-every", shared.train.eval_every}, {"eval-batches", eval_batches}, {"vocab", vocab},
                          {"bench-steps", bench_steps}, {"bench-infer-steps", bench_infer_steps}});
        require_non_negative({{"sample", sample}});
    }
    bool command(Driver& d) override;

    std::string data_name() const override { return data_stem(data); }
    void load_data() override {
        corpus = load_lm_corpus(data);
        has_vocab = true;
        const int T = model.attn.max_len;
        for (const auto& [split, n] : {std::pair<const char*, size_t>{"training", corpus.train.size()},
                                       {"validation", corpus.valid.size()}, {"test", corpus.test.size()}})
            SYNTH_CHECK(n >= (size_t)T + 1, "--data=", data, ": its ", split, " split has ", n,
                        " tokens, fewer than one window of --seq + 1 = ", T + 1, " (lower --seq)");
    }
    std::string tokenizer() const override { return corpus.serialize_tokenizer(); }
    std::string tokenizer_origin() const override {
        return "vocabulary from the one --data=" + data + " gives (was it trained on other data?)";
    }
    std::string describe_data() const override {
        char buf[256];
        std::snprintf(buf, sizeof buf, "(%s level, vocab %d, %zu train / %zu valid / %zu test tokens)",
                      corpus.kind.c_str(), corpus.vocab, corpus.train.size(), corpus.valid.size(), corpus.test.size());
        return data + " " + buf;
    }
    void use_tokenizer(const std::string& s) override {
        if (s.rfind("synth-char-vocab", 0) == 0) corpus.kind = "char", corpus.chars = CharTokenizer::deserialize(s);
        else corpus.kind = "word", corpus.words = WordTokenizer::deserialize(s);
        corpus.vocab = corpus.kind == "char" ? corpus.chars.size() : corpus.words.size();
        has_vocab = true;
    }

    // The network of `variant`: the data's (or a checkpoint's) vocabulary, else --vocab.
    std::unique_ptr<TaskModel> build(ParamStore& store, const std::string& variant) const override {
        LmConfig c = model;
        c.vocab = has_vocab ? corpus.vocab : vocab;
        c.attn.variant = variant;
        return std::make_unique<LmModel>(*this, store, c);
    }
    double memory_sequences() const override { return (double)dist::rank_slice(batch).size(); }  // this rank's rows
    std::string memory_flags() const override {
        return "--batch=" + std::to_string(batch) + " or --seq=" + std::to_string(model.attn.max_len);
    }
    ReportSpec report_spec(std::vector<RunRecord>& runs) const override;

private:
    LmCorpus load_model_with_data(Driver& d, LoadedModel& m);
    int generate_text(Driver& d);
    int eval_checkpoint(Driver& d);
    int write_attention_dump(Driver& d);
    void bench_variant(const std::string& variant);
};

// ---- training -------------------------------------------------------------------------------

Tensor LmModel::one_sequence_loss(StepContext& ctx) {
    const int T = net.config().attn.max_len;
    const std::vector<int32_t> x(T, 0);
    return cross_entropy(net.forward(x, 1, T, ctx), x, -1, 0.0f);
}

// Each step draws B windows of T + 1 tokens at positions fixed by (seed, step); the periodic
// evaluations use --eval-batches batches spread over the validation split.
TrainTask LmModel::train_task(const TrainConfig& tc, int64_t& steps) {
    const int B = task_.batch, T = net.config().attn.max_len;
    all_val_ = eval_lm_batches(task_.corpus.valid, B, T);
    const int n_val = std::min<int>(task_.eval_batches, all_val_.size());
    for (int i = 0; i < n_val; ++i) val_.push_back(all_val_[(size_t)i * all_val_.size() / n_val]);
    x_.resize((size_t)B * T), y_.resize((size_t)B * T);
    TrainTask task;
    const int seed = tc.seed;
    // With several MPI ranks each trains rows [lo, hi) of the step's global batch (docs/distributed.md).
    const dist::Slice s = dist::rank_slice(B);
    task.loss = [this, B, T, seed, s](int64_t step, StepContext& ctx, int64_t& tokens) {
        sample_lm_batch(task_.corpus.train, B, T, seed, step, x_.data(), y_.data());  // the global batch
        tokens = s.size() * T;
        if (s.size() == B) return cross_entropy(net.forward(x_, B, T, ctx), y_, -1, 0.0f);
        const std::vector<int32_t> xs(x_.begin() + s.lo * T, x_.begin() + s.hi * T),
            ys(y_.begin() + s.lo * T, y_.begin() + s.hi * T);
        return cross_entropy(net.forward(xs, (int)s.size(), T, ctx), ys, -1, 0.0f);
    };
    task.loss_count = [s, T] { return (double)(s.size() * T); };
    task.validate = [this] { return evaluate(net, val_); };
    steps = tc.steps;
    return task;
}

// The last parameters on the whole validation and test splits (bpc for characters, perplexity
// for words), and with --sample a sample of text.
void LmModel::finish(const TrainResult& t, const std::vector<float>&, const RunsConfig::Run& run, JsonObject& r) {
    const LmCorpus& corpus = task_.corpus;
    const bool is_char = corpus.kind == "char";
    const double val_loss = evaluate(net, all_val_);
    const double test_loss =
        corpus.test_is_valid ? val_loss : evaluate(net, eval_lm_batches(corpus.test, task_.batch, net.config().attn.max_len));
    auto metric = [&](double nats) { return is_char ? nats / std::log(2.0) : std::exp(nats); };
    const std::string m = is_char ? "bpc" : "ppl";
    r.number("val_loss", val_loss, 4);
    r.number("val_" + m, metric(val_loss), is_char ? 3 : 1);
    r.number("test_loss", test_loss, 4);
    r.number("test_" + m, metric(test_loss), is_char ? 3 : 1);
    r.number("best_val_loss", t.best_val, 4);
    r.integer("best_step", t.best_step);
    r.number("train_tok_s", t.tokens_per_s(), 0);
    r.number("steps_s", t.steps_per_s(), 3);
    r.number("wall_s", t.wall_s, 0);
    r.integer("steps", task_.shared.train.steps);
    r.text("data", task_.data);
    r.text("data_hash", corpus_hash(corpus));
    if (task_.sample > 0 && dist::is_writer())
        std::printf("--- sample from %s ---\n%s\n---\n", run.variant.c_str(),
                    corpus.decode(generate(net, {corpus.valid[0]}, task_.sample, Sampling{}, run.seed)).c_str());
}

// ---- the report -------------------------------------------------------------------------------

ReportSpec LmTask::report_spec(std::vector<RunRecord>& runs) const {
    // Every LM step trains batch x seq tokens, so a run whose result.json predates steps_s
    // gives it exactly as train_tok_s / (batch seq).
    for (RunRecord& r : runs)
        if (!r.result.has("steps_s")) {
            const std::map<std::string, std::string> g = config_map(r.result.at("group"));
            r.result.number("steps_s", r.result.num("train_tok_s") / (std::stod(g.at("batch")) * std::stod(g.at("seq"))), 3);
        }
    ReportSpec spec;
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
            if (r->result.at("val_loss") == "null" || r->result.at("test_loss") == "null") continue;  // no finite loss
            v.push_back({r->result.at("variant"), 0, r->result.num("val_loss"), 0, 0});
            if (r->result.at("variant") == "V") test.push_back(r->result.num("test_loss"));
        }
        return test.empty() ? std::string() : lm_reference_note(members[0]->result.at("data"), v, mean_of(test));
    };
    return spec;
}

// ---- commands: --generate, --eval-only, --dump-attention, --bench ------------------------------

bool LmTask::command(Driver& d) {
    if (generate || eval_only || !dump_attention.empty()) {
        SYNTH_CHECK(generate + eval_only + !dump_attention.empty() == 1,
                    "--generate, --eval-only and --dump-attention are separate commands: give one");
        SYNTH_CHECK(!checkpoint.empty(), "--generate, --eval-only and --dump-attention need --checkpoint=FILE (a run's "
                    "final.ckpt, best.ckpt or a step checkpoint)");
        // The dump is an output that destroys nothing: not the checkpoint it reads, not a directory.
        if (!dump_attention.empty()) check_output_path(dump_attention, {checkpoint}, "--dump-attention");
        shared.train.configure_compute();
        generate ? generate_text(d) : eval_only ? eval_checkpoint(d) : write_attention_dump(d);
        return true;
    }
    if (!bench && !bench_one) return false;
    const std::string compute = d.prepare();
    d.check_memory(split_list(shared.variants));  // a huge --vocab is a clear error, not an allocator abort
    if (bench_one) {
        bench_variant(shared.variants);
        return true;
    }
    std::fprintf(stderr, "lm --bench: %s\n", compute.c_str());
    // Each variant runs in a fresh process, so that its peak RSS is its own.
    for (const std::string& v : split_list(shared.variants)) {
        std::vector<std::string> args = d.argv();
        args.push_back("--variants=" + v);  // the last occurrence of a flag wins
        args.push_back("--bench-one");
        run_self(args, "the benchmark of " + v);
    }
    return true;
}

// The model of --checkpoint and the corpus of --data, which must have its vocabulary.
LmCorpus LmTask::load_model_with_data(Driver& d, LoadedModel& m) {
    d.load_model(m, checkpoint);
    LmCorpus c = load_lm_corpus(data);
    SYNTH_CHECK(c.serialize_tokenizer() == corpus.serialize_tokenizer(), "checkpoint ", checkpoint, " has a different ",
                tokenizer_origin());
    return c;
}

int LmTask::generate_text(Driver& d) {
    require_non_negative({{"tokens", tokens}});
    LoadedModel m;
    d.load_model(m, checkpoint);
    TransformerLM& net = static_cast<LmModel&>(*m.model).net;
    const Sampling how{temperature, top_k};
    check_sampling(how, net.config().vocab);
    const std::string start = prompt.empty() ? "\n" : prompt;  // nanoGPT's default: a new line
    std::vector<int32_t> ids = corpus.kind == "char" ? corpus.chars.encode(start, "--prompt") : corpus.words.encode(start, "--prompt");
    SYNTH_CHECK(!ids.empty(), "--prompt gives no token: give text to continue");
    std::string text = corpus.decode(synth::generate(net, ids, tokens, how, (uint64_t)shared.train.seed));
    if (text.empty() || text.back() != '\n') text += '\n';  // the output ends its last line
    write_all(stdout, text, "standard output");
    return 0;
}

int LmTask::eval_checkpoint(Driver& d) {
    LoadedModel m;
    const LmCorpus c = load_model_with_data(d, m);
    TransformerLM& net = static_cast<LmModel&>(*m.model).net;
    const int T = net.config().attn.max_len;
    const double val = evaluate(net, eval_lm_batches(c.valid, batch, T));
    const double test = c.test_is_valid ? val : evaluate(net, eval_lm_batches(c.test, batch, T));
    JsonObject r;
    r.text("checkpoint", checkpoint);
    r.text("data", data);
    r.number("val_loss", val, 4);
    r.number("test_loss", test, 4);
    std::printf("%s\n", r.dump().c_str());
    return 0;
}

double peak_rss_mb() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

// Training and forward-only throughput on random tokens, one JSON line.
void LmTask::bench_variant(const std::string& variant) {
    ParamStore store;
    const std::unique_ptr<TaskModel> built = build(store, variant);
    TransformerLM& net = static_cast<LmModel&>(*built).net;
    const TrainConfig& tc = shared.train;
    store.finalize(tc.seed);
    AdamW opt(store, AdamWConfig{});
    const int B = batch, T = model.attn.max_len;
    Rng rng(tc.seed);
    std::vector<int32_t> x((size_t)B * T), y((size_t)B * T);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (int32_t)rng.below(vocab), y[i] = (int32_t)rng.below(vocab);
    auto run = [&](int steps, bool train) {
        double t0 = now_seconds();
        for (int s = 0; s < steps; ++s) {
            StepContext ctx{train, (uint64_t)tc.seed, (uint64_t)s, 0};
            if (train) {
                train_step(store, opt, [&] { return cross_entropy(net.forward(x, B, T, ctx), y, -1, 0.0f); }, 1e-4f, 1.0f);
            } else {
                NoGrad ng;
                scratch().reset();
                net.forward(x, B, T, ctx);
            }
        }
        return (double)B * T * steps / (now_seconds() - t0);
    };
    run(3, true);
    const double train = run(bench_steps, true);
    run(2, false);
    const double infer = run(bench_infer_steps, false);
    std::printf("{\"variant\":\"%s\",\"params\":%lld,\"train_tokens_per_s\":%.1f,\"infer_tokens_per_s\":%.1f,"
                "\"peak_rss_mb\":%.1f,\"batch\":%d,\"seq\":%d,\"d_model\":%d,\"layers\":%d,\"heads\":%d,\"d_ff\":%d,"
                "\"vocab\":%d,\"threads\":%d,\"cpu\":\"%s\",\"kernel\":\"%s\",\"precision\":\"%s\",\"gemm\":\"%s\"}\n",
                variant.c_str(), (long long)store.trainable_count(), train, infer, peak_rss_mb(), B, T,
                model.attn.d_model, model.layers, model.attn.heads, model.d_ff, vocab, tc.threads, cpu_name().c_str(),
                blas_kernel_name().c_str(), tc.precision.c_str(), provider_name(gemm_provider()));
    std::fflush(stdout);
}

// --dump-attention=FILE: for the analyses of docs/analysis.md, each layer's attention maps
// averaged over --eval-batches validation batches (the probabilities after the softmax, per
// head, (H, L, L); null for a mixer without such a map) and the mixture weights alpha per
// layer and head, with the checkpoint's step, as one JSON file (scripts/plot_attention.py
// draws it).
int LmTask::write_attention_dump(Driver& d) {
    LoadedModel m;
    const LmCorpus c = load_model_with_data(d, m);
    TransformerLM& net = static_cast<LmModel&>(*m.model).net;
    const LmConfig& cfg = net.config();
    const std::vector<SequenceMixer*> mixers = net.mixers();
    std::vector<AttentionProbe> probes(mixers.size());
    std::vector<bool> mapped(mixers.size());
    for (size_t l = 0; l < mixers.size(); ++l) mapped[l] = mixers[l]->set_probe(&probes[l]);
    std::vector<LmBatch> val = eval_lm_batches(c.valid, batch, cfg.attn.max_len);
    if ((int)val.size() > eval_batches) val.resize(eval_batches);
    evaluate(net, val);
    for (SequenceMixer* mx : mixers) mx->set_probe(nullptr);

    JsonObject out;
    out.text("checkpoint", checkpoint);
    out.text("variant", cfg.attn.variant);
    out.integer("step", m.step);
    out.integer("layers", cfg.layers);
    out.integer("heads", cfg.attn.heads);
    out.integer("sequences", probes.empty() ? 0 : probes[0].sequences);
    std::vector<std::string> components, alphas, maps;
    for (const std::string& c : parse_variant(cfg.attn.variant)) components.push_back(json_string(c, "--variants"));
    for (SequenceMixer* mx : mixers) {  // (layers, H, components); empty rows without a mixture
        std::vector<std::string> heads;
        for (int h = 0; h < cfg.attn.heads; ++h) {
            const std::vector<float> a = mx->mixture_weights(h);
            heads.push_back(json_numbers(a.data(), a.size(), 5));
        }
        alphas.push_back(json_array(heads));
    }
    for (size_t l = 0; l < mixers.size(); ++l) {  // (layers, H, Tq, Tk), or null
        const AttentionProbe& p = probes[l];
        if (!mapped[l] || p.sequences == 0) {
            maps.push_back("null");
            continue;
        }
        const std::vector<float> mean = p.mean();  // (H, Tq, Tk)
        std::vector<std::string> heads;
        for (int h = 0; h < p.H; ++h) {
            std::vector<std::string> rows;
            for (int i = 0; i < p.Tq; ++i) rows.push_back(json_numbers(mean.data() + ((int64_t)h * p.Tq + i) * p.Tk, p.Tk, 5));
            heads.push_back(json_array(rows));
        }
        maps.push_back(json_array(heads));
    }
    out.raw("components", json_array(components));
    out.raw("alphas", json_array(alphas));
    out.raw("maps", json_array(maps));
    write_file_atomic(dump_attention, out.dump() + "\n");
    std::fprintf(stderr, "wrote %s: %s, step %lld, %lld validation sequences\n", dump_attention.c_str(),
                 cfg.attn.variant.c_str(), (long long)m.step, (long long)(probes.empty() ? 0 : probes[0].sequences));
    return 0;
}

SYNTH_REGISTER_TASK(lm, LmTask);

}  // namespace
}  // namespace synth

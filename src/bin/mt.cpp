// mt: train and evaluate Synthesizer variants as encoder-decoder translation models.
//
//   build/mt --data=multi30k --preset=quick                  # the default sweep, a few minutes
//   build/mt --data=multi30k --variants=V,R --preset=full    # the documented run
//   build/mt --translate --checkpoint=runs/mt-multi30k-full/V-seed1337/final.ckpt < sentences.en > sentences.de
//
// The joint BPE is learned once per process, deterministically, on the training source and
// target lines. Then, per variant: train with the same seed and batch order, keep the
// parameters of the best validation loss, save them with the config and the BPE in the run
// directory, decode the validation and test sets with beam search, and score the
// detokenised output with sacreBLEU-exact BLEU and chrF against the raw reference lines.
// Each (variant, seed) is one run that writes only its own directory,
// runs/mt-<data>-<preset>/<variant>-seed<seed>/ (src/runs/run_dir.h): config, metrics, checkpoints,
// final.ckpt (the kept parameters, for --translate), hyps/<set>.<tgt> and result.json. The
// invocation's runs are summarised in runs/mt-<data>-<preset>/report.{csv,md}; committed tables
// come from the report step: build/mt --report RUN_DIRS... --out=results/<name>.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "engine/autograd.h"
#include "models/beam.h"
#include "engine/gemm/blas.h"
#include "text/bleu.h"
#include "text/bpe.h"
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
#include "runs/run_report.h"
#include "runs/run_dir.h"
#include "models/seq2seq.h"
#include "train/trainer.h"

namespace synth {
namespace {

// Flags that are neither model nor training flags but change the reported numbers: a run's
// group (src/runs/run_dir.h) includes them.
const std::vector<std::string> kGroupExtra = {"epochs", "valid-set", "test-sets", "beam", "len-penalty", "max-extra", "decode-limit"};

struct Options {
    std::string data = "multi30k", src = "en", tgt = "de", variants = paper_sweep();
    std::string preset = "quick", valid_set = "val", test_sets = "test2016,test2017_flickr,test2017_mscoco";
    std::string tag, checkpoint;
    int layers = 3, bpe_vocab = 8000, batch_tokens = 4096, beam = 5, max_extra = 50, decode_batch = 32, decode_limit = 0;
    float epochs = 8, label_smoothing = 0.1f, len_penalty = 0.6f;
    bool translate = false;
    Seq2SeqConfig model;  // enc/dec layers 0 = --layers; the variant is set per run
    TrainConfig train;    // mt's defaults: below (Vaswani et al.'s schedule and AdamW)
    RunsConfig runs;
    Options() {
        model.attn.d_model = 128, model.attn.heads = 4, model.d_ff = 512, model.attn.max_len = 64;
        model.enc_layers = model.dec_layers = 0;
        train.steps = 0, train.warmup = 1000, train.eval_every = 0, train.schedule = "rsqrt", train.min_lr = 0.0f;
        train.weight_decay = 0.01f, train.beta2 = 0.98f, train.adam_eps = 1e-9f;
    }
};

// Presets set the defaults of flags the user did not give. quick checks the pipeline end to
// end in minutes (BLEU is low); full is the documented run behind the committed tables
// (docs/presets.md says how its settings were chosen).
std::map<std::string, std::string> preset_flags(const std::string& preset) {
    std::map<std::string, std::string> p;
    if (preset == "quick")
        p = {{"d-model", "64"},      {"layers", "1"},    {"heads", "4"},       {"d-ff", "128"},
             {"steps", "150"},       {"warmup", "50"},   {"lr", "3e-3"},       {"batch-tokens", "1024"},
             {"bpe-vocab", "2000"},  {"dropout", "0.0"}, {"beam", "2"},        {"decode-limit", "100"},
             {"eval-every", "75"}};
    else if (preset == "full")
        p = {{"d-model", "128"},     {"layers", "3"},    {"heads", "4"},       {"d-ff", "512"},
             {"epochs", "16"},       {"warmup", "300"},  {"lr", "3e-3"},       {"batch-tokens", "1024"},
             {"bpe-vocab", "4000"},  {"dropout", "0.1"}, {"beam", "5"},        {"decode-limit", "0"},
             {"eval-every", "0"}};
    else if (preset != "none")
        fail("unknown --preset '", preset, "' (quick, full, none)");
    return p;
}

Seq2SeqConfig model_config(const Options& o, const std::string& variant, int vocab) {
    Seq2SeqConfig c = o.model;
    c.vocab = vocab;
    c.pad = Bpe::kPad;
    c.attn.variant = variant;
    return c;
}

void validate_decoding(const Options& o) {
    require_positive({{"beam", o.beam}, {"decode-batch", o.decode_batch}});
    require_non_negative({{"decode-limit", o.decode_limit}, {"max-extra", o.max_extra}, {"len-penalty", o.len_penalty}});
}

void validate(const Options& o, const Flags& f) {
    const Seq2SeqConfig& m = o.model;
    require_positive({{"d-model", m.attn.d_model}, {"layers", o.layers}, {"heads", m.attn.heads}, {"d-ff", m.d_ff},
                      {"max-len", m.attn.max_len}, {"batch-tokens", o.batch_tokens}, {"epochs", o.epochs},
                      {"bpe-vocab", o.bpe_vocab}, {"enc-layers", m.enc_layers}, {"dec-layers", m.dec_layers}});
    require_fraction({{"dropout", m.dropout}, {"attn-dropout", m.attn.attn_dropout},
                      {"label-smoothing", o.label_smoothing}});
    SYNTH_CHECK(m.attn.d_model % m.attn.heads == 0, "--heads=", m.attn.heads, " must divide --d-model=", m.attn.d_model);
    SYNTH_CHECK(m.positions == "learned" || m.positions == "sinusoidal", "--positions must be learned or sinusoidal");
    SYNTH_CHECK(m.init == "glorot" || m.init == "normal", "--init must be glorot or normal, got '", m.init, "'");
    o.train.validate();
    validate_decoding(o);
    check_settings(m.attn.settings);
    const std::vector<std::string> list = split_list(o.variants);
    check_settings_used(list, [&](const std::string& k) { return f.given(k); });
    for (const std::string& v : list) {  // every variant's model, built without allocating
        ParamStore unallocated;
        Seq2Seq check(unallocated, model_config(o, v, 8));
    }
    split_list(o.test_sets);
}

// ---- data ------------------------------------------------------------------------------

struct Split {
    std::string name;
    ParallelCorpus text;           // raw lines: the references BLEU compares against
    std::vector<TokenPair> pairs;  // tokenized
    size_t dropped = 0;            // decoding: sources longer than L, left out (and counted)
};

// Checked before training, so that a bad decoding set cannot stop a run after its training:
// an empty reference is an error (sacreBLEU refuses it), naming the file and the line; a source
// longer than L cannot be encoded, so it is left out of decoding and scoring as training leaves
// it out, and counted.
void prepare_decode_set(Split& s, const std::string& dir, const std::string& tgt_lang, int L) {
    for (size_t i = 0; i < s.text.tgt.size(); ++i)
        SYNTH_CHECK(!s.text.tgt[i].empty(), dir, "/", s.name, ".", tgt_lang, ":", i + 1,
                    ": an empty reference line (BLEU cannot score against it)");
    Split kept{s.name, {}, {}, 0};
    for (size_t i = 0; i < s.pairs.size(); ++i) {
        if ((int)s.pairs[i].src.size() > L) {
            ++kept.dropped;
            continue;
        }
        kept.text.src.push_back(s.text.src[i]);
        kept.text.tgt.push_back(s.text.tgt[i]);
        kept.pairs.push_back(s.pairs[i]);
    }
    SYNTH_CHECK(!kept.pairs.empty(), "every source sentence of ", s.name, " is longer than --max-len=", L);
    s = std::move(kept);
}

std::vector<int32_t> encode_ids(const Bpe& bpe, const std::string& line) {
    std::vector<int> ids = bpe.encode(line);
    return std::vector<int32_t>(ids.begin(), ids.end());
}

Split load_split(const std::string& dir, const std::string& name, const Options& o, const Bpe& bpe) {
    Split s{name, load_parallel(dir, name, o.src, o.tgt), {}};
    for (size_t i = 0; i < s.text.src.size(); ++i) {
        TokenPair p{encode_ids(bpe, s.text.src[i]), encode_ids(bpe, s.text.tgt[i])};
        p.src.push_back(Bpe::kEos);
        s.pairs.push_back(std::move(p));
    }
    return s;
}

// Mean NLL (nats per target token, <eos> included, no label smoothing) over the batches.
double evaluate(Seq2Seq& model, const std::vector<TokenPair>& pairs, const std::vector<std::vector<int>>& batches) {
    NoGrad ng;
    StepContext ctx;
    LossStats st;
    for (const auto& idx : batches) {
        scratch().reset();
        MtBatch b = make_batch(pairs, idx, Bpe::kPad, Bpe::kBos, Bpe::kEos);
        EncoderMemory mem = model.memory(model.encode(b.src, b.B, b.S, ctx), b.src);
        cross_entropy(model.decode(b.tgt_in, b.B, b.T, mem, ctx), b.tgt_out, Bpe::kPad, 0.0f, &st);
    }
    return st.sum_nll / (double)st.count;
}

DecodeOptions decode_options(const Options& o) {
    DecodeOptions d;
    d.beam = o.beam;
    d.len_penalty = o.len_penalty;
    d.max_extra = o.max_extra;
    d.batch_sentences = o.decode_batch;
    d.bos = Bpe::kBos;
    d.eos = Bpe::kEos;
    return d;
}

std::vector<std::string> detokenise(const Bpe& bpe, const std::vector<std::vector<int32_t>>& hyps) {
    std::vector<std::string> out;
    for (const auto& h : hyps) out.push_back(bpe.decode(std::vector<int>(h.begin(), h.end())));
    return out;
}

// ---- one variant -------------------------------------------------------------------------

struct SetScore {
    double bleu = 0, chrf = 0;
};

struct VariantResult {
    int64_t params = 0;
    double val_loss = 0, train_s = 0, tok_s = 0, steps_s = 0, decode_sent_s = 0;
    int steps = 0;
    int64_t best_step = 0;
    double epochs = 0;
    std::map<std::string, SetScore> scores;  // by set name, the validation set first
    std::vector<std::string> order;          // the set names in decoding order
    std::map<std::string, size_t> dropped;   // by set name: sources longer than L, not decoded
};

std::string data_stem(const std::string& data) {
    std::string s = data;
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s.substr(s.find_last_of('/') + 1);
}

// The sweep's name: mt-<data>-<preset>[-<tag>].
std::string sweep_name(const Options& o) {
    return "mt-" + (o.data == "multi30k" ? std::string("multi30k") : data_stem(o.data)) + "-" + o.preset +
           (o.tag.empty() ? "" : "-" + o.tag);
}

// Everything a run trains on and scores against, shared by its variants.
struct MtData {
    Bpe bpe;
    std::vector<TokenPair> train_pairs, val_pairs;  // the pairs that fit in L
    std::vector<Split> sets;                        // the validation set, then the test sets
    size_t dropped = 0;                             // training pairs longer than L
    std::string hash;                               // of every raw line of every split read
};

// Trains with the shared Trainer (the parameters of the best validation loss are kept), saves
// them for --translate, then decodes and scores every set of data.sets.
VariantResult run_variant(const Options& o, const Flags& f, const std::string& variant, const MtData& data,
                          const std::string& dir, const Checkpoint* resume) {
    const Bpe& bpe = data.bpe;
    ParamStore store;
    Seq2Seq model(store, model_config(o, variant, bpe.vocab_size()));
    store.finalize(o.train.seed);
    std::fprintf(stderr, "[%s] %lld trainable parameters\n", variant.c_str(), (long long)store.trainable_count());

    const std::vector<std::vector<int>> batches = token_batches(data.train_pairs, o.batch_tokens);
    const std::vector<std::vector<int>> val_batches = token_batches(data.val_pairs, o.batch_tokens);
    const int per_epoch = (int)batches.size();
    const int total = o.train.steps > 0 ? o.train.steps : (int)std::min(std::lround(o.epochs * per_epoch), 1L << 30);
    SYNTH_CHECK(total >= 1, "--epochs=", o.epochs, " of ", per_epoch, " batches is no training step at all");

    std::vector<int> order;  // this epoch's batch order
    TrainTask task;
    task.steps_per_epoch = per_epoch;
    task.tokens_unit = "tgt tok/s";
    task.loss = [&](int64_t step, StepContext& ctx, int64_t& tokens) {
        if (step % per_epoch == 0 || order.empty()) {
            // A new epoch: the same length buckets, in a new seeded order; (seed, epoch) fix it.
            order.resize(per_epoch);
            for (int i = 0; i < per_epoch; ++i) order[i] = i;
            Rng rng(splitmix64((uint64_t)o.train.seed) ^ (uint64_t)(step / per_epoch));
            for (int i = per_epoch - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
        }
        const MtBatch b = make_batch(data.train_pairs, batches[order[step % per_epoch]], Bpe::kPad, Bpe::kBos, Bpe::kEos);
        tokens = b.tgt_tokens;
        EncoderMemory mem = model.memory(model.encode(b.src, b.B, b.S, ctx), b.src);
        return cross_entropy(model.decode(b.tgt_in, b.B, b.T, mem, ctx), b.tgt_out, Bpe::kPad, o.label_smoothing);
    };
    task.validate = [&] { return evaluate(model, data.val_pairs, val_batches); };
    task.config = f.dump() + "model=seq2seq\n";
    task.tokenizer = bpe.serialize();

    // With --save-every N, <prefix>-step<N>.ckpt (the training state) beside <prefix>-step<N>.best.ckpt
    // (the best parameters so far, which training must also carry on).
    Trainer trainer(store, o.train, variant, checkpoint_prefix(o.train, dir, sweep_name(o), variant, o.train.seed));
    const TrainResult t = train_in_run_dir(trainer, task, total, dir, resume, o.train.resume, variant);
    std::copy(trainer.best().begin(), trainer.best().end(), store.data());
    VariantResult r;
    r.params = store.trainable_count();
    r.best_step = t.best_step;
    r.val_loss = t.best_val;
    r.steps = total;
    r.epochs = (double)total / per_epoch;
    r.train_s = t.wall_s;
    r.tok_s = t.tokens_per_s();
    r.steps_s = t.steps_per_s();
    std::fprintf(stderr, "[%s] kept the parameters of step %lld (val loss %.4f); training took %s\n", variant.c_str(),
                 (long long)t.best_step, t.best_val, hms(r.train_s).c_str());

    Checkpoint ck = capture(store, nullptr);
    ck.config = f.dump() + "model=seq2seq\nvariant=" + variant + "\n";
    ck.tokenizer = bpe.serialize();
    ck.step = t.best_step;
    ck.best_val = t.best_val;
    const std::string ck_path = dir + "/final.ckpt";
    save_checkpoint(ck_path, ck);
    std::fprintf(stderr, "[%s] saved %s\n", variant.c_str(), ck_path.c_str());

    const DecodeOptions dopt = decode_options(o);
    double decode_s = 0;
    int64_t decoded = 0;
    for (const Split* s = data.sets.data(); s != data.sets.data() + data.sets.size(); ++s) {
        const size_t n = o.decode_limit > 0 ? std::min<size_t>(o.decode_limit, s->pairs.size()) : s->pairs.size();
        std::vector<std::vector<int32_t>> srcs;
        for (size_t i = 0; i < n; ++i) srcs.push_back(s->pairs[i].src);
        const double t0 = now_seconds();
        const std::vector<std::string> hyps = detokenise(bpe, translate(model, srcs, dopt));
        decode_s += now_seconds() - t0;
        decoded += (int64_t)n;
        const std::vector<std::string> refs(s->text.tgt.begin(), s->text.tgt.begin() + n);
        SetScore sc{corpus_bleu(hyps, refs).score, corpus_chrf(hyps, refs)};
        r.scores[s->name] = sc;
        r.order.push_back(s->name);
        r.dropped[s->name] = s->dropped;
        std::string text;
        for (const std::string& h : hyps) text += h + "\n";
        write_file_atomic(dir + "/hyps/" + s->name + "." + o.tgt, text);
        std::fprintf(stderr, "[%s] %s: BLEU %.2f  chrF %.2f  (%zu sentences)\n", variant.c_str(), s->name.c_str(), sc.bleu,
                     sc.chrf, n);
    }
    r.decode_sent_s = decoded / decode_s;
    return r;
}

// The run's metrics for result.json: scores, counts, timings, and a hash of its data.
JsonObject result_json(const Options& o, const RunsConfig::Run& run, const VariantResult& r, const MtData& data) {
    JsonObject j;
    j.text("variant", run.variant);
    j.integer("seed", run.seed);
    j.integer("params", r.params);
    j.number("val_loss", r.val_loss, 4);
    for (const std::string& set : r.order) j.number(set + "_bleu", r.scores.at(set).bleu, 2);
    for (const std::string& set : r.order) j.number(set + "_chrf", r.scores.at(set).chrf, 2);
    for (const std::string& set : r.order) j.integer(set + "_too_long", (long long)r.dropped.at(set));
    j.integer("steps", r.steps);
    j.integer("best_step", r.best_step);
    j.number("epochs", r.epochs, 2);
    j.number("train_s", r.train_s, 0);
    j.number("train_tgt_tok_s", r.tok_s, 0);
    j.number("steps_s", r.steps_s, 3);
    j.number("decode_sent_s", r.decode_sent_s, 1);
    j.text("data", o.data);
    j.text("data_hash", data.hash);
    return j;
}

// Fail before the work: training `variant` must fit in the available memory (trainer.h). The
// largest activations come from batches of the longest sentences: batch-tokens / L of length L.
void check_memory(const Options& o, const std::string& variant, int vocab) {
    ParamStore store;
    Seq2Seq model(store, model_config(o, variant, vocab));
    const int L = o.model.attn.max_len;
    const std::vector<int32_t> ids(L, 3);  // one pair of the maximum length
    check_training_memory(
        store,
        [&](StepContext& ctx) {
            EncoderMemory mem = model.memory(model.encode(ids, 1, L, ctx), ids);
            return cross_entropy(model.decode(ids, 1, L, mem, ctx), ids, Bpe::kPad, 0.0f);
        },
        std::max(1, o.batch_tokens / L), variant,
        "--batch-tokens=" + std::to_string(o.batch_tokens) + " or --max-len=" + std::to_string(L));
}

// ---- --translate ---------------------------------------------------------------------------

// Rebuilds the network from the checkpoint's Model flags and translates stdin.
int translate_stdin(Options& o, Flags& f) {
    SYNTH_CHECK(!o.checkpoint.empty(), "--translate needs --checkpoint=FILE");
    validate_decoding(o);
    const Checkpoint ck = load_checkpoint(o.checkpoint);
    SYNTH_CHECK(ck.adam_m.empty(), "checkpoint ", o.checkpoint, " is a training checkpoint (from --save-every); "
                "--translate takes the kept parameters, a run's final.ckpt");
    SYNTH_CHECK(ck.config_value("model") == "seq2seq", "checkpoint ", o.checkpoint, " holds a '", ck.config_value("model"),
                "' model (written by build/lm), not a translation model");
    f.load(ck.config, FlagRole::Model);
    const Bpe bpe = Bpe::deserialize(ck.tokenizer);
    Seq2SeqConfig cfg = model_config(o, ck.config_value("variant"), bpe.vocab_size());
    cfg.dropout = 0.0f;
    ParamStore store;
    Seq2Seq model(store, cfg);
    store.finalize(0);
    restore(ck, store, nullptr);
    std::vector<std::vector<int32_t>> srcs;
    std::string line;
    while (std::getline(std::cin, line)) {
        srcs.push_back(encode_ids(bpe, line));
        srcs.back().push_back(Bpe::kEos);
    }
    for (const std::string& h : detokenise(bpe, translate(model, srcs, decode_options(o)))) std::printf("%s\n", h.c_str());
    return 0;
}

// The BPE (learned on the training source + target lines), the tokenized sets, and the
// training and validation pairs that fit in L.
MtData load_data(const Options& o, const std::string& dir) {
    const ParallelCorpus raw_train = load_parallel(dir, "train", o.src, o.tgt);
    const double t0 = now_seconds();
    std::vector<std::string> lines = raw_train.src;
    lines.insert(lines.end(), raw_train.tgt.begin(), raw_train.tgt.end());
    MtData d{Bpe::learn(lines, o.bpe_vocab), {}, {}, {}, 0, ""};
    std::fprintf(stderr, "mt: joint BPE of %d tokens (%d merges) learned in %.1f s\n", d.bpe.vocab_size(),
                 d.bpe.num_merges(), now_seconds() - t0);
    const Split train = load_split(dir, "train", o, d.bpe);
    d.sets = {load_split(dir, o.valid_set, o, d.bpe)};
    for (const std::string& t : split_list(o.test_sets)) d.sets.push_back(load_split(dir, t, o, d.bpe));
    // Pairs longer than L cannot be represented: training (and the validation loss) skip them,
    // and the count of dropped training pairs is reported; decoding leaves out (and counts) the
    // sources longer than L.
    const int L = o.model.attn.max_len;
    auto fitting = [&](const std::vector<TokenPair>& pairs) {
        std::vector<TokenPair> kept;
        for (const TokenPair& p : pairs)
            if ((int)p.src.size() <= L && (int)p.tgt.size() + 1 <= L) kept.push_back(p);
        return kept;
    };
    std::string raw;
    for (const std::string& l : raw_train.src) raw += l + "\n";
    for (const std::string& l : raw_train.tgt) raw += l + "\n";
    for (const Split& set : d.sets)
        for (const std::vector<std::string>* side : {&set.text.src, &set.text.tgt})
            for (const std::string& l : *side) raw += l + "\n";
    d.hash = short_hash(raw);
    d.train_pairs = fitting(train.pairs);
    d.val_pairs = fitting(d.sets[0].pairs);  // before prepare_decode_set, which filters by source only
    for (Split& set : d.sets) {
        prepare_decode_set(set, dir, o.tgt, L);
        if (set.dropped)
            std::fprintf(stderr, "mt: %zu sentences of %s are longer than L=%d and are not decoded\n", set.dropped,
                         set.name.c_str(), L);
    }
    d.dropped = train.pairs.size() - d.train_pairs.size();
    SYNTH_CHECK(!d.train_pairs.empty() && !d.val_pairs.empty(), "no training or validation pair fits in --max-len=", L);
    int64_t src_tok = 0, tgt_tok = 0;
    for (const TokenPair& p : d.train_pairs) src_tok += p.src.size(), tgt_tok += p.tgt.size() + 1;
    std::fprintf(stderr,
                 "mt: %s %s->%s: %zu training pairs (%zu longer than L=%d dropped), %lld source / %lld target tokens; "
                 "%zu validation pairs\n",
                 o.data.c_str(), o.src.c_str(), o.tgt.c_str(), d.train_pairs.size(), d.dropped, L, (long long)src_tok,
                 (long long)tgt_tok, d.val_pairs.size());
    return d;
}

// The report of finished MT runs: STEM.csv and STEM.md (src/runs/run_report.h).
void report(const std::vector<std::string>& dirs, const std::string& stem, bool force) {
    const std::vector<RunRecord> runs = find_runs(dirs);
    ReportSpec spec;
    spec.force = force;
    spec.title = "MT: pre-LN encoder-decoder Transformer";
    spec.intro = std::string("Synthesizer variants replace the self-attention of the encoder and the decoder, or of "
                             "one of them with V in the other (placement); cross-attention is dot product. The "
                             "parameters with the best validation loss are kept. val_loss is the NLL in nats per "
                             "target token (no smoothing). BLEU and chrF are sacreBLEU-exact (") +
                 kBleuSignature + "; chrF2 " + kChrfSignature +
                 ") on detokenised output against the raw references; train_tgt_tok_s (target tokens) and steps_s "
                 "are the training throughput of each run. The findings compare validation losses, and give the "
                 "paired validation BLEU difference beside each.\n";
    spec.metrics = {"params", "val_loss"};
    for (const auto& [k, v] : runs[0].result.fields)
        if (k.size() > 5 && k.compare(k.size() - 5, 5, "_bleu") == 0) spec.metrics.push_back(k);
    spec.metrics.push_back("train_tgt_tok_s");
    spec.metrics.push_back("steps_s");
    spec.speed_key = "train_tgt_tok_s";
    spec.score_key = "val_bleu";
    spec.score_name = "validation BLEU";
    write_report(runs, spec, stem);
}

int run(int argc, char** argv) {
    Options o;
    Flags f("mt", "Train and evaluate Synthesizer variants as encoder-decoder Transformers for translation.");
    f.add("data", &o.data, "multi30k | DIR with <split>.<lang> files (one sentence per line)", FlagRole::Training);
    f.add("src", &o.src, "source language suffix", FlagRole::Model);
    f.add("tgt", &o.tgt, "target language suffix", FlagRole::Model);
    f.add("valid-set", &o.valid_set, "validation split (model selection by its loss)");
    f.add("test-sets", &o.test_sets, "comma-separated test splits to decode and score");
    f.add("variants", &o.variants,
          "comma-separated self-attention variants: " + variant_names() + ", mixtures like R+V");
    f.add("preset", &o.preset, "quick | full | none: defaults for the flags not given");
    f.add("layers", &o.layers, "encoder and decoder layers (where --enc-layers / --dec-layers are 0)");
    o.model.bind(f);
    f.add("bpe-vocab", &o.bpe_vocab, "joint BPE vocabulary size, learned on the training source + target",
          FlagRole::Model);
    f.add("batch-tokens", &o.batch_tokens, "padded tokens per batch, B * max(S, T)", FlagRole::Training);
    f.add("epochs", &o.epochs, "training epochs (when --steps is 0)");
    o.train.bind(f);
    f.add("label-smoothing", &o.label_smoothing, "label smoothing of the training loss", FlagRole::Training);
    f.add("beam", &o.beam, "beam size (1 = greedy)");
    f.add("len-penalty", &o.len_penalty, "alpha of the GNMT length penalty ((5 + len) / 6)^alpha");
    f.add("max-extra", &o.max_extra, "outputs have at most source length + this many tokens (and at most L)");
    f.add("decode-batch", &o.decode_batch, "sentences decoded together");
    f.add("decode-limit", &o.decode_limit, "decode only the first N sentences of each set (0 = all)");
    o.runs.bind(f, "mt");
    f.add("tag", &o.tag, "suffix for result and checkpoint names");
    f.add("translate", &o.translate, "translate stdin to stdout with --checkpoint (one sentence per line)");
    f.add("checkpoint", &o.checkpoint, "--translate: the checkpoint to load");
    f.set_epilog(describe_presets({{"quick", preset_flags("quick")}, {"full", preset_flags("full")}}));
    if (!f.parse(argc, argv)) return 0;
    if (run_report_step(o.runs, f.positional(), report)) return 0;
    SYNTH_CHECK(f.positional().empty(), "unexpected argument '", f.positional()[0], "' (flags are --key=value)");
    if (o.translate) {
        o.train.configure_compute();
        return translate_stdin(o, f);
    }
    apply_defaults(f, preset_flags(o.preset));
    if (o.model.enc_layers == 0) o.model.enc_layers = o.layers;
    if (o.model.dec_layers == 0) o.model.dec_layers = o.layers;
    validate(o, f);
    const std::string compute = o.train.configure_compute();

    // Fail in the first second, not after an hour: unwritable directories or missing data.
    const std::string sweep = sweep_name(o);
    const std::vector<std::string> variants = split_list(o.variants);
    Checkpoint resume;
    if (!o.train.resume.empty()) {
        resume = load_checkpoint(o.train.resume);
        o.train.seed = o.runs.resumed_seed(resume, o.train.resume, f.given("seed"), o.train.seed);
    }
    const std::vector<RunsConfig::Run> runs = o.runs.plan(sweep, variants, o.train.seed, !o.train.resume.empty(), "hyps");
    o.train.prepare_checkpoint_dir();
    if (!o.train.resume.empty()) {
        // Not --steps: the inverse-square-root schedule and the batch order depend only on the
        // step, so a finished run resumed with more steps is exactly the longer run.
        check_resume(resume, o.train.resume, "seq2seq", variants, f,
                     schedule_uses_total(o.train.schedule) ? std::vector<std::string>{} : std::vector<std::string>{"steps"});
    }
    const std::string dir = o.data == "multi30k" ? data_dir("multi30k_en_de") : o.data;
    const MtData data = load_data(o, dir);
    for (const std::string& v : variants) check_memory(o, v, data.bpe.vocab_size());
    SYNTH_CHECK(o.train.resume.empty() || resume.tokenizer == data.bpe.serialize(), "checkpoint ", o.train.resume,
                " has a different BPE from the one learned on --data=", o.data);
    std::fprintf(stderr, "mt: %s\nconfig:\n%s", compute.c_str(), f.dump().c_str());

    o.runs.execute(runs, o.train.seed, f, "mt", o.train.threads, kGroupExtra,
                   [&](const RunsConfig::Run& run) {
                       const VariantResult r =
                           run_variant(o, f, run.variant, data, run.dir, o.train.resume.empty() ? nullptr : &resume);
                       return result_json(o, run, r, data);
                   },
                   sweep, report);
    return 0;
}

}  // namespace
}  // namespace synth

int main(int argc, char** argv) { return synth::cli_main(argc, argv, synth::run); }

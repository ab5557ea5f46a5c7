// mt: Synthesizer variants as encoder-decoder translation models (build/mt).
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
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "base/clock.h"
#include "base/error.h"
#include "base/io.h"
#include "base/rng.h"
#include "base/table.h"
#include "engine/autograd.h"
#include "models/beam.h"
#include "models/seq2seq.h"
#include "runs/driver.h"
#include "text/bleu.h"
#include "text/bpe.h"
#include "text/corpus.h"
#include "train/dist.h"

namespace synth {
namespace {

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

Split load_split(const std::string& dir, const std::string& name, const std::string& src, const std::string& tgt,
                 const Bpe& bpe) {
    Split s{name, load_parallel(dir, name, src, tgt), {}};
    for (size_t i = 0; i < s.text.src.size(); ++i) {
        TokenPair p{encode_ids(bpe, s.text.src[i]), encode_ids(bpe, s.text.tgt[i])};
        p.src.push_back(Bpe::kEos);
        s.pairs.push_back(std::move(p));
    }
    return s;
}

// Everything a run trains on and scores against, shared by its variants.
struct MtData {
    std::optional<Bpe> bpe;                         // none before the data (or a checkpoint) is read
    std::vector<TokenPair> train_pairs, val_pairs;  // the pairs that fit in L
    std::vector<Split> sets;                        // the validation set, then the test sets
    size_t dropped = 0;                             // training pairs longer than L
    std::string hash;                               // of every raw line of every split read
};

// Mean NLL (nats per target token, <eos> included, no label smoothing) over the batches.
double evaluate(Seq2Seq& model, const std::vector<TokenPair>& pairs, const std::vector<std::vector<int>>& batches) {
    return mean_eval_loss(batches.size(), [&](size_t i, StepContext& ctx, LossStats& st) {
        const MtBatch b = make_batch(pairs, batches[i], Bpe::kPad, Bpe::kBos, Bpe::kEos);
        EncoderMemory mem = model.memory(model.encode(b.src, b.B, b.S, ctx), b.src);
        cross_entropy(model.decode(b.tgt_in, b.B, b.T, mem, ctx), b.tgt_out, Bpe::kPad, 0.0f, &st);
    });
}

std::vector<std::string> detokenise(const Bpe& bpe, const std::vector<std::vector<int32_t>>& hyps) {
    std::vector<std::string> out;
    for (const auto& h : hyps) out.push_back(bpe.decode(std::vector<int>(h.begin(), h.end())));
    return out;
}

class MtTask;

// One variant's translation model: trained on length-bucketed batches, kept at its best
// validation loss, then decoded and scored on every set.
class MtModel : public TaskModel {
public:
    MtModel(const MtTask& task, ParamStore& store, const Seq2SeqConfig& cfg) : net(store, cfg), task_(task), store_(store) {}
    Tensor one_sequence_loss(StepContext& ctx) override;
    TrainTask train_task(const TrainConfig& train, int64_t& steps) override;
    void finish(const TrainResult& t, const std::vector<float>& best, const RunsConfig::Run& run,
                JsonObject& result) override;

    Seq2Seq net;

private:
    struct SetScore {
        double bleu = 0, chrf = 0;
        size_t sentences = 0;
        double decode_s = 0;
    };
    SetScore decode_and_score(const Split& s, const std::string& dir);

    const MtTask& task_;
    ParamStore& store_;
    std::vector<std::vector<int>> batches_, val_batches_;  // pair indices per batch
    std::vector<int> order_;                               // this epoch's batch order
    double last_count_ = 0;                                // the last step's targets on this rank
    int per_epoch_ = 0;
    int64_t steps_ = 0;                                    // the run's training steps
};

class MtTask : public Task {
public:
    std::string data = "multi30k", src = "en", tgt = "de";
    std::string valid_set = "val", test_sets = "test2016,test2017_flickr,test2017_mscoco";
    std::string checkpoint;
    int layers = 3, bpe_vocab = 8000, batch_tokens = 4096, beam = 5, max_extra = 50, decode_batch = 32, decode_limit = 0;
    float epochs = 8, label_smoothing = 0.1f, len_penalty = 0.6f;
    bool translate = false;
    Seq2SeqConfig model;  // enc/dec layers 0 = --layers; the variant is set per run
    MtData d;

    MtTask() {
        shared.preset = "quick";
        model.attn.d_model = 128, model.attn.heads = 4, model.d_ff = 512, model.attn.max_len = 64;
        model.enc_layers = model.dec_layers = 0;
        // Vaswani et al.'s schedule and AdamW.
        TrainConfig& t = shared.train;
        t.steps = 0, t.warmup = 1000, t.eval_every = 0, t.schedule = "rsqrt", t.min_lr = 0.0f;
        t.weight_decay = 0.01f, t.beta2 = 0.98f, t.adam_eps = 1e-9f;
    }
    std::string name() const override { return "mt"; }
    std::string summary() const override {
        return "Train and evaluate Synthesizer variants as encoder-decoder Transformers for translation.";
    }
    std::string kind() const override { return "seq2seq"; }
    bool keeps_best_only() const override { return true; }

    void bind(Flags& f) override {
        f.add("data", &data, "multi30k | DIR with <split>.<lang> files (one sentence per line)", FlagRole::Training);
        f.add("src", &src, "source language suffix", FlagRole::Model);
        f.add("tgt", &tgt, "target language suffix", FlagRole::Model);
        f.add("valid-set", &valid_set, "validation split (model selection by its loss)");
        f.add("test-sets", &test_sets, "comma-separated test splits to decode and score");
        f.add("variants", &shared.variants,
              "comma-separated self-attention variants: " + variant_names() + ", mixtures like R+V");
        f.add("preset", &shared.preset, "quick | full | none: defaults for the flags not given");
        f.add("layers", &layers, "encoder and decoder layers (where --enc-layers / --dec-layers are 0)");
        model.bind(f);
        f.add("bpe-vocab", &bpe_vocab, "joint BPE vocabulary size, learned on the training source + target",
              FlagRole::Model);
        f.add("batch-tokens", &batch_tokens, "padded tokens per batch, B * max(S, T)", FlagRole::Training);
        f.add("epochs", &epochs, "training epochs (when --steps is 0)");
        shared.train.bind(f);
        f.add("label-smoothing", &label_smoothing, "label smoothing of the training loss", FlagRole::Training);
        f.add("beam", &beam, "beam size (1 = greedy)");
        f.add("len-penalty", &len_penalty, "alpha of the GNMT length penalty ((5 + len) / 6)^alpha");
        f.add("max-extra", &max_extra, "outputs have at most source length + this many tokens (and at most L)");
        f.add("decode-batch", &decode_batch, "sentences decoded together");
        f.add("decode-limit", &decode_limit, "decode only the first N sentences of each set (0 = all)");
        shared.runs.bind(f, "mt");
        f.add("tag", &shared.tag, "suffix for result and checkpoint names");
        f.add("translate", &translate, "translate stdin to stdout with --checkpoint (one sentence per line)");
        f.add("checkpoint", &checkpoint, "--translate: the checkpoint to load");
    }

    // quick checks the pipeline end to end in minutes (BLEU is low); full is the documented run
    // behind the committed tables (docs/presets.md says how its settings were chosen).
    std::vector<PresetRow> presets() const override {
        return {{"quick", "", {{"d-model", "64"}, {"layers", "1"}, {"heads", "4"}, {"d-ff", "128"}, {"steps", "150"},
                               {"warmup", "50"}, {"lr", "3e-3"}, {"batch-tokens", "1024"}, {"bpe-vocab", "2000"},
                               {"dropout", "0.0"}, {"beam", "2"}, {"decode-limit", "100"}, {"eval-every", "75"}}},
                {"full", "", {{"d-model", "128"}, {"layers", "3"}, {"heads", "4"}, {"d-ff", "512"}, {"epochs", "16"},
                              {"warmup", "300"}, {"lr", "3e-3"}, {"batch-tokens", "1024"}, {"bpe-vocab", "4000"},
                              {"dropout", "0.1"}, {"beam", "5"}, {"decode-limit", "0"}, {"eval-every", "0"}},
                 "epochs=16", "docs/presets.md"}};
    }
    void resolve() override {
        if (model.enc_layers == 0) model.enc_layers = layers;
        if (model.dec_layers == 0) model.dec_layers = layers;
    }

    ModelShape shape() const override { return {&model.attn, model.d_ff, model.dropout, "max-len"}; }
    void validate_decoding() const {
        require_positive({{"beam", beam}, {"decode-batch", decode_batch}});
        require_non_negative({{"decode-limit", decode_limit}, {"max-extra", max_extra}, {"len-penalty", len_penalty}});
    }
    void validate(const Flags&) const override {
        require_positive({{"layers", layers}, {"batch-tokens", batch_tokens}, {"epochs", epochs}, {"bpe-vocab", bpe_vocab},
                          {"enc-layers", model.enc_layers}, {"dec-layers", model.dec_layers}});
        require_fraction({{"label-smoothing", label_smoothing}});
        SYNTH_CHECK(model.positions == "learned" || model.positions == "sinusoidal",
                    "--positions must be learned or sinusoidal");
        SYNTH_CHECK(model.init == "glorot" || model.init == "normal", "--init must be glorot or normal, got '",
                    model.init, "'");
        validate_decoding();
        split_list(test_sets, "--test-sets");
    }
    bool command(Driver& d) override;

    std::string data_name() const override { return data_stem(data); }
    std::vector<std::string> group_extra() const override {
        return {"epochs", "valid-set", "test-sets", "beam", "len-penalty", "max-extra", "decode-limit"};
    }
    std::string run_subdir() const override { return "hyps"; }
    std::string data_dir_path() const { return data == "multi30k" ? data_dir("multi30k_en_de") : data; }
    void load_data() override;
    std::string tokenizer() const override { return d.bpe->serialize(); }
    std::string tokenizer_origin() const override { return "BPE from the one learned on --data=" + data; }
    // --steps, or else --epochs of `per_epoch` batches: the run's training steps.
    int64_t training_steps(int per_epoch) const {
        return shared.train.steps > 0 ? shared.train.steps : std::min(std::lround(epochs * per_epoch), 1L << 30);
    }
    // load_data printed the data; the summary line says how long each run trains, and by which
    // flag (--steps overrides --epochs).
    std::string describe_data() const override {
        const int per_epoch = (int)token_batches(d.train_pairs, batch_tokens).size();
        const int64_t steps = training_steps(per_epoch);
        const std::string given = fmt(epochs, epochs == std::floor(epochs) ? 0 : 2);
        if (shared.train.steps > 0)
            return "training " + std::to_string(steps) + " steps (--steps, which overrides --epochs=" + given + ": " +
                   fmt((double)steps / per_epoch, 2) + " epochs of " + std::to_string(per_epoch) + " batches)";
        return "training " + given + (epochs == 1 ? " epoch of " : " epochs of ") + std::to_string(per_epoch) +
               " batches (" + std::to_string(steps) + " steps)";
    }
    void use_tokenizer(const std::string& s) override {
        d.bpe = Bpe::deserialize(s);
    }

    std::unique_ptr<TaskModel> build(ParamStore& store, const std::string& variant) const override {
        Seq2SeqConfig c = model;
        c.vocab = d.bpe ? d.bpe->vocab_size() : 8;
        c.pad = Bpe::kPad;
        c.attn.variant = variant;
        return std::make_unique<MtModel>(*this, store, c);
    }
    // The largest activations come from batches of the longest sentences: batch-tokens / L of length L.
    double memory_sequences() const override {  // this rank's share of them
        const int rows = std::max(1, batch_tokens / model.attn.max_len);
        return std::max(1, (rows + dist::world() - 1) / dist::world());
    }
    std::string memory_flags() const override {
        return "--batch-tokens=" + std::to_string(batch_tokens) + " or --max-len=" + std::to_string(model.attn.max_len);
    }
    ReportSpec report_spec(std::vector<RunRecord>& runs) const override;

    DecodeOptions decode_options() const {
        DecodeOptions o;
        o.beam = beam;
        o.len_penalty = len_penalty;
        o.max_extra = max_extra;
        o.batch_sentences = decode_batch;
        o.bos = Bpe::kBos;
        o.eos = Bpe::kEos;
        return o;
    }
};

// ---- data ------------------------------------------------------------------------------

// The BPE (learned on the training source + target lines), the tokenized sets, and the
// training and validation pairs that fit in L.
void MtTask::load_data() {
    const std::string dir = data_dir_path();
    const ParallelCorpus raw_train = load_parallel(dir, "train", src, tgt);
    const double t0 = now_seconds();
    std::vector<std::string> lines = raw_train.src;
    lines.insert(lines.end(), raw_train.tgt.begin(), raw_train.tgt.end());
    d = MtData{Bpe::learn(lines, bpe_vocab), {}, {}, {}, 0, ""};
    if (dist::is_writer())
        std::fprintf(stderr, "mt: joint BPE of %d tokens (%d merges) learned in %.1f s\n", d.bpe->vocab_size(),
                     d.bpe->num_merges(), now_seconds() - t0);
    const Split train = load_split(dir, "train", src, tgt, *d.bpe);
    d.sets = {load_split(dir, valid_set, src, tgt, *d.bpe)};
    for (const std::string& t : split_list(test_sets)) d.sets.push_back(load_split(dir, t, src, tgt, *d.bpe));
    // Pairs longer than L cannot be represented: training (and the validation loss) skip them,
    // and the count of dropped training pairs is reported; decoding leaves out (and counts) the
    // sources longer than L.
    const int L = model.attn.max_len;
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
        prepare_decode_set(set, dir, tgt, L);
        if (set.dropped && dist::is_writer())
            std::fprintf(stderr, "mt: %zu sentences of %s are longer than L=%d and are not decoded\n", set.dropped,
                         set.name.c_str(), L);
    }
    d.dropped = train.pairs.size() - d.train_pairs.size();
    SYNTH_CHECK(!d.train_pairs.empty() && !d.val_pairs.empty(), "no training or validation pair fits in --max-len=", L);
    int64_t src_tok = 0, tgt_tok = 0;
    for (const TokenPair& p : d.train_pairs) src_tok += p.src.size(), tgt_tok += p.tgt.size() + 1;
    if (dist::is_writer())
        std::fprintf(stderr,
                     "mt: %s %s->%s: %zu training pairs (%zu longer than L=%d dropped), %lld source / %lld target tokens; "
                     "%zu validation pairs\n",
                     data.c_str(), src.c_str(), tgt.c_str(), d.train_pairs.size(), d.dropped, L, (long long)src_tok,
                     (long long)tgt_tok, d.val_pairs.size());
}

// ---- training, keeping, decoding --------------------------------------------------------------

Tensor MtModel::one_sequence_loss(StepContext& ctx) {
    const int L = net.config().attn.max_len;
    const std::vector<int32_t> ids(L, 3);  // one pair of the maximum length
    EncoderMemory mem = net.memory(net.encode(ids, 1, L, ctx), ids);
    return cross_entropy(net.decode(ids, 1, L, mem, ctx), ids, Bpe::kPad, 0.0f);
}

// Batches of about --batch-tokens padded tokens, of sentences of similar lengths, in a new
// seeded order each epoch; --steps, or else --epochs, sets the length of training.
TrainTask MtModel::train_task(const TrainConfig& tc, int64_t& steps) {
    const MtData& data = task_.d;
    batches_ = token_batches(data.train_pairs, task_.batch_tokens);
    val_batches_ = token_batches(data.val_pairs, task_.batch_tokens);
    per_epoch_ = (int)batches_.size();
    steps = task_.training_steps(per_epoch_);
    SYNTH_CHECK(steps >= 1, "--epochs=", task_.epochs, " of ", per_epoch_, " batches is no training step at all");
    steps_ = steps;
    TrainTask task;
    task.steps_per_epoch = per_epoch_;
    task.tokens_unit = "tgt tok/s";
    const int seed = tc.seed;
    task.loss = [this, seed](int64_t step, StepContext& ctx, int64_t& tokens) {
        const int n = per_epoch_;
        if (step % n == 0 || order_.empty()) {
            // A new epoch: the same length buckets, in a new seeded order; (seed, epoch) fix it.
            order_.resize(n);
            for (int i = 0; i < n; ++i) order_[i] = i;
            Rng rng(splitmix64((uint64_t)seed) ^ (uint64_t)(step / n));
            for (int i = n - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
        }
        // With several MPI ranks each trains sentences [lo, hi) of the step's batch (docs/distributed.md).
        const std::vector<int>& global = batches_[order_[step % n]];
        const dist::Slice s = dist::rank_slice((int64_t)global.size());
        const MtBatch b = make_batch(task_.d.train_pairs, std::vector<int>(global.begin() + s.lo, global.begin() + s.hi),
                                     Bpe::kPad, Bpe::kBos, Bpe::kEos);
        tokens = b.tgt_tokens;
        last_count_ = (double)b.tgt_tokens;  // the non-padding targets the loss averages
        EncoderMemory mem = net.memory(net.encode(b.src, b.B, b.S, ctx), b.src);
        return cross_entropy(net.decode(b.tgt_in, b.B, b.T, mem, ctx), b.tgt_out, Bpe::kPad, task_.label_smoothing);
    };
    task.loss_count = [this] { return last_count_; };
    task.validate = [this] { return evaluate(net, task_.d.val_pairs, val_batches_); };
    return task;
}

// Decodes the first --decode-limit sentences of a set with beam search, writes the detokenised
// hypotheses to <dir>/hyps/<set>.<tgt> and scores them against the raw references.
MtModel::SetScore MtModel::decode_and_score(const Split& s, const std::string& dir) {
    const size_t n = task_.decode_limit > 0 ? std::min<size_t>(task_.decode_limit, s.pairs.size()) : s.pairs.size();
    std::vector<std::vector<int32_t>> srcs;
    for (size_t i = 0; i < n; ++i) srcs.push_back(s.pairs[i].src);
    const double t0 = now_seconds();
    const std::vector<std::string> hyps = detokenise(*task_.d.bpe, translate(net, srcs, task_.decode_options()));
    SetScore sc;
    sc.decode_s = now_seconds() - t0;
    sc.sentences = n;
    const std::vector<std::string> refs(s.text.tgt.begin(), s.text.tgt.begin() + n);
    sc.bleu = corpus_bleu(hyps, refs).score;
    sc.chrf = corpus_chrf(hyps, refs);
    std::string text;
    for (const std::string& h : hyps) text += h + "\n";
    if (dist::is_writer()) write_file_atomic(dir + "/hyps/" + s.name + "." + task_.tgt, text);
    return sc;
}

// The kept parameters (the best validation loss's; final.ckpt holds them), decoded and scored
// on every set, the validation set first.
void MtModel::finish(const TrainResult& t, const std::vector<float>& best, const RunsConfig::Run& run, JsonObject& r) {
    std::copy(best.begin(), best.end(), store_.data());
    if (dist::is_writer())
        std::fprintf(stderr, "[%s] kept the parameters of step %lld (val loss %.4f); training took %s\n",
                     run.variant.c_str(), (long long)t.best_step, t.best_val, hms(t.wall_s).c_str());
    std::vector<SetScore> scores;
    double decode_s = 0;
    int64_t decoded = 0;
    for (const Split& s : task_.d.sets) {
        scores.push_back(decode_and_score(s, run.dir));
        decode_s += scores.back().decode_s;
        decoded += (int64_t)scores.back().sentences;
        if (dist::is_writer())
            std::fprintf(stderr, "[%s] %s: BLEU %.2f  chrF %.2f  (%zu sentences)\n", run.variant.c_str(), s.name.c_str(),
                         scores.back().bleu, scores.back().chrf, scores.back().sentences);
    }
    const std::vector<Split>& sets = task_.d.sets;
    r.number("val_loss", t.best_val, 4);
    for (size_t i = 0; i < sets.size(); ++i) r.number(sets[i].name + "_bleu", scores[i].bleu, 2);
    for (size_t i = 0; i < sets.size(); ++i) r.number(sets[i].name + "_chrf", scores[i].chrf, 2);
    for (size_t i = 0; i < sets.size(); ++i) r.integer(sets[i].name + "_too_long", (long long)sets[i].dropped);
    r.integer("steps", steps_);
    r.integer("best_step", t.best_step);
    r.number("epochs", (double)steps_ / per_epoch_, 2);
    r.number("train_s", t.wall_s, 0);
    r.number("train_tgt_tok_s", t.tokens_per_s(), 0);
    r.number("steps_s", t.steps_per_s(), 3);
    r.number("decode_sent_s", decoded / decode_s, 1);
    r.text("data", task_.data);
    r.text("data_hash", task_.d.hash);
}

// ---- the report -------------------------------------------------------------------------------

ReportSpec MtTask::report_spec(std::vector<RunRecord>& runs) const {
    ReportSpec spec;
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
    // --steps > 0 overrides --epochs (MtTask::training_steps): only the one that set the length
    // of training is a setting of the runs.
    spec.inapplicable_in = [](const std::map<std::string, std::string>& group) {
        auto it = group.find("steps");
        return std::set<std::string>{it != group.end() && it->second != "0" ? "epochs" : "steps"};
    };
    return spec;
}

// ---- --translate --------------------------------------------------------------------------------

// Translates stdin (one sentence per line) with the kept parameters of --checkpoint.
bool MtTask::command(Driver& drv) {
    if (!translate) return false;
    shared.train.configure_compute();
    SYNTH_CHECK(!checkpoint.empty(), "--translate needs --checkpoint=FILE");
    validate_decoding();
    LoadedModel m;
    drv.load_model(m, checkpoint);
    // Standard input gets the checks training data gets (no NUL byte, valid UTF-8).
    std::vector<std::vector<int32_t>> srcs;
    for (const std::string& line : split_lines(read_fd_text(0, "standard input"))) {
        srcs.push_back(encode_ids(*d.bpe, line));
        srcs.back().push_back(Bpe::kEos);
    }
    Seq2Seq& net = static_cast<MtModel&>(*m.model).net;
    std::string out;
    for (const std::string& h : detokenise(*d.bpe, synth::translate(net, srcs, decode_options()))) out += h + "\n";
    write_all(stdout, out, "standard output");  // a lost output is an error, not exit 0
    return true;
}

SYNTH_REGISTER_TASK(mt, MtTask);

}  // namespace
}  // namespace synth

// mt: train and evaluate Synthesizer variants as encoder-decoder translation models.
//
//   build/mt --data=multi30k --preset=quick                  # the default sweep, a few minutes
//   build/mt --data=multi30k --variants=V,R --preset=full    # the documented run
//   build/mt --translate --checkpoint=checkpoints/mt-V.ckpt < sentences.en > sentences.de
//
// The joint BPE is learned once per process, deterministically, on the training source and
// target lines. Then, per variant: train with the same seed and batch order, keep the
// parameters of the best validation loss, save them with the config and the BPE to
// checkpoints/, decode the validation and test sets with beam search, and score the
// detokenised output with sacreBLEU-exact BLEU and chrF against the raw reference lines.
// Results are merged by variant into results/mt-<data>-<preset>.{csv,md}, so a sweep can be
// split across processes; hypotheses go to results/mt-hyps/<preset>/<variant>.<set>.<tgt>.
// Checkpoints are checkpoints/mt-<variant>.ckpt for the full preset and
// checkpoints/mt-<preset>-<variant>.ckpt otherwise.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include "autograd.h"
#include "beam.h"
#include "blas.h"
#include "bleu.h"
#include "bpe.h"
#include "checkpoint.h"
#include "cli.h"
#include "common.h"
#include "data.h"
#include "flags.h"
#include "io.h"
#include "optim.h"
#include "report.h"
#include "rng.h"
#include "seq2seq.h"

namespace synth {
namespace {

struct Options {
    std::string data = "multi30k", src = "en", tgt = "de", variants = "V,R,Rfix,D,FR,FD,R+V,D+V,R+D";
    std::string preset = "quick", valid_set = "val", test_sets = "test2016,test2017_flickr,test2017_mscoco";
    std::string results_dir = "results", checkpoint_dir = "checkpoints", positions = "learned", r_init = "normal", tag;
    std::string init = "glorot";
    std::string checkpoint, resume;
    int seed = 1337, threads = 2, d_model = 128, layers = 3, enc_layers = 0, dec_layers = 0, heads = 4, d_ff = 512;
    int max_len = 64, bpe_vocab = 8000, batch_tokens = 4096, steps = 0, warmup = 1000, eval_every = 0, log_every = 50;
    int fr_rank = 8, fd_a = 0, beam = 5, max_extra = 50, decode_batch = 32, decode_limit = 0, save_every = 0;
    float epochs = 8, lr = 1e-3f, weight_decay = 0.01f, clip = 1.0f, dropout = 0.1f, attn_dropout = 0.0f;
    float label_smoothing = 0.1f, len_penalty = 0.6f;
    bool share_embeddings = true, share_w2 = false, translate = false;
};

// Presets set the defaults of flags the user did not give.
void apply_preset(Options& o, Flags& f) {
    std::map<std::string, std::string> p;
    if (o.preset == "quick")
        // A tiny model and a few hundred steps: checks the whole pipeline end to end (BLEU is
        // low); beam 2 on the first 100 sentences of each set keeps evaluation short.
        p = {{"d-model", "64"},      {"layers", "1"},    {"heads", "4"},       {"d-ff", "128"},
             {"steps", "150"},       {"warmup", "50"},   {"lr", "3e-3"},       {"batch-tokens", "1024"},
             {"bpe-vocab", "2000"},  {"dropout", "0.0"}, {"beam", "2"},        {"decode-limit", "100"},
             {"eval-every", "75"}};
    else if (o.preset == "full")
        // One thread per process (a sweep runs as two processes on the 2-core machine) trains
        // ~4,700 target tokens/s, under 2 minutes per epoch of Multi30k: one variant's 8 epochs
        // take 15-20 minutes of one core, the 9 default variants about 2.6 core-hours. V
        // reaches 29.4 BLEU on test2016 after 6 epochs (validation NLL still falling by 0.1
        // per epoch), hence 8. Validation NLL of V after 600 steps (`--variants=V --steps=600
        // --threads=1`): 3.52 with --init=glorot (the default), 4.15 with --init=normal.
        // With --init=normal and the build of commit 41a9821: small batches (many updates per
        // epoch) learned clearly faster per token than 2,048-token batches at equal speed (4.72
        // vs 5.00 after 0.55 epochs), and the peak learning rate hardly mattered between 3e-3
        // and 6e-3 (4.718 vs 4.724 at step 300; 1e-3 gave 5.04). A 4,000-token joint BPE
        // halves the output layer's cost against 8,000 (small vocabularies also suit a
        // 29k-pair corpus).
        p = {{"d-model", "128"},     {"layers", "3"},    {"heads", "4"},       {"d-ff", "512"},
             {"epochs", "8"},        {"warmup", "300"},  {"lr", "3e-3"},       {"batch-tokens", "1024"},
             {"bpe-vocab", "4000"},  {"dropout", "0.1"}, {"beam", "5"},        {"decode-limit", "0"},
             {"eval-every", "0"}};
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
    SYNTH_CHECK(!out.empty(), "empty list");
    return out;
}

Seq2SeqConfig model_config(const Options& o, const std::string& variant, int vocab) {
    Seq2SeqConfig c;
    c.vocab = vocab;
    c.enc_layers = o.enc_layers > 0 ? o.enc_layers : o.layers;
    c.dec_layers = o.dec_layers > 0 ? o.dec_layers : o.layers;
    c.d_ff = o.d_ff;
    c.dropout = o.dropout;
    c.share_embeddings = o.share_embeddings;
    c.positions = o.positions;
    c.init = o.init;
    c.pad = Bpe::kPad;
    c.attn.d_model = o.d_model;
    c.attn.heads = o.heads;
    c.attn.max_len = o.max_len;
    c.attn.variant = variant;
    c.attn.share_w2 = o.share_w2;
    c.attn.fr_rank = o.fr_rank;
    c.attn.fd_a = o.fd_a;
    c.attn.r_init = o.r_init;
    c.attn.attn_dropout = o.attn_dropout;
    return c;
}

// The model's config as the checkpoint's "key=value" lines: everything --translate needs to
// rebuild the network (the BPE travels in the tokenizer section).
std::string config_text(const Seq2SeqConfig& c, const Options& o) {
    std::ostringstream os;
    os << "model=seq2seq\nvariant=" << c.attn.variant << "\nvocab=" << c.vocab << "\nenc-layers=" << c.enc_layers
       << "\ndec-layers=" << c.dec_layers << "\nd-model=" << c.attn.d_model << "\nheads=" << c.attn.heads
       << "\nd-ff=" << c.d_ff << "\nmax-len=" << c.attn.max_len << "\nshare-embeddings=" << (c.share_embeddings ? 1 : 0)
       << "\npositions=" << c.positions << "\ninit=" << c.init << "\nshare-w2=" << (c.attn.share_w2 ? 1 : 0) << "\nfr-rank=" << c.attn.fr_rank
       << "\nfd-a=" << c.attn.fd_a << "\nr-init=" << c.attn.r_init << "\nsrc=" << o.src << "\ntgt=" << o.tgt
       << "\nseed=" << o.seed << "\n";
    return os.str();
}

Seq2SeqConfig config_from_checkpoint(const Checkpoint& ck) {
    SYNTH_CHECK(ck.config_value("model") == "seq2seq", "the checkpoint holds a '", ck.config_value("model"),
                "' model, not a translation model");
    auto num = [&](const char* key) {
        const std::string v = ck.config_value(key);
        try {
            size_t used = 0;
            int x = std::stoi(v, &used);
            if (used == v.size()) return x;
        } catch (const std::exception&) {
        }
        fail("checkpoint config: ", key, "='", v, "' is not an integer");
    };
    Seq2SeqConfig c;
    c.vocab = num("vocab");
    c.enc_layers = num("enc-layers");
    c.dec_layers = num("dec-layers");
    c.d_ff = num("d-ff");
    c.dropout = 0.0f;
    c.share_embeddings = num("share-embeddings") != 0;
    c.positions = ck.config_value("positions");
    c.init = ck.config_value("init");
    c.pad = Bpe::kPad;
    c.attn.d_model = num("d-model");
    c.attn.heads = num("heads");
    c.attn.max_len = num("max-len");
    c.attn.variant = ck.config_value("variant");
    c.attn.share_w2 = num("share-w2") != 0;
    c.attn.fr_rank = num("fr-rank");
    c.attn.fd_a = num("fd-a");
    c.attn.r_init = ck.config_value("r-init");
    return c;
}

void validate(const Options& o) {
    require_positive({{"d-model", o.d_model}, {"layers", o.layers}, {"heads", o.heads}, {"d-ff", o.d_ff},
                      {"max-len", o.max_len}, {"batch-tokens", o.batch_tokens}, {"epochs", o.epochs},
                      {"log-every", o.log_every}, {"lr", o.lr}, {"beam", o.beam}, {"decode-batch", o.decode_batch},
                      {"fr-rank", o.fr_rank}, {"bpe-vocab", o.bpe_vocab}});
    require_non_negative({{"enc-layers", o.enc_layers}, {"dec-layers", o.dec_layers}, {"steps", o.steps},
                          {"warmup", o.warmup}, {"eval-every", o.eval_every}, {"save-every", o.save_every},
                          {"clip", o.clip}, {"weight-decay", o.weight_decay}, {"decode-limit", o.decode_limit},
                          {"max-extra", o.max_extra}, {"len-penalty", o.len_penalty}, {"fd-a", o.fd_a}});
    require_fraction({{"dropout", o.dropout}, {"attn-dropout", o.attn_dropout}, {"label-smoothing", o.label_smoothing}});
    SYNTH_CHECK(o.d_model % o.heads == 0, "--heads=", o.heads, " must divide --d-model=", o.d_model);
    SYNTH_CHECK(o.threads >= 1 && o.threads <= 256, "--threads=", o.threads, " must be in [1, 256]");
    SYNTH_CHECK(o.fd_a == 0 || o.max_len % o.fd_a == 0, "--fd-a=", o.fd_a, " must divide --max-len=", o.max_len);
    SYNTH_CHECK(o.positions == "learned" || o.positions == "sinusoidal", "--positions must be learned or sinusoidal");
    SYNTH_CHECK(o.init == "glorot" || o.init == "normal", "--init must be glorot or normal, got '", o.init, "'");
    for (const std::string& v : split_list(o.variants)) parse_variant(v);
    split_list(o.test_sets);
}

// ---- data ------------------------------------------------------------------------------

struct Split {
    std::string name;
    ParallelCorpus text;           // raw lines: the references BLEU compares against
    std::vector<TokenPair> pairs;  // tokenized
};

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
    Ctx ctx;
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
    double val_loss = 0, train_s = 0, tok_s = 0, decode_sent_s = 0;
    int steps = 0;
    double epochs = 0;
    std::map<std::string, SetScore> scores;  // by set name
};

// What a run saves with its checkpoints and where it resumes from (--save-every, --resume).
struct CheckpointPlan {
    std::string flags;               // the resolved flags (Flags::dump())
    const Checkpoint* resume = nullptr;
};

// The checkpoints of a variant are <base>.ckpt (the kept parameters, for --translate) and, with
// --save-every N, <base>-step<N>.ckpt (the training state) beside <base>-step<N>.best.ckpt
// (the parameters with the best validation loss so far, which training must also carry on).
std::string checkpoint_base(const Options& o, const std::string& variant) {
    return o.checkpoint_dir + "/mt-" + (o.preset == "full" ? "" : o.preset + "-") + variant +
           (o.tag.empty() ? "" : "-" + o.tag);
}

std::string best_companion(const std::string& path) {
    const std::string ext = ".ckpt";
    const bool has_ext = path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
    return (has_ext ? path.substr(0, path.size() - ext.size()) : path) + ".best.ckpt";
}

// A checkpoint of `values` (a flat copy of the store's data) with the store's table.
Checkpoint capture_values(const ParamStore& store, const std::vector<float>& values) {
    Checkpoint ck = capture(store, nullptr);
    for (size_t i = 0; i < ck.params.size(); ++i) {
        const Param& p = store.params()[i];
        std::copy(values.begin() + p.offset, values.begin() + p.offset + (int64_t)ck.params[i].values.size(),
                  ck.params[i].values.begin());
    }
    return ck;
}

// Trains on train_pairs, selects by the loss on val_pairs, then decodes and scores every split
// of `decode_sets` (the validation set first). The batch order, learning rate and dropout masks
// are functions of (seed, step), so the model,
// the AdamW state, the step and the best parameters so far are all a resumed run needs to
// continue exactly as the uninterrupted one would.
VariantResult run_variant(const Options& o, const std::string& variant, const Bpe& bpe,
                          const std::vector<TokenPair>& train_pairs, const std::vector<TokenPair>& val_pairs,
                          const std::vector<Split>& decode_sets, const std::string& hyp_dir, const CheckpointPlan& plan) {
    const double t_start = now_s();
    ParamStore store;
    const Seq2SeqConfig cfg = model_config(o, variant, bpe.vocab_size());
    Seq2Seq model(store, cfg);
    store.finalize(o.seed);
    AdamWConfig ac;  // beta2 0.98, eps 1e-9 (Vaswani et al.)
    ac.weight_decay = o.weight_decay;
    AdamW opt(store, ac);
    std::fprintf(stderr, "[%s] %lld trainable parameters\n", variant.c_str(), (long long)store.trainable_count());

    const std::vector<std::vector<int>> batches = token_batches(train_pairs, o.batch_tokens);
    const std::vector<std::vector<int>> val_batches = token_batches(val_pairs, o.batch_tokens);
    const int per_epoch = (int)batches.size();
    const int total = o.steps > 0 ? o.steps : (int)std::lround(o.epochs * per_epoch);
    const int eval_every = o.eval_every > 0 ? o.eval_every : per_epoch;

    std::vector<float> best(store.data(), store.data() + store.size());
    double best_val = INFINITY, window_loss = 0, compute_s = 0, prev_train_s = 0;
    int64_t tgt_tokens = 0;
    int window = 0, best_step = 0, start = 0;
    std::string last_checkpoint;
    if (plan.resume) {
        const Checkpoint& ck = *plan.resume;
        SYNTH_CHECK(ck.step <= total, "checkpoint ", o.resume, " is at step ", ck.step, ", past the ", total,
                    " steps of this run");
        best_step = (int)ck.config_number("best-step");
        if (best_step > 0) {
            // Restored through the store, which checks every name and shape.
            const std::string best_path = best_companion(o.resume);
            const Checkpoint b = load_checkpoint(best_path);
            SYNTH_CHECK(b.step == best_step && b.best_val == ck.best_val, "checkpoint ", best_path, " holds step ", b.step,
                        ", not the best parameters (step ", best_step, ") that ", o.resume, " expects beside it");
            restore(b, store, nullptr);
            std::copy(store.data(), store.data() + store.size(), best.begin());
        }
        restore(ck, store, &opt);
        start = (int)ck.step;
        best_val = ck.best_val;
        compute_s = ck.config_number("compute-seconds");
        tgt_tokens = (int64_t)ck.config_number("target-tokens");
        prev_train_s = ck.config_number("train-seconds");
        last_checkpoint = o.resume;
        std::fprintf(stderr, "[%s] resumed from %s at step %d (best validation loss so far %s)\n", variant.c_str(),
                     o.resume.c_str(), start, fmt(best_val, 4).c_str());
    }
    std::vector<int> order;
    for (int step = start; step < total; ++step) {
        if (step % per_epoch == 0 || step == start) {
            // A new epoch: the same length buckets, in a new seeded order.
            order.resize(per_epoch);
            for (int i = 0; i < per_epoch; ++i) order[i] = i;
            Rng rng(splitmix64((uint64_t)o.seed) ^ (uint64_t)(step / per_epoch));  // (seed, epoch) fix the order
            for (int i = per_epoch - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
        }
        const MtBatch b = make_batch(train_pairs, batches[order[step % per_epoch]], Bpe::kPad, Bpe::kBos, Bpe::kEos);
        const float lr = lr_at("rsqrt", step, o.warmup, total, o.lr, 0.0f);
        const double t0 = now_s();
        scratch().reset();
        store.zero_grad();
        Ctx ctx{true, (uint64_t)o.seed, (uint64_t)step, 0};
        EncoderMemory mem = model.memory(model.encode(b.src, b.B, b.S, ctx), b.src);
        Tensor loss = cross_entropy(model.decode(b.tgt_in, b.B, b.T, mem, ctx), b.tgt_out, Bpe::kPad, o.label_smoothing);
        backward(loss);
        clip_grad_norm(store, o.clip);
        opt.step(lr);
        compute_s += now_s() - t0;
        tgt_tokens += b.tgt_tokens;
        SYNTH_CHECK(std::isfinite(loss.data[0]), "[", variant, "] the training loss became ", loss.data[0], " at step ",
                    step + 1, " of ", total, " (lower --lr or raise --warmup); no results were written for this variant; ",
                    last_checkpoint.empty() ? "no checkpoint was saved (see --save-every)"
                                            : "the last good checkpoint is " + last_checkpoint +
                                                  " (continue from it with --resume=" + last_checkpoint + ")");
        window_loss += loss.data[0];
        ++window;
        const bool eval_now = (step + 1) % eval_every == 0 || step + 1 == total;
        std::string val_field;
        if (eval_now) {
            const double v = evaluate(model, val_pairs, val_batches);
            val_field = "val " + fmt(v, 4) + (v < best_val ? " (best) " : " ");
            if (v < best_val) {
                best_val = v;
                best_step = step + 1;
                std::copy(store.data(), store.data() + store.size(), best.begin());
            }
        }
        if (o.save_every > 0 && (step + 1) % o.save_every == 0) {
            const std::string path = checkpoint_base(o, variant) + "-step" + std::to_string(step + 1) + ".ckpt";
            if (best_step > 0) {  // first, so that a complete training checkpoint always has its companion
                Checkpoint b = capture_values(store, best);
                b.step = best_step;
                b.best_val = best_val;
                save_checkpoint(best_companion(path), b);
            }
            Checkpoint ck = capture(store, &opt);
            ck.config = plan.flags + "variant=" + variant + "\nbest-step=" + std::to_string(best_step) +
                        "\ncompute-seconds=" + fmt(compute_s, 3) + "\ntarget-tokens=" + std::to_string(tgt_tokens) +
                        "\ntrain-seconds=" + fmt(prev_train_s + now_s() - t_start, 3) + "\n";
            ck.tokenizer = bpe.serialize();
            ck.step = step + 1;
            ck.best_val = best_val;
            save_checkpoint(path, ck);
            last_checkpoint = path;
        }
        if ((step + 1) % o.log_every == 0 || eval_now) {
            const double eta = (now_s() - t_start) / (step + 1 - start) * (total - step - 1);
            std::fprintf(stderr, "[%s] step %d/%d  epoch %.2f  loss %.4f  %slr %.2e  %.0f tgt tok/s  ETA %s\n",
                         variant.c_str(), step + 1, total, (double)(step + 1) / per_epoch, window_loss / window,
                         val_field.c_str(), lr, tgt_tokens / compute_s, hms(eta).c_str());
            window_loss = 0;
            window = 0;
        }
    }
    VariantResult r;
    r.params = store.trainable_count();
    r.val_loss = best_val;
    r.steps = total;
    r.epochs = (double)total / per_epoch;
    r.train_s = prev_train_s + now_s() - t_start;
    r.tok_s = tgt_tokens / compute_s;
    std::copy(best.begin(), best.end(), store.data());
    std::fprintf(stderr, "[%s] kept the parameters of step %d (val loss %.4f); training took %s\n", variant.c_str(),
                 best_step, best_val, hms(r.train_s).c_str());

    Checkpoint ck = capture(store, nullptr);
    ck.config = config_text(cfg, o);
    ck.tokenizer = bpe.serialize();
    ck.step = best_step;
    ck.best_val = best_val;
    const std::string ck_path = checkpoint_base(o, variant) + ".ckpt";
    save_checkpoint(ck_path, ck);
    std::fprintf(stderr, "[%s] saved %s\n", variant.c_str(), ck_path.c_str());

    const DecodeOptions dopt = decode_options(o);
    double decode_s = 0;
    int64_t decoded = 0;
    for (const Split* s = decode_sets.data(); s != decode_sets.data() + decode_sets.size(); ++s) {
        const size_t n = o.decode_limit > 0 ? std::min<size_t>(o.decode_limit, s->pairs.size()) : s->pairs.size();
        std::vector<std::vector<int32_t>> srcs;
        for (size_t i = 0; i < n; ++i) srcs.push_back(s->pairs[i].src);
        const double t0 = now_s();
        const std::vector<std::string> hyps = detokenise(bpe, translate(model, srcs, dopt));
        decode_s += now_s() - t0;
        decoded += (int64_t)n;
        const std::vector<std::string> refs(s->text.tgt.begin(), s->text.tgt.begin() + n);
        SetScore sc{corpus_bleu(hyps, refs).score, corpus_chrf(hyps, refs)};
        r.scores[s->name] = sc;
        std::string text;
        for (const std::string& h : hyps) text += h + "\n";
        write_file_atomic(hyp_dir + "/" + variant + "." + s->name + "." + o.tgt, text);
        std::fprintf(stderr, "[%s] %s: BLEU %.2f  chrF %.2f  (%zu sentences)\n", variant.c_str(), s->name.c_str(), sc.bleu,
                     sc.chrf, n);
    }
    r.decode_sent_s = decoded / decode_s;
    return r;
}

// ---- --translate ---------------------------------------------------------------------------

int translate_stdin(const Options& o) {
    SYNTH_CHECK(!o.checkpoint.empty(), "--translate needs --checkpoint=FILE");
    const Checkpoint ck = load_checkpoint(o.checkpoint);
    const Bpe bpe = Bpe::deserialize(ck.tokenizer);
    const Seq2SeqConfig cfg = config_from_checkpoint(ck);
    SYNTH_CHECK(cfg.vocab == bpe.vocab_size(), "checkpoint ", o.checkpoint, ": the model's vocabulary (", cfg.vocab,
                ") differs from its BPE's (", bpe.vocab_size(), ")");
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

std::string data_stem(const std::string& data) {
    std::string s = data;
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s.substr(s.find_last_of('/') + 1);
}

int run(int argc, char** argv) {
    Options o;
    Flags f("mt", "Train and evaluate Synthesizer variants as encoder-decoder Transformers for translation.");
    f.add("data", &o.data, "multi30k | DIR with <split>.<lang> files (one sentence per line)");
    f.add("src", &o.src, "source language suffix");
    f.add("tgt", &o.tgt, "target language suffix");
    f.add("valid-set", &o.valid_set, "validation split (model selection by its loss)");
    f.add("test-sets", &o.test_sets, "comma-separated test splits to decode and score");
    f.add("variants", &o.variants, "comma-separated self-attention variants: V, D, R, Rfix, FR, FD, mixtures like R+V");
    f.add("preset", &o.preset, "quick | full | none: defaults for the flags not given");
    f.add("seed", &o.seed, "seed of initialisation, batch order and dropout");
    f.add("threads", &o.threads, "threads for OpenMP and OpenBLAS");
    f.add("d-model", &o.d_model, "model width d");
    f.add("layers", &o.layers, "encoder and decoder layers");
    f.add("enc-layers", &o.enc_layers, "encoder layers (0 = --layers)");
    f.add("dec-layers", &o.dec_layers, "decoder layers (0 = --layers)");
    f.add("heads", &o.heads, "attention heads H");
    f.add("d-ff", &o.d_ff, "feed-forward width");
    f.add("max-len", &o.max_len, "maximum sentence length L in BPE tokens (synthesizers and positions are sized by it)");
    f.add("positions", &o.positions, "learned | sinusoidal position embeddings");
    f.add("init", &o.init,
          "glorot (Vaswani et al.: Glorot-uniform matrices, unit-scale embeddings and positions) | normal "
          "(N(0, 0.02) everywhere, GPT-2)");
    f.add("share-embeddings", &o.share_embeddings, "one embedding table for source and target (joint BPE)");
    f.add("bpe-vocab", &o.bpe_vocab, "joint BPE vocabulary size, learned on the training source + target");
    f.add("batch-tokens", &o.batch_tokens, "padded tokens per batch, B * max(S, T)");
    f.add("epochs", &o.epochs, "training epochs (when --steps is 0)");
    f.add("steps", &o.steps, "training steps (0 = use --epochs)");
    f.add("lr", &o.lr, "peak learning rate (reached at the end of warm-up, then ~ 1/sqrt(step))");
    f.add("warmup", &o.warmup, "linear warm-up steps of the inverse-square-root schedule");
    f.add("weight-decay", &o.weight_decay, "AdamW weight decay (matrices only)");
    f.add("clip", &o.clip, "global gradient-norm clip (0 = off)");
    f.add("dropout", &o.dropout, "embedding and residual dropout");
    f.add("attn-dropout", &o.attn_dropout, "dropout on attention probabilities");
    f.add("label-smoothing", &o.label_smoothing, "label smoothing of the training loss");
    f.add("eval-every", &o.eval_every, "steps between validation-loss evaluations (0 = once per epoch)");
    f.add("log-every", &o.log_every, "steps between progress lines");
    f.add("fr-rank", &o.fr_rank, "FR: rank k of R1 R2^T");
    f.add("fd-a", &o.fd_a, "FD: a (0 = divisor of L nearest sqrt(L))");
    f.add("share-w2", &o.share_w2, "D: share W2 across heads (as mesh-tensorflow)");
    f.add("r-init", &o.r_init, "R/FR initialisation: normal (N(0, 0.02)) or glorot");
    f.add("beam", &o.beam, "beam size (1 = greedy)");
    f.add("len-penalty", &o.len_penalty, "alpha of the GNMT length penalty ((5 + len) / 6)^alpha");
    f.add("max-extra", &o.max_extra, "outputs have at most source length + this many tokens (and at most L)");
    f.add("decode-batch", &o.decode_batch, "sentences decoded together");
    f.add("decode-limit", &o.decode_limit, "decode only the first N sentences of each set (0 = all)");
    f.add("results-dir", &o.results_dir, "where the CSV and Markdown results and hypotheses go");
    f.add("checkpoint-dir", &o.checkpoint_dir, "where the best parameters of each variant (and --save-every) are saved");
    f.add("save-every", &o.save_every, "save a resumable checkpoint every N steps (0 = never)");
    f.add("resume", &o.resume, "continue training one variant from this --save-every checkpoint (same model flags)");
    f.add("tag", &o.tag, "suffix for result and checkpoint names");
    f.add("translate", &o.translate, "translate stdin to stdout with --checkpoint (one sentence per line)");
    f.add("checkpoint", &o.checkpoint, "--translate: the checkpoint to load");
    if (!f.parse(argc, argv)) return 0;
    SYNTH_CHECK(f.positional().empty(), "unexpected argument '", f.positional()[0], "' (flags are --key=value)");
    if (o.translate) {
        require_positive({{"beam", o.beam}, {"decode-batch", o.decode_batch}});
        set_threads(o.threads);
        return translate_stdin(o);
    }
    apply_preset(o, f);
    validate(o);
    set_threads(o.threads);

    // Fail in the first second, not after an hour: unwritable directories or missing data.
    const std::string stem_name = "mt-" + (o.data == "multi30k" ? std::string("multi30k") : data_stem(o.data)) + "-" +
                                  o.preset + (o.tag.empty() ? "" : "-" + o.tag);
    const std::string stem = o.results_dir + "/" + stem_name;
    const std::string hyp_dir = o.results_dir + "/mt-hyps/" + o.preset + (o.tag.empty() ? "" : "-" + o.tag);
    ensure_writable_dir(o.results_dir);
    ensure_writable_dir(hyp_dir);
    ensure_writable_dir(o.checkpoint_dir);
    const std::string dir = o.data == "multi30k" ? data_dir("multi30k_en_de") : o.data;
    Checkpoint resume;
    if (!o.resume.empty()) {
        resume = load_checkpoint(o.resume);
        check_resume(resume, o.resume, split_list(o.variants), f.dump(),
                     {"d-model", "layers", "enc-layers", "dec-layers", "heads", "d-ff", "max-len", "positions", "init",
                      "share-embeddings", "bpe-vocab", "fr-rank", "fd-a", "share-w2", "r-init", "src", "tgt"},
                     // Not --epochs or --steps: the inverse-square-root schedule and the batch order
                     // depend only on the step, so a finished run resumed with more epochs is
                     // exactly the longer run (how the full preset's 8 epochs extend 6).
                     {"data", "seed", "threads", "batch-tokens", "lr", "warmup", "weight-decay", "clip", "dropout",
                      "attn-dropout", "label-smoothing", "eval-every"});
    }
    const ParallelCorpus raw_train = load_parallel(dir, "train", o.src, o.tgt);

    double t0 = now_s();
    std::vector<std::string> lines = raw_train.src;
    lines.insert(lines.end(), raw_train.tgt.begin(), raw_train.tgt.end());
    const Bpe bpe = Bpe::learn(lines, o.bpe_vocab);
    std::fprintf(stderr, "mt: joint BPE of %d tokens (%d merges) learned in %.1f s\n", bpe.vocab_size(), bpe.num_merges(),
                 now_s() - t0);
    SYNTH_CHECK(o.resume.empty() || resume.tokenizer == bpe.serialize(), "checkpoint ", o.resume,
                " has a different BPE from the one learned on --data=", o.data);

    const Split train = load_split(dir, "train", o, bpe);
    std::vector<Split> sets = {load_split(dir, o.valid_set, o, bpe)};  // the validation set, then the test sets
    for (const std::string& t : split_list(o.test_sets)) sets.push_back(load_split(dir, t, o, bpe));
    // Pairs longer than L cannot be represented: training (and the validation loss) skip them,
    // and the count of dropped training pairs is reported. Decoding keeps every sentence.
    auto fitting = [&](const std::vector<TokenPair>& pairs) {
        std::vector<TokenPair> kept;
        for (const TokenPair& p : pairs)
            if ((int)p.src.size() <= o.max_len && (int)p.tgt.size() + 1 <= o.max_len) kept.push_back(p);
        return kept;
    };
    const std::vector<TokenPair> train_pairs = fitting(train.pairs), val_pairs = fitting(sets[0].pairs);
    const size_t dropped = train.pairs.size() - train_pairs.size();
    SYNTH_CHECK(!train_pairs.empty() && !val_pairs.empty(), "no training or validation pair fits in --max-len=", o.max_len);
    int64_t src_tok = 0, tgt_tok = 0;
    for (const TokenPair& p : train_pairs) src_tok += p.src.size(), tgt_tok += p.tgt.size() + 1;
    std::fprintf(stderr,
                 "mt: %s %s->%s: %zu training pairs (%zu longer than L=%d dropped), %lld source / %lld target tokens; "
                 "%zu validation pairs; OpenBLAS kernel %s, %d threads\n",
                 o.data.c_str(), o.src.c_str(), o.tgt.c_str(), train_pairs.size(), dropped, o.max_len, (long long)src_tok,
                 (long long)tgt_tok, val_pairs.size(), blas_kernel_name().c_str(), o.threads);
    std::fprintf(stderr, "config:\n%s", f.dump().c_str());

    std::vector<std::string> test_names;
    for (size_t i = 1; i < sets.size(); ++i) test_names.push_back(sets[i].name);
    std::vector<std::string> cols = {"variant", "params", "val_loss", "val_bleu"};
    for (const std::string& t : test_names) cols.push_back(t + "_bleu");
    for (const std::string& t : test_names) cols.push_back(t + "_chrf");
    for (const char* c : {"steps", "epochs", "train_s", "train_tgt_tok_s", "decode_sent_s", "seed"}) cols.push_back(c);
    const Seq2SeqConfig shape = model_config(o, "V", bpe.vocab_size());
    for (const std::string& v : split_list(o.variants)) {
        VariantResult r = run_variant(o, v, bpe, train_pairs, val_pairs, sets, hyp_dir,
                                      {f.dump(), o.resume.empty() ? nullptr : &resume});
        std::vector<std::string> row = {v, std::to_string(r.params), fmt(r.val_loss, 4), fmt(r.scores[sets[0].name].bleu, 2)};
        for (const std::string& t : test_names) row.push_back(fmt(r.scores[t].bleu, 2));
        for (const std::string& t : test_names) row.push_back(fmt(r.scores[t].chrf, 2));
        for (const std::string& x : {std::to_string(r.steps), fmt(r.epochs, 2), fmt(r.train_s, 0), fmt(r.tok_s, 0),
                                     fmt(r.decode_sent_s, 1), std::to_string(o.seed)})
            row.push_back(x);
        // Several processes may sweep different variants into the same files: merge under a lock,
        // re-reading what the others wrote.
        FileLock lock(stem + ".lock");
        Table table = Table::load_or_empty(stem + ".csv", cols);
        table.upsert(row, "variant");
        std::ostringstream md;
        md << "# MT: " << o.data << " " << o.src << "->" << o.tgt << ", preset " << o.preset << "\n\n"
           << "Pre-LN encoder-decoder Transformer, d=" << o.d_model << ", layers=" << shape.enc_layers << "+"
           << shape.dec_layers << ", heads=" << o.heads << ", d_ff=" << o.d_ff
           << ", L=" << o.max_len << ", " << o.positions << " positions, " << o.init << " initialisation, "
           << (o.share_embeddings ? "shared" : "separate") << " source/target embeddings (tied output), joint BPE "
           << bpe.vocab_size() << ". Synthesizer variants replace encoder and decoder self-attention; cross-attention "
           << "is dot product. Training: " << o.batch_tokens << " padded tokens per batch, "
           << (o.steps > 0 ? std::to_string(o.steps) + " steps" : fmt(o.epochs, 1) + " epochs") << ", AdamW lr " << o.lr
           << " (inverse square root, " << o.warmup << " warm-up steps), label smoothing " << o.label_smoothing
           << ", dropout " << o.dropout << ", seed " << o.seed << ", " << o.threads << " threads; " << dropped
           << " training pairs longer than L dropped. The parameters with the best validation loss are kept.\n"
           << "Decoding: " << (o.beam == 1 ? std::string("greedy") : "beam " + std::to_string(o.beam))
           << ", GNMT length penalty alpha=" << o.len_penalty << ", at most min(L, source length + " << o.max_extra
           << ") tokens" << (o.decode_limit > 0 ? ", first " + std::to_string(o.decode_limit) + " sentences of each set" : "")
           << ". BLEU and chrF are sacreBLEU-exact (" << kBleuSignature << "; chrF2 " << kChrfSignature
           << ") on detokenised output against the raw references.\n"
           << "val_loss is the NLL in nats per target token (no smoothing); train_s is the wall time of training "
           << "including validation; decode_sent_s counts every decoded sentence.\n"
           << "Produced by `build/mt --data=" << o.data << " --preset=" << o.preset << "`.\n\n"
           << table.to_markdown();
        write_file_atomic(stem + ".csv", table.to_csv());
        write_file_atomic(stem + ".md", md.str());
    }
    std::printf("%s", read_file(stem + ".md").c_str());
    return 0;
}

}  // namespace
}  // namespace synth

int main(int argc, char** argv) { return synth::cli_main(argc, argv, synth::run); }

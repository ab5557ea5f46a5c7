#include "models/beam.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "engine/autograd.h"
#include "base/error.h"

namespace synth {

double length_penalty(int len, double alpha) { return std::pow((5.0 + len) / 6.0, alpha); }

Tensor gather_rows(const Tensor& x, const std::vector<int>& rows, std::vector<float>& storage) {
    SYNTH_CHECK(x.ndim >= 1 && x.data, "gather_rows: empty tensor");
    const int B = x.dim(0);
    const int64_t row = x.numel() / B;
    std::vector<float> out((size_t)rows.size() * row);  // fresh: x may live in `storage` itself
    for (size_t i = 0; i < rows.size(); ++i) {
        SYNTH_CHECK(rows[i] >= 0 && rows[i] < B, "gather_rows: row ", rows[i], " of a batch of ", B);
        std::memcpy(out.data() + i * row, x.data + rows[i] * row, row * sizeof(float));
    }
    storage.swap(out);
    Tensor y = x;
    y.grad = nullptr;
    y.dims[0] = (int)rows.size();
    y.data = storage.data();
    return y;
}

namespace {

// The decoder state of a batch of hypotheses, kept outside the scratch arena between steps.
// Keeping it in the arena instead would pile up every step's grown caches until the batch
// ends: O(rows * T^2 * d) floats per layer rather than O(rows * T * d).
class DecodeState {
public:
    // Encodes the sources (one batch, padded) and leaves one row per sentence.
    DecodeState(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs) : model_(model) {
        const int B = (int)srcs.size(), pad = model.config().pad;
        int S = 0;
        for (const auto& s : srcs) S = std::max(S, (int)s.size());
        std::vector<int32_t> ids((size_t)B * S, pad);
        for (int i = 0; i < B; ++i) std::copy(srcs[i].begin(), srcs[i].end(), ids.begin() + (size_t)i * S);
        scratch().reset();
        StepContext ctx;
        mem_ = model.memory(model.encode(ids, B, S, ctx), ids);
        caches_.resize(model.config().dec_layers);
        origin_.resize(B);
        std::iota(origin_.begin(), origin_.end(), 0);
    }

    // Makes rows[i] the new row i (beam reordering, expanding sentences to beams, dropping
    // finished sentences), then feeds token tokens[i] to row i. Returns logits (rows, V),
    // valid until the next step.
    Tensor step(const std::vector<int>& rows, const std::vector<int32_t>& tokens) {
        select(rows);
        scratch().reset();
        StepContext ctx;
        return model_.decode(tokens, (int)rows.size(), 1, mem_, ctx, &caches_);
    }

private:
    void select(const std::vector<int>& rows) {
        std::vector<int> origin(rows.size());
        for (size_t i = 0; i < rows.size(); ++i) origin[i] = origin_.at(rows[i]);
        // Reordering beams within their sentences leaves every row's encoder memory as it was:
        // then only the caches move, not the (larger) memory.
        const bool same_memory = origin == origin_ && mem_buf_.size() == 2 * mem_.kv.size();
        std::vector<std::vector<float>> bufs, mem_bufs;
        auto keep = [&](Tensor& t, std::vector<std::vector<float>>& into) {
            if (!t.data) return;  // a source without cached keys (R, D, ...) or an empty cache
            into.emplace_back();
            t = gather_rows(t, rows, into.back());  // moving a vector keeps its data pointer
        };
        if (!same_memory) {
            for (auto& kv : mem_.kv) {
                keep(kv.first, mem_bufs);
                keep(kv.second, mem_bufs);
            }
            std::vector<uint8_t> pad(rows.size() * mem_.len);
            for (size_t i = 0; i < rows.size(); ++i)
                std::memcpy(pad.data() + i * mem_.len, mem_.pad.data() + (size_t)rows[i] * mem_.len, mem_.len);
            mem_.pad.swap(pad);
            mem_.batch = (int)rows.size();
            mem_buf_.swap(mem_bufs);
        }
        for (MixerCache& c : caches_) {
            keep(c.values, bufs);
            for (Tensor& k : c.keys) keep(k, bufs);
        }
        bufs_.swap(bufs);  // the previous buffers are released only now, after every copy
        origin_.swap(origin);
    }

    Seq2Seq& model_;
    EncoderMemory mem_;
    std::vector<MixerCache> caches_;
    std::vector<int> origin_;                  // the sentence (encoder row) of every row
    std::vector<std::vector<float>> mem_buf_;  // storage of mem_.kv
    std::vector<std::vector<float>> bufs_;     // storage of caches_
};

// Every source id must be a row of the embedding table, and a source must fit the model.
void check_sources(const Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs) {
    const int L = model.config().attn.max_len, V = model.config().vocab;
    for (size_t i = 0; i < srcs.size(); ++i) {
        SYNTH_CHECK(!srcs[i].empty(), "sentence ", i + 1, ": empty source (it needs at least <eos>)");
        SYNTH_CHECK((int64_t)srcs[i].size() <= L, "sentence ", i + 1, ": the source has ", srcs[i].size(),
                    " tokens (with <eos>), more than the model's maximum length L=", L, " (the ",
                    model.config().attn.variant, " model's positions and attention are sized by L)");
        for (int32_t id : srcs[i])
            SYNTH_CHECK(id >= 0 && id < V, "sentence ", i + 1, ": token id ", id, " is outside the model's vocabulary of ",
                        V, " ids");
    }
}

// Every decoding setting against what it indexes: <bos> and <eos> are ids of the vocabulary,
// a beam is at most the vocabulary (its 2K candidates per beam are distinct tokens).
void check_options(const Seq2Seq& model, const DecodeOptions& opt) {
    const int V = model.config().vocab;
    SYNTH_CHECK(opt.beam >= 1, "beam size must be positive, got ", opt.beam);
    SYNTH_CHECK(opt.beam <= V, "beam size ", opt.beam, " is larger than the vocabulary (", V, " tokens)");
    SYNTH_CHECK(opt.bos >= 0 && opt.bos < V, "<bos> id ", opt.bos, " is outside the vocabulary of ", V, " ids");
    SYNTH_CHECK(opt.eos >= 0 && opt.eos < V, "<eos> id ", opt.eos, " is outside the vocabulary of ", V, " ids");
    SYNTH_CHECK(std::isfinite(opt.len_penalty), "length penalty must be a finite number, got ", opt.len_penalty);
    SYNTH_CHECK(opt.batch_sentences >= 1, "sentences per decoding batch must be positive, got ", opt.batch_sentences);
}

// Output tokens (with <eos>) at most: min(L, source length + max_extra), and at least 1, in
// 64 bits so that a huge max_extra cannot overflow.
int max_output(const Seq2Seq& model, const std::vector<int32_t>& src, const DecodeOptions& opt) {
    const int64_t cap = std::min<int64_t>(model.config().attn.max_len, (int64_t)src.size() + opt.max_extra);
    return (int)std::max<int64_t>(1, cap);
}

// The rows of the next decoding step: the sentences still live, and per sentence K rows, each
// the earlier row it continues and the token it feeds.
struct Frontier {
    std::vector<int> live, rows;
    std::vector<int32_t> tokens;
    void push(int row, int32_t tok) {
        rows.push_back(row);
        tokens.push_back(tok);
    }
};

// The loop greedy and beam decoding share: encode the sources, then step every live row and
// let advance(sentence, logits of its K rows, its first row, next) push the sentence's K rows
// of the next step and return true, or return false when the sentence is done.
template <class Advance>
void decode_loop(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs, int K, int32_t bos, Advance advance) {
    const int n = (int)srcs.size(), V = model.config().vocab;
    if (n == 0) return;
    DecodeState state(model, srcs);
    Frontier cur;
    for (int i = 0; i < n; ++i) {
        cur.live.push_back(i);
        for (int k = 0; k < K; ++k) cur.push(i, bos);  // first step: sentence i's encoder row, K times
    }
    while (!cur.live.empty()) {
        const Tensor logits = state.step(cur.rows, cur.tokens);  // (live * K, V)
        SYNTH_CHECK((int64_t)logits.numel() == (int64_t)cur.live.size() * K * V, "decoding: logits of ",
                    logits.numel(), " values for ", cur.live.size(), " sentences of ", K, " rows and V=", V);
        Frontier next;
        for (size_t s = 0; s < cur.live.size(); ++s) {
            const size_t before = next.rows.size();
            if (advance(cur.live[s], logits.data + (int64_t)s * K * V, (int)s * K, next)) {
                SYNTH_CHECK(next.rows.size() == before + (size_t)K, "decoding: a sentence kept ",
                            next.rows.size() - before, " rows, not K=", K);
                next.live.push_back(cur.live[s]);
            } else {
                next.rows.resize(before);
                next.tokens.resize(before);
            }
        }
        cur = std::move(next);
    }
}

struct Hyp {
    std::vector<int32_t> tokens;
    double score;  // summed log-probability; -inf for a padding beam
};
struct Finished {
    std::vector<int32_t> tokens;
    double norm;  // score / lp(len)
};
struct Cand {
    double score;
    int beam;
    int32_t tok;
};
const double kNegInf = -std::numeric_limits<double>::infinity();

// Token ids of x[0..V) by descending value, at most `top`; ties go to the lower id.
void top_tokens(const float* x, int V, int top, std::vector<int32_t>& best) {
    best.clear();
    for (int v = 0; v < V; ++v) {
        if ((int)best.size() == top && x[v] <= x[best.back()]) continue;
        size_t pos = best.size();
        while (pos > 0 && x[v] > x[best[pos - 1]]) --pos;
        best.insert(best.begin() + pos, (int32_t)v);
        if ((int)best.size() > top) best.pop_back();
    }
}

double log_sum_exp(const float* x, int V) {
    const float mx = *std::max_element(x, x + V);
    double sum = 0.0;
    for (int v = 0; v < V; ++v) sum += std::exp(x[v] - mx);
    return mx + std::log(sum);
}

// Beam search's state for a batch of sentences (the rules are beam.h's).
class BeamSearch {
public:
    BeamSearch(const Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs, const DecodeOptions& opt)
        : model_(model), srcs_(srcs), opt_(opt), K_(opt.beam), V_(model.config().vocab), out_(srcs.size()),
          beams_(srcs.size(), std::vector<Hyp>(opt.beam, Hyp{{}, kNegInf})), finished_(srcs.size()) {
        for (auto& b : beams_) b[0].score = 0.0;  // one live beam at first, so the K beams differ
    }

    // One step of sentence i, whose beams' logits are x (K rows of V) at rows row0 .. row0+K-1.
    bool advance(int i, const float* x, int row0, Frontier& next) {
        const std::vector<Cand> cands = candidates(i, x);
        std::vector<Hyp> kept;
        for (size_t j = 0; j < cands.size() && (int)kept.size() < K_; ++j) {
            const Cand& c = cands[j];
            const Hyp& parent = beams_[i][c.beam];
            if (c.tok == opt_.eos) {
                if ((int)j < K_) finish(i, parent.tokens, c.score, (int)parent.tokens.size() + 1);
                continue;
            }
            kept.push_back(Hyp{parent.tokens, c.score});
            kept.back().tokens.push_back(c.tok);
            next.push(row0 + c.beam, c.tok);
        }
        const bool at_max = !kept.empty() && (int)kept[0].tokens.size() >= max_output(model_, srcs_[i], opt_);
        if ((int)finished_[i].size() >= K_ || at_max || kept.empty()) {
            if (at_max)
                for (const Hyp& h : kept) finish(i, h.tokens, h.score, (int)h.tokens.size());
            out_[i] = best_finished(i);
            return false;
        }
        // Fewer than K continuations (a vocabulary barely larger than the beam): the missing
        // beams are padding, never expanded, fed from a valid row.
        while ((int)kept.size() < K_) {
            kept.push_back(Hyp{{}, kNegInf});
            next.push(row0, opt_.eos);
        }
        beams_[i] = std::move(kept);
        return true;
    }

    std::vector<std::vector<int32_t>> take() { return std::move(out_); }

private:
    // The best 2K (beam, token) continuations are among each beam's best 2K tokens, so only
    // K * 2K candidates are ranked rather than K * V. Best first; ties go to the lower beam,
    // then the lower token id (as greedy's argmax).
    std::vector<Cand> candidates(int i, const float* x) {
        std::vector<Cand> cands;
        for (int k = 0; k < K_; ++k) {
            const Hyp& h = beams_[i][k];
            if (h.score == kNegInf) continue;
            const float* xk = x + (int64_t)k * V_;
            top_tokens(xk, V_, 2 * K_, best_tok_);
            const double lse = log_sum_exp(xk, V_);
            for (int32_t v : best_tok_) cands.push_back({h.score + ((double)xk[v] - lse), k, v});
        }
        std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
            if (a.score != b.score) return a.score > b.score;
            return a.beam != b.beam ? a.beam < b.beam : a.tok < b.tok;
        });
        return cands;
    }

    void finish(int i, const std::vector<int32_t>& tokens, double score, int len) {
        finished_[i].push_back({tokens, score / length_penalty(len, opt_.len_penalty)});
    }

    // The finished hypothesis of the highest normalised score (the first of equals); none
    // (every continuation an <eos> ranked below K) is an empty output.
    std::vector<int32_t> best_finished(int i) const {
        const Finished* best = nullptr;
        for (const Finished& f : finished_[i])
            if (!best || f.norm > best->norm) best = &f;
        return best ? best->tokens : std::vector<int32_t>{};
    }

    const Seq2Seq& model_;
    const std::vector<std::vector<int32_t>>& srcs_;
    const DecodeOptions& opt_;
    const int K_, V_;
    std::vector<std::vector<int32_t>> out_;
    std::vector<std::vector<Hyp>> beams_;  // per sentence, K beams
    std::vector<std::vector<Finished>> finished_;
    std::vector<int32_t> best_tok_;
};

}  // namespace

std::vector<std::vector<int32_t>> greedy_decode(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                                const DecodeOptions& opt) {
    check_sources(model, srcs);
    check_options(model, opt);
    NoGrad ng;
    const int V = model.config().vocab;
    std::vector<std::vector<int32_t>> out(srcs.size());
    decode_loop(model, srcs, 1, opt.bos, [&](int i, const float* x, int row, Frontier& next) {
        const int32_t tok = (int32_t)(std::max_element(x, x + V) - x);
        if (tok == opt.eos) return false;
        out[i].push_back(tok);
        if ((int)out[i].size() >= max_output(model, srcs[i], opt)) return false;
        next.push(row, tok);
        return true;
    });
    return out;
}

std::vector<std::vector<int32_t>> beam_search(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                              const DecodeOptions& opt) {
    check_sources(model, srcs);
    check_options(model, opt);
    NoGrad ng;
    BeamSearch search(model, srcs, opt);
    decode_loop(model, srcs, opt.beam, opt.bos,
                [&](int i, const float* x, int row0, Frontier& next) { return search.advance(i, x, row0, next); });
    return search.take();
}

std::vector<std::vector<int32_t>> translate(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                            const DecodeOptions& opt) {
    check_sources(model, srcs);
    check_options(model, opt);
    // Sentences of similar length share a batch, so little of the encoder's work is padding.
    std::vector<int> order(srcs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return srcs[a].size() < srcs[b].size(); });
    std::vector<std::vector<int32_t>> out(srcs.size());
    for (size_t start = 0; start < order.size(); start += opt.batch_sentences) {
        const size_t end = std::min(order.size(), start + (size_t)opt.batch_sentences);
        std::vector<std::vector<int32_t>> batch;
        for (size_t j = start; j < end; ++j) batch.push_back(srcs[order[j]]);
        auto hyps = opt.beam == 1 ? greedy_decode(model, batch, opt) : beam_search(model, batch, opt);
        for (size_t j = start; j < end; ++j) out[order[j]] = std::move(hyps[j - start]);
    }
    return out;
}

}  // namespace synth

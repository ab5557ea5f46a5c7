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

void check_sources(const Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs) {
    const int L = model.config().attn.max_len;
    for (size_t i = 0; i < srcs.size(); ++i) {
        SYNTH_CHECK(!srcs[i].empty(), "sentence ", i + 1, ": empty source (it needs at least <eos>)");
        SYNTH_CHECK((int)srcs[i].size() <= L, "sentence ", i + 1, ": the source has ", srcs[i].size(),
                    " tokens (with <eos>), more than the model's maximum length L=", L, " (the ",
                    model.config().attn.variant, " model's positions and attention are sized by L)");
    }
}

int max_output(const Seq2Seq& model, const std::vector<int32_t>& src, const DecodeOptions& opt) {
    return std::min<int>(model.config().attn.max_len, (int)src.size() + opt.max_extra);
}

}  // namespace

std::vector<std::vector<int32_t>> greedy_decode(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                                const DecodeOptions& opt) {
    check_sources(model, srcs);
    NoGrad ng;
    const int n = (int)srcs.size(), V = model.config().vocab;
    std::vector<std::vector<int32_t>> out(n);
    if (n == 0) return out;
    DecodeState state(model, srcs);
    std::vector<int> live(n), rows(n);  // live[r]: sentence of row r; rows: rows kept for the next step
    std::iota(live.begin(), live.end(), 0);
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<int32_t> tokens(n, opt.bos);
    while (!live.empty()) {
        const Tensor logits = state.step(rows, tokens);  // (live, V)
        std::vector<int> next_live, next_rows;
        std::vector<int32_t> next_tokens;
        for (size_t r = 0; r < live.size(); ++r) {
            const float* x = logits.data + (int64_t)r * V;
            const int32_t tok = (int32_t)(std::max_element(x, x + V) - x);
            const int i = live[r];
            if (tok == opt.eos) continue;
            out[i].push_back(tok);
            if ((int)out[i].size() >= max_output(model, srcs[i], opt)) continue;
            next_live.push_back(i);
            next_rows.push_back((int)r);
            next_tokens.push_back(tok);
        }
        live.swap(next_live);
        rows.swap(next_rows);
        tokens.swap(next_tokens);
    }
    return out;
}

std::vector<std::vector<int32_t>> beam_search(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                              const DecodeOptions& opt) {
    check_sources(model, srcs);
    SYNTH_CHECK(opt.beam >= 1, "beam size must be positive, got ", opt.beam);
    NoGrad ng;
    const int n = (int)srcs.size(), V = model.config().vocab, K = opt.beam;
    const double kNegInf = -std::numeric_limits<double>::infinity();
    std::vector<std::vector<int32_t>> out(n);
    if (n == 0) return out;

    struct Hyp {
        std::vector<int32_t> tokens;
        double score;  // summed log-probability
    };
    struct Finished {
        std::vector<int32_t> tokens;
        double norm;   // score / lp(len)
    };
    // live[s]: sentence index of live slot s, whose K beams are rows s*K .. s*K+K-1.
    std::vector<int> live(n);
    std::iota(live.begin(), live.end(), 0);
    std::vector<std::vector<Hyp>> beams(n, std::vector<Hyp>(K, Hyp{{}, kNegInf}));
    for (auto& b : beams) b[0].score = 0.0;  // one live beam at first, so the K beams differ
    std::vector<std::vector<Finished>> finished(n);

    DecodeState state(model, srcs);
    std::vector<int> rows;  // first step: sentence i's encoder row, repeated K times
    for (int i = 0; i < n; ++i) rows.insert(rows.end(), K, i);
    std::vector<int32_t> tokens((size_t)n * K, opt.bos);
    struct Cand {
        double score;
        int beam;
        int32_t tok;
    };
    // Best first; ties go to the lower beam, then the lower token id (as greedy's argmax).
    auto better = [](const Cand& a, const Cand& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.beam != b.beam ? a.beam < b.beam : a.tok < b.tok;
    };
    const int top = 2 * K;
    std::vector<Cand> cands;
    std::vector<int32_t> best_tok;
    while (!live.empty()) {
        const Tensor logits = state.step(rows, tokens);  // (live * K, V)
        std::vector<int> next_live, next_rows;
        std::vector<int32_t> next_tokens;
        for (size_t s = 0; s < live.size(); ++s) {
            const int i = live[s];
            // The best 2K (beam, token) continuations are among each beam's best 2K tokens, so
            // only K * 2K candidates are ranked rather than K * V.
            cands.clear();
            for (int k = 0; k < K; ++k) {
                const Hyp& h = beams[i][k];
                if (h.score == kNegInf) continue;
                const float* x = logits.data + ((int64_t)s * K + k) * V;
                best_tok.clear();  // token ids by descending logit, at most 2K
                float mx = x[0];
                for (int v = 0; v < V; ++v) {
                    mx = std::max(mx, x[v]);
                    if ((int)best_tok.size() == top && x[v] <= x[best_tok.back()]) continue;
                    size_t pos = best_tok.size();
                    while (pos > 0 && x[v] > x[best_tok[pos - 1]]) --pos;
                    best_tok.insert(best_tok.begin() + pos, (int32_t)v);
                    if ((int)best_tok.size() > top) best_tok.pop_back();
                }
                double sum = 0.0;
                for (int v = 0; v < V; ++v) sum += std::exp(x[v] - mx);
                const double lse = mx + std::log(sum);
                for (int32_t v : best_tok) cands.push_back({h.score + ((double)x[v] - lse), k, v});
            }
            std::sort(cands.begin(), cands.end(), better);
            std::vector<Hyp> next;
            for (size_t j = 0; j < cands.size() && (int)next.size() < K; ++j) {
                const Cand& c = cands[j];
                const Hyp& parent = beams[i][c.beam];
                if (c.tok == opt.eos) {
                    if ((int)j < K)
                        finished[i].push_back({parent.tokens, c.score / length_penalty((int)parent.tokens.size() + 1,
                                                                                          opt.len_penalty)});
                    continue;
                }
                Hyp h{parent.tokens, c.score};
                h.tokens.push_back(c.tok);
                next.push_back(std::move(h));
                next_rows.push_back((int)s * K + c.beam);
                next_tokens.push_back(c.tok);
            }
            const bool at_max = !next.empty() && (int)next[0].tokens.size() >= max_output(model, srcs[i], opt);
            if ((int)finished[i].size() >= K || at_max || next.empty()) {
                if (at_max)
                    for (const Hyp& h : next)
                        finished[i].push_back({h.tokens, h.score / length_penalty((int)h.tokens.size(), opt.len_penalty)});
                next_rows.resize(next_rows.size() - next.size());
                next_tokens.resize(next_tokens.size() - next.size());
                const Finished* best = &finished[i][0];
                for (const Finished& f : finished[i])
                    if (f.norm > best->norm) best = &f;
                out[i] = best->tokens;
                continue;
            }
            beams[i] = std::move(next);
            next_live.push_back(i);
        }
        live.swap(next_live);
        rows.swap(next_rows);
        tokens.swap(next_tokens);
    }
    return out;
}

std::vector<std::vector<int32_t>> translate(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                            const DecodeOptions& opt) {
    check_sources(model, srcs);
    SYNTH_CHECK(opt.batch_sentences >= 1, "sentences per decoding batch must be positive, got ", opt.batch_sentences);
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

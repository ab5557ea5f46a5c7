// beam.h: greedy and beam-search decoding for Seq2Seq, batched over sentences, with
// incremental decoding.
//
// Every decoding step feeds only the newest token of each hypothesis: the decoder's
// self-attention reads the earlier positions from its MixerCache (cached keys and values for V;
// R, D, FR, FD and mixtures compute row t of their synthetic logits, docs/variants.md), and the
// cross-attention keys and values of the encoder output are computed once per batch. A
// "row" of the decoder state is one hypothesis: sentence i's beam k is row i*K + k, so
// reordering beams, expanding sentences to K beams and dropping finished sentences are all
// one operation: gather rows of every state tensor (gather_rows).
//
// Beam search follows fairseq's rules: each step, every live sentence scores all
// (beam, token) continuations and takes the best 2K; a candidate ending in <eos> is finished
// only if it ranks among the best K (so beam size 1 is exactly greedy decoding), the best K
// others continue. A sentence stops when it has K finished hypotheses or its hypotheses reach
// the maximum output length (then they are finished without <eos>). The answer is the finished
// hypothesis with the highest length-normalised score
//     score / lp(len),   lp(len) = ((5 + len) / 6)^alpha      (GNMT, Wu et al. 2016, eq. 14)
// where score is the summed log-probability and len counts the output tokens including <eos>.
// alpha = 0 ranks by raw log-probability.
//
// The output length is capped at min(L, source length + max_extra) tokens (at least 1), <eos>
// included, which keeps every decoder position below L.
//
// Every setting is checked against what it indexes before any work, with an error naming it:
// 1 <= beam <= V, <bos> and <eos> ids of the vocabulary, a finite length penalty, source ids in
// [0, V) and sources of at most L tokens. A beam close to V may have fewer than K continuations
// at a step; the missing beams are padding (score -inf, never expanded).
#pragma once

#include <cstdint>
#include <vector>

#include "models/seq2seq.h"

namespace synth {

struct DecodeOptions {
    int beam = 5;                // K; 1 = greedy
    float len_penalty = 0.6f;    // alpha of the GNMT length penalty
    int max_extra = 50;          // output at most source length + max_extra tokens (and at most L)
    int batch_sentences = 32;    // sentences decoded together by translate()
    int bos = 1, eos = 2;        // Bpe::kBos, Bpe::kEos
};

// ((5 + len) / 6)^alpha.
double length_penalty(int len, double alpha);

// Rows `rows` of x along its first (batch) dimension, in that order, copied into `storage`
// (replaced): the result no longer points into the scratch arena, so it survives
// scratch().reset(). Values only; the result has no gradient.
Tensor gather_rows(const Tensor& x, const std::vector<int>& rows, std::vector<float>& storage);

// Each function takes tokenized sources (x_1 .. x_m <eos>, unpadded) and returns, per source,
// the output token ids without <bos>/<eos>. They run under NoGrad and reset the scratch
// arena, so the caller must not hold activations across the call. A source longer than the
// model's L is an error naming the sentence.
std::vector<std::vector<int32_t>> greedy_decode(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                                const DecodeOptions& opt);
std::vector<std::vector<int32_t>> beam_search(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                              const DecodeOptions& opt);
// Any number of sources: sorted by length, decoded opt.batch_sentences at a time (greedy for
// beam 1, beam search otherwise), returned in input order.
std::vector<std::vector<int32_t>> translate(Seq2Seq& model, const std::vector<std::vector<int32_t>>& srcs,
                                            const DecodeOptions& opt);

}  // namespace synth

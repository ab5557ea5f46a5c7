// bleu.h: corpus BLEU and chrF exactly as sacreBLEU 2.x computes them by default.
//
// BLEU (Papineni et al. 2002) as sacrebleu.corpus_bleu(hyps, [refs]) with its defaults:
// one reference per sentence, case-sensitive, the mteval-v13a tokenizer ("13a"), maximum
// n-gram order 4, smoothing 'exp' (Chen & Cherry 2014 method 3, the NIST mteval smoothing),
// effective_order off. Statistics are summed over the corpus first and the score is computed
// once from the sums: corpus BLEU is not the mean of sentence BLEUs.
//
// chrF (Popovic 2015) as sacrebleu.corpus_chrf(hyps, [refs]) with its defaults: chrF2, that
// is character n-grams of order 1..6 (no word n-grams), beta = 2, whitespace removed before
// extracting n-grams, sacreBLEU's "effective order" averaging (eps_smoothing off). The
// per-order counts are likewise summed over the corpus before the F-score is computed.
//
// Both follow sacreBLEU's input rules: hyps.size() must equal refs.size() and no reference
// may be the empty string (sacreBLEU raises "Empty or `None` reference sentence found");
// either violation throws synth::Error. Text is UTF-8; characters are Unicode code points.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace synth {

constexpr int kBleuMaxOrder = 4;

// The sacreBLEU signatures of the two metrics as computed here ("version:synth" in place of
// sacreBLEU's version number, since this is a reimplementation, not sacreBLEU itself).
extern const char* const kBleuSignature;  // "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:synth"
extern const char* const kChrfSignature;  // "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:synth"

// Sufficient statistics of corpus BLEU; they add up over sentences.
struct BleuStats {
    std::array<int64_t, kBleuMaxOrder> correct{};  // clipped n-gram matches, n = 1..4
    std::array<int64_t, kBleuMaxOrder> total{};    // hypothesis n-grams, n = 1..4
    int64_t sys_len = 0;                           // hypothesis tokens
    int64_t ref_len = 0;                           // reference tokens
    BleuStats& operator+=(const BleuStats& o);
};

struct BleuScore {
    double score = 0;                             // 0..100
    std::array<double, kBleuMaxOrder> precisions{};  // 0..100, after smoothing
    double bp = 0;                                // brevity penalty
    double ratio = 0;                             // sys_len / ref_len (0 if ref_len == 0)
    int64_t sys_len = 0, ref_len = 0;
    // The score line sacreBLEU prints (without its signature):
    //   "BLEU = 35.12 66.1/41.2/28.0/19.5 (BP = 0.987 ratio = 0.987 hyp_len = 1234 ref_len = 1250)"
    std::string signature() const;
};

// sacreBLEU's Tokenizer13a on one line: drop "<skipped>", join "-\n" line breaks, turn other
// newlines into spaces, unescape &quot; &amp; &lt; &gt; (in that order), then the mteval-v13a
// regexes: split off ASCII punctuation and symbols except ' , - . ; split '.' and ',' unless
// between digits ("3.5", "1,000" stay whole); split '-' after a digit. Tokens are joined by
// single spaces (runs of Unicode whitespace collapse, as Python's str.split() does).
std::string tokenize_13a(const std::string& line);

// Per-sentence statistics summed over the corpus. Each sentence is right-stripped of Unicode
// whitespace and then 13a-tokenized, as sacreBLEU's BLEU._preprocess_segment does.
BleuStats bleu_stats(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

// sacreBLEU's BLEU.compute_bleu(..., smooth_method='exp', effective_order=False):
//   BP = 1 if sys_len >= ref_len, exp(1 - ref_len/sys_len) if 0 < sys_len < ref_len, 0 if sys_len == 0;
//   if no n-gram of any order matches, the score is 0;
//   otherwise p_n = correct_n / total_n, and the k-th order with zero matches gets
//   p_n = 1 / (2^k * total_n) instead; an order with total_n == 0 (and every higher order)
//   keeps p_n = 0, which sacreBLEU's my_log() floors to log = -9999999999, so the score is ~0;
//   BLEU = 100 * BP * exp(sum_n log p_n / 4).
BleuScore compute_bleu(const BleuStats& stats);

// compute_bleu(bleu_stats(hyps, refs)).
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

// Corpus chrF2 on a 0..100 scale (see top of file).
double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

}  // namespace synth

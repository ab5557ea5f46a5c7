// bleu.cpp: sacreBLEU's default corpus BLEU and chrF, mirrored line by line from
// sacrebleu/tokenizers/tokenizer_13a.py, tokenizer_re.py, metrics/bleu.py, metrics/chrf.py
// and metrics/helpers.py (sacreBLEU 2.x).
#include "text/bleu.h"

#include <cmath>
#include <cstdio>
#include <string_view>
#include <unordered_map>

#include "base/error.h"

namespace synth {

const char* const kBleuSignature = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:synth";
const char* const kChrfSignature = "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:synth";

namespace {

// ---- UTF-8 and Python's notion of whitespace ----------------------------------------------

// Decodes the code point starting at s[i] into *cp and returns its length in bytes. A byte
// that does not start a well-formed sequence decodes alone, to U+DC80..U+DCFF (Python's
// "surrogateescape" convention), a value no well-formed sequence can produce.
size_t utf8_next(std::string_view s, size_t i, char32_t* cp) {
    auto b = [&](size_t k) { return (unsigned char)s[i + k]; };
    auto cont = [&](size_t k, unsigned lo, unsigned hi) { return i + k < s.size() && b(k) >= lo && b(k) <= hi; };
    unsigned c = b(0);
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xC2 && c <= 0xDF && cont(1, 0x80, 0xBF)) {
        *cp = ((c & 0x1F) << 6) | (b(1) & 0x3F);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;  // no overlongs, no surrogates
        if (cont(1, lo, hi) && cont(2, 0x80, 0xBF)) {
            *cp = ((c & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
            return 3;
        }
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;  // U+10000..U+10FFFF
        if (cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF)) {
            *cp = ((c & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
            return 4;
        }
    }
    *cp = 0xDC00 | c;
    return 1;
}

// Python's str.isspace(), which str.split() and str.rstrip() use: it includes NBSP and the
// other Unicode spaces, so sacreBLEU splits "a\u00A0b" into two tokens.
bool is_py_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

// Python's line.rstrip().
std::string_view py_rstrip(std::string_view s) {
    size_t end = 0;
    char32_t cp;
    for (size_t i = 0; i < s.size();) {
        size_t len = utf8_next(s, i, &cp);
        i += len;
        if (!is_py_space(cp)) end = i;
    }
    return s.substr(0, end);
}

// Python's line.split() (no argument): maximal runs of non-whitespace.
std::vector<std::string> py_split(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    char32_t cp;
    for (size_t i = 0; i < s.size();) {
        size_t len = utf8_next(s, i, &cp);
        if (is_py_space(cp)) {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
        } else {
            cur.append(s.substr(i, len));
        }
        i += len;
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

// Python's str.replace(from, to): every non-overlapping occurrence, left to right.
std::string replace_all(const std::string& s, std::string_view from, std::string_view to) {
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out.append(to);
    }
    out.append(s, pos, std::string::npos);
    return out;
}

// ---- the mteval-v13a regexes --------------------------------------------------------------
// All four character classes are ASCII, so running them over UTF-8 bytes gives the same
// result as Python running them over code points: a multi-byte character never contains an
// ASCII byte, and the classes only ever re-emit the matched characters with spaces around.

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_comma(char c) { return c == '.' || c == ','; }

// [\{-\~\[-\` -\&\(-\+\:-\@\/] : { | } ~  [ \ ] ^ _ `  space ! " # $ % &  ( ) * +  : ; < = > ? @  /
bool is_13a_symbol(char c) {
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// re.sub(r'(X)(Y)', repl, s) for single-character classes X and Y: matches are found left to
// right and do not overlap, so after a match the scan resumes behind its second character.
template <typename First, typename Second, typename Emit>
std::string sub_pairs(const std::string& s, First first, Second second, Emit emit) {
    std::string out;
    out.reserve(s.size() + s.size() / 4);
    size_t i = 0;
    while (i < s.size()) {
        if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
            emit(out, s[i], s[i + 1]);
            i += 2;
        } else {
            out += s[i++];
        }
    }
    return out;
}

std::vector<std::string> tokens_13a(const std::string& input) {
    // Language-independent part (Tokenizer13a.__call__).
    std::string line = replace_all(input, "<skipped>", "");
    line = replace_all(line, "-\n", "");
    line = replace_all(line, "\n", " ");
    line = replace_all(line, "&quot;", "\"");
    line = replace_all(line, "&amp;", "&");
    line = replace_all(line, "&lt;", "<");
    line = replace_all(line, "&gt;", ">");
    line = " " + line + " ";

    // (r'([\{-\~\[-\` -\&\(-\+\:-\@\/])', r' \1 ')
    std::string spaced;
    spaced.reserve(line.size() * 2);
    for (char c : line) {
        if (is_13a_symbol(c)) {
            spaced += ' ';
            spaced += c;
            spaced += ' ';
        } else {
            spaced += c;
        }
    }
    auto not_digit = [](char c) { return !is_digit(c); };
    // (r'([^0-9])([\.,])', r'\1 \2 '): period and comma unless preceded by a digit
    line = sub_pairs(spaced, not_digit, is_period_comma, [](std::string& o, char a, char b) {
        o += a, o += ' ', o += b, o += ' ';
    });
    // (r'([\.,])([^0-9])', r' \1 \2'): period and comma unless followed by a digit
    line = sub_pairs(line, is_period_comma, not_digit, [](std::string& o, char a, char b) {
        o += ' ', o += a, o += ' ', o += b;
    });
    // (r'([0-9])(-)', r'\1 \2 '): dash after a digit
    line = sub_pairs(line, is_digit, [](char c) { return c == '-'; }, [](std::string& o, char a, char b) {
        o += a, o += ' ', o += b, o += ' ';
    });
    return py_split(line);
}

// ---- BLEU -----------------------------------------------------------------------------------

// All n-grams of order 1..4 with their counts; an n-gram is its tokens joined by ' ', which is
// unambiguous because tokens contain no whitespace.
using NgramCounts = std::unordered_map<std::string, int64_t>;

NgramCounts word_ngrams(const std::vector<std::string>& toks) {
    NgramCounts counts;
    for (int n = 1; n <= kBleuMaxOrder; ++n) {
        for (size_t i = 0; i + n <= toks.size(); ++i) {
            std::string key = toks[i];
            for (int k = 1; k < n; ++k) key += ' ' + toks[i + k];
            ++counts[key];
        }
    }
    return counts;
}

int ngram_order(const std::string& key) {
    int n = 1;
    for (char c : key) n += c == ' ';
    return n;
}

void check_corpus(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
    SYNTH_CHECK(hyps.size() == refs.size(), "BLEU/chrF: ", hyps.size(), " hypotheses but ", refs.size(),
                " references");
    for (size_t i = 0; i < refs.size(); ++i)
        SYNTH_CHECK(!refs[i].empty(), "BLEU/chrF: reference ", i + 1, " is empty (sacreBLEU rejects empty references)");
}

double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

// ---- chrF -----------------------------------------------------------------------------------

constexpr int kChrfOrder = 6;
constexpr double kChrfBeta = 2;

// The code points of s with all whitespace removed: Python's ''.join(line.split()).
std::u32string chars_without_space(std::string_view s) {
    std::u32string out;
    char32_t cp;
    for (size_t i = 0; i < s.size();) {
        i += utf8_next(s, i, &cp);
        if (!is_py_space(cp)) out += cp;
    }
    return out;
}

}  // namespace

BleuStats& BleuStats::operator+=(const BleuStats& o) {
    for (int n = 0; n < kBleuMaxOrder; ++n) {
        correct[n] += o.correct[n];
        total[n] += o.total[n];
    }
    sys_len += o.sys_len;
    ref_len += o.ref_len;
    return *this;
}

std::string tokenize_13a(const std::string& line) {
    std::string out;
    for (const std::string& t : tokens_13a(line)) {
        if (!out.empty()) out += ' ';
        out += t;
    }
    return out;
}

BleuStats bleu_stats(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
    check_corpus(hyps, refs);
    BleuStats sum;
    for (size_t s = 0; s < hyps.size(); ++s) {
        std::vector<std::string> hyp = tokens_13a(std::string(py_rstrip(hyps[s])));
        std::vector<std::string> ref = tokens_13a(std::string(py_rstrip(refs[s])));
        NgramCounts ref_ngrams = word_ngrams(ref);
        BleuStats st;
        st.sys_len = (int64_t)hyp.size();
        st.ref_len = (int64_t)ref.size();  // the "closest" reference length, with one reference
        for (const auto& [ngram, count] : word_ngrams(hyp)) {
            int n = ngram_order(ngram) - 1;
            st.total[n] += count;
            auto it = ref_ngrams.find(ngram);
            if (it != ref_ngrams.end()) st.correct[n] += std::min(count, it->second);
        }
        sum += st;
    }
    return sum;
}

BleuScore compute_bleu(const BleuStats& st) {
    BleuScore r;
    r.sys_len = st.sys_len;
    r.ref_len = st.ref_len;
    r.ratio = st.ref_len ? (double)st.sys_len / (double)st.ref_len : 0.0;
    if (st.sys_len < st.ref_len)
        r.bp = st.sys_len > 0 ? std::exp(1.0 - (double)st.ref_len / (double)st.sys_len) : 0.0;
    else
        r.bp = 1.0;

    // "Early stop if there are no matches (#141)": all precisions stay 0.
    bool any_match = false;
    for (int64_t c : st.correct) any_match |= c != 0;
    if (!any_match) return r;

    double smooth_mteval = 1.0;
    for (int n = 0; n < kBleuMaxOrder; ++n) {
        if (st.total[n] == 0) break;
        if (st.correct[n] == 0) {
            smooth_mteval *= 2;
            r.precisions[n] = 100.0 / (smooth_mteval * (double)st.total[n]);
        } else {
            r.precisions[n] = 100.0 * (double)st.correct[n] / (double)st.total[n];
        }
    }
    double log_sum = 0;
    for (double p : r.precisions) log_sum += my_log(p);
    r.score = r.bp * std::exp(log_sum / kBleuMaxOrder);
    return r;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
    return compute_bleu(bleu_stats(hyps, refs));
}

std::string BleuScore::signature() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)", score,
                  precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio, (long long)sys_len,
                  (long long)ref_len);
    return buf;
}

double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
    check_corpus(hyps, refs);
    // stats[n-1] = {hypothesis n-grams, reference n-grams, matched n-grams}, summed over sentences.
    std::array<std::array<int64_t, 3>, kChrfOrder> stats{};
    for (size_t s = 0; s < hyps.size(); ++s) {
        std::u32string hyp = chars_without_space(hyps[s]);
        std::u32string ref = chars_without_space(refs[s]);
        for (int n = 1; n <= kChrfOrder; ++n) {
            std::unordered_map<std::u32string_view, int64_t> ref_counts;
            int64_t n_ref = 0;
            for (size_t i = 0; i + n <= ref.size(); ++i, ++n_ref) ++ref_counts[std::u32string_view(ref).substr(i, n)];
            std::unordered_map<std::u32string_view, int64_t> hyp_counts;
            int64_t n_hyp = 0;
            for (size_t i = 0; i + n <= hyp.size(); ++i, ++n_hyp) ++hyp_counts[std::u32string_view(hyp).substr(i, n)];
            int64_t n_match = 0;
            for (const auto& [gram, count] : hyp_counts) {
                auto it = ref_counts.find(gram);
                if (it != ref_counts.end()) n_match += std::min(count, it->second);
            }
            // CHRF._get_match_statistics: "Don't count hits if no reference exists for that n-gram".
            stats[n - 1][0] += ref_counts.empty() ? 0 : n_hyp;
            stats[n - 1][1] += n_ref;
            stats[n - 1][2] += n_match;
        }
    }
    // CHRF._compute_f_score with eps_smoothing=False: average precision and recall over the
    // orders where both sides have n-grams, then one F-beta of the averages.
    const double factor = kChrfBeta * kChrfBeta;
    double avg_prec = 0, avg_rec = 0;
    int effective_order = 0;
    for (const auto& [n_hyp, n_ref, n_match] : stats) {
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += (double)n_match / (double)n_hyp;
            avg_rec += (double)n_match / (double)n_ref;
            ++effective_order;
        }
    }
    if (effective_order == 0) return 0.0;
    avg_prec /= effective_order;
    avg_rec /= effective_order;
    if (avg_prec + avg_rec == 0) return 0.0;
    double score = (1 + factor) * avg_prec * avg_rec;
    score /= factor * avg_prec + avg_rec;
    return 100 * score;
}

}  // namespace synth

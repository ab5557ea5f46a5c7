// bpe.cpp: learning, encoding, decoding and (de)serialising byte-pair encodings.
#include "text/bpe.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <mutex>
#include <queue>
#include <tuple>

#include "base/error.h"

namespace synth {

namespace {

const char kMarkerUtf8[] = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK, "▁"

// Length of the well-formed UTF-8 sequence starting at s[i] (no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 if s[i] does not start one.
size_t utf8_len(std::string_view s, size_t i) {
    auto in = [&](size_t k, unsigned lo, unsigned hi) {
        return i + k < s.size() && (unsigned char)s[i + k] >= lo && (unsigned char)s[i + k] <= hi;
    };
    unsigned c = (unsigned char)s[i];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return in(1, lo, hi) && in(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return in(1, lo, hi) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
}

uint64_t pair_key(int left, int right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

// Calls f(word) for each space-separated word of an already normalised text.
template <typename F>
void for_each_word(const std::string& normalised, F f) {
    size_t start = 0;
    while (start < normalised.size()) {
        size_t end = normalised.find(' ', start);
        if (end == std::string::npos) end = normalised.size();
        f(std::string_view(normalised).substr(start, end - start));
        start = end + 1;
    }
}

// The code points of `word` that may become character tokens, each as its UTF-8 bytes, with
// `byte` called for every byte that must stay a byte token instead (invalid UTF-8, and the
// marker character, which as a vocabulary symbol means "start of word").
template <typename OnChar, typename OnByte>
void split_chars(std::string_view word, OnChar on_char, OnByte on_byte) {
    for (size_t i = 0; i < word.size();) {
        size_t len = utf8_len(word, i);
        if (len == 0 || (len == 3 && word.substr(i, 3) == std::string_view(kMarkerUtf8, 3))) {
            for (size_t k = 0; k < std::max<size_t>(len, 1); ++k) on_byte((unsigned char)word[i + k]);
            i += std::max<size_t>(len, 1);
        } else {
            on_char(word.substr(i, len));
            i += len;
        }
    }
}

// Replaces every non-overlapping (left, right), scanning left to right, by `merged`.
// Returns whether anything was replaced.
bool merge_pair(std::vector<int>& syms, int left, int right, int merged) {
    size_t out = 0;
    bool any = false;
    for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == left && syms[i + 1] == right) {
            syms[out++] = merged;
            ++i;
            any = true;
        } else {
            syms[out++] = syms[i];
        }
    }
    syms.resize(out);
    return any;
}

using WordCounts = std::vector<std::pair<std::string, int64_t>>;

// Distinct words with their frequencies, in a fixed (sorted) order for reproducibility.
WordCounts count_words(const std::vector<std::string>& lines) {
    std::unordered_map<std::string, int64_t> word_freq;
    for (const std::string& line : lines)
        for_each_word(Bpe::normalise(line), [&](std::string_view w) { ++word_freq[std::string(w)]; });
    WordCounts words(word_freq.begin(), word_freq.end());
    std::sort(words.begin(), words.end());
    return words;
}

// Every code point of the words with its frequency, most frequent first.
WordCounts count_chars(const WordCounts& words) {
    std::unordered_map<std::string, int64_t> char_freq;
    for (const auto& word : words)
        split_chars(word.first, [&](std::string_view c) { char_freq[std::string(c)] += word.second; }, [](int) {});
    WordCounts chars(char_freq.begin(), char_freq.end());
    std::sort(chars.begin(), chars.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    return chars;
}

// Each word as symbols: marker, then its characters' ids (or its bytes, for a character
// without one).
std::vector<std::vector<int>> word_symbols(const WordCounts& words,
                                           const std::unordered_map<std::string, int>& char_ids) {
    std::vector<std::vector<int>> syms(words.size());
    for (size_t w = 0; w < words.size(); ++w) {
        syms[w].push_back(Bpe::kMarker);
        split_chars(words[w].first, [&](std::string_view c) { syms[w].push_back(char_ids.at(std::string(c))); },
                    [&](int byte) { syms[w].push_back(Bpe::kFirstByte + byte); });
    }
    return syms;
}

// Max-heap of (count, pair) with lazy deletion: an entry whose count is no longer the pair's
// current count is stale and skipped. Ties go to the smaller pair key.
using PairEntry = std::pair<int64_t, uint64_t>;
struct PairOrder {
    bool operator()(const PairEntry& a, const PairEntry& b) const {
        return a.first != b.first ? a.first < b.first : a.second > b.second;
    }
};
using PairHeap = std::priority_queue<PairEntry, std::vector<PairEntry>, PairOrder>;

// After a merge: each pair whose count changed goes back on the heap with its new count, or,
// at count 0, out of the tables.
void requeue(std::vector<uint64_t>& changed, std::unordered_map<uint64_t, int64_t>& count,
             std::unordered_map<uint64_t, std::vector<int>>& where, PairHeap& heap) {
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (uint64_t q : changed) {
        auto ci = count.find(q);
        if (ci->second > 0) {
            heap.push({ci->second, q});
        } else {
            count.erase(ci);
            where.erase(q);
        }
    }
}

}  // namespace

struct Bpe::Cache {
    static constexpr size_t kMaxWords = 1 << 20;  // bounded memory on an endless stream of new words
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int>> words;
};

Bpe::Bpe() : cache_(std::make_shared<Cache>()) {
    const char* special[] = {"<pad>", "<bos>", "<eos>", "<unk>"};
    for (const char* s : special) {
        pieces_.push_back(s);
        surface_.push_back("");
    }
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        pieces_.push_back(name);
        surface_.push_back(std::string(1, (char)b));
    }
    pieces_.push_back(kMarkerUtf8);
    surface_.push_back(" ");
}

void Bpe::add_char(const std::string& utf8) {
    char_ids_.emplace(utf8, vocab_size());
    pieces_.push_back(utf8);
    surface_.push_back(utf8);
}

bool Bpe::can_merge(int left, int right) const {
    return left >= kMarker && right >= kMarker && pieces_[left].size() + pieces_[right].size() <= (size_t)kMaxPieceBytes;
}

void Bpe::add_merge(int left, int right) {
    merge_rank_.emplace(pair_key(left, right), num_merges());
    merges_.emplace_back(left, right);
    pieces_.push_back(pieces_[left] + pieces_[right]);
    surface_.push_back(surface_[left] + surface_[right]);
}

std::string Bpe::normalise(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    auto at = [&](size_t i, std::string_view seq) { return std::string_view(text).substr(i, seq.size()) == seq; };
    for (size_t i = 0; i < text.size();) {
        unsigned char c = (unsigned char)text[i];
        size_t space_len = c == ' ' || c == '\t' ? 1 : 0, deleted_len = 0;
        if (c >= 0x80) {  // only here can a multi-byte rule apply
            if (at(i, "\xC2\xA0")) space_len = 2;                                       // U+00A0
            else if (at(i, "\xE2\x80\x89")) space_len = 3;                              // U+2009
            else if (at(i, "\xE2\x80\x8B") || at(i, "\xEF\xBB\xBF")) deleted_len = 3;  // U+200B, U+FEFF
        }
        if (space_len) {
            if (!out.empty() && out.back() != ' ') out += ' ';
            i += space_len;
        } else if (deleted_len) {
            i += deleted_len;
        } else {
            out += text[i++];
        }
    }
    if (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

Bpe Bpe::learn(const std::vector<std::string>& lines, int vocab_size) {
    const WordCounts words = count_words(lines);
    const WordCounts chars = count_chars(words);  // the character tokens
    Bpe bpe;
    for (const auto& c : chars) bpe.add_char(c.first);
    SYNTH_CHECK(vocab_size >= bpe.vocab_size(), "BPE vocab_size ", vocab_size, " is smaller than the base vocabulary of ",
                bpe.vocab_size(), " tokens (4 special + 256 byte + 1 marker + ", chars.size(), " characters)");

    std::vector<std::vector<int>> syms = word_symbols(words, bpe.char_ids_);

    // Pair counts (weighted by word frequency) and, per pair, the words that may contain it.
    std::unordered_map<uint64_t, int64_t> count;
    std::unordered_map<uint64_t, std::vector<int>> where;
    // Only pairs that may be merged are counted at all (see can_merge).
    auto for_each_pair = [&bpe](const std::vector<int>& s, auto f) {
        for (size_t i = 0; i + 1 < s.size(); ++i)
            if (bpe.can_merge(s[i], s[i + 1])) f(pair_key(s[i], s[i + 1]));
    };
    for (size_t w = 0; w < words.size(); ++w)
        for_each_pair(syms[w], [&](uint64_t p) {
            count[p] += words[w].second;
            std::vector<int>& list = where[p];
            if (list.empty() || list.back() != (int)w) list.push_back((int)w);
        });

    PairHeap heap;
    for (const auto& [p, c] : count) heap.push({c, p});

    std::vector<int> visited(words.size(), -1);
    std::vector<uint64_t> changed;
    while (bpe.vocab_size() < vocab_size && !heap.empty()) {
        auto [c, p] = heap.top();
        heap.pop();
        auto it = count.find(p);
        if (it == count.end() || it->second != c) continue;
        if (c < 2) break;
        int left = (int)(p >> 32), right = (int)(uint32_t)p;
        int merged = bpe.vocab_size();
        bpe.add_merge(left, right);

        // Rewrite only the words that contain the pair, moving their pair counts along.
        changed.clear();
        std::vector<int> candidates = std::move(where[p]);
        where.erase(p);
        for (int w : candidates) {
            if (visited[w] == merged) continue;
            visited[w] = merged;
            std::vector<int> next = syms[w];
            if (!merge_pair(next, left, right, merged)) continue;
            int64_t f = words[w].second;
            for_each_pair(syms[w], [&](uint64_t q) {
                count[q] -= f;
                changed.push_back(q);
            });
            for_each_pair(next, [&](uint64_t q) {
                count[q] += f;
                changed.push_back(q);
                if ((int)(q >> 32) == merged || (int)(uint32_t)q == merged) where[q].push_back(w);
            });
            syms[w] = std::move(next);
        }
        requeue(changed, count, where, heap);
    }
    return bpe;
}

std::vector<int> Bpe::encode_word(std::string_view word) const {
    std::vector<int> syms{kMarker};
    split_chars(word, [&](std::string_view c) {
        auto it = char_ids_.find(std::string(c));
        if (it != char_ids_.end()) {
            syms.push_back(it->second);
        } else {
            for (char b : c) syms.push_back(kFirstByte + (unsigned char)b);
        }
    }, [&](int byte) { syms.push_back(kFirstByte + byte); });

    // Merge the pair of lowest rank until none is left: the same result as applying every
    // merge in learned order, since a merge can only create pairs of higher rank.
    while (syms.size() >= 2) {
        int best = std::numeric_limits<int>::max();
        for (size_t i = 0; i + 1 < syms.size(); ++i) {
            auto it = merge_rank_.find(pair_key(syms[i], syms[i + 1]));
            if (it != merge_rank_.end()) best = std::min(best, it->second);
        }
        if (best == std::numeric_limits<int>::max()) break;
        merge_pair(syms, merges_[best].first, merges_[best].second, kFirstChar + (int)char_ids_.size() + best);
    }
    return syms;
}

std::vector<int> Bpe::encode(const std::string& text) const {
    std::vector<int> ids;
    for_each_word(normalise(text), [&](std::string_view word) {
        std::string key(word);
        {
            std::lock_guard<std::mutex> lock(cache_->mu);
            auto it = cache_->words.find(key);
            if (it != cache_->words.end()) {
                ids.insert(ids.end(), it->second.begin(), it->second.end());
                return;
            }
        }
        std::vector<int> w = encode_word(word);
        ids.insert(ids.end(), w.begin(), w.end());
        std::lock_guard<std::mutex> lock(cache_->mu);
        if (cache_->words.size() >= Cache::kMaxWords) cache_->words.clear();
        cache_->words.emplace(std::move(key), std::move(w));
    });
    return ids;
}

std::string Bpe::decode(const std::vector<int>& ids) const {
    std::string out;
    for (int id : ids) {
        SYNTH_CHECK(id >= 0 && id < vocab_size(), "BPE decode: token id ", id, " is outside the vocabulary [0, ",
                    vocab_size(), ")");
        out += surface_[id];
    }
    if (!out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
}

std::string Bpe::token_text(int id) const {
    SYNTH_CHECK(id >= 0 && id < vocab_size(), "BPE token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
    return pieces_[id];
}

// ---- serialisation ---------------------------------------------------------------------------
//
//   synth-bpe 1
//   chars C
//   <hex of one character's UTF-8 bytes>     (C lines, ids kFirstChar, kFirstChar + 1, ...)
//   merges M
//   <left id> <right id>                     (M lines, ids kFirstChar + C, ...)
//   end

namespace {

const char kMagic[] = "synth-bpe 1";

// Reads a serialised BPE line by line; every failure names the line.
class LineReader {
public:
    explicit LineReader(const std::string& text) : text_(text) {}
    std::string_view next() {
        SYNTH_CHECK(pos_ < text_.size(), "BPE data truncated after line ", line_no_);
        size_t nl = text_.find('\n', pos_);
        SYNTH_CHECK(nl != std::string::npos, "BPE data: line ", line_no_ + 1, " has no newline (truncated?)");
        std::string_view line = std::string_view(text_).substr(pos_, nl - pos_);
        pos_ = nl + 1;
        ++line_no_;
        return line;
    }
    bool at_end() const { return pos_ == text_.size(); }
    int line_no() const { return line_no_; }

private:
    const std::string& text_;
    size_t pos_ = 0;
    int line_no_ = 0;
};

// A decimal number in [0, hi] with nothing else around it.
int64_t parse_count(std::string_view s, int64_t hi, int line_no) {
    SYNTH_CHECK(!s.empty() && s.size() <= 12, "BPE data line ", line_no, ": bad number '", s, "'");
    int64_t v = 0;
    for (char c : s) {
        SYNTH_CHECK(c >= '0' && c <= '9', "BPE data line ", line_no, ": bad number '", s, "'");
        v = v * 10 + (c - '0');
    }
    SYNTH_CHECK(v <= hi, "BPE data line ", line_no, ": ", v, " is larger than ", hi);
    return v;
}

// "<keyword> <count>"
int64_t parse_header(std::string_view line, std::string_view keyword, int64_t hi, int line_no) {
    SYNTH_CHECK(line.size() > keyword.size() + 1 && line.substr(0, keyword.size()) == keyword &&
                    line[keyword.size()] == ' ',
                "BPE data line ", line_no, ": expected '", keyword, " <count>'");
    return parse_count(line.substr(keyword.size() + 1), hi, line_no);
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

std::string Bpe::serialize() const {
    static const char hex[] = "0123456789abcdef";
    std::string out = std::string(kMagic) + "\nchars " + std::to_string(char_ids_.size()) + "\n";
    for (int id = kFirstChar; id < kFirstChar + (int)char_ids_.size(); ++id) {
        for (unsigned char b : pieces_[id]) {
            out += hex[b >> 4];
            out += hex[b & 15];
        }
        out += '\n';
    }
    out += "merges " + std::to_string(merges_.size()) + "\n";
    for (const auto& [l, r] : merges_) out += std::to_string(l) + " " + std::to_string(r) + "\n";
    out += "end\n";
    return out;
}

Bpe Bpe::deserialize(const std::string& text) {
    LineReader in(text);
    SYNTH_CHECK(in.next() == kMagic, "BPE data: missing header '", kMagic, "' (not a synth BPE file?)");
    Bpe bpe;

    const int64_t max_chars = 0x110000;  // there are no more code points than this
    int64_t num_chars = parse_header(in.next(), "chars", max_chars, in.line_no());
    for (int64_t k = 0; k < num_chars; ++k) {
        std::string_view line = in.next();
        SYNTH_CHECK(line.size() >= 2 && line.size() <= 8 && line.size() % 2 == 0, "BPE data line ", in.line_no(),
                    ": expected 1 to 4 bytes of hex, got '", line, "'");
        std::string c;
        for (size_t i = 0; i < line.size(); i += 2) {
            int hi = hex_digit(line[i]), lo = hex_digit(line[i + 1]);
            SYNTH_CHECK(hi >= 0 && lo >= 0, "BPE data line ", in.line_no(), ": bad hex '", line, "'");
            c += (char)(hi * 16 + lo);
        }
        SYNTH_CHECK(utf8_len(c, 0) == c.size() && c != kMarkerUtf8, "BPE data line ", in.line_no(), ": '", line,
                    "' is not one UTF-8 character (or is the marker)");
        SYNTH_CHECK(!bpe.char_ids_.count(c), "BPE data line ", in.line_no(), ": character '", line, "' listed twice");
        bpe.add_char(c);
    }

    const int64_t max_merges = std::numeric_limits<int>::max() - bpe.vocab_size();
    int64_t num_merges = parse_header(in.next(), "merges", max_merges, in.line_no());
    for (int64_t k = 0; k < num_merges; ++k) {
        std::string_view line = in.next();
        size_t sp = line.find(' ');
        SYNTH_CHECK(sp != std::string_view::npos, "BPE data line ", in.line_no(), ": expected '<left id> <right id>'");
        int64_t left = parse_count(line.substr(0, sp), bpe.vocab_size() - 1, in.line_no());
        int64_t right = parse_count(line.substr(sp + 1), bpe.vocab_size() - 1, in.line_no());
        SYNTH_CHECK(bpe.can_merge((int)left, (int)right), "BPE data line ", in.line_no(), ": merge ", left, " ",
                    right, " involves a special or byte token, or makes a token longer than ", kMaxPieceBytes,
                    " bytes");
        SYNTH_CHECK(!bpe.merge_rank_.count(pair_key((int)left, (int)right)), "BPE data line ", in.line_no(),
                    ": merge ", left, " ", right, " listed twice");
        bpe.add_merge((int)left, (int)right);
    }
    SYNTH_CHECK(in.next() == "end", "BPE data line ", in.line_no(), ": expected 'end'");
    SYNTH_CHECK(in.at_end(), "BPE data: unexpected bytes after 'end' (line ", in.line_no() + 1, ")");
    return bpe;
}

}  // namespace synth

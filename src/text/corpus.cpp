#include "text/corpus.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>

#include "base/error.h"
#include "base/io.h"
#include "base/utf8.h"

namespace synth {

// ---- where the files live --------------------------------------------------------------

static bool is_dir(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The hint every "data not found" message ends with.
static std::string fetch_hint(const std::string& set) {
    const char* env = std::getenv("SYNTH_DATA_DIR");
    std::string where = env && *env ? std::string(" (SYNTH_DATA_DIR is '") + env + "')" : "";
    return where + ": run `make data` (or `bash data/fetch.sh " + set + "`) from the repository root";
}

std::string data_root() {
    const char* env = std::getenv("SYNTH_DATA_DIR");
    return env && *env ? env : "data/cache";
}

std::string data_dir(const std::string& set) {
    std::string dir = data_root() + "/" + set;
    SYNTH_CHECK(is_dir(dir), "data set '", set, "' not found in '", dir, "'", fetch_hint(set));
    return dir;
}

// <data_dir(set)>/<file>, checked to exist.
static std::string data_file(const std::string& set, const std::string& file) {
    std::string path = data_dir(set) + "/" + file;
    SYNTH_CHECK(is_file(path), "'", path, "' not found", fetch_hint(set));
    return path;
}

// ---- strict parsing of the serialized tokenizers ---------------------------------------

// A cursor over untrusted bytes: every read checks bounds and throws synth::Error on
// anything unexpected, so deserialize() can be fuzzed.
class Parser {
public:
    Parser(const std::string& s, const char* what) : s_(s), what_(what) {}

    void literal(const char* lit) {
        size_t n = std::strlen(lit);
        if (s_.compare(pos_, n, lit) != 0) bad(std::string("expected \"") + printable(lit) + "\"");
        pos_ += n;
    }
    // A decimal number in [0, max], without sign or leading zeros.
    uint64_t number(uint64_t max) {
        size_t start = pos_;
        uint64_t v = 0;
        while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
            uint64_t d = (uint64_t)(s_[pos_] - '0');
            if (d > max || v > max / 10 || v * 10 > max - d)
                bad("number larger than " + std::to_string(max));
            v = v * 10 + d;
            ++pos_;
        }
        if (pos_ == start) bad("expected a number");
        if (s_[start] == '0' && pos_ - start > 1) bad("number with a leading zero");
        return v;
    }
    // The bytes up to the next '\n', which is consumed.
    std::string line() {
        size_t nl = s_.find('\n', pos_);
        if (nl == std::string::npos) bad("unterminated line");
        std::string out = s_.substr(pos_, nl - pos_);
        pos_ = nl + 1;
        return out;
    }
    void end() {
        if (pos_ != s_.size()) bad("trailing bytes");
    }
    size_t remaining() const { return s_.size() - pos_; }
    [[noreturn]] void bad(const std::string& why) const {
        fail("corrupt ", what_, ": ", why, " at byte ", pos_);
    }

private:
    static std::string printable(const char* lit) {
        std::string out;
        for (const char* p = lit; *p; ++p) out += *p == '\n' ? std::string("\\n") : std::string(1, *p);
        return out;
    }
    const std::string& s_;
    const char* what_;
    size_t pos_ = 0;
};

// ---- CharTokenizer ---------------------------------------------------------------------

CharTokenizer CharTokenizer::build(const std::string& text) {
    SYNTH_CHECK(!text.empty(), "cannot build a character vocabulary from empty text");
    // ASCII is marked in a table; the rarer other code points are sorted and deduplicated.
    bool ascii[128] = {};
    std::vector<uint32_t> other;
    for (uint32_t cp : utf8_decode(text, "text")) {
        if (cp < 128)
            ascii[cp] = true;
        else
            other.push_back(cp);
    }
    std::sort(other.begin(), other.end());
    other.erase(std::unique(other.begin(), other.end()), other.end());
    CharTokenizer t;
    for (uint32_t cp = 0; cp < 128; ++cp)
        if (ascii[cp]) t.codepoints.push_back(cp);
    t.codepoints.insert(t.codepoints.end(), other.begin(), other.end());
    return t;
}

std::vector<int32_t> CharTokenizer::encode(const std::string& text, const std::string& source) const {
    // ASCII, almost all of the text in practice, goes through a direct table.
    int32_t ascii[128];
    std::fill(ascii, ascii + 128, -1);
    for (size_t id = 0; id < codepoints.size() && codepoints[id] < 128; ++id)
        ascii[codepoints[id]] = (int32_t)id;

    std::vector<int32_t> ids;
    ids.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        uint32_t cp;
        const char* why = nullptr;
        int len = utf8_next(text, i, &cp, &why);
        if (len == 0) utf8_fail(text, i, why, source);
        int32_t id = -1;
        if (cp < 128) {
            id = ascii[cp];
        } else {
            auto it = std::lower_bound(codepoints.begin(), codepoints.end(), cp);
            if (it != codepoints.end() && *it == cp) id = (int32_t)(it - codepoints.begin());
        }
        if (id < 0) {
            char hex[16];
            std::snprintf(hex, sizeof hex, "U+%04X", (unsigned)cp);
            fail(source, ": character ", hex, " at byte offset ", i, " is not in the vocabulary (",
                 codepoints.size(), " characters)");
        }
        ids.push_back(id);
        i += (size_t)len;
    }
    return ids;
}

std::string CharTokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    out.reserve(ids.size());
    for (int32_t id : ids) {
        SYNTH_CHECK(id >= 0 && (size_t)id < codepoints.size(), "character id ", id,
                    " out of range [0, ", codepoints.size(), ")");
        append_utf8(out, codepoints[(size_t)id]);
    }
    return out;
}

std::string CharTokenizer::serialize() const {
    std::string out = "synth-char-vocab 1\n" + std::to_string(codepoints.size()) + "\n";
    for (size_t i = 0; i < codepoints.size(); ++i) {
        if (i) out += ' ';
        out += std::to_string(codepoints[i]);
    }
    return out + "\n";
}

CharTokenizer CharTokenizer::deserialize(const std::string& bytes) {
    Parser p(bytes, "character vocabulary");
    p.literal("synth-char-vocab 1\n");
    uint64_t n = p.number(0x110000);
    if (n == 0) p.bad("empty vocabulary");
    p.literal("\n");
    CharTokenizer t;
    for (uint64_t i = 0; i < n; ++i) {
        if (i) p.literal(" ");
        uint32_t cp = (uint32_t)p.number(0x10FFFF);
        if (cp >= 0xD800 && cp <= 0xDFFF) p.bad("surrogate code point");
        if (i && cp <= t.codepoints.back()) p.bad("code points not strictly increasing");
        t.codepoints.push_back(cp);
    }
    p.literal("\n");
    p.end();
    return t;
}

// ---- WordTokenizer ---------------------------------------------------------------------

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

// Walks `text` as PTB does: on_word(word, line) for each whitespace-separated word and
// on_eol(line) at the end of every line, including a last line without a final '\n'.
template <typename OnWord, typename OnEol>
static void for_each_word(const std::string& text, OnWord on_word, OnEol on_eol) {
    size_t line = 1, i = 0;
    while (i < text.size()) {
        if (text[i] == '\n') {
            on_eol(line++);
            ++i;
        } else if (is_space(text[i])) {
            ++i;
        } else {
            size_t start = i;
            while (i < text.size() && !is_space(text[i])) ++i;
            on_word(std::string_view(text).substr(start, i - start), line);
        }
    }
    if (!text.empty() && text.back() != '\n') on_eol(line);
}

static const char* const kEos = "<eos>";
static const char* const kUnk = "<unk>";

// Appends `w` as the next id; also records the ids of <eos> and <unk>.
static void add_word(WordTokenizer& t, std::string w) {
    int32_t id = (int32_t)t.words.size();
    if (w == kEos) t.eos = id;
    if (w == kUnk) t.unk = id;
    t.index.emplace(w, id);
    t.words.push_back(std::move(w));
}

WordTokenizer WordTokenizer::build(const std::string& train_text) {
    check_text(train_text, "training text");
    WordTokenizer t;
    auto add_if_new = [&](std::string w) {
        if (!t.index.count(w)) add_word(t, std::move(w));
    };
    for_each_word(
        train_text, [&](std::string_view w, size_t) { add_if_new(std::string(w)); },
        [&](size_t) { add_if_new(kEos); });
    return t;
}

std::vector<int32_t> WordTokenizer::encode(const std::string& text, const std::string& source) const {
    SYNTH_CHECK(eos >= 0, "word vocabulary has no ", kEos);
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 4);
    std::string word;
    for_each_word(
        text,
        [&](std::string_view w, size_t line) {
            word.assign(w.data(), w.size());
            auto it = index.find(word);
            if (it != index.end()) {
                ids.push_back(it->second);
            } else {
                SYNTH_CHECK(unk >= 0, "word '", word, "' (line ", line, " of ", source,
                            ") is not in the vocabulary, which has no ", kUnk);
                ids.push_back(unk);
            }
        },
        [&](size_t) { ids.push_back(eos); });
    return ids;
}

std::string WordTokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    bool line_start = true;
    for (int32_t id : ids) {
        SYNTH_CHECK(id >= 0 && (size_t)id < words.size(), "word id ", id, " out of range [0, ",
                    words.size(), ")");
        if (id == eos) {
            out += '\n';
            line_start = true;
        } else {
            if (!line_start) out += ' ';
            out += words[(size_t)id];
            line_start = false;
        }
    }
    return out;
}

std::string WordTokenizer::serialize() const {
    std::string out = "synth-word-vocab 1\n" + std::to_string(words.size()) + "\n";
    for (const std::string& w : words) out += w + "\n";
    return out;
}

WordTokenizer WordTokenizer::deserialize(const std::string& bytes) {
    Parser p(bytes, "word vocabulary");
    p.literal("synth-word-vocab 1\n");
    // Each word takes at least two bytes ("w\n"), which bounds any claimed count.
    uint64_t n = p.number(std::min<uint64_t>(bytes.size(), std::numeric_limits<int32_t>::max()));
    p.literal("\n");
    if (n > p.remaining() / 2) p.bad("word count larger than the data");
    WordTokenizer t;
    for (uint64_t i = 0; i < n; ++i) {
        std::string w = p.line();
        if (w.empty()) p.bad("empty word");
        if (std::any_of(w.begin(), w.end(), is_space)) p.bad("word containing whitespace");
        for (size_t k = 0; k < w.size();) {
            uint32_t cp;
            const char* why = nullptr;
            int len = utf8_next(w, k, &cp, &why);
            if (len == 0 || cp == 0) p.bad("word that is not valid UTF-8 text");
            k += (size_t)len;
        }
        if (t.index.count(w)) p.bad("duplicate word '" + w + "'");
        add_word(t, std::move(w));
    }
    p.end();
    if (t.eos < 0) p.bad(std::string("no ") + kEos + " in the vocabulary");
    return t;
}

// ---- language-model corpora ------------------------------------------------------------

std::string LmCorpus::decode(const std::vector<int32_t>& ids) const {
    return kind == "word" ? words.decode(ids) : chars.decode(ids);
}

std::string LmCorpus::serialize_tokenizer() const {
    return kind == "word" ? words.serialize() : chars.serialize();
}

static std::string read_text(const std::string& path) {
    std::string text = read_file(path);
    check_text(text, path);
    return text;
}

// Character level with nanoGPT's split: vocabulary from the whole text, train = the first
// int(n * 0.9) characters (computed in double precision as Python does), valid = the rest.
static LmCorpus load_char_corpus(const std::string& name, const std::string& path) {
    std::string text = read_text(path);
    LmCorpus c;
    c.name = name;
    c.kind = "char";
    c.chars = CharTokenizer::build(text);
    c.vocab = c.chars.size();
    std::vector<int32_t> ids = c.chars.encode(text);
    size_t n_train = (size_t)((double)ids.size() * 0.9);
    SYNTH_CHECK(n_train >= 1 && n_train < ids.size(), "'", path, "' has ", ids.size(),
                " characters, too few for a 90/10 train/valid split");
    c.train.assign(ids.begin(), ids.begin() + (std::ptrdiff_t)n_train);
    c.valid.assign(ids.begin() + (std::ptrdiff_t)n_train, ids.end());
    c.test = c.valid;
    c.test_is_valid = true;
    return c;
}

static LmCorpus load_ptb() {
    std::string train_path = data_file("ptb", "ptb.train.txt");
    std::string valid_path = data_file("ptb", "ptb.valid.txt");
    std::string test_path = data_file("ptb", "ptb.test.txt");
    std::string train_text = read_text(train_path);
    LmCorpus c;
    c.name = "ptb";
    c.kind = "word";
    c.words = WordTokenizer::build(train_text);
    c.vocab = c.words.size();
    c.train = c.words.encode(train_text, train_path);
    c.valid = c.words.encode(read_text(valid_path), valid_path);
    c.test = c.words.encode(read_text(test_path), test_path);
    return c;
}

LmCorpus load_lm_corpus(const std::string& name) {
    if (name == "tinyshakespeare") return load_char_corpus(name, data_file(name, "input.txt"));
    if (name == "ptb") return load_ptb();
    SYNTH_CHECK(is_file(name), "'", name,
                "' is neither a known corpus (tinyshakespeare, ptb) nor a readable text file");
    return load_char_corpus(name, name);
}

// ---- language-model batches ------------------------------------------------------------

// splitmix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer whose
// outputs for consecutive inputs look independent.
static uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void check_window(const std::vector<int32_t>& tokens, int batch, int seq) {
    SYNTH_CHECK(batch > 0 && seq > 0, "batch and sequence length must be positive, got batch=",
                batch, " seq=", seq);
    SYNTH_CHECK(tokens.size() >= (size_t)seq + 1, "split has ", tokens.size(),
                " tokens, fewer than seq + 1 = ", (size_t)seq + 1);
}

void sample_lm_batch(const std::vector<int32_t>& tokens, int batch, int seq, uint64_t seed,
                     uint64_t step, int32_t* x, int32_t* y) {
    check_window(tokens, batch, seq);
    uint64_t n_starts = tokens.size() - (size_t)seq;  // s in [0, len - seq - 1]
    uint64_t key = splitmix64(splitmix64(seed) ^ step);
    for (int r = 0; r < batch; ++r) {
        uint64_t h = splitmix64(key ^ (uint64_t)r);
        // Lemire's multiply-shift maps h to [0, n_starts) without a division.
        size_t s = (size_t)(((unsigned __int128)h * n_starts) >> 64);
        std::memcpy(x + (size_t)r * seq, tokens.data() + s, (size_t)seq * sizeof(int32_t));
        std::memcpy(y + (size_t)r * seq, tokens.data() + s + 1, (size_t)seq * sizeof(int32_t));
    }
}

std::vector<LmBatch> eval_lm_batches(const std::vector<int32_t>& tokens, int batch, int seq) {
    check_window(tokens, batch, seq);
    size_t windows = (tokens.size() - 1) / (size_t)seq;
    std::vector<LmBatch> out;
    for (size_t w0 = 0; w0 < windows; w0 += (size_t)batch) {
        LmBatch b;
        b.rows = (int)std::min<size_t>((size_t)batch, windows - w0);
        b.seq = seq;
        size_t first = w0 * (size_t)seq, count = (size_t)b.rows * seq;
        b.x.assign(tokens.begin() + (std::ptrdiff_t)first, tokens.begin() + (std::ptrdiff_t)(first + count));
        b.y.assign(tokens.begin() + (std::ptrdiff_t)(first + 1),
                   tokens.begin() + (std::ptrdiff_t)(first + 1 + count));
        out.push_back(std::move(b));
    }
    return out;
}

// ---- parallel corpora ------------------------------------------------------------------

ParallelCorpus load_parallel(const std::string& dir, const std::string& split,
                             const std::string& src_lang, const std::string& tgt_lang) {
    std::string src_path = dir + "/" + split + "." + src_lang;
    std::string tgt_path = dir + "/" + split + "." + tgt_lang;
    for (const std::string& path : {src_path, tgt_path})
        SYNTH_CHECK(is_file(path), "'", path, "' not found (Multi30k splits: train, val, test2016, ",
                    "test2017_flickr, test2017_mscoco, test2018_flickr; run `make data` to fetch them)");
    ParallelCorpus c;
    c.src = split_lines(read_text(src_path));
    c.tgt = split_lines(read_text(tgt_path));
    SYNTH_CHECK(c.src.size() == c.tgt.size(), src_path, " has ", c.src.size(), " lines but ",
                tgt_path, " has ", c.tgt.size(), "; the two sides must be line-aligned");
    // A side with no word at all (every line empty or whitespace) has nothing to translate or
    // learn: refused, as the classifier's loaders refuse such text, rather than a BLEU of 0.
    for (const auto* side : {&c.src, &c.tgt}) {
        const bool any_word = std::any_of(side->begin(), side->end(), [](const std::string& l) {
            return std::any_of(l.begin(), l.end(), [](char ch) { return !std::isspace((unsigned char)ch); });
        });
        SYNTH_CHECK(any_word, side == &c.src ? src_path : tgt_path, ": every one of its ", side->size(),
                    " lines is empty or whitespace; there is no sentence to translate");
    }
    return c;
}

}  // namespace synth

// corpus.h: the data sets as token streams and sentence pairs.
//
//   LmCorpus c = load_lm_corpus("tinyshakespeare");   // or "ptb", or a path to a text file
//   sample_lm_batch(c.train, B, T, seed, step, x, y);  // x, y: (B, T) int32, y = x shifted by one
//   for (const LmBatch& b : eval_lm_batches(c.valid, B, T)) ...
//   ParallelCorpus p = load_parallel(data_dir("multi30k_en_de"), "train", "en", "de");
//
// The files are fetched and sha256-checked by data/fetch.sh (see data/README.md); this code
// only reads them, validates that they are text, tokenizes and splits them.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/utf8.h"

namespace synth {

// ---- where the files live --------------------------------------------------------------

// The directory holding the files of `set` ("tinyshakespeare", "ptb", "multi30k_en_de"):
// $SYNTH_DATA_DIR/<set> if that variable is set, else data/cache/<set> relative to the
// working directory (binaries run from the repository root). Throws synth::Error telling the
// user to run `make data` if the directory does not exist.
std::string data_dir(const std::string& set);
// The directory data sets live in: $SYNTH_DATA_DIR, else data/cache (generated sets, such as
// ListOps, are written there too).
std::string data_root();


// ---- tokenizers ------------------------------------------------------------------------

// Character-level: one token per Unicode code point. The vocabulary is the sorted set of
// code points of the text it was built from (nanoGPT: sorted(set(text))); for ASCII text such
// as Tiny Shakespeare that is simply the sorted distinct bytes.
struct CharTokenizer {
    std::vector<uint32_t> codepoints;  // id -> code point, strictly increasing

    // Throws if `text` is not valid UTF-8 or is empty.
    static CharTokenizer build(const std::string& text);
    int size() const { return (int)codepoints.size(); }
    // Throws on invalid UTF-8 or on a character not in the vocabulary (with its offset), naming
    // `source` (the file, or the flag that gave the text).
    std::vector<int32_t> encode(const std::string& text, const std::string& source = "text") const;
    // Throws on an id outside [0, size()).
    std::string decode(const std::vector<int32_t>& ids) const;

    // A small text format: "synth-char-vocab 1\n<n>\n<cp_0> <cp_1> ... <cp_n-1>\n".
    // deserialize() accepts exactly what serialize() writes; anything else (truncated, unsorted,
    // duplicate or invalid code points, trailing bytes) throws synth::Error.
    std::string serialize() const;
    static CharTokenizer deserialize(const std::string& bytes);
};

// Word-level, PTB convention: words are split on ASCII whitespace and "<eos>" is appended at
// the end of every line (also the last one when the text lacks a final '\n'). The vocabulary
// is built from the training text only, in order of first occurrence (as PyTorch's
// word_language_model example), so ids are deterministic.
struct WordTokenizer {
    std::vector<std::string> words;                  // id -> word
    std::unordered_map<std::string, int32_t> index;  // word -> id
    int32_t eos = -1;                                // id of "<eos>"
    int32_t unk = -1;                                // id of "<unk>", or -1 if absent

    static WordTokenizer build(const std::string& train_text);
    int size() const { return (int)words.size(); }
    // A word missing from the vocabulary becomes <unk> if the vocabulary has one; otherwise
    // encode throws, naming the word, `source` and its line.
    std::vector<int32_t> encode(const std::string& text, const std::string& source = "text") const;
    // Words joined by single spaces, each <eos> rendered as '\n'. Throws on an out-of-range id.
    std::string decode(const std::vector<int32_t>& ids) const;

    // "synth-word-vocab 1\n<n>\n" followed by one word per line. deserialize() rejects empty
    // words, words containing whitespace or invalid UTF-8, duplicates, a missing "<eos>",
    // a wrong count and trailing bytes.
    std::string serialize() const;
    static WordTokenizer deserialize(const std::string& bytes);
};

// ---- language-model corpora ------------------------------------------------------------

struct LmCorpus {
    std::string name;  // what was passed to load_lm_corpus
    std::string kind;  // "char" or "word"
    int vocab = 0;
    std::vector<int32_t> train, valid, test;
    // Tiny Shakespeare and plain text files have no test split; for them test is a copy of
    // valid and this is true, so reports can say "test (= valid)".
    bool test_is_valid = false;
    CharTokenizer chars;  // used when kind == "char"
    WordTokenizer words;  // used when kind == "word"

    std::string decode(const std::vector<int32_t>& ids) const;
    // The tokenizer of `kind`, serialized (for checkpoints).
    std::string serialize_tokenizer() const;
};

// name = "tinyshakespeare": char level, train = the first 90% of characters, valid = the rest
//        (exactly nanoGPT's split: 1,003,854 / 111,540 tokens, vocab 65), test = valid.
// name = "ptb": word level, ptb.{train,valid,test}.txt, vocabulary from train (10,000 types;
//        929,589 / 73,760 / 82,430 tokens including <eos>).
// anything else: a path to a UTF-8 text file, split like Tiny Shakespeare.
// Every file goes through check_text first.
LmCorpus load_lm_corpus(const std::string& name);

// ---- language-model batches ------------------------------------------------------------

// nanoGPT-style random windows. Row r gets a start s in [0, len - seq - 1] and
//   x[r, :] = tokens[s : s + seq],  y[r, :] = tokens[s + 1 : s + seq + 1]
// x, y are (batch, seq) row-major, owned by the caller. s is a hash of (seed, step, r), so
// the data order is reproducible and a run can resume at any step without saved state.
// Throws if batch or seq is not positive or tokens has fewer than seq + 1 entries.
void sample_lm_batch(const std::vector<int32_t>& tokens, int batch, int seq, uint64_t seed,
                     uint64_t step, int32_t* x, int32_t* y);

// One evaluation batch: `rows` windows of `seq` tokens, x and y (rows, seq) row-major.
struct LmBatch {
    int rows = 0;
    int seq = 0;
    std::vector<int32_t> x, y;
};

// Deterministic evaluation over a whole split: window w has x = tokens[w*seq : (w+1)*seq]
// and y = the same shifted by one, for w = 0 .. (len - 1) / seq - 1; windows do not overlap,
// so every target token tokens[1 .. W*seq] is predicted exactly once. The last
// (len - 1) % seq targets, fewer than one window, are dropped. Windows are grouped `batch`
// at a time; the last group may have fewer rows. Every window has the same length, so the
// mean of per-window mean losses equals the per-token mean. Throws like sample_lm_batch.
std::vector<LmBatch> eval_lm_batches(const std::vector<int32_t>& tokens, int batch, int seq);

// ---- parallel corpora (translation) ----------------------------------------------------

struct ParallelCorpus {
    std::vector<std::string> src, tgt;  // line i of src translates line i of tgt
};

// Reads <dir>/<split>.<src_lang> and <dir>/<split>.<tgt_lang> (Multi30k splits: train, val,
// test2016, test2017_flickr, test2017_mscoco, test2018_flickr). Each line is one sentence with
// only its '\n' removed. Throws on a missing, empty, binary or non-UTF-8 file, and when the
// two files have different numbers of lines.
ParallelCorpus load_parallel(const std::string& dir, const std::string& split,
                             const std::string& src_lang, const std::string& tgt_lang);

}  // namespace synth

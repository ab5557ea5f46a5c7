// bpe.h: byte-pair encoding (Sennrich et al. 2016) with a joint source+target vocabulary,
// lossless up to a fixed text normalisation.
//
// Normalisation (Bpe::normalise), applied before learning and encoding:
//   - U+00A0 (no-break space), U+2009 (thin space) and TAB become a plain space;
//   - U+200B (zero-width space) and U+FEFF (byte-order mark) are deleted;
//   - runs of spaces collapse to one; leading and trailing spaces are stripped.
// Nothing else changes: no case folding, no Unicode normalisation, other control characters
// (including '\r' and '\n') are kept. The rules match UTF-8 byte sequences, so invalid UTF-8
// passes through unchanged.
//
// Round trip: decode(encode(x)) == normalise(x), byte for byte, for every input x.
// This works because, after normalisation, words are exactly the maximal runs of non-space
// bytes separated by single spaces, and:
//   - each word is encoded with a word-start marker "▁" (U+2581) in front, as in
//     SentencePiece, and decoding turns each marker back into a space (and drops the first);
//   - the base vocabulary has all 256 byte tokens <0x00>..<0xFF> ("byte fallback"): a code
//     point not seen in training, invalid UTF-8, and a literal U+2581 in the text are encoded
//     as their bytes, and decoding a byte token emits that raw byte;
//   - merged tokens are concatenations of base tokens, so decoding never loses anything.
//
// Vocabulary layout (ids):
//   0 <pad>, 1 <bos>, 2 <eos>, 3 <unk>        special tokens (encode never emits them; decode skips them)
//   4 .. 259                                  byte tokens <0x00> .. <0xFF>
//   260                                       the word-start marker "▁"
//   261 .. 261+C-1                            the C code points seen in training, most frequent first
//   261+C ..                                  merges, in the order they were learned
//
// Learning counts each distinct word once with its frequency, then repeatedly merges the most
// frequent adjacent pair (ties: smaller left id, then smaller right id), updating pair counts
// only in the words that contain the merged pair. Byte tokens never take part in merges, and a
// merge whose token would exceed kMaxPieceBytes bytes is never made.
//
// Encoding applies the merges in learned order (repeatedly merging the adjacent pair of lowest
// rank), which segments a word exactly as learning did. Results are cached per word; encode()
// is safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace synth {

class Bpe {
public:
    static constexpr int kPad = 0, kBos = 1, kEos = 2, kUnk = 3;
    static constexpr int kFirstByte = 4;      // byte b has id kFirstByte + b
    static constexpr int kMarker = 260;       // "▁", the start of a word
    static constexpr int kFirstChar = 261;    // first learned code point
    static constexpr int kMaxPieceBytes = 256;

    // The normalisation described at the top of this file.
    static std::string normalise(const std::string& text);

    // Learns characters and merges from `lines` (e.g. the source and target sides of a parallel
    // corpus together) until the vocabulary has `vocab_size` tokens or no pair occurs twice.
    // Throws synth::Error if vocab_size is smaller than the base vocabulary (special, byte,
    // marker and character tokens).
    static Bpe learn(const std::vector<std::string>& lines, int vocab_size);

    // normalise(text) as token ids (no <bos>/<eos>; the caller adds them).
    std::vector<int> encode(const std::string& text) const;
    // Concatenated token texts with markers turned into spaces and the leading space dropped.
    // Throws synth::Error on an id outside [0, vocab_size()).
    std::string decode(const std::vector<int>& ids) const;

    int vocab_size() const { return (int)pieces_.size(); }
    int num_merges() const { return (int)merges_.size(); }
    // The token as text: "<eos>", "<0xE2>", "▁", "▁the", "ing". Throws on a bad id.
    std::string token_text(int id) const;

    // A line-oriented text format: a header, the characters (hex UTF-8 bytes, in id order)
    // and the merges (pairs of ids, in order). deserialize() validates everything and throws
    // synth::Error on any malformed, inconsistent or truncated input.
    std::string serialize() const;
    static Bpe deserialize(const std::string& text);

private:
    Bpe();  // the base vocabulary without characters: specials, bytes, marker

    // Byte and special tokens never merge, nor pairs whose token would exceed kMaxPieceBytes.
    bool can_merge(int left, int right) const;
    void add_char(const std::string& utf8);
    void add_merge(int left, int right);
    // Token ids of one word (without its marker), merges applied.
    std::vector<int> encode_word(std::string_view word) const;

    std::vector<std::string> pieces_;   // token_text of every id
    std::vector<std::string> surface_;  // what decode emits for every id
    std::unordered_map<std::string, int> char_ids_;
    std::vector<std::pair<int, int>> merges_;
    std::unordered_map<uint64_t, int> merge_rank_;  // (left << 32 | right) -> index in merges_

    struct Cache;
    std::shared_ptr<Cache> cache_;  // word -> ids; shared by copies, which have the same merges
};

}  // namespace synth

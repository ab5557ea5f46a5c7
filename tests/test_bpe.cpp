// Tests for src/text/bpe.h: normalisation, merge learning, lossless round trips, serialisation.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "skips.h"
#include "text/bpe.h"
#include "base/error.h"
#include "data_cache.h"

using synth::Bpe;

namespace {

// Lines of a text file, or nothing if it cannot be opened.
std::vector<std::string> read_lines(const std::string& path, size_t max_lines = SIZE_MAX) {
    std::vector<std::string> lines;
    std::ifstream in(path);
    for (std::string line; lines.size() < max_lines && std::getline(in, line);) lines.push_back(line);
    return lines;
}

const std::vector<std::string> kSmallCorpus = {
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
    "A man in an orange hat starring at something.",
    "Ein Boston Terrier läuft über saftig-grünes Gras vor einem weißen Zaun.",
    "A Boston Terrier is running on lush green grass in front of a white fence.",
    "Ein Mädchen in einem Karateanzug bricht einen Stock mit einem Tritt.",
    "A girl in karate uniform breaking a stick with a front kick.",
};

// Text that exercises every normalisation rule, unseen characters, invalid UTF-8 and a literal
// marker character (U+2581), which must not be mistaken for a word boundary.
const std::vector<std::string> kHardTexts = {
    "",
    "   ",
    "\t\xC2\xA0\xE2\x80\x8B",
    "Ein  Mann\tmit\xC2\xA0Hut ",
    "\xEF\xBB\xBFZwei\xE2\x80\x89Hunde\xE2\x80\x8B.",
    "\xE6\xBC\xA2\xE5\xAD\x97 and \xF0\x9F\x99\x82 emoji",  // 漢字, 🙂: never seen in training
    "invalid \xFF\xFE bytes \xC3 and \xE2\x82",
    "\xE2\x96\x81 literal \xE2\x96\x81marker\xE2\x96\x81",
    "control \x01\r\n\x7F chars",
    "a",
};

}  // namespace

TEST_CASE("bpe: normalisation") {
    CHECK(Bpe::normalise("a\xC2\xA0" "b") == "a b");        // NBSP
    CHECK(Bpe::normalise("a\xE2\x80\x89" "b") == "a b");    // thin space
    CHECK(Bpe::normalise("a\tb") == "a b");                 // tab
    CHECK(Bpe::normalise("a\xE2\x80\x8B" "b") == "ab");     // zero-width space is deleted
    CHECK(Bpe::normalise("\xEF\xBB\xBF" "ab") == "ab");     // BOM is deleted
    CHECK(Bpe::normalise("  a   b  ") == "a b");            // runs collapse, ends are stripped
    CHECK(Bpe::normalise("a \xE2\x80\x8B b") == "a b");     // deletion first, then collapsing
    CHECK(Bpe::normalise("\t \xC2\xA0") == "");
    CHECK(Bpe::normalise("a\nb\r") == "a\nb\r");            // other control characters are kept
    CHECK(Bpe::normalise("Stra\xC3\x9F" "e") == "Stra\xC3\x9F" "e");
    for (const std::string& t : kHardTexts) CHECK(Bpe::normalise(Bpe::normalise(t)) == Bpe::normalise(t));
}

TEST_CASE("bpe: merges learned by hand") {
    // Words: ▁low x3, ▁lower x1, ▁newest x2. Characters by frequency (ties by bytes):
    // w 6, e 5, l 4, o 4, n 2, s 2, t 2, r 1 -> ids 261..268 after the marker (260).
    // Pair counts: (▁,l) = (l,o) = (o,w) = 4 are the largest; ties go to the smaller left id,
    // so the merges are ▁+l (left id 260), then o+w (264 < id of ▁l), then ▁l+ow. Then all
    // remaining pairs (from newest) have count 2 and the smallest left id is ▁ again: ▁+n.
    std::vector<std::string> corpus = {"low low low", "lower newest newest"};
    Bpe bpe = Bpe::learn(corpus, 261 + 8 + 4);
    REQUIRE(bpe.vocab_size() == 273);
    CHECK(bpe.token_text(261) == "w");
    CHECK(bpe.token_text(268) == "r");
    CHECK(bpe.token_text(269) == "\xE2\x96\x81l");
    CHECK(bpe.token_text(270) == "ow");
    CHECK(bpe.token_text(271) == "\xE2\x96\x81low");
    CHECK(bpe.token_text(272) == "\xE2\x96\x81n");
    CHECK(bpe.encode("lower low") == std::vector<int>{271, 262, 268, 271});
    CHECK(bpe.decode({271, 262, 268, 271}) == "lower low");

    // Learning stops when no pair occurs twice, whatever the requested size.
    Bpe all = Bpe::learn(corpus, 100000);
    CHECK(all.vocab_size() < 100000);
    CHECK(all.encode("newest") == std::vector<int>{all.vocab_size() - 1});  // "▁newest" is the last merge
}

TEST_CASE("bpe: token ids and special tokens") {
    Bpe bpe = Bpe::learn(kSmallCorpus, 400);
    CHECK(bpe.vocab_size() <= 400);
    CHECK(bpe.token_text(Bpe::kPad) == "<pad>");
    CHECK(bpe.token_text(Bpe::kBos) == "<bos>");
    CHECK(bpe.token_text(Bpe::kEos) == "<eos>");
    CHECK(bpe.token_text(Bpe::kUnk) == "<unk>");
    CHECK(bpe.token_text(Bpe::kFirstByte + 0x41) == "<0x41>");
    CHECK(bpe.token_text(Bpe::kMarker) == "\xE2\x96\x81");
    CHECK_THROWS_AS(bpe.token_text(-1), synth::Error);
    CHECK_THROWS_AS(bpe.token_text(bpe.vocab_size()), synth::Error);
    // Special tokens decode to nothing, so <bos> ... <eos> framing is harmless.
    std::vector<int> ids = bpe.encode("Ein Mann");
    for (int id : ids) CHECK((id >= Bpe::kMarker && id < bpe.vocab_size()));
    ids.insert(ids.begin(), Bpe::kBos);
    ids.push_back(Bpe::kEos);
    CHECK(bpe.decode(ids) == "Ein Mann");
    CHECK_THROWS_AS(bpe.decode({bpe.vocab_size()}), synth::Error);
    CHECK_THROWS_AS(bpe.decode({-5}), synth::Error);
    // vocab_size below the base vocabulary is an error, not a silent adjustment.
    CHECK_THROWS_AS(Bpe::learn(kSmallCorpus, 262), synth::Error);
}

TEST_CASE("bpe: round trip on a small corpus, including unseen characters") {
    Bpe bpe = Bpe::learn(kSmallCorpus, 400);
    for (const std::string& line : kSmallCorpus) CHECK(bpe.decode(bpe.encode(line)) == line);
    for (const std::string& t : kHardTexts) CHECK(bpe.decode(bpe.encode(t)) == Bpe::normalise(t));
    // Unseen code points fall back to their bytes.
    std::vector<int> ids = bpe.encode("\xE6\xBC\xA2");  // 漢
    CHECK(ids == std::vector<int>{Bpe::kMarker, Bpe::kFirstByte + 0xE6, Bpe::kFirstByte + 0xBC, Bpe::kFirstByte + 0xA2});
    // Merges shorten the encoding of training text.
    CHECK(bpe.encode(kSmallCorpus[0]).size() < kSmallCorpus[0].size() / 2);
    // Encoding is deterministic and the per-word cache changes nothing.
    CHECK(bpe.encode(kSmallCorpus[2]) == bpe.encode(kSmallCorpus[2]));
}

TEST_CASE("bpe: learning is deterministic") {
    CHECK(Bpe::learn(kSmallCorpus, 350).serialize() == Bpe::learn(kSmallCorpus, 350).serialize());
}

TEST_CASE("bpe: round trip on the Multi30k training text" * synth_test::skip_unless(synth_test::has_data("multi30k_en_de"), "data set multi30k_en_de missing: run `make data`")) {
    const std::string dir = cached_data_dir("multi30k_en_de");
    if (dir.empty()) return;
    std::vector<std::string> de = read_lines(dir + "/train.de"), en = read_lines(dir + "/train.en");
    REQUIRE_MESSAGE(de.size() == 29000, dir << "/train.de should have 29,000 lines (data/README.md)");
    REQUIRE_MESSAGE(en.size() == 29000, dir << "/train.en should have 29,000 lines (data/README.md)");
    // Learn on a subset, so many test words are split and some characters are unseen.
    std::vector<std::string> subset(de.begin(), de.begin() + 3000);
    subset.insert(subset.end(), en.begin(), en.begin() + 3000);
    Bpe bpe = Bpe::learn(subset, 1000);
    CHECK(bpe.vocab_size() == 1000);
    size_t failures = 0, tokens = 0, bytes = 0;
    for (const std::vector<std::string>* side : {&de, &en}) {
        for (const std::string& line : *side) {
            std::vector<int> ids = bpe.encode(line);
            tokens += ids.size();
            bytes += line.size();
            if (bpe.decode(ids) != Bpe::normalise(line)) {
                if (++failures <= 3) CHECK(bpe.decode(ids) == Bpe::normalise(line));
            }
        }
    }
    CHECK(failures == 0);
    CHECK(tokens * 2 < bytes);  // merges at work: about 2.8 bytes per token with this vocabulary
}

TEST_CASE("bpe: serialize and deserialize") {
    Bpe bpe = Bpe::learn(kSmallCorpus, 400);
    std::string data = bpe.serialize();
    Bpe back = Bpe::deserialize(data);
    CHECK(back.vocab_size() == bpe.vocab_size());
    CHECK(back.serialize() == data);
    for (int id = 0; id < bpe.vocab_size(); ++id) CHECK(back.token_text(id) == bpe.token_text(id));
    for (const std::string& t : kSmallCorpus) CHECK(back.encode(t) == bpe.encode(t));
    for (const std::string& t : kHardTexts) CHECK(back.encode(t) == bpe.encode(t));
}

TEST_CASE("bpe: corrupt serialized data throws synth::Error") {
    Bpe bpe = Bpe::learn({"aa ab aab abab", "ba"}, 268);
    const std::string good = bpe.serialize();
    REQUIRE_NOTHROW(Bpe::deserialize(good));

    // Every truncation fails.
    for (size_t n = 0; n < good.size(); ++n) CHECK_THROWS_AS(Bpe::deserialize(good.substr(0, n)), synth::Error);

    // Hand-made defects (the base vocabulary ends at id 260, so the first character is 261).
    const std::vector<std::string> bad = {
        "",
        "synth-bpe 2\nchars 0\nmerges 0\nend\n",              // unknown version
        "synth-bpe 1\nchars 0\nmerges 0\nend\nx",             // trailing bytes
        "synth-bpe 1\nchars 0\nmerges 0\nend",                // missing final newline
        "synth-bpe 1\nchars 1\n61\n61\nmerges 0\nend\n",      // count says 1, two lines follow
        "synth-bpe 1\nchars 2\n61\n61\nmerges 0\nend\n",      // duplicate character
        "synth-bpe 1\nchars 1\n6\nmerges 0\nend\n",           // odd hex length
        "synth-bpe 1\nchars 1\nzz\nmerges 0\nend\n",          // not hex
        "synth-bpe 1\nchars 1\n6162\nmerges 0\nend\n",        // two characters in one line
        "synth-bpe 1\nchars 1\nc3\nmerges 0\nend\n",          // truncated UTF-8
        "synth-bpe 1\nchars 1\ne29681\nmerges 0\nend\n",      // the marker itself
        "synth-bpe 1\nchars -1\nmerges 0\nend\n",             // negative count
        "synth-bpe 1\nchars 99999999999\n",                    // absurd count
        "synth-bpe 1\nchars 1\n61\nmerges 1\n261 262\nend\n",  // merge refers to a later id
        "synth-bpe 1\nchars 1\n61\nmerges 1\n65 261\nend\n",   // merge of a byte token
        "synth-bpe 1\nchars 1\n61\nmerges 1\n0 261\nend\n",    // merge of a special token
        "synth-bpe 1\nchars 1\n61\nmerges 2\n261 261\n261 261\nend\n",  // duplicate merge
        "synth-bpe 1\nchars 1\n61\nmerges 1\n261  261\nend\n",  // malformed number
        "synth-bpe 1\nchars 1\n61\nmerges 1\n261\nend\n",       // one id only
        "synth-bpe 1\nchars 1\n61\nmerges 1\n+261 261\nend\n",  // sign
    };
    for (const std::string& b : bad) CHECK_THROWS_AS(Bpe::deserialize(b), synth::Error);

    // Merges that double a token's length each time hit the piece-length limit instead of
    // exhausting memory.
    std::string doubling = "synth-bpe 1\nchars 1\n61\nmerges 40\n261 261\n";
    for (int k = 0; k < 39; ++k) doubling += std::to_string(262 + k) + " " + std::to_string(262 + k) + "\n";
    CHECK_THROWS_AS(Bpe::deserialize(doubling + "end\n"), synth::Error);

    // Any single-byte change either throws synth::Error or yields a working model.
    for (size_t i = 0; i < good.size(); ++i) {
        for (char c : {'0', '9', ' ', '\n', 'x', '\xFF'}) {
            std::string mutated = good;
            mutated[i] = c;
            try {
                Bpe m = Bpe::deserialize(mutated);
                CHECK(m.decode(m.encode("aab ba \xE6\xBC\xA2")) == "aab ba \xE6\xBC\xA2");
            } catch (const synth::Error&) {
            }
        }
    }
}

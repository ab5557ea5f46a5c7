// Tests for src/text/corpus.h: text validation, tokenizers, corpus splits, batch sampling and
// parallel corpora. The real-data checks read the sets where the binaries do, data_dir()
// (data/cache/ after `make data`, or SYNTH_DATA_DIR; tests/data_cache.h), and are skipped with
// a message when a set is missing. The sizes they check are documented in data/README.md.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "skips.h"
#include "base/error.h"
#include "text/corpus.h"
#include "data_cache.h"
#include "base/io.h"

using namespace synth;

namespace {

// The message of the synth::Error that f() throws, or "<no error>" (a doctest::String, so
// CHECK(error_of(...) == doctest::Contains("...")) prints the message when it fails).
template <typename F>
doctest::String error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

// Sets (or, without a value, unsets) an environment variable for one scope and restores the
// previous state.
struct ScopedEnv {
    std::string name;
    bool had = false;
    std::string old;
    ScopedEnv(const std::string& n, const std::string& value) : ScopedEnv(n) {
        ::setenv(n.c_str(), value.c_str(), 1);
    }
    explicit ScopedEnv(const std::string& n) : name(n) {
        if (const char* v = std::getenv(n.c_str())) had = true, old = v;
        ::unsetenv(n.c_str());
    }
    ~ScopedEnv() {
        if (had)
            ::setenv(name.c_str(), old.c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

// A fresh directory under /tmp, removed with its contents at the end of the scope.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/synth-test-data-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, const std::string& bytes) const {
        std::string p = path + "/" + name;
        write_file_atomic(p, bytes);
        return p;
    }
};

// Runs the rest of the scope in another working directory.
struct ScopedCwd {
    std::filesystem::path old = std::filesystem::current_path();
    explicit ScopedCwd(const std::string& dir) { std::filesystem::current_path(dir); }
    ~ScopedCwd() { std::filesystem::current_path(old); }
};

}  // namespace

// ---- check_text ------------------------------------------------------------------------

TEST_CASE("data: check_text accepts UTF-8 text") {
    CHECK_NOTHROW(check_text("hello\n", "a.txt"));
    CHECK_NOTHROW(check_text("Gr\xC3\xBC\xC3\x9F" "e \xE2\x80\x93 \xE6\x97\xA5 \xF0\x9F\x98\x80\n", "b.txt"));
    CHECK_NOTHROW(check_text("\xF4\x8F\xBF\xBF", "max.txt"));  // U+10FFFF, the last code point
}

TEST_CASE("data: check_text rejects empty, binary and malformed text with a position") {
    CHECK(error_of([] { check_text("", "e.txt"); }) == doctest::Contains("'e.txt' is empty"));
    CHECK(error_of([] { check_text(std::string("ab\ncd\0x", 7), "bin.dat"); }) ==
          doctest::Contains("'bin.dat' looks binary, not text: NUL byte at byte offset 5 (line 2)"));
    CHECK(error_of([] { check_text("a\x80", "c.txt"); }) ==
          doctest::Contains("'c.txt' is not valid UTF-8: unexpected continuation byte at byte offset 1 (line 1)"));
    // '/' written in two and three bytes: overlong forms are a classic filter bypass.
    CHECK(error_of([] { check_text("ok\n\xC0\xAF", "o2.txt"); }) ==
          doctest::Contains("overlong encoding at byte offset 3 (line 2)"));
    CHECK(error_of([] { check_text("\xE0\x80\xAF", "o3.txt"); }) == doctest::Contains("overlong encoding"));
    CHECK(error_of([] { check_text("ab\xE2\x82", "t.txt"); }) ==
          doctest::Contains("truncated multibyte sequence at end of text at byte offset 2"));
    CHECK(error_of([] { check_text("\xE2\x82x", "m.txt"); }) ==
          doctest::Contains("(missing continuation byte) at byte offset 0"));
    CHECK(error_of([] { check_text("\xED\xA0\x80", "s.txt"); }) == doctest::Contains("surrogate"));
    CHECK(error_of([] { check_text("\xF4\x90\x80\x80", "h.txt"); }) == doctest::Contains("above U+10FFFF"));
    CHECK(error_of([] { check_text("a\nb\n\xFF", "f.txt"); }) ==
          doctest::Contains("invalid byte (0xF8-0xFF never occur in UTF-8) at byte offset 4 (line 3)"));
}

// ---- CharTokenizer ---------------------------------------------------------------------

TEST_CASE("data: CharTokenizer has a sorted vocabulary and round-trips ASCII and UTF-8") {
    CharTokenizer t = CharTokenizer::build("hello world");
    CHECK(t.size() == 8);
    CHECK(t.codepoints == std::vector<uint32_t>{' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w'});
    CHECK(t.encode("hello") == std::vector<int32_t>{3, 2, 4, 4, 5});
    CHECK(t.decode(t.encode("low door")) == "low door");

    // One token per code point: "naïve 日本" is 8 code points in 12 bytes.
    std::string text = "na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC";
    CharTokenizer u = CharTokenizer::build(text);
    std::vector<int32_t> ids = u.encode(text);
    CHECK(ids.size() == 8);
    CHECK(u.decode(ids) == text);
    CHECK(u.codepoints.back() == 0x672C);  // 本, the largest

    CHECK(error_of([&] { t.encode("hex"); }) == doctest::Contains("U+0078 at byte offset 2 is not in the vocabulary"));
    // The error names where the text came from: a flag's value is not a file.
    CHECK(error_of([&] { t.encode("h\xFF", "--prompt"); }) == doctest::Contains("'--prompt' is not valid UTF-8"));
    CHECK(error_of([&] { t.encode("hex", "--prompt"); }) == doctest::Contains("--prompt: character U+0078"));
    CHECK(error_of([&] { t.decode({0, 8}); }) == doctest::Contains("character id 8 out of range [0, 8)"));
    CHECK(error_of([&] { t.decode({-1}); }) == doctest::Contains("character id -1 out of range"));
    CHECK(error_of([] { CharTokenizer::build("a\xC3"); }) == doctest::Contains("truncated"));
}

TEST_CASE("data: CharTokenizer serialize/deserialize round-trips and rejects corrupt input") {
    CharTokenizer t = CharTokenizer::build("ab\n\xC3\xA9\xF0\x9F\x98\x80");
    std::string bytes = t.serialize();
    CHECK(bytes == "synth-char-vocab 1\n5\n10 97 98 233 128512\n");
    CHECK(CharTokenizer::deserialize(bytes).codepoints == t.codepoints);

    for (size_t n = 0; n < bytes.size(); ++n)
        CHECK_THROWS_AS(CharTokenizer::deserialize(bytes.substr(0, n)), Error);
    auto err = [](const std::string& b) { return error_of([&] { CharTokenizer::deserialize(b); }); };
    CHECK(err(bytes + "x") == doctest::Contains("trailing bytes"));
    CHECK(err("synth-char-vocab 2\n1\n97\n") == doctest::Contains("expected \"synth-char-vocab 1\\n\""));
    CHECK(err("synth-char-vocab 1\n0\n\n") == doctest::Contains("empty vocabulary"));
    CHECK(err("synth-char-vocab 1\n2\n98 97\n") == doctest::Contains("not strictly increasing"));
    CHECK(err("synth-char-vocab 1\n2\n97 97\n") == doctest::Contains("not strictly increasing"));
    CHECK(err("synth-char-vocab 1\n1\n55296\n") == doctest::Contains("surrogate"));
    CHECK(err("synth-char-vocab 1\n1\n1114112\n") == doctest::Contains("number larger than 1114111"));
    CHECK(err("synth-char-vocab 1\n99999999999999999999999\n") == doctest::Contains("number larger than"));
    CHECK(err("synth-char-vocab 1\n1\n097\n") == doctest::Contains("leading zero"));
    CHECK(err("synth-char-vocab 1\n3\n97 98\n") == doctest::Contains("expected \" \""));
    CHECK(err("synth-char-vocab 1\n1\n-5\n") == doctest::Contains("expected a number"));
}

// ---- WordTokenizer ---------------------------------------------------------------------

TEST_CASE("data: WordTokenizer follows the PTB convention") {
    WordTokenizer t = WordTokenizer::build(" the cat sat \n the dog \n");
    CHECK(t.words == std::vector<std::string>{"the", "cat", "sat", "<eos>", "dog"});
    CHECK(t.eos == 3);
    CHECK(t.unk == -1);

    CHECK(t.encode("the dog sat\n") == std::vector<int32_t>{0, 4, 2, 3});
    // The last line gets its <eos> without a final '\n'; an empty line is just <eos>.
    CHECK(t.encode("cat\n\ndog") == std::vector<int32_t>{1, 3, 3, 4, 3});
    CHECK(t.decode({0, 1, 3, 4, 3}) == "the cat\ndog\n");
    std::vector<int32_t> ids = {0, 4, 2, 3, 1, 3};
    CHECK(t.encode(t.decode(ids)) == ids);

    CHECK(error_of([&] { t.encode("the\nbird\n", "valid.txt"); }) ==
          doctest::Contains("word 'bird' (line 2 of valid.txt) is not in the vocabulary, which has no <unk>"));
    WordTokenizer with_unk = WordTokenizer::build("a <unk> b\n");
    CHECK(with_unk.unk == 1);
    CHECK(with_unk.encode("a zebra\n") == std::vector<int32_t>{0, 1, 3});
    CHECK(error_of([&] { t.decode({5}); }) == doctest::Contains("word id 5 out of range [0, 5)"));
    CHECK(error_of([] { WordTokenizer::build(""); }) == doctest::Contains("is empty"));
}

TEST_CASE("data: WordTokenizer serialize/deserialize round-trips and rejects corrupt input") {
    WordTokenizer t = WordTokenizer::build("the cat <unk>\nsat\n");
    std::string bytes = t.serialize();
    CHECK(bytes == "synth-word-vocab 1\n5\nthe\ncat\n<unk>\n<eos>\nsat\n");
    WordTokenizer back = WordTokenizer::deserialize(bytes);
    CHECK(back.words == t.words);
    CHECK(back.eos == 3);
    CHECK(back.unk == 2);
    CHECK(back.encode("sat the dog\n") == std::vector<int32_t>{4, 0, 2, 3});

    for (size_t n = 0; n < bytes.size(); ++n)
        CHECK_THROWS_AS(WordTokenizer::deserialize(bytes.substr(0, n)), Error);
    auto err = [](const std::string& b) { return error_of([&] { WordTokenizer::deserialize(b); }); };
    CHECK(err(bytes + "more\n") == doctest::Contains("trailing bytes"));
    CHECK(err("synth-word-vocab 1\n2\na\nb\n") == doctest::Contains("no <eos>"));
    CHECK(err("synth-word-vocab 1\n3\na\n<eos>\na\n") == doctest::Contains("duplicate word 'a'"));
    CHECK(err("synth-word-vocab 1\n2\n\n<eos>\n") == doctest::Contains("empty word"));
    CHECK(err("synth-word-vocab 1\n2\na b\n<eos>\n") == doctest::Contains("whitespace"));
    CHECK(err("synth-word-vocab 1\n2\n\xC0\xAF\n<eos>\n") == doctest::Contains("not valid UTF-8"));
    CHECK(err("synth-word-vocab 1\n9000\n<eos>\n") == doctest::Contains("larger than"));
}

// ---- corpora ---------------------------------------------------------------------------

TEST_CASE("data: data_dir honours SYNTH_DATA_DIR and tells how to fetch missing data") {
    TempDir tmp;
    std::filesystem::create_directory(tmp.path + "/myset");
    {
        ScopedEnv env("SYNTH_DATA_DIR", tmp.path);
        CHECK(data_dir("myset") == tmp.path + "/myset");
        doctest::String e = error_of([] { data_dir("ptb"); });
        CHECK(e == doctest::Contains("data set 'ptb' not found"));
        CHECK(e == doctest::Contains("run `make data` (or `bash data/fetch.sh ptb`)"));
        CHECK(error_of([] { load_lm_corpus("ptb"); }) == doctest::Contains("make data"));
    }
}

TEST_CASE("data: without SYNTH_DATA_DIR, data_dir reads data/cache/ and no other directory") {
    // A repository checkout with one set in its cache, and a mirror beside it in the place
    // data/fetch.sh copies from (../shared/data): the mirror is for fetching, never for reading.
    TempDir tmp;
    std::filesystem::create_directories(tmp.path + "/repo/data/cache/tinyshakespeare");
    std::filesystem::create_directories(tmp.path + "/shared/data/ptb");
    ScopedEnv unset("SYNTH_DATA_DIR");
    ScopedCwd cwd(tmp.path + "/repo");
    CHECK(data_dir("tinyshakespeare") == "data/cache/tinyshakespeare");
    doctest::String e = error_of([] { data_dir("ptb"); });
    CHECK(e == doctest::Contains("data set 'ptb' not found in 'data/cache/ptb'"));
    CHECK(e == doctest::Contains("run `make data`"));
    CHECK(cached_data_dir("ptb").empty());  // what the real-data tests below do: skip
    CHECK(cached_data_dir("tinyshakespeare") == "data/cache/tinyshakespeare");
}

TEST_CASE("data: a plain text file is split 90/10 by characters, test = valid") {
    TempDir tmp;
    std::string text;
    for (int i = 0; i < 10; ++i) text += "abcdefgh\xC3\xA9\n";  // 10 code points per line
    std::string path = tmp.write("t.txt", text);
    LmCorpus c = load_lm_corpus(path);
    CHECK(c.kind == "char");
    CHECK(c.vocab == 10);
    CHECK(c.train.size() == 90);
    CHECK(c.valid.size() == 10);
    CHECK(c.test == c.valid);
    CHECK(c.test_is_valid);
    CHECK(c.decode(c.train) + c.decode(c.valid) == text);
    CHECK(CharTokenizer::deserialize(c.serialize_tokenizer()).codepoints == c.chars.codepoints);

    CHECK(error_of([&] { load_lm_corpus(tmp.write("one.txt", "x")); }) ==
          doctest::Contains("too few for a 90/10"));
    CHECK(error_of([&] { load_lm_corpus(tmp.write("bad.txt", "abc\xFF")); }) ==
          doctest::Contains("bad.txt' is not valid UTF-8"));
    CHECK(error_of([] { load_lm_corpus("/nonexistent/shakespeare"); }) ==
          doctest::Contains("neither a known corpus (tinyshakespeare, ptb) nor a readable text file"));
}

TEST_CASE("data: Tiny Shakespeare has nanoGPT's split and 65 characters" * synth_test::skip_unless(synth_test::has_data("tinyshakespeare"), "data set tinyshakespeare missing: run `make data`")) {
    if (cached_data_dir("tinyshakespeare").empty()) return;
    LmCorpus c = load_lm_corpus("tinyshakespeare");
    CHECK(c.kind == "char");
    CHECK(c.vocab == 65);
    CHECK(c.train.size() == 1003854);
    CHECK(c.valid.size() == 111540);
    CHECK(c.test == c.valid);
    CHECK(c.decode(std::vector<int32_t>(c.train.begin(), c.train.begin() + 14)) == "First Citizen:");
}

TEST_CASE("data: PTB has the standard token counts and a 10k vocabulary" * synth_test::skip_unless(synth_test::has_data("ptb"), "data set ptb missing: run `make data`")) {
    if (cached_data_dir("ptb").empty()) return;
    LmCorpus c = load_lm_corpus("ptb");
    CHECK(c.kind == "word");
    CHECK(c.vocab == 10000);
    CHECK(c.train.size() == 929589);
    CHECK(c.valid.size() == 73760);
    CHECK(c.test.size() == 82430);
    CHECK_FALSE(c.test_is_valid);
    CHECK(c.words.unk >= 0);
    CHECK(c.train.back() == c.words.eos);
    CHECK(c.decode(std::vector<int32_t>(c.train.begin(), c.train.begin() + 3)) == "aer banknote berlitz");
    CHECK(WordTokenizer::deserialize(c.serialize_tokenizer()).words == c.words.words);
}

// ---- batches ---------------------------------------------------------------------------

TEST_CASE("data: sample_lm_batch is a pure function of (seed, step, row) and y is x shifted") {
    const int B = 8, T = 16;
    std::vector<int32_t> tokens(1000);
    std::iota(tokens.begin(), tokens.end(), 0);  // token value = its position
    std::vector<int32_t> x(B * T), y(B * T), x2(B * T), y2(B * T);

    sample_lm_batch(tokens, B, T, 42, 7, x.data(), y.data());
    for (int r = 0; r < B; ++r) {
        int32_t s = x[r * T];
        CHECK(s >= 0);
        CHECK(s <= 1000 - T - 1);
        for (int t = 0; t < T; ++t) {
            CHECK(x[r * T + t] == s + t);  // a contiguous window
            CHECK(y[r * T + t] == s + t + 1);
        }
    }
    sample_lm_batch(tokens, B, T, 42, 7, x2.data(), y2.data());
    CHECK(x2 == x);
    CHECK(y2 == y);
    sample_lm_batch(tokens, B, T, 42, 8, x2.data(), y2.data());
    CHECK(x2 != x);
    sample_lm_batch(tokens, B, T, 43, 7, x2.data(), y2.data());
    CHECK(x2 != x);
}

TEST_CASE("data: sample_lm_batch reaches both ends of the start range and checks sizes") {
    // len = seq + 3 leaves exactly the starts {0, 1, 2}; 64 rows must hit each of them.
    std::vector<int32_t> tokens(8);
    std::iota(tokens.begin(), tokens.end(), 0);
    std::vector<int32_t> x(64 * 5), y(64 * 5);
    sample_lm_batch(tokens, 64, 5, 1, 0, x.data(), y.data());
    std::set<int32_t> starts;
    for (int r = 0; r < 64; ++r) starts.insert(x[r * 5]);
    CHECK(starts == std::set<int32_t>{0, 1, 2});

    // len = seq + 1 is the smallest split that works: a single window.
    sample_lm_batch(tokens, 2, 7, 1, 0, x.data(), y.data());
    CHECK(x[7] == 0);
    CHECK(y[13] == 7);
    CHECK(error_of([&] { sample_lm_batch(tokens, 1, 8, 1, 0, x.data(), y.data()); }) ==
          doctest::Contains("split has 8 tokens, fewer than seq + 1 = 9"));
    CHECK(error_of([&] { sample_lm_batch(tokens, 0, 2, 1, 0, x.data(), y.data()); }) ==
          doctest::Contains("must be positive"));
}

TEST_CASE("data: eval_lm_batches tiles the split with non-overlapping windows") {
    std::vector<int32_t> tokens(23);
    std::iota(tokens.begin(), tokens.end(), 0);
    // (23 - 1) / 5 = 4 windows predicting tokens 1..20; targets 21 and 22 are dropped.
    std::vector<LmBatch> batches = eval_lm_batches(tokens, 3, 5);
    REQUIRE(batches.size() == 2);
    CHECK(batches[0].rows == 3);
    CHECK(batches[1].rows == 1);
    std::vector<int32_t> xs, ys;
    for (const LmBatch& b : batches) {
        CHECK(b.seq == 5);
        CHECK(b.x.size() == (size_t)b.rows * 5);
        CHECK(b.y.size() == (size_t)b.rows * 5);
        xs.insert(xs.end(), b.x.begin(), b.x.end());
        ys.insert(ys.end(), b.y.begin(), b.y.end());
    }
    std::vector<int32_t> want_x(20), want_y(20);
    std::iota(want_x.begin(), want_x.end(), 0);
    std::iota(want_y.begin(), want_y.end(), 1);
    CHECK(xs == want_x);
    CHECK(ys == want_y);

    CHECK(eval_lm_batches(std::vector<int32_t>(6), 4, 5).size() == 1);
    CHECK(error_of([] { eval_lm_batches(std::vector<int32_t>(5), 4, 5); }) == doctest::Contains("fewer than seq + 1"));
}

// ---- parallel corpora ------------------------------------------------------------------

TEST_CASE("data: split_lines keeps empty lines inside and ignores one trailing newline") {
    using V = std::vector<std::string>;
    CHECK(split_lines("") == V{});
    CHECK(split_lines("\n") == V{""});
    CHECK(split_lines("a\n\nb") == V{"a", "", "b"});
    CHECK(split_lines("a\nb\n") == V{"a", "b"});
    CHECK(split_lines("a\nb\n\n") == V{"a", "b", ""});
    CHECK(split_lines("a\r\n") == V{"a\r"});  // only the newline is a separator
}

TEST_CASE("data: load_parallel keeps raw lines and rejects misaligned or bad files") {
    TempDir tmp;
    tmp.write("train.en", "A dog runs .\nTwo men  \nlast line");
    tmp.write("train.de", "Ein Hund l\xC3\xA4uft .\nZwei M\xC3\xA4nner\t\nletzte Zeile\n");
    ParallelCorpus p = load_parallel(tmp.path, "train", "en", "de");
    CHECK(p.src == std::vector<std::string>{"A dog runs .", "Two men  ", "last line"});
    CHECK(p.tgt == std::vector<std::string>{"Ein Hund l\xC3\xA4uft .", "Zwei M\xC3\xA4nner\t", "letzte Zeile"});

    tmp.write("val.en", "one\ntwo\nthree\n");
    tmp.write("val.de", "eins\nzwei\n");
    CHECK(error_of([&] { load_parallel(tmp.path, "val", "en", "de"); }) ==
          doctest::Contains(("val.en has 3 lines but " + tmp.path + "/val.de has 2").c_str()));

    tmp.write("e.en", "");
    tmp.write("e.de", "x\n");
    CHECK(error_of([&] { load_parallel(tmp.path, "e", "en", "de"); }) == doctest::Contains("e.en' is empty"));
    tmp.write("b.en", "x\n");
    tmp.write("b.de", std::string("\x1f\x8b\x08\0", 4));
    CHECK(error_of([&] { load_parallel(tmp.path, "b", "en", "de"); }) == doctest::Contains("b.de' looks binary"));
    CHECK(error_of([&] { load_parallel(tmp.path, "test", "en", "de"); }) ==
          doctest::Contains("test.en' not found"));
}

TEST_CASE("data: Multi30k En-De splits are line-aligned with the published sizes" * synth_test::skip_unless(synth_test::has_data("multi30k_en_de"), "data set multi30k_en_de missing: run `make data`")) {
    const std::string dir = cached_data_dir("multi30k_en_de");
    if (dir.empty()) return;
    const std::pair<const char*, size_t> splits[] = {{"train", 29000}, {"val", 1014}, {"test2016", 1000},
                                                     {"test2017_flickr", 1000}, {"test2017_mscoco", 461},
                                                     {"test2018_flickr", 1071}};
    for (const auto& split : splits) {
        ParallelCorpus p = load_parallel(dir, split.first, "en", "de");
        CHECK_MESSAGE(p.src.size() == split.second, split.first);
        CHECK_MESSAGE(p.tgt.size() == split.second, split.first);
    }
    ParallelCorpus val = load_parallel(dir, "val", "de", "en");
    CHECK(val.tgt[0].rfind("A group of men", 0) == 0);
}

// Tests for src/train/safetensors.h: the writer against bytes written out by hand from the format's
// definition, the reader on files laid out as other writers lay them out, export/import of a
// real model's checkpoint bit for bit, every kind of malformed input, and build/export.
// The PyTorch cross-check of exported files is in tests/test_parity.cpp.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "error_of.h"
#include "base/io.h"
#include "train/safetensors.h"
#include "subprocess.h"
#include "models/transformer.h"

using namespace synth;
using synth_test::error_of;
using synth_test::ScratchDir;

namespace {

// A file from its JSON header (unpadded) and data block: the u64 length, then both.
std::string file_of(const std::string& header, const std::string& data = "") {
    const uint64_t n = header.size();
    return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// A small LM with a fixed (untrained) parameter, Rfix's R, alongside trained ones.
LmConfig small_lm() {
    LmConfig c;
    c.vocab = 11, c.layers = 2, c.d_ff = 16, c.dropout = 0.0f;
    c.attn.d_model = 8, c.attn.heads = 2, c.attn.max_len = 6, c.attn.variant = "Rfix+V";
    return c;
}

// A checkpoint of small_lm() with seeded parameters and every exported field set.
Checkpoint lm_checkpoint(uint64_t seed) {
    ParamStore store;
    TransformerLM model(store, small_lm());
    store.finalize(seed);
    Checkpoint ck = capture(store, nullptr);
    ck.config = "d-model=8\nlayers=2\nvariant=Rfix+V\nnote=caf\xc3\xa9 \"quoted\" \\ tab\there\n";
    ck.tokenizer = "synth-char-vocab 1\n3\n10 97 98\n";
    ck.step = 1234;
    return ck;
}

// One tensor "a" of shape (2) at [0, 8], for the malformed-input cases.
const std::string kTwoFloats("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);  // 1.0f, -2.0f

// One tensor "a" has these dtype, shape and data_offsets (as JSON text); the data is kTwoFloats.
std::string tensor_a(const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return file_of("{\"a\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}",
                   kTwoFloats);
}

}  // namespace

TEST_CASE("safetensors: the writer's bytes are the format's, written out by hand") {
    // N = 141 bytes of JSON + 3 spaces of padding = 144 = 0x90; 1.0f, -2.0f, 0.5f little-endian.
    const std::string expected =
        std::string("\x90\x00\x00\x00\x00\x00\x00\x00", 8) +
        "{\"__metadata__\":{\"k\":\"v\\\"\\n\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b.c\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}   " +
        kTwoFloats + std::string("\x00\x00\x00\x3f", 4);
    const std::vector<NamedTensor> tensors = {{"a", {2}, {1.0f, -2.0f}}, {"b.c", {1, 1}, {0.5f}}};
    CHECK(to_safetensors(tensors, {{"k", "v\"\n"}}) == expected);

    SafeTensors st = from_safetensors(expected, "hand.safetensors");
    REQUIRE(st.tensors.size() == 2);
    CHECK(st.tensors[0].name == "a");
    CHECK(st.tensors[0].shape == Shape{2});
    CHECK(same_bits(st.tensors[0].values, {1.0f, -2.0f}));
    CHECK(st.tensors[1].name == "b.c");
    CHECK(st.tensors[1].shape == Shape{1, 1});
    CHECK(same_bits(st.tensors[1].values, {0.5f}));
    CHECK(st.metadata == std::map<std::string, std::string>{{"k", "v\"\n"}});

    // No metadata: no "__metadata__" key; no tensors: an empty object, padded.
    CHECK(to_safetensors({}, {}) == file_of("{}      "));
}

TEST_CASE("safetensors: the reader takes other writers' layouts") {
    // Tensors listed out of data order, whitespace between tokens, metadata last, escapes
    // (\/, \u00e9, a surrogate pair), a scalar (shape [], one value), an empty tensor, and a
    // header length that is not a multiple of 8.
    const std::string header =
        "{ \"z\" : {\"data_offsets\": [4, 12], \"shape\": [2], \"dtype\": \"F32\"},\n"
        "  \"s\\/\\u00e9\\ud83d\\ude00\": {\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},\r\n"
        "\t\"empty\": {\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[12,12]},"
        "\"__metadata__\": {\"format\": \"pt\", \"\": \"\"} }";
    const std::string data = std::string("\x00\x00\x00\x3f", 4) + kTwoFloats;
    SafeTensors st = from_safetensors(file_of(header, data), "other.safetensors");
    REQUIRE(st.tensors.size() == 3);
    CHECK(st.tensors[0].name == "s/\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(st.tensors[0].shape.empty());
    CHECK(same_bits(st.tensors[0].values, {0.5f}));
    CHECK(st.tensors[1].name == "z");
    CHECK(same_bits(st.tensors[1].values, {1.0f, -2.0f}));
    CHECK(st.tensors[2].name == "empty");
    CHECK(st.tensors[2].shape == Shape{0, 3});
    CHECK(st.tensors[2].values.empty());
    CHECK(st.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"", ""}});
    // Written again: the canonical layout, which reads back to the same tensors.
    const std::string canonical = to_safetensors(st.tensors, st.metadata);
    CHECK(to_safetensors(from_safetensors(canonical).tensors, st.metadata) == canonical);
}

TEST_CASE("safetensors: export then import gives the checkpoint's parameters and metadata bit for bit") {
    ScratchDir dir;
    REQUIRE(!dir.path.empty());
    const Checkpoint ck = lm_checkpoint(3);
    const std::string path = dir / "lm.safetensors";
    export_safetensors(path, ck);
    const std::string bytes = read_file(path);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    CHECK(n % 8 == 0);

    const Checkpoint back = import_safetensors(path);
    REQUIRE(back.params.size() == ck.params.size());
    int fixed = 0;
    for (size_t i = 0; i < ck.params.size(); ++i) {
        CAPTURE(ck.params[i].name);
        CHECK(back.params[i].name == ck.params[i].name);
        CHECK(back.params[i].shape == ck.params[i].shape);
        CHECK(back.params[i].trainable == ck.params[i].trainable);
        CHECK(same_bits(back.params[i].values, ck.params[i].values));
        fixed += !ck.params[i].trainable;
    }
    CHECK(fixed == 2);  // block0.attn.Rfix.r, block1.attn.Rfix.r
    CHECK(back.config == ck.config);
    CHECK(back.tokenizer == ck.tokenizer);
    CHECK(back.step == ck.step);
    CHECK(back.adam_m.empty());
    const SafeTensors st = from_safetensors(bytes, path);
    CHECK(st.metadata.at("format") == "synth");
    CHECK(st.metadata.at("fixed") == "block0.attn.Rfix.r,block1.attn.Rfix.r");
    CHECK(to_safetensors(st.tensors, st.metadata) == bytes);

    // Loaded into a freshly built model of the same config, every value is the exported one.
    ParamStore store;
    TransformerLM model(store, small_lm());
    store.finalize(99);
    restore(back, store, nullptr);
    const Checkpoint again = capture(store, nullptr);
    for (size_t i = 0; i < ck.params.size(); ++i) CHECK(same_bits(again.params[i].values, ck.params[i].values));
}

TEST_CASE("safetensors: malformed files give an error naming the file and the problem") {
    const std::string a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    const std::string valid = tensor_a("F32", "[2]", "[0,8]");
    REQUIRE(from_safetensors(valid, "x").tensors.size() == 1);
    const uint64_t huge = 1ULL << 63, over_limit = kMaxSafetensorsHeader + 1;
    const struct {
        std::string bytes, message;
    } cases[] = {
        {"", "truncated: 0 bytes, fewer than the 8"},
        {valid.substr(0, 5), "truncated: 5 bytes"},
        {valid.substr(0, 20), "truncated: the header length 54 runs past the end of the 20-byte file"},
        {std::string(reinterpret_cast<const char*>(&huge), 8) + "{}", "header length 9223372036854775808 is over the limit"},
        {std::string(reinterpret_cast<const char*>(&over_limit), 8), "is over the limit of 100000000 bytes"},
        {valid.substr(0, valid.size() - 4), "data_offsets [0, 8] outside the 4-byte data block"},
        {valid + "junk", "4 trailing bytes after the last tensor"},
        {file_of(""), "expected '{' at the start of the header, found the end of the header"},
        {file_of(std::string(8, '\0')), "expected '{' at the start of the header, found byte 0x00"},
        {file_of("[1]"), "expected '{' at the start of the header, found '['"},
        {file_of("{\"a\":"), "bad header at byte 13: expected '{' opening the entry of tensor 'a', found the end"},
        {file_of("{\"a\" 1}"), "expected ':' after 'a', found '1'"},
        {file_of("{" + a + "}}", kTwoFloats), "expected only spaces after the header's closing '}', found '}'"},
        {file_of("{" + a + " " + a + "}", kTwoFloats), "expected '}' or ',' after a header entry, found '\"'"},
        {file_of("{\"a"), "unterminated string"},
        {file_of(std::string("{\"a\0\":{}}", 9)), "byte 0x00 inside a string"},
        {file_of("{\"a\n\":{}}"), "byte 0x0a inside a string"},
        {file_of("{\"\xff\":{}}"), "invalid UTF-8: invalid byte"},
        {file_of("{\"\xc0\xaf\":{}}"), "invalid UTF-8: overlong encoding"},
        {file_of("{\"\\x\":{}}"), "invalid escape sequence \\'x'"},
        {file_of("{\"\\u12\":{}}"), "\\u escape needs four hex digits"},
        {file_of("{\"\\udc00\":{}}"), "lone low surrogate"},
        {file_of("{\"\\ud800x\":{}}"), "high surrogate not followed by a low one"},
        {tensor_a("F32", "[02]", "[0,8]"), "leading zero"},
        {tensor_a("F32", "[-2]", "[0,8]"), "expected a non-negative integer, found '-'"},
        {tensor_a("F32", "[2.0]", "[0,8]"), "a fraction or an exponent"},
        {tensor_a("F32", "[2]", "[0,18446744073709551616]"), "integer larger than 2^64 - 1"},
        {tensor_a("F32", "[2 2]", "[0,8]"), "expected ']' or ',' in the shape of tensor 'a', found '2'"},
        {file_of("{" + a + "," + a + "}", kTwoFloats), "tensor 'a' appears twice"},
        {file_of("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}"), "field 'dtype' of tensor 'a' appears twice"},
        {file_of("{\"a\":{\"dtype\":\"F32\",\"stride\":[1]}}"), "unknown field 'stride' of tensor 'a'"},
        {file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}"), "tensor 'a' lacks data_offsets"},
        {tensor_a("F32", "[2]", "[0,4,8]"), "has 3 numbers, not [begin, end]"},
        {file_of("{\"__metadata__\":{\"k\":1}}"), "expected a string, found '1'"},
        {file_of("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}"), "metadata key 'k' appears twice"},
        {file_of("{\"__metadata__\":{},\"__metadata__\":{}}"), "__metadata__ appears twice"},
        {tensor_a("F16", "[4]", "[0,8]"), "tensor 'a' has dtype F16; synth reads only F32"},
        {tensor_a("F32", "[3]", "[0,8]"), "tensor 'a' of shape [3] has 3 values but its data_offsets [0, 8] span 8 bytes"},
        {tensor_a("F32", "[2]", "[0,400]"), "data_offsets [0, 400] outside the 8-byte data block"},
        {tensor_a("F32", "[0]", "[8,0]"), "data_offsets [8, 0] outside"},
        {tensor_a("F32", "[2147483647,2147483647]", "[0,8]"),
         "[2147483647, 2147483647] has 4611686014132420609 values but its data_offsets [0, 8] span 8 bytes"},
        {tensor_a("F32", "[2147483647,2147483647,2]", "[0,8]"), "has more than 2^62 values"},
        {tensor_a("F32", "[4294967296]", "[0,8]"), "has dimension 4294967296 in shape [4294967296] (at most 2^31 - 1)"},
        {file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", kTwoFloats),
         "tensor 'b' at [4, 8] overlaps tensor 'a' at [0, 8]"},
        {file_of("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", kTwoFloats),
         "4 bytes before tensor 'b' at [4, 8] belong to no tensor"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.message);
        const doctest::String msg = error_of([&] { from_safetensors(c.bytes, "bad.safetensors"); });
        CHECK(msg == doctest::Contains(c.message.c_str()));
        CHECK(std::string(msg.c_str()).rfind("bad.safetensors: ", 0) == 0);
    }
    // Every truncation of a valid file is refused (the data block no longer matches the header).
    for (size_t cut = 0; cut < valid.size(); ++cut) {
        CAPTURE(cut);
        CHECK(error_of([&] { from_safetensors(valid.substr(0, cut), "cut.safetensors"); }) ==
              doctest::Contains("cut.safetensors: "));
    }
}

TEST_CASE("safetensors: the writer refuses what the format cannot hold") {
    CHECK(error_of([] { to_safetensors({{"a", {2}, {1.0f}}}, {}); }) == doctest::Contains("'a' has 1 values but shape [2]"));
    CHECK(error_of([] { to_safetensors({{"a", {1}, {1.0f}}, {"a", {1}, {1.0f}}}, {}); }) ==
          doctest::Contains("tensor 'a' appears twice"));
    CHECK(error_of([] { to_safetensors({{"__metadata__", {1}, {1.0f}}}, {}); }) ==
          doctest::Contains("cannot be named __metadata__"));
    CHECK(error_of([] { to_safetensors({}, {{"k", "\xff"}}); }) ==
          doctest::Contains("the metadata value of 'k' is not valid UTF-8"));
}

TEST_CASE("safetensors: import refuses files it cannot make a checkpoint of") {
    ScratchDir dir;
    REQUIRE(!dir.path.empty());
    const std::vector<NamedTensor> one = {{"w", {1}, {1.0f}}};
    const std::map<std::string, std::string> synth_meta = {
        {"format", "synth"}, {"config", "variant=V\n"}, {"tokenizer", ""}, {"step", "7"}};
    auto import_with = [&](std::vector<NamedTensor> tensors, std::map<std::string, std::string> meta) {
        write_file_atomic(dir / "x.safetensors", to_safetensors(tensors, meta));
        return error_of([&] { import_safetensors(dir / "x.safetensors"); });
    };
    CHECK(import_with(one, synth_meta) == "<no error>");
    auto with = [&](const std::string& key, const std::string& value) {
        std::map<std::string, std::string> m = synth_meta;
        m[key] = value;
        return m;
    };
    auto without = [&](const std::string& key) {
        std::map<std::string, std::string> m = synth_meta;
        m.erase(key);
        return m;
    };
    CHECK(import_with(one, with("format", "pt")) == doctest::Contains("metadata format is 'pt', not 'synth'"));
    CHECK(import_with(one, without("config")) == doctest::Contains("the metadata has no 'config'"));
    CHECK(import_with(one, with("step", "-1")) == doctest::Contains("metadata step '-1' is not a non-negative integer"));
    CHECK(import_with(one, with("step", "7x")) == doctest::Contains("metadata step '7x'"));
    CHECK(import_with(one, with("fixed", "w,v")) == doctest::Contains("'fixed' names 'v', which is not a tensor"));
    CHECK(import_with(one, with("config", "no equals\n")) == doctest::Contains("is not key=value"));
    CHECK(import_with({{"e", {0}, {}}}, synth_meta) == doctest::Contains("parameter 'e' has shape (0)"));
    CHECK(import_with({{"w", {1, 1, 1, 1, 1}, {1.0f}}}, synth_meta) == doctest::Contains("has 5 dimensions"));
    CHECK(error_of([&] { import_safetensors(dir / "missing.safetensors"); }) == doctest::Contains("cannot open"));
}

TEST_CASE("export: build/export writes a checkpoint's parameters as safetensors") {
    const std::string exe = synth_test::binary_or_skip("export");
    if (exe.empty()) return;
    ScratchDir dir;
    REQUIRE(!dir.path.empty());
    Checkpoint ck = lm_checkpoint(5);
    save_checkpoint(dir / "lm.ckpt", ck);
    synth_test::ProcessResult r =
        synth_test::run_process(exe, {"--checkpoint=" + dir / "lm.ckpt", "--out=" + dir / "lm.safetensors"}, dir.path);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("tensors") != std::string::npos);
    const Checkpoint back = import_safetensors(dir / "lm.safetensors");
    REQUIRE(back.params.size() == ck.params.size());
    for (size_t i = 0; i < ck.params.size(); ++i) CHECK(same_bits(back.params[i].values, ck.params[i].values));
    CHECK(back.config == ck.config);

    r = synth_test::run_process(exe, {"--out=" + dir / "x.safetensors"}, dir.path);
    CHECK(r.status == 1);
    CHECK(r.err.find("error: --checkpoint is required") != std::string::npos);
    r = synth_test::run_process(exe, {"--checkpoint=" + dir / "lm.safetensors", "--out=" + dir / "x.safetensors"}, dir.path);
    CHECK(r.status == 1);
    CHECK(r.err.find("not a synth checkpoint") != std::string::npos);
    // A missing directory is made, as for the report's --out; one that cannot be (under a file) is an error.
    r = synth_test::run_process(exe, {"--checkpoint=" + dir / "lm.ckpt", "--out=" + dir / "new/dir.safetensors"}, dir.path);
    CHECK(r.status == 0);
    r = synth_test::run_process(exe, {"--checkpoint=" + dir / "lm.ckpt", "--out=" + dir / "lm.ckpt/x.safetensors"}, dir.path);
    CHECK(r.status == 1);
    CHECK(r.err.find("lm.ckpt") != std::string::npos);
    // An output that would destroy: the checkpoint it reads, or a directory.
    const std::string before = read_file(dir / "lm.ckpt");
    r = synth_test::run_process(exe, {"--checkpoint=" + dir / "lm.ckpt", "--out=" + dir / "lm.ckpt"}, dir.path);
    CHECK(r.status == 1);
    CHECK(r.err.find("--out") != std::string::npos);
    CHECK(read_file(dir / "lm.ckpt") == before);
    r = synth_test::run_process(exe, {"--checkpoint=" + dir / "lm.ckpt", "--out=" + dir.path}, dir.path);
    CHECK(r.status == 1);
    CHECK(r.err.find("--out") != std::string::npos);
}

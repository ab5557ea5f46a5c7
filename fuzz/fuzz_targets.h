// fuzz_targets.h: what each libFuzzer target checks for one input, shared with the doctest
// that replays the saved crashing inputs (tests/test_fuzz_regressions.cpp).
//
// Every parser of untrusted bytes must either succeed or throw synth::Error: never crash,
// hang, read out of bounds or allocate without bound (the sanitizers and libFuzzer's -rss_limit
// catch those). Beyond that each target checks a round-trip property; a violation throws
// FuzzFailure, which the libFuzzer entry points turn into an abort (a saved crash) and the
// doctest turns into a failed check.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "text/bpe.h"
#include "train/checkpoint.h"
#include "base/error.h"
#include "text/corpus.h"
#include "base/flags.h"
#include "train/safetensors.h"

namespace synth_fuzz {

struct FuzzFailure : std::logic_error {
    using std::logic_error::logic_error;
};

inline void require(bool ok, const std::string& what) {
    if (!ok) throw FuzzFailure(what);
}

// ---- checkpoint ------------------------------------------------------------------------

inline void roundtrip_checkpoint(const std::string& bytes) {
    synth::Checkpoint ck;
    try {
        ck = synth::deserialize_checkpoint(bytes, "fuzz");
    } catch (const synth::Error&) {
        return;
    }
    // What was accepted serializes to bytes that read back to the same serialization.
    const std::string once = synth::serialize_checkpoint(ck);
    require(synth::serialize_checkpoint(synth::deserialize_checkpoint(once)) == once, "checkpoint re-serialization differs");
    // And it restores into a store built from its own table.
    synth::ParamStore store;
    for (const auto& p : ck.params) store.add(p.name, p.shape, synth::Init::Zeros, synth::Decay::No, p.trainable ? synth::Trainable::Yes : synth::Trainable::No);
    store.finalize(0);
    synth::AdamW opt(store, synth::AdamWConfig{});
    synth::restore(ck, store, &opt);
    synth::Checkpoint back = synth::capture(store, &opt);
    for (size_t i = 0; i < ck.params.size(); ++i)
        require(std::memcmp(back.params[i].values.data(), ck.params[i].values.data(),
                            ck.params[i].values.size() * sizeof(float)) == 0,
                "restore/capture changed " + ck.params[i].name);
}

// The bytes as given (nearly always stopped by the checksum), then with a valid checksum in
// the last 8 bytes so the section parsers see the mutations too.
inline void fuzz_checkpoint(const std::string& bytes) {
    roundtrip_checkpoint(bytes);
    if (bytes.size() < 8) return;
    std::string fixed = bytes;
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
    for (size_t i = 0; i + 8 < fixed.size(); ++i) h = (h ^ (uint8_t)fixed[i]) * 0x100000001b3ULL;
    std::memcpy(&fixed[fixed.size() - 8], &h, 8);
    roundtrip_checkpoint(fixed);
}

// ---- safetensors -----------------------------------------------------------------------

// Whatever is accepted writes back (in the canonical layout) to bytes that read back to the
// same tensors and metadata, bit for bit, and write to the same bytes again.
inline void fuzz_safetensors(const std::string& bytes) {
    synth::SafeTensors st;
    try {
        st = synth::from_safetensors(bytes, "fuzz");
    } catch (const synth::Error&) {
        return;
    }
    std::string once;
    try {
        once = synth::to_safetensors(st.tensors, st.metadata);
    } catch (const synth::Error& e) {
        throw FuzzFailure(std::string("an accepted file does not write back: ") + e.what());
    }
    const synth::SafeTensors back = synth::from_safetensors(once, "fuzz (written back)");
    require(back.metadata == st.metadata && back.tensors.size() == st.tensors.size(), "safetensors round trip lost entries");
    for (size_t i = 0; i < st.tensors.size(); ++i) {
        const synth::NamedTensor &a = st.tensors[i], &b = back.tensors[i];
        require(a.name == b.name && a.shape == b.shape && a.values.size() == b.values.size() &&
                    (a.values.empty() || std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0),
                "safetensors round trip changed tensor " + a.name);
    }
    require(synth::to_safetensors(back.tensors, back.metadata) == once, "safetensors re-serialization differs");
}

// ---- flags -----------------------------------------------------------------------------

// One variable of every kind, registered under fixed names.
struct FlagSet {
    int steps = 100;
    int64_t tokens = 0;
    float lr = 1e-3f;
    double decay = 0.5;
    bool verbose = false;
    std::string data = "tinyshakespeare";
    synth::Flags flags{"fuzz", "flag parser fuzz target"};
    FlagSet() {
        flags.add("steps", &steps, "int");
        flags.add("tokens", &tokens, "int64");
        flags.add("lr", &lr, "float");
        flags.add("decay", &decay, "double");
        flags.add("verbose", &verbose, "bool");
        flags.add("data", &data, "string");
    }
};

inline std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

// Arguments are the input's lines. Whatever parses must dump to a config that parses again to
// the same dump (the resolved config saved next to results and in checkpoints).
inline void fuzz_flags(const std::string& text) {
    std::vector<std::string> args = split_lines(text);
    for (const std::string& a : args)
        if (a == "--help" || a == "-h") return;  // prints usage and stops; nothing to check
    FlagSet first;
    try {
        first.flags.parse(args);
    } catch (const synth::Error&) {
        return;
    }
    const std::string dump = first.flags.dump();
    std::vector<std::string> again;
    for (const std::string& line : split_lines(dump))
        if (!line.empty()) again.push_back("--" + line);
    FlagSet second;
    try {
        second.flags.parse(again);
    } catch (const synth::Error& e) {
        throw FuzzFailure(std::string("the dump of accepted flags does not parse: ") + e.what());
    }
    require(second.flags.dump() == dump, "flags dump -> parse -> dump changed the config");
}

// ---- BPE -------------------------------------------------------------------------------

inline void check_bpe_roundtrip(const synth::Bpe& bpe, const std::string& text) {
    std::vector<int> ids = bpe.encode(text);
    require(bpe.decode(ids) == synth::Bpe::normalise(text), "BPE decode(encode(x)) != normalise(x)");
    for (int id : ids) require(id >= 0 && id < bpe.vocab_size(), "BPE encode produced an id out of range");
}

// First byte even: the rest is a serialized BPE (deserialize, re-serialize, round trip).
// First byte odd: the rest is training text (learn, round trip every line and the whole).
inline void fuzz_bpe(const std::string& bytes) {
    if (bytes.empty()) return;
    const std::string rest = bytes.substr(1);
    if (((uint8_t)bytes[0] & 1) == 0) {
        std::optional<synth::Bpe> parsed;
        try {
            parsed.emplace(synth::Bpe::deserialize(rest));
        } catch (const synth::Error&) {
            return;
        }
        const synth::Bpe& bpe = *parsed;
        const std::string s = bpe.serialize();
        require(synth::Bpe::deserialize(s).serialize() == s, "BPE re-serialization differs");
        check_bpe_roundtrip(bpe, rest);
        check_bpe_roundtrip(bpe, "the quick brown fox \xe2\x96\x81 caf\xc3\xa9 \xff\xfe");
        return;
    }
    std::vector<std::string> lines = split_lines(rest);
    std::optional<synth::Bpe> learned;
    try {
        learned.emplace(synth::Bpe::learn(lines, 600));
    } catch (const synth::Error&) {
        return;  // more distinct characters than 600 tokens can hold
    }
    const synth::Bpe& bpe = *learned;
    for (const std::string& line : lines) check_bpe_roundtrip(bpe, line);
    check_bpe_roundtrip(bpe, rest);
    synth::Bpe copy = synth::Bpe::deserialize(bpe.serialize());
    require(copy.encode(rest) == bpe.encode(rest), "deserialized BPE encodes differently");
}

// ---- text validation and the LM tokenizers ----------------------------------------------

// RFC 3629 well-formed UTF-8 (Unicode Table 3-7), written independently of data.cpp.
inline bool reference_utf8(const std::string& s) {
    size_t i = 0;
    auto in = [&](size_t k, int lo, int hi) { return k < s.size() && (uint8_t)s[k] >= lo && (uint8_t)s[k] <= hi; };
    while (i < s.size()) {
        const uint8_t c = (uint8_t)s[i];
        if (c < 0x80) i += 1;
        else if (c >= 0xC2 && c <= 0xDF && in(i + 1, 0x80, 0xBF)) i += 2;
        else if (c == 0xE0 && in(i + 1, 0xA0, 0xBF) && in(i + 2, 0x80, 0xBF)) i += 3;
        else if (((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) && in(i + 1, 0x80, 0xBF) && in(i + 2, 0x80, 0xBF)) i += 3;
        else if (c == 0xED && in(i + 1, 0x80, 0x9F) && in(i + 2, 0x80, 0xBF)) i += 3;
        else if (c == 0xF0 && in(i + 1, 0x90, 0xBF) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) i += 4;
        else if (c >= 0xF1 && c <= 0xF3 && in(i + 1, 0x80, 0xBF) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) i += 4;
        else if (c == 0xF4 && in(i + 1, 0x80, 0x8F) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) i += 4;
        else return false;
    }
    return true;
}

// The first byte picks what the rest is fed to:
//   0 CharTokenizer::deserialize (accepts exactly what serialize writes)
//   1 WordTokenizer::deserialize (likewise)
//   2 check_text against the reference validator, then CharTokenizer build/encode/decode
//   3 WordTokenizer build/encode/decode
inline void fuzz_tokenizers(const std::string& bytes) {
    if (bytes.empty()) return;
    const std::string rest = bytes.substr(1);
    switch ((uint8_t)bytes[0] % 4) {
        case 0: {
            synth::CharTokenizer t;
            try {
                t = synth::CharTokenizer::deserialize(rest);
            } catch (const synth::Error&) {
                return;
            }
            require(t.serialize() == rest, "CharTokenizer accepted bytes that it does not serialize to");
            std::vector<int32_t> all(t.size());
            for (int i = 0; i < t.size(); ++i) all[i] = i;
            require(t.encode(t.decode(all)) == all, "CharTokenizer encode(decode(ids)) != ids");
            return;
        }
        case 1: {
            synth::WordTokenizer t;
            try {
                t = synth::WordTokenizer::deserialize(rest);
            } catch (const synth::Error&) {
                return;
            }
            require(t.serialize() == rest, "WordTokenizer accepted bytes that it does not serialize to");
            require(t.eos >= 0 && t.eos < t.size() && t.words[t.eos] == "<eos>", "WordTokenizer lost <eos>");
            for (int i = 0; i < t.size(); ++i) require(t.index.at(t.words[i]) == i, "WordTokenizer index mismatch");
            return;
        }
        case 2: {
            bool accepted = true;
            try {
                synth::check_text(rest, "fuzz");
            } catch (const synth::Error&) {
                accepted = false;
            }
            const bool expected = !rest.empty() && std::memchr(rest.data(), 0, rest.size()) == nullptr && reference_utf8(rest);
            require(accepted == expected, accepted ? "check_text accepted invalid text" : "check_text rejected valid text");
            if (!accepted) return;
            synth::CharTokenizer t = synth::CharTokenizer::build(rest);
            require(t.decode(t.encode(rest)) == rest, "CharTokenizer decode(encode(x)) != x");
            require(synth::CharTokenizer::deserialize(t.serialize()).codepoints == t.codepoints,
                    "CharTokenizer serialize round trip");
            return;
        }
        default: {
            synth::WordTokenizer t;
            try {
                t = synth::WordTokenizer::build(rest);
            } catch (const synth::Error&) {
                return;
            }
            std::vector<int32_t> ids = t.encode(rest);
            require(t.encode(t.decode(ids)) == ids, "WordTokenizer encode(decode(encode(x))) != encode(x)");
            require(synth::WordTokenizer::deserialize(t.serialize()).words == t.words, "WordTokenizer serialize round trip");
            return;
        }
    }
}

}  // namespace synth_fuzz

// Tests for src/train/checkpoint.h: the file format (round trip, truncation, corruption), capture and
// restore with their error messages, interrupted saves, and build/lm's --save-every/--resume
// reproducing an uninterrupted run bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "base/error.h"
#include "base/flags.h"
#include "models/transformer.h"
#include "error_of.h"
#include "base/io.h"
#include "base/json.h"
#include "subprocess.h"
#include "tiny_text.h"

using namespace synth;
using synth_test::error_of;
using synth_test::result_without_timings;
using synth_test::ScratchDir;

namespace {

// A small store with names and shapes like the Transformer's; L sizes the synthesizer's R.
struct Model {
    ParamStore store;
    explicit Model(uint64_t seed, int L = 6, bool with_v = false, bool r_trainable = true) {
        store.weight("embed.w", {7, 8}, Init::Normal);
        store.add("block0.attn.R.r", {4, L, L}, Init::Normal, Decay::Yes, r_trainable ? Trainable::Yes : Trainable::No);
        if (with_v) store.weight("block0.attn.V.w_q", {8, 8}, Init::GlorotUniform);
        store.bias("block0.ln.g", {8}, Init::Ones);
        store.finalize(seed);
    }
};

// Two AdamW steps with made-up gradients, so m, v and t are all non-trivial.
void train_a_little(ParamStore& store, AdamW& opt) {
    for (int s = 0; s < 2; ++s) {
        for (int64_t i = 0; i < store.size(); ++i) store.grad()[i] = std::sin(0.37f * (float)i + (float)s);
        opt.step(1e-2f);
    }
}

doctest::String str(const std::string& s) { return s.c_str(); }

bool same_bits(const float* a, const float* b, size_t n) { return n == 0 || std::memcmp(a, b, n * sizeof(float)) == 0; }

// A checkpoint of a trained Model with every field set.
Checkpoint sample_checkpoint() {
    Model m(1);
    AdamW opt(m.store, AdamWConfig{});
    train_a_little(m.store, opt);
    Checkpoint ck = capture(m.store, &opt);
    ck.config = "variant=R\nd-model=8\n";
    ck.tokenizer = "synth-char-vocab 1\n2\n97 98\n";
    ck.step = 42;
    ck.data_pos = 1234;
    ck.rng[0] = 1, ck.rng[1] = 2, ck.rng[2] = 3, ck.rng[3] = 0xffffffffffffffffULL;
    ck.best_val = 1.25;
    return ck;
}

// FNV-1a 64 of all but the last 8 bytes, written into them: lets a test corrupt the
// structure of a file while keeping its checksum valid.
void fix_checksum(std::string& b) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i + 8 < b.size(); ++i) h = (h ^ (uint8_t)b[i]) * 0x100000001b3ULL;
    std::memcpy(&b[b.size() - 8], &h, 8);
}

// The training state (parameters, AdamW moments, step, best validation loss) is identical
// bit for bit; configs may differ (a resumed run records its --resume and its timings).
void check_same_state(const Checkpoint& a, const Checkpoint& b) {
    REQUIRE(a.params.size() == b.params.size());
    for (size_t i = 0; i < a.params.size(); ++i) {
        INFO("parameter ", a.params[i].name);
        CHECK(a.params[i].name == b.params[i].name);
        CHECK(a.params[i].shape == b.params[i].shape);
        CHECK(a.params[i].trainable == b.params[i].trainable);
        REQUIRE(a.params[i].values.size() == b.params[i].values.size());
        CHECK(same_bits(a.params[i].values.data(), b.params[i].values.data(), a.params[i].values.size()));
    }
    CHECK(a.adam_t == b.adam_t);
    REQUIRE(a.adam_m.size() == b.adam_m.size());
    REQUIRE(a.adam_v.size() == b.adam_v.size());
    CHECK(same_bits(a.adam_m.data(), b.adam_m.data(), a.adam_m.size()));
    CHECK(same_bits(a.adam_v.data(), b.adam_v.data(), a.adam_v.size()));
    CHECK(a.step == b.step);
    CHECK(std::memcmp(&a.best_val, &b.best_val, sizeof(double)) == 0);
}

void check_equal(const Checkpoint& a, const Checkpoint& b) {
    CHECK(a.config == b.config);
    CHECK(a.tokenizer == b.tokenizer);
    check_same_state(a, b);
    CHECK(a.data_pos == b.data_pos);
    for (int i = 0; i < 4; ++i) CHECK(a.rng[i] == b.rng[i]);
}

}  // namespace

TEST_CASE("checkpoint: serialize/deserialize round-trips every field bit for bit") {
    Checkpoint ck = sample_checkpoint();
    REQUIRE(ck.params.size() == 3);
    CHECK(ck.params[1].name == "block0.attn.R.r");
    CHECK(ck.params[1].shape == Shape{4, 6, 6});
    CHECK(ck.adam_t == 2);
    std::string bytes = serialize_checkpoint(ck);
    CHECK(bytes.compare(0, 8, "SYNTHCKP") == 0);
    check_equal(deserialize_checkpoint(bytes), ck);
    CHECK(serialize_checkpoint(deserialize_checkpoint(bytes)) == bytes);

    // Without optimizer state, and with no parameters at all.
    Checkpoint bare;
    bare.params = ck.params;
    check_equal(deserialize_checkpoint(serialize_checkpoint(bare)), bare);
    check_equal(deserialize_checkpoint(serialize_checkpoint(Checkpoint{})), Checkpoint{});

    ScratchDir dir;
    save_checkpoint(dir / "a.ckpt", ck);
    check_equal(load_checkpoint(dir / "a.ckpt"), ck);
}

TEST_CASE("checkpoint: config_value finds keys at line starts only") {
    Checkpoint ck;
    ck.config = "d-model=128\nvariant=R+V\nempty=\n";
    CHECK(ck.config_value("d-model") == "128");
    CHECK(ck.config_value("variant") == "R+V");
    CHECK(ck.config_value("empty") == "");
    CHECK(error_of([&] { ck.config_value("model"); }) == doctest::Contains("no key 'model'"));
    CHECK(error_of([&] { ck.config_value("128"); }) == doctest::Contains("no key '128'"));
    ck.config += "d-model=64\n";  // the trainer's counters follow the flags and win over them
    CHECK(ck.config_value("d-model") == "64");
}

TEST_CASE("checkpoint: capture and restore carry parameters and AdamW state into a fresh model") {
    Model a(1);
    AdamW opt_a(a.store, AdamWConfig{});
    train_a_little(a.store, opt_a);
    Checkpoint ck = deserialize_checkpoint(serialize_checkpoint(capture(a.store, &opt_a)));
    const std::vector<float> weights(a.store.data(), a.store.data() + a.store.size());

    Model b(99);  // another initialisation, overwritten by restore
    AdamW opt_b(b.store, AdamWConfig{});
    restore(ck, b.store, &opt_b);
    REQUIRE(a.store.size() == b.store.size());
    CHECK(same_bits(a.store.data(), b.store.data(), a.store.size()));
    CHECK(same_bits(opt_a.m, opt_b.m, a.store.size()));
    CHECK(same_bits(opt_a.v, opt_b.v, a.store.size()));
    CHECK(opt_b.t == 2);

    // Both continue identically.
    train_a_little(a.store, opt_a);
    train_a_little(b.store, opt_b);
    CHECK(same_bits(a.store.data(), b.store.data(), a.store.size()));

    // Without an optimizer only the weights are restored.
    Model c(7);
    restore(ck, c.store, nullptr);
    CHECK(same_bits(c.store.data(), weights.data(), weights.size()));
}

TEST_CASE("checkpoint: restore names the first mismatching, missing or extra parameter") {
    Model src(1, 64);
    Checkpoint ck = capture(src.store, nullptr);

    Model wider(2, 128);
    std::vector<float> before(wider.store.data(), wider.store.data() + wider.store.size());
    CHECK(error_of([&] { restore(ck, wider.store, nullptr); }) ==
          "checkpoint parameter block0.attn.R.r has shape (4, 64, 64) but the model expects (4, 128, 128)");
    CHECK(same_bits(before.data(), wider.store.data(), before.size()));  // a refused restore changes nothing

    Model with_v(2, 64, true);
    CHECK(error_of([&] { restore(ck, with_v.store, nullptr); }) ==
          "checkpoint has no parameter 'block0.attn.V.w_q' (was it trained with another --variants?)");

    Model v_ck(3, 64, true);
    Model without_v(4, 64);
    CHECK(error_of([&] { restore(capture(v_ck.store, nullptr), without_v.store, nullptr); }) ==
          doctest::Contains("checkpoint has parameter 'block0.attn.V.w_q' that the model does not have"));

    Model fixed(5, 64, false, false);
    CHECK(error_of([&] { restore(ck, fixed.store, nullptr); }) ==
          doctest::Contains("block0.attn.R.r is trainable but the model's is fixed"));

    // A hand-made checkpoint whose values do not match its shape is refused, not read past.
    Checkpoint bad = ck;
    bad.params[0].values.pop_back();
    Model same(6, 64);
    CHECK(error_of([&] { restore(bad, same.store, nullptr); }) == doctest::Contains("embed.w' has shape (7, 8) but 55 values"));
    CHECK(error_of([&] { serialize_checkpoint(bad); }) == doctest::Contains("but 55 values"));
}

TEST_CASE("checkpoint: every truncation is an error, with a clear message at section boundaries") {
    const std::string bytes = serialize_checkpoint(sample_checkpoint());
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
        doctest::String msg = error_of([&] { deserialize_checkpoint(bytes.substr(0, cut), "x.ckpt"); });
        INFO("cut at ", cut, " of ", bytes.size());
        CHECK(msg == doctest::Contains("x.ckpt: "));
    }
    CHECK(error_of([&] { deserialize_checkpoint("", "x.ckpt"); }) == doctest::Contains("x.ckpt: truncated: 0 bytes"));
    CHECK(error_of([&] { deserialize_checkpoint(bytes.substr(0, 5), "x.ckpt"); }) == doctest::Contains("truncated"));
    CHECK(error_of([&] { deserialize_checkpoint(bytes.substr(0, bytes.size() / 2), "x.ckpt"); }) ==
          doctest::Contains("truncated or corrupt: section 'OPTM'"));
    CHECK(error_of([&] { deserialize_checkpoint(bytes.substr(0, bytes.size() - 1), "x.ckpt"); }) ==
          doctest::Contains("truncated or corrupt"));
}

TEST_CASE("checkpoint: wrong magic, wrong version and every flipped byte are detected") {
    const std::string bytes = serialize_checkpoint(sample_checkpoint());
    std::string b = bytes;
    b[0] = 'X';
    CHECK(error_of([&] { deserialize_checkpoint(b, "x.ckpt"); }) ==
          "x.ckpt: not a synth checkpoint (it does not start with \"SYNTHCKP\")");
    CHECK(error_of([&] { deserialize_checkpoint("hello world, this is text", "x.txt"); }) ==
          doctest::Contains("not a synth checkpoint"));
    b = bytes;
    b[8] = 2;
    CHECK(error_of([&] { deserialize_checkpoint(b, "x.ckpt"); }) ==
          "x.ckpt: checkpoint format version 2, but this build reads version 1");
    b = bytes;
    b[bytes.size() / 2 + 3] ^= 0x10;  // inside the parameter values
    CHECK(error_of([&] { deserialize_checkpoint(b, "x.ckpt"); }) == doctest::Contains("x.ckpt: checksum mismatch"));
    for (size_t i = 0; i < bytes.size(); ++i) {
        b = bytes;
        b[i] ^= 0x01;
        INFO("flipped byte ", i);
        CHECK(error_of([&] { deserialize_checkpoint(b, "x.ckpt"); }) == doctest::Contains("x.ckpt: "));
    }
}

TEST_CASE("checkpoint: structural corruption behind a valid checksum is named, not trusted") {
    // With empty config and tokenizer, the layout is fixed: header (12 bytes), CONF and TOKN
    // headers (12 each), then PARM's header at 36 and its payload at 48: count u32, then the
    // first parameter "embed.w": name length u32 at 52, name at 56..62, ndim u32 at 63.
    Checkpoint ck = sample_checkpoint();
    ck.config.clear();
    ck.tokenizer.clear();
    const std::string bytes = serialize_checkpoint(ck);
    REQUIRE(bytes.compare(36, 4, "PARM") == 0);
    REQUIRE(bytes.compare(56, 7, "embed.w") == 0);
    auto corrupt = [&](size_t at, uint32_t value) {
        std::string b = bytes;
        std::memcpy(&b[at], &value, 4);
        fix_checksum(b);
        return error_of([&] { deserialize_checkpoint(b, "x.ckpt"); });
    };
    CHECK(corrupt(48, 0xffffffffu) == doctest::Contains("parameter count 4294967295 cannot fit"));
    CHECK(corrupt(52, 0x7fffffffu) == doctest::Contains("truncated: parameter name"));
    CHECK(corrupt(63, 5) == doctest::Contains("'embed.w' has 5 dimensions"));
    CHECK(corrupt(67, 0) == doctest::Contains("'embed.w' has an impossible dimension 0"));
    CHECK(corrupt(67, 0x40000000u) == doctest::Contains("impossible dimension"));
    // 8x8 values claimed, 7x8 stored: the next parameter no longer starts where this one ends.
    CHECK(corrupt(67, 8) == doctest::Contains("'block0.attn.R.r' starts at value 56, expected 64"));
    CHECK(corrupt(0, 0x4e4f4354u) == doctest::Contains("not a synth checkpoint"));
    CHECK(corrupt(12, 0x58585858u) == doctest::Contains("unknown section 'XXXX'"));
    CHECK(corrupt(24, 0x464e4f43u) == doctest::Contains("section 'CONF' appears twice"));

    std::string b = bytes;
    b.insert(b.size() - 8, std::string(3, '\0'));
    fix_checksum(b);
    CHECK(error_of([&] { deserialize_checkpoint(b, "x.ckpt"); }) == doctest::Contains("3 stray bytes"));

    Checkpoint bad_config = ck;
    bad_config.config = "no equals sign\n";
    CHECK(error_of([&] { serialize_checkpoint(bad_config); }) == doctest::Contains("is not key=value"));
}

TEST_CASE("checkpoint: an interrupted save leaves the previous checkpoint loadable") {
    ScratchDir dir;
    const std::string path = dir / "model.ckpt";
    Checkpoint first = sample_checkpoint();
    save_checkpoint(path, first);
    Checkpoint second = first;
    second.step = 43;
    second.params[0].values[0] += 1.0f;
    const size_t size = serialize_checkpoint(second).size();
    for (size_t fail_after : {(size_t)0, size / 2, size - 1, size}) {
        write_fail_after_for_testing = (long long)fail_after;
        INFO("failure injected after ", fail_after, " of ", size, " bytes");
        CHECK(error_of([&] { save_checkpoint(path, second); }) == doctest::Contains("injected failure"));
        check_equal(load_checkpoint(path), first);
        // The temporary file is gone, so nothing but the checkpoint is left in the directory.
        CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator{}) == 1);
    }
    CHECK(write_fail_after_for_testing == -1);
    save_checkpoint(path, second);
    check_equal(load_checkpoint(path), second);
}

// ---- build/lm: --save-every and --resume ------------------------------------------------

namespace {

// A tiny model that trains 12 steps in a fraction of a second. R+V has both synthesizer and
// dot-product parameters and dropout is on, so resuming must restore them and the masks.
std::vector<std::string> tiny_lm_args(const std::string& data, const std::string& dir) {
    return {"--data=" + data, "--preset=none", "--variants=R+V", "--d-model=32", "--layers=1", "--heads=2",
            "--d-ff=64", "--seq=16", "--batch=4", "--steps=12", "--warmup=2", "--eval-every=6", "--eval-batches=2",
            "--dropout=0.1", "--threads=1", "--runs-dir=" + dir, "--checkpoint-dir=" + dir + "/ck"};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

// Runs `bin` with `args` resumed from the step-6 checkpoint `ck6`; it must succeed, say so,
// and warn about nothing (the flags are those of the run that wrote the checkpoint).
void resume_from_step6(const std::string& bin, const std::vector<std::string>& args, const std::string& ck6,
                       const ScratchDir& dir) {
    auto resumed = synth_test::run_process(bin, with(args, {"--save-every=6", "--resume=" + ck6}), dir.path);
    INFO("stderr: ", resumed.err);
    REQUIRE(resumed.status == 0);
    CHECK(resumed.err.find("resumed from " + ck6 + " at step 6") != std::string::npos);
    CHECK(resumed.err.find("warning") == std::string::npos);
}

}  // namespace

TEST_CASE("checkpoint: build/lm resumed at step 6 reproduces the uninterrupted run bit for bit") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    const auto args = tiny_lm_args(dir / "tiny.txt", dir.path);
    const std::string ck6 = dir / "ck/lm-tiny-none-R+V-seed1337-step6.ckpt", ck12 = dir / "ck/lm-tiny-none-R+V-seed1337-step12.ckpt";

    auto full = synth_test::run_process(lm, with(args, {"--save-every=6"}), dir.path);
    INFO("stderr: ", full.err);
    REQUIRE(full.status == 0);
    const std::string run = dir / "lm-tiny-none/R+V-seed1337";
    const std::string curves = read_file(run + "/metrics.jsonl"), result = result_without_timings(run);
    const Checkpoint uninterrupted = load_checkpoint(ck12), final_params = load_checkpoint(run + "/final.ckpt");
    CHECK(load_checkpoint(ck6).step == 6);
    CHECK(uninterrupted.step == 12);
    CHECK(uninterrupted.config_value("variant") == "R+V");
    CHECK(uninterrupted.config_value("d-model") == "32");
    CHECK(result.find("variant=R+V\n") != std::string::npos);

    // Resume from step 6 into the same run directory: rows 1-6 of the curve come from its
    // metrics.jsonl, rows 7-12 are recomputed and must be identical, as must the final model.
    resume_from_step6(lm, args, ck6, dir);
    CHECK(read_file(run + "/metrics.jsonl") == curves);
    const Checkpoint again = load_checkpoint(ck12);
    check_same_state(again, uninterrupted);
    CHECK(again.adam_t == 12);
    // The token counter (12 steps of 4 x 16) survives the resume, not build/lm's --tokens=200.
    CHECK(uninterrupted.config_value("tokens") == "768");
    CHECK(again.config_value("tokens") == "768");
    CHECK(load_checkpoint(run + "/final.ckpt").params[0].values == final_params.params[0].values);
    // The result agrees in everything but the timings.
    CHECK(result_without_timings(run) == result);

    // Resumed into an empty runs directory, the curve lacks rows 1-6 (with a warning) and
    // rows 7-12 are still those of the uninterrupted run.
    const std::string other = dir / "other";
    auto elsewhere = synth_test::run_process(
        lm, with(args, {"--resume=" + ck6, "--runs-dir=" + other, "--checkpoint-dir=" + other}), dir.path);
    INFO("stderr: ", elsewhere.err);
    REQUIRE(elsewhere.status == 0);
    CHECK(str(elsewhere.err) == doctest::Contains("has 0 of the 6 rows before the checkpoint"));
    const std::string tail = curves.substr(curves.find("{\"step\": 7,"));
    CHECK(read_file(other + "/lm-tiny-none/R+V-seed1337/metrics.jsonl") == tail);
}

TEST_CASE("checkpoint: build/lm --resume refuses another variant, model shape, vocabulary or a corrupt file") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    const auto args = tiny_lm_args(dir / "tiny.txt", dir.path);
    const std::string ck = dir / "ck/lm-tiny-none-R+V-seed1337-step2.ckpt";
    auto first = synth_test::run_process(lm, with(args, {"--steps=2", "--save-every=2"}), dir.path);
    INFO("stderr: ", first.err);
    REQUIRE(first.status == 0);

    auto refused = [&](const std::vector<std::string>& more) {
        auto r = synth_test::run_process(lm, with(args, with({"--resume=" + ck}, more)), dir.path);
        CHECK(r.status == 1);
        CHECK(r.out.empty());
        return str(r.err);
    };
    CHECK(refused({"--variants=R+V,V"}) ==
          doctest::Contains(str("--resume continues one variant, but --variants=R+V,V names 2 (" + ck +
                            " holds R+V: add --variants=R+V)")));
    CHECK(refused({"--variants=V"}) == doctest::Contains(str("checkpoint " + ck + " holds variant R+V but --variants=V")));
    CHECK(refused({"--d-model=64"}) ==
          doctest::Contains(str("checkpoint " + ck + " was trained with --d-model=32 but this run has --d-model=64")));
    CHECK(refused({"--seq=32"}) == doctest::Contains("was trained with --seq=16 but this run has --seq=32"));
    CHECK(refused({"--r-init=glorot"}) == doctest::Contains("--r-init=normal but this run has --r-init=glorot"));
    // A variant's setting that none of --variants reads would be silently ignored: an error.
    CHECK(refused({"--share-w2"}) == doctest::Contains("--share-w2 is a setting of D, which none of the variants"));
    CHECK(refused({"--steps=1"}) == doctest::Contains("is at step 2, past --steps=1"));

    write_file_atomic(dir / "other.txt", "Completely different characters: XYZ 0123456789!\n" + tiny_text());
    CHECK(refused({"--data=" + dir / "other.txt"}) ==
          doctest::Contains(str("has a different vocabulary from the one --data=" + dir / "other.txt" + " gives")));

    const std::string bytes = read_file(ck);
    write_file_atomic(dir / "cut.ckpt", bytes.substr(0, bytes.size() / 3));
    CHECK(refused({"--resume=" + dir / "cut.ckpt"}) == doctest::Contains(str(dir / "cut.ckpt" + ": truncated")));

    // Training flags other than the model's shape may change, with a warning.
    auto changed = synth_test::run_process(lm, with(args, {"--resume=" + ck, "--steps=3", "--lr=0.002"}), dir.path);
    CHECK(changed.status == 0);
    CHECK(str(changed.err) ==
          doctest::Contains(str("warning: checkpoint " + ck + " was trained with --steps=2, this run has --steps=3")));
    CHECK(str(changed.err) == doctest::Contains("--lr=0.002: it will not reproduce the uninterrupted run"));
}

TEST_CASE("checkpoint: build/lm names the step and the last good checkpoint when the loss diverges") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    // An absurd learning rate without clipping: the first update overflows the weights.
    const auto args = with(tiny_lm_args(dir / "tiny.txt", dir.path), {"--lr=1e30", "--warmup=0", "--clip=0"});
    auto saved = synth_test::run_process(lm, with(args, {"--save-every=1"}), dir.path);
    CHECK(saved.status == 1);
    CHECK(str(saved.err) == doctest::Contains("[R+V] the training loss became "));
    CHECK(str(saved.err) == doctest::Contains(" at step 2 of 12 (lower --lr or raise --warmup)"));
    CHECK(str(saved.err) == doctest::Contains(str("the last good checkpoint is " + dir / "ck/lm-tiny-none-R+V-seed1337-step1.ckpt")));
    CHECK(load_checkpoint(dir / "ck/lm-tiny-none-R+V-seed1337-step1.ckpt").step == 1);

    auto unsaved = synth_test::run_process(lm, args, dir.path);
    CHECK(unsaved.status == 1);
    CHECK(str(unsaved.err) == doctest::Contains("no checkpoint was saved (see --save-every)"));
}

// ---- build/mt: --save-every and --resume ------------------------------------------------

namespace {

// A toy parallel corpus in dir/toy: each "German" sentence is its English one word for word through a
// fixed dictionary, so a tiny model learns something in a dozen steps.
void write_tiny_parallel(const ScratchDir& dir) {
    const char* en[] = {"the", "dog", "cat", "runs", "sleeps", "a", "red", "big", "house", "sees"};
    const char* de[] = {"der", "hund", "katze", "rennt", "schläft", "ein", "rot", "gross", "haus", "sieht"};
    std::filesystem::create_directories(dir / "toy");
    uint32_t x = 777;
    for (const auto& [split, lines] : {std::pair<std::string, int>{"train", 80}, {"val", 12}, {"test", 6}}) {
        std::string src, tgt;
        for (int i = 0; i < lines; ++i) {
            const int words = 3 + i % 5;
            for (int w = 0; w < words; ++w) {
                x = x * 1664525u + 1013904223u;
                const int k = (x >> 16) % 10;
                src += std::string(w ? " " : "") + en[k];
                tgt += std::string(w ? " " : "") + de[k];
            }
            src += "\n";
            tgt += "\n";
        }
        write_file_atomic(dir / ("toy/" + split + ".en"), src);
        write_file_atomic(dir / ("toy/" + split + ".de"), tgt);
    }
}

// 12 steps of a tiny R+V model with dropout and a validation loss every 4 steps (so the best
// parameters change after the checkpoint at step 6), greedy decoding of the 6 test sentences.
std::vector<std::string> tiny_mt_args(const std::string& dir) {
    return {"--data=" + dir + "/toy", "--preset=none", "--variants=R+V", "--d-model=16", "--layers=1", "--heads=2",
            "--d-ff=32", "--max-len=48", "--bpe-vocab=320", "--batch-tokens=256", "--steps=12", "--warmup=2",
            "--lr=3e-3", "--eval-every=4", "--dropout=0.1", "--beam=1", "--test-sets=test", "--threads=1",
            "--runs-dir=" + dir + "/runs", "--checkpoint-dir=" + dir + "/ck"};
}

}  // namespace

TEST_CASE("checkpoint: build/mt resumed at step 6 reproduces the uninterrupted run bit for bit") {
    const std::string mt = synth_test::binary_or_skip("mt");
    if (mt.empty()) return;
    ScratchDir dir;
    write_tiny_parallel(dir);
    const auto args = tiny_mt_args(dir.path);
    const std::string ck6 = dir / "ck/mt-toy-none-R+V-seed1337-step6.ckpt", ck12 = dir / "ck/mt-toy-none-R+V-seed1337-step12.ckpt";
    const std::string run = dir / "runs/mt-toy-none/R+V-seed1337";
    const std::string kept = run + "/final.ckpt", hyps = run + "/hyps/test.de";

    auto full = synth_test::run_process(mt, with(args, {"--save-every=6"}), dir.path);
    INFO("stderr: ", full.err);
    REQUIRE(full.status == 0);
    const Checkpoint uninterrupted = load_checkpoint(ck12), uninterrupted_kept = load_checkpoint(kept);
    const std::string translations = read_file(hyps), result = result_without_timings(run);
    CHECK(load_checkpoint(ck6).step == 6);
    CHECK(load_checkpoint(ck6).config_value("best-step") == "4");
    CHECK(load_checkpoint(dir / "ck/mt-toy-none-R+V-seed1337-step6.best.ckpt").step == 4);
    CHECK(uninterrupted.config_value("variant") == "R+V");

    resume_from_step6(mt, args, ck6, dir);
    const Checkpoint again = load_checkpoint(ck12), again_kept = load_checkpoint(kept);
    check_same_state(again, uninterrupted);
    check_same_state(again_kept, uninterrupted_kept);
    CHECK(read_file(hyps) == translations);
    // The result agrees in everything but the timings (train_s, train_tgt_tok_s, decode_sent_s).
    CHECK(result.find("variant=R+V\n") != std::string::npos);
    CHECK(result.find("test_bleu=") != std::string::npos);
    CHECK(result_without_timings(run) == result);

    // A finished 6-step run resumed with --steps=12 is the 12-step run (the rsqrt schedule and
    // the batch order depend only on the step): how the full preset extends a shorter sweep.
    const std::string shorter = dir / "short";
    auto six = synth_test::run_process(
        mt, with(args, {"--steps=6", "--save-every=6", "--checkpoint-dir=" + shorter, "--runs-dir=" + shorter}),
        dir.path);
    REQUIRE(six.status == 0);
    auto extended = synth_test::run_process(
        mt, with(args, {"--save-every=6", "--checkpoint-dir=" + shorter, "--runs-dir=" + shorter,
                        "--resume=" + shorter + "/mt-toy-none-R+V-seed1337-step6.ckpt"}),
        dir.path);
    INFO("stderr: ", extended.err);
    REQUIRE(extended.status == 0);
    CHECK(extended.err.find("warning") == std::string::npos);
    check_same_state(load_checkpoint(shorter + "/mt-toy-none-R+V-seed1337-step12.ckpt"), uninterrupted);

    // Refusals name the problem: another model shape, a missing companion, a foreign BPE.
    auto refused = [&](const std::vector<std::string>& more) {
        auto r = synth_test::run_process(mt, with(args, more), dir.path);
        CHECK(r.status == 1);
        return str(r.err);
    };
    CHECK(refused({"--resume=" + ck6, "--d-model=32"}) ==
          doctest::Contains(str("checkpoint " + ck6 + " was trained with --d-model=16 but this run has --d-model=32")));
    CHECK(refused({"--resume=" + ck6, "--variants=V"}) ==
          doctest::Contains(str("checkpoint " + ck6 + " holds variant R+V but --variants=V")));
    CHECK(refused({"--resume=" + ck6, "--steps=5"}) == doctest::Contains("is at step 6, past --steps=5"));
    CHECK(refused({"--resume=" + kept}) == doctest::Contains("has no optimizer state"));
    std::filesystem::create_directories(dir / "other");
    for (const char* f : {"train.en", "train.de", "val.en", "val.de", "test.en", "test.de"})
        write_file_atomic(dir / ("other/" + std::string(f)), "quite different words here\nand more of them\n");
    CHECK(refused({"--resume=" + ck6, "--data=" + dir / "other"}) ==
          doctest::Contains(str("checkpoint " + ck6 + " has a different BPE from the one learned on --data=" + dir / "other")));
    std::filesystem::remove(dir / "ck/mt-toy-none-R+V-seed1337-step6.best.ckpt");
    CHECK(refused({"--resume=" + ck6}) == doctest::Contains(str("cannot open '" + dir / "ck/mt-toy-none-R+V-seed1337-step6.best.ckpt")));
}

TEST_CASE("checkpoint: build/mt names the step and the last good checkpoint when the loss diverges") {
    const std::string mt = synth_test::binary_or_skip("mt");
    if (mt.empty()) return;
    ScratchDir dir;
    write_tiny_parallel(dir);
    const auto args = with(tiny_mt_args(dir.path), {"--lr=1e30", "--warmup=0", "--clip=0"});
    auto saved = synth_test::run_process(mt, with(args, {"--save-every=1"}), dir.path);
    CHECK(saved.status == 1);
    CHECK(str(saved.err) == doctest::Contains("[R+V] the training loss became "));
    CHECK(str(saved.err) == doctest::Contains(" at step 2 of 12 (lower --lr or raise --warmup)"));
    CHECK(str(saved.err) == doctest::Contains(str("the last good checkpoint is " + dir / "ck/mt-toy-none-R+V-seed1337-step1.ckpt")));
    auto unsaved = synth_test::run_process(mt, args, dir.path);
    CHECK(unsaved.status == 1);
    CHECK(str(unsaved.err) == doctest::Contains("no checkpoint was saved (see --save-every)"));
}

TEST_CASE("checkpoint: a config saved before a variant's setting existed loads with the setting's default") {
    LmConfig saved;
    Flags before("lm", "");
    saved.bind(before);
    std::string lines;
    for (const auto& [k, v] : config_map(before.dump()))
        if (k != "conv-kernels" && k != "r-init") lines += k + "=" + v + "\n";  // as if neither were registered
    LmConfig now;
    now.attn.settings.set("r-init", std::string("glorot"));
    Flags f("lm", "");
    now.bind(f);
    f.load(lines, FlagRole::Model);
    CHECK(now.attn.settings.text("r-init") == "normal");  // the default, not the value before load
    // A missing flag that is not a variant's setting is still an error.
    std::string no_width;
    for (const auto& [k, v] : config_map(before.dump()))
        if (k != "d-model") no_width += k + "=" + v + "\n";
    CHECK(error_of([&] { f.load(no_width, FlagRole::Model); }) == doctest::Contains("no value for --d-model"));
}

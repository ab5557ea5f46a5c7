// Bad command lines and bad inputs for build/lm and build/mt: each must fail before training,
// within a fraction of a second, with exit status 1 and one line "error: <message>" on stderr
// whose message names the problem (the flag, the value, the file). Runs them as child processes.
#include <doctest/doctest.h>

#include <filesystem>

#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "base/io.h"
#include "subprocess.h"

using namespace synth;
using synth_test::ScratchDir;

namespace {

struct BadRun {
    std::vector<std::string> args;
    std::string expected;  // a part of the error message
};

// Runs the binary on each bad input (with results going to `dir`) and checks how it fails.
void check_failures(const std::string& bin, const ScratchDir& dir, const std::vector<BadRun>& runs) {
    for (const BadRun& run : runs) {
        std::vector<std::string> args = {"--runs-dir=" + dir / "runs", "--preset=none"};
        args.insert(args.end(), run.args.begin(), run.args.end());
        auto r = synth_test::run_process(bin, args, dir.path);
        std::string cmd = bin;
        for (const std::string& a : args) cmd += " " + a;
        INFO(cmd);
        INFO("stderr: ", r.err);
        CHECK(r.status == 1);
        CHECK(r.out.empty());
        // Exactly one line: no progress output, no stack trace.
        CHECK(r.err.rfind("error: ", 0) == 0);
        CHECK(r.err.find('\n') == r.err.size() - 1);
        CHECK(r.err.find(run.expected) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("cli: missing, empty, binary and non-UTF-8 data files are named") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "empty.txt", "");
    write_file_atomic(dir / "binary.txt", std::string("ab\0cd\n", 6));
    write_file_atomic(dir / "latin1.txt", "caf\xe9 au lait\n");
    write_file_atomic(dir / "cut.txt", "a euro sign cut short: \xe2\x82");
    check_failures(lm, dir,
                   {{{"--data=" + dir / "missing.txt"}, "'" + dir / "missing.txt" + "' is neither a known corpus"},
                    {{"--data=" + dir.path}, "'" + dir.path + "' is neither a known corpus"},
                    {{"--data=" + dir / "empty.txt"}, "'" + dir / "empty.txt" + "' is empty"},
                    {{"--data=" + dir / "binary.txt"}, "'" + dir / "binary.txt" + "' looks binary, not text: NUL byte at byte offset 2"},
                    {{"--data=" + dir / "latin1.txt"}, "'" + dir / "latin1.txt" + "' is not valid UTF-8"},
                    {{"--data=" + dir / "cut.txt"}, "'" + dir / "cut.txt" + "' is not valid UTF-8"}});
}

TEST_CASE("cli: unknown flags, malformed values and out-of-range values name the flag") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    check_failures(lm, dir,
                   {{{"--bogus=1"}, "unknown flag --bogus"},
                    {{"--steps"}, "flag --steps needs a value"},
                    {{"--steps=12abc"}, "flag --steps: '12abc' is not an integer"},
                    {{"--steps="}, "flag --steps: '' is not an integer"},
                    {{"--steps=99999999999"}, "flag --steps: 99999999999 is out of range"},
                    {{"--lr=fast"}, "flag --lr: 'fast' is not a finite number"},
                    {{"--lr=nan"}, "flag --lr: 'nan' is not a finite number"},
                    {{"--share-w2=maybe"}, "flag --share-w2: 'maybe' is not true/false"},
                    {{"data.txt"}, "unexpected argument 'data.txt'"},
                    {{"--heads=3", "--d-model=128"}, "--heads=3 must divide --d-model=128"},
                    {{"--fd-a=7", "--seq=64"}, "FD: --fd-a=7 must divide the maximum length L=64"},
                    {{"--seq=13"}, "FD: L=13 has no divisor but 1 and itself"},
                    {{"--fr-rank=0"}, "--fr-rank=0 must be positive"},
                    {{"--r-init=bogus"}, "unknown --r-init 'bogus' (normal, glorot, unit)"},
                    {{"--variants=V,FD", "--share-w2"}, "--share-w2 is a setting of D, which none of the variants"},
                    {{"--d-model=0"}, "--d-model=0 must be positive"},
                    {{"--steps=-1"}, "--steps=-1 must be positive"},
                    {{"--batch=0"}, "--batch=0 must be positive"},
                    {{"--warmup=-5"}, "--warmup=-5 must be >= 0"},
                    {{"--save-every=-1"}, "--save-every=-1 must be >= 0"},
                    {{"--threads=0"}, "--threads=0 must be in [1, 256]"},
                    {{"--lr=0"}, "--lr=0 must be positive"},
                    {{"--dropout=1"}, "--dropout=1 must be in [0, 1)"},
                    {{"--schedule=linear"}, "unknown learning-rate schedule 'linear'"},
                    {{"--preset=huge"}, "unknown --preset 'huge'"}});
}

TEST_CASE("cli: unknown and malformed variants are named") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    check_failures(lm, dir,
                   {{{"--variants=X"}, "unknown attention variant 'X'"},
                    {{"--variants=V,R,Q"}, "unknown attention variant 'Q'"},
                    {{"--variants=R+"}, "malformed variant 'R+': empty component"},
                    {{"--variants=+V"}, "malformed variant '+V': empty component"},
                    {{"--variants=R+R"}, "variant 'R+R' repeats R"},
                    {{"--variants=R,,V"}, "empty entry in list 'R,,V' (--variants)"},
                    {{"--variants="}, "--variants is empty: give a comma-separated list"}});
}

TEST_CASE("cli: unwritable results and checkpoint directories fail before training") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "a-file", "not a directory\n");
    check_failures(lm, dir,
                   {{{"--runs-dir=/proc/nope"}, "cannot create directory '/proc/nope'"},
                    {{"--runs-dir=" + dir / "a-file/runs"}, "cannot create directory '" + dir / "a-file"},
                    {{"--save-every=10", "--checkpoint-dir=/proc/nope"}, "cannot create directory '/proc/nope'"}});
}

TEST_CASE("cli: resuming from a missing, foreign or corrupt checkpoint names the file and the problem") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "notes.txt", "these are not the weights you are looking for\n");
    Checkpoint ck;
    ck.config = "variant=R\n";
    ck.params.push_back({"w", {2, 2}, true, {1, 2, 3, 4}});
    write_file_atomic(dir / "weights-only.ckpt", serialize_checkpoint(ck));
    ck.adam_t = 1;
    ck.adam_m = ck.adam_v = {0, 0, 0, 0};
    const std::string good = serialize_checkpoint(ck);
    write_file_atomic(dir / "cut.ckpt", good.substr(0, good.size() - 20));
    std::string flipped = good;
    flipped[flipped.size() - 30] ^= 0x40;
    write_file_atomic(dir / "flipped.ckpt", flipped);
    std::string future = good;
    future[8] = 9;
    write_file_atomic(dir / "future.ckpt", future);
    write_file_atomic(dir / "good.ckpt", good);
    check_failures(lm, dir,
                   {{{"--variants=R", "--resume=" + dir / "none.ckpt"}, "cannot open '" + dir / "none.ckpt" + "'"},
                    {{"--variants=R", "--resume=" + dir / "notes.txt"}, dir / "notes.txt" + ": not a synth checkpoint"},
                    {{"--variants=R", "--resume=" + dir / "cut.ckpt"}, dir / "cut.ckpt" + ": truncated or corrupt"},
                    {{"--variants=R", "--resume=" + dir / "flipped.ckpt"}, dir / "flipped.ckpt" + ": checksum mismatch"},
                    {{"--variants=R", "--resume=" + dir / "future.ckpt"}, dir / "future.ckpt" + ": checkpoint format version 9"},
                    // Well-formed, but without optimizer state, or not written by an lm run.
                    {{"--variants=R", "--resume=" + dir / "weights-only.ckpt"},
                     dir / "weights-only.ckpt" + " has no optimizer state, so training cannot continue from it"},
                    {{"--variants=R", "--resume=" + dir / "good.ckpt"}, "the saved config has no value for --d-model"}});
}

// ---- build/mt ------------------------------------------------------------------------

TEST_CASE("cli: build/mt names the flag, the file or the problem for bad input") {
    const std::string mt = synth_test::binary_or_skip("mt");
    if (mt.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "train.en", "a small house\nthe dog\n");
    write_file_atomic(dir / "train.de", "ein kleines haus\n");  // one line short
    write_file_atomic(dir / "notes.txt", "not a checkpoint\n");
    write_file_atomic(dir / "a-file", "not a directory\n");
    const std::string data = "--data=" + dir.path;
    // A decoding set with an empty reference line fails before training, naming file and line.
    std::filesystem::create_directories(dir / "refs");
    for (const char* split : {"train", "val", "test2016"}) {
        write_file_atomic(dir / ("refs/" + std::string(split) + ".en"), "a small house\nthe dog\na cat\n");
        write_file_atomic(dir / ("refs/" + std::string(split) + ".de"),
                          std::string(split) == "test2016" ? "ein kleines haus\n\neine katze\n" : "ein haus\nder hund\neine katze\n");
    }
    auto refs = synth_test::run_process(mt, {"--preset=none", "--runs-dir=" + dir / "runs", "--data=" + dir / "refs",
                                             "--test-sets=test2016", "--bpe-vocab=300"}, dir.path);
    CHECK(refs.status == 1);
    CHECK(refs.err.find(dir / "refs/test2016.de:2: an empty reference line") != std::string::npos);
    CHECK(refs.err.find("step") == std::string::npos);  // no training step ran
    check_failures(mt, dir,
                   {{{"--bogus=1"}, "unknown flag --bogus"},
                    {{"--beam=0"}, "--beam=0 must be positive"},
                    {{"--d-model=0"}, "--d-model=0 must be positive"},
                    {{"--epochs=-2"}, "--epochs=-2 must be positive"},
                    {{"--label-smoothing=1"}, "--label-smoothing=1 must be in [0, 1)"},
                    {{"--save-every=-1"}, "--save-every=-1 must be >= 0"},
                    {{"--heads=3"}, "--heads=3 must divide --d-model=128"},
                    {{"--fd-a=5", "--max-len=64"}, "FD: --fd-a=5 must divide the maximum length L=64"},
                    {{"--init=zeros"}, "--init must be glorot or normal, got 'zeros'"},
                    {{"--variants=R+"}, "malformed variant 'R+': empty component"},
                    {{"--variants=Q"}, "unknown attention variant 'Q'"},
                    {{"--data=" + dir / "none"}, "'" + dir / "none/train.en" + "' not found"},
                    {{data}, "train.en has 2 lines but " + dir / "train.de" + " has 1"},
                    {{data, "--runs-dir=" + dir / "a-file/runs"}, "cannot create directory '" + dir / "a-file"},
                    {{data, "--save-every=1", "--checkpoint-dir=/proc/nope"}, "cannot create directory '/proc/nope'"},
                    {{"--translate"}, "--translate needs --checkpoint=FILE"},
                    {{"--translate", "--checkpoint=" + dir / "notes.txt"}, dir / "notes.txt" + ": not a synth checkpoint"},
                    {{"--translate", "--checkpoint=" + dir / "notes.txt", "--max-extra=-100"},
                     "--max-extra=-100 must be >= 0"}});
}

TEST_CASE("cli: build/bleu refuses files that are not UTF-8 text, as sacreBLEU does") {
    const std::string bleu = synth_test::binary_or_skip("bleu");
    if (bleu.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "ref.txt", "a small house\nthe dog\n");
    write_file_atomic(dir / "latin1.txt", "a small h\xe4use\nthe dog\n");
    write_file_atomic(dir / "nul.txt", std::string("a small house\nthe\0dog\n", 23));
    write_file_atomic(dir / "ok.txt", "a small house\nthe dog\n");
    for (const char* bad : {"latin1.txt", "nul.txt"}) {
        CAPTURE(bad);
        auto r = synth_test::run_process(bleu, {dir / bad, dir / "ref.txt"}, dir.path);
        CHECK(r.status == 1);
        CHECK(r.err.find(dir / bad) != std::string::npos);
    }
    CHECK(synth_test::run_process(bleu, {dir / "ok.txt", dir / "ref.txt"}, dir.path).status == 0);
}

TEST_CASE("cli: a device or a pipe given as a file is refused before it is read") {
    const std::string bleu = synth_test::binary_or_skip("bleu");
    if (bleu.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "ref.txt", "a small house\n");
    auto r = synth_test::run_process(bleu, {"/dev/zero", dir / "ref.txt"}, dir.path);  // would never end
    CHECK(r.status == 1);
    CHECK(r.err.find("'/dev/zero' is not a regular file") != std::string::npos);
}

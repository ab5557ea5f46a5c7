// The analyses of docs/analysis.md: the attention probe behind build/lm --dump-attention, the
// dump itself (the maps are probability rows, causal, and R's is softmax of R), and
// scripts/alphas.sh's table of a mixture's weights.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "attention/variant.h"
#include "engine/autograd.h"
#include "base/io.h"
#include "base/json.h"
#include "base/rng.h"
#include "subprocess.h"
#include "tiny_text.h"
#include "train/trainer.h"
#include "models/transformer.h"

using namespace synth;
using synth_test::ScratchDir;

namespace {

AttnConfig small(const std::string& variant) {
    AttnConfig c;
    c.d_model = 8;
    c.heads = 2;
    c.max_len = 5;
    c.variant = variant;
    return c;
}

}  // namespace

TEST_CASE("analysis: the probe averages probability rows over sequences; R's map is softmax of R itself") {
    for (std::string v : {"V", "R", "D+V"}) {
        CAPTURE(v);
        ParamStore store;
        auto mixer = make_mixer(store, "a.", small(v));
        store.finalize(3);
        Rng rng(4);
        rng.fill_normal(store.data(), store.size(), 0.0f, 0.7f);
        NoGrad ng;
        AttentionProbe probe;
        REQUIRE(mixer->set_probe(&probe));
        Tensor x = new_tensor({3, 5, 8}, false);
        rng.fill_normal(x.data, x.numel(), 0.0f, 1.0f);
        Mask causal;
        causal.causal = true;
        StepContext ctx;
        mixer->forward(x, causal, ctx, nullptr);
        mixer->forward(x, causal, ctx, nullptr);
        CHECK(probe.sequences == 6);
        const std::vector<float> m = probe.mean();  // (H, T, T)
        REQUIRE(m.size() == 2 * 5 * 5);
        for (int h = 0; h < 2; ++h)
            for (int i = 0; i < 5; ++i) {
                double row = 0;
                for (int j = 0; j < 5; ++j) {
                    const float p = m[(h * 5 + i) * 5 + j];
                    if (j > i) CHECK(p == 0.0f);  // causal
                    row += p;
                }
                CHECK(row == doctest::Approx(1.0).epsilon(1e-5));
            }
        if (v == "R") {  // input-independent: the map is softmax over row i's first i+1 entries of R
            const float* r = store.find("a.R.r")->t.data;  // (H, L, L)
            for (int h = 0; h < 2; ++h)
                for (int i = 0; i < 5; ++i) {
                    double z = 0;
                    for (int j = 0; j <= i; ++j) z += std::exp((double)r[(h * 5 + i) * 5 + j]);
                    for (int j = 0; j <= i; ++j)
                        CHECK(m[(h * 5 + i) * 5 + j] ==
                              doctest::Approx(std::exp((double)r[(h * 5 + i) * 5 + j]) / z).epsilon(1e-5));
                }
        }
        mixer->set_probe(nullptr);
        mixer->forward(x, causal, ctx, nullptr);
        CHECK(probe.sequences == 6);  // detached
    }
}

TEST_CASE("analysis: build/lm --dump-attention writes every layer's maps and a mixture's weights") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    const std::vector<std::string> train = {"--data=" + dir / "tiny.txt", "--preset=none", "--variants=R+V", "--seeds=1",
                                            "--d-model=16", "--layers=2", "--heads=2", "--d-ff=32", "--seq=8",
                                            "--batch=4", "--steps=6", "--eval-every=3", "--eval-batches=2",
                                            "--threads=1", "--runs-dir=" + dir / "runs"};
    REQUIRE(synth_test::run_process(lm, train, dir.path).status == 0);
    const std::string ck = dir / "runs/lm-tiny-none/R+V-seed1/final.ckpt", out = dir / "dump.json";
    auto r = synth_test::run_process(lm, {"--dump-attention=" + out, "--checkpoint=" + ck, "--data=" + dir / "tiny.txt",
                                          "--batch=4", "--eval-batches=2"},
                                     dir.path);
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    const std::string text = read_file(out);
    CHECK(text.find("\"variant\": \"R+V\"") != std::string::npos);
    CHECK(text.find("\"step\": 6") != std::string::npos);
    CHECK(text.find("\"sequences\": 8") != std::string::npos);  // 2 batches of 4
    CHECK(text.find("\"components\": [\"R\", \"V\"]") != std::string::npos);
    CHECK(text.find("null") == std::string::npos);  // both layers have maps
    // Two commands at once, or none of the checkpoint, are errors.
    auto both = synth_test::run_process(lm, {"--dump-attention=" + out, "--eval-only", "--checkpoint=" + ck}, dir.path);
    CHECK(both.status != 0);
    CHECK(both.err.find("separate commands") != std::string::npos);
    auto none = synth_test::run_process(lm, {"--dump-attention=" + out}, dir.path);
    CHECK(none.status != 0);
    CHECK(none.err.find("need --checkpoint=FILE") != std::string::npos);
    // The dump never replaces what it reads.
    const std::string held = read_file(ck);
    auto onto = synth_test::run_process(lm, {"--dump-attention=" + ck, "--checkpoint=" + ck}, dir.path);
    CHECK(onto.status != 0);
    CHECK(onto.err.find("--dump-attention") != std::string::npos);
    CHECK(read_file(ck) == held);
}

TEST_CASE("analysis: scripts/alphas.sh tables a mixture's weights from a run's one step checkpoint") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    const std::filesystem::path script = std::filesystem::path(lm).parent_path().parent_path() / "scripts/alphas.sh";
    if (!std::filesystem::exists(script)) {
        MESSAGE("skipped: scripts/alphas.sh is not beside the build directory");
        return;
    }
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    // The data is a file of its own, so the dumps only work if the script passes the run's --data.
    const std::vector<std::string> tiny = {"--data=" + dir / "tiny.txt", "--preset=none", "--variants=R+V", "--seeds=1",
                                           "--d-model=16", "--layers=2", "--heads=2", "--d-ff=32", "--seq=8",
                                           "--batch=4", "--steps=6", "--eval-every=3", "--eval-batches=2", "--threads=1"};
    const auto train = [&](std::vector<std::string> extra) {
        extra.insert(extra.begin(), tiny.begin(), tiny.end());
        REQUIRE(synth_test::run_process(lm, extra, dir.path).status == 0);
    };
    train({"--save-every=3", "--keep-last=1", "--runs-dir=" + dir / "runs"});
    const std::string run = dir / "runs/lm-tiny-none/R+V-seed1";
    auto r = synth_test::run_process("/bin/bash", {script.string(), dir / "alphas", run}, dir.path);
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.find("no picture over training") != std::string::npos);
    CHECK(!std::filesystem::exists(dir / "alphas-R+V-seed1.png"));
    const std::string md = read_file(dir / "alphas.md");
    CHECK(md.find("alpha of R (of R+V)") != std::string::npos);
    CHECK(md.find("One run (R+V-seed1), at its last step checkpoint (step 6)") != std::string::npos);
    CHECK(md.find("| layer | head 0 | head 1 |") != std::string::npos);
    // Every (layer, head) has one row per component, and the two weights are a softmax: they sum to 1.
    std::istringstream csv(read_file(dir / "alphas.csv"));
    std::string line;
    std::getline(csv, line);
    CHECK(line == "run,step,layer,head,component,alpha");
    std::map<std::string, std::vector<double>> by_head;
    while (std::getline(csv, line)) {
        const std::vector<std::string> f = split_list(line);
        REQUIRE(f.size() == 6);
        CHECK(f[0] == "R+V-seed1");
        CHECK(f[1] == "6");
        by_head[f[2] + "/" + f[3]].push_back(std::stod(f[5]));
    }
    CHECK(by_head.size() == 4);  // 2 layers x 2 heads
    for (const auto& [head, a] : by_head) {
        INFO("layer/head ", head);
        REQUIRE(a.size() == 2);
        CHECK(a[0] > 0.0);
        CHECK(a[1] > 0.0);
        CHECK(a[0] + a[1] == doctest::Approx(1.0).epsilon(1e-5));
    }
    // A run without step checkpoints has no weights to give, and a directory without a
    // result.json is no finished run: errors that say so.
    train({"--runs-dir=" + dir / "plain"});
    auto none = synth_test::run_process("/bin/bash", {script.string(), dir / "alphas2", dir / "plain/lm-tiny-none/R+V-seed1"},
                                        dir.path);
    CHECK(none.status != 0);
    CHECK(none.err.find("has no step checkpoint") != std::string::npos);
    auto unfinished = synth_test::run_process("/bin/bash", {script.string(), dir / "alphas3", dir.path}, dir.path);
    CHECK(unfinished.status != 0);
    CHECK(unfinished.err.find("not a finished run directory") != std::string::npos);
}

// The analyses of docs/analysis.md: the attention probe behind build/lm --dump-attention, and
// the dump itself (the maps are probability rows, causal, and R's is softmax of R).
#include <doctest/doctest.h>

#include <cmath>

#include "attention/variant.h"
#include "autograd.h"
#include "io.h"
#include "json.h"
#include "rng.h"
#include "subprocess.h"
#include "tiny_text.h"
#include "transformer.h"

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
}

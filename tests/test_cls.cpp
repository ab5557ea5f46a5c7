// The encoder-only classifier (src/models/classifier.h), Multi30k sentence matching
// (src/text/pair_match.h) and the build/cls runner, end to end.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "skips.h"
#include "engine/autograd.h"
#include "models/classifier.h"
#include "data_cache.h"
#include "gradcheck.h"
#include "base/json.h"
#include "engine/optim.h"
#include "text/pair_match.h"
#include "subprocess.h"
#include "train/trainer.h"
#include "variant_list.h"

using namespace synth;
using synth_test::ScratchDir;

namespace {

ClassifierConfig tiny(const std::string& variant, const std::string& pool) {
    ClassifierConfig c;
    c.vocab = 9, c.classes = 3, c.layers = 2, c.d_ff = 16, c.dropout = 0.0f, c.pool = pool;
    c.attn.d_model = 8, c.attn.heads = 2, c.attn.max_len = 8, c.attn.variant = variant;
    c.attn.settings.set("fr-rank", 3);
    return c;
}

std::vector<float> logits_of(Classifier& m, const std::vector<int32_t>& ids, int B, int T) {
    NoGrad ng;
    StepContext ctx;
    const Tensor y = m.forward(ids, B, T, ctx);  // (B, classes)
    return std::vector<float>(y.data, y.data + y.numel());
}

}  // namespace

TEST_CASE("cls: padding changes no logit, for both poolings and every variant") {
    for (const std::string& v : variants_and_pairs()) {
        for (const std::string pool : {"cls", "mean"}) {
            CAPTURE(v);
            CAPTURE(pool);
            ParamStore store;
            Classifier m(store, tiny(v, pool));
            store.finalize(3);
            Rng rng(4);
            rng.fill_normal(store.data(), store.size(), 0.0f, 0.5f);
            const std::vector<int32_t> a = {1, 4, 5, 2}, b = {1, 3, 8, 6, 7, 2, 4, 5};  // a padded to 8 in the batch
            std::vector<int32_t> batch = a;
            batch.resize(8, 0);
            batch.insert(batch.end(), b.begin(), b.end());
            scratch().reset();
            const std::vector<float> both = logits_of(m, batch, 2, 8), alone_a = logits_of(m, a, 1, 4),
                                     alone_b = logits_of(m, b, 1, 8);
            for (int k = 0; k < 3; ++k) {
                CHECK(both[k] == doctest::Approx(alone_a[k]).epsilon(1e-4));
                CHECK(both[3 + k] == doctest::Approx(alone_b[k]).epsilon(1e-4));
            }
            // The padding token's embedding (row 0) changes nothing either.
            const Param* emb = nullptr;
            for (const Param& p : store.params())
                if (p.name == "tok_emb") emb = &p;
            REQUIRE(emb);
            for (int i = 0; i < 8; ++i) emb->t.data[i] += 3.0f;
            const std::vector<float> moved = logits_of(m, batch, 2, 8);
            for (int k = 0; k < 6; ++k) CHECK(moved[k] == doctest::Approx(both[k]).epsilon(1e-5));
        }
    }
}

TEST_CASE("cls: gradient check of both poolings; padded positions get exactly zero gradient") {
    for (const std::string mode : {"cls", "mean"}) {
        CAPTURE(mode);
        scratch().reset();
        Tensor h = new_tensor({2, 5, 3}, true);  // (B, T, d)
        Rng rng(7);
        rng.fill_normal(h.data, h.numel(), 0.0f, 1.0f);
        const std::vector<uint8_t> pad = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};  // row 0: 3 tokens, then padding
        const GradCheckResult r = gradcheck({h}, [&] { return pool_sequence(h, pad, mode); });
        CHECK_MESSAGE(r.ok, r.summary());
        for (int t = 0; t < 5; ++t)
            for (int k = 0; k < 3; ++k) {
                const bool used = mode == "cls" ? t == 0 : !pad[t];
                CHECK((h.grad[t * 3 + k] != 0.0f) == used);
            }
        NoGrad ng;
        const Tensor y = pool_sequence(h, pad, mode);  // (2, 3)
        for (int k = 0; k < 3; ++k) {
            const float want = mode == "cls" ? h.data[k] : (h.data[k] + h.data[3 + k] + h.data[6 + k]) / 3.0f;
            CHECK(y.data[k] == doctest::Approx(want));
        }
    }
    Tensor h = new_tensor({1, 2, 3}, false);
    CHECK_THROWS_WITH_AS(pool_sequence(h, {1, 1}, "mean"), doctest::Contains("all padding"), Error);
}

TEST_CASE("cls: a sequence longer than L is a clear error") {
    ParamStore store;
    Classifier m(store, tiny("R", "cls"));
    store.finalize(1);
    StepContext ctx;
    const std::vector<int32_t> ids(9, 2);
    CHECK_THROWS_WITH_AS(m.forward(ids, 1, 9, ctx), doctest::Contains("longer than the model's maximum length L=8"),
                         Error);
    ClassifierConfig bad = tiny("V", "max");
    ParamStore s2;
    CHECK_THROWS_WITH_AS(Classifier(s2, bad), doctest::Contains("unknown --pool 'max'"), Error);
}

TEST_CASE("cls: a tiny classifier learns whether a token occurs, for both poolings") {
    // Label 1 when token 3 occurs among 4..8 random tokens of 2..6: easy, but only from the
    // sequence as a whole.
    for (const std::string pool : {"cls", "mean"}) {
        CAPTURE(pool);
        ClassifierConfig c = tiny("V", pool);
        c.classes = 2, c.layers = 1, c.attn.d_model = 16, c.d_ff = 32, c.attn.max_len = 9;
        ParamStore store;
        Classifier m(store, c);
        store.finalize(5);
        AdamW opt(store, AdamWConfig{0.9f, 0.98f, 1e-8f, 0.0f});
        Rng rng(6);
        auto batch = [&](int B, std::vector<int32_t>& ids, std::vector<int32_t>& labels) {
            const int T = 9;
            ids.assign((size_t)B * T, 0);
            labels.assign(B, 0);
            for (int b = 0; b < B; ++b) {
                const int n = 4 + (int)rng.below(5);
                ids[(size_t)b * T] = 1;  // [CLS]
                labels[b] = rng.below(2);
                for (int t = 1; t <= n; ++t) ids[(size_t)b * T + t] = 4 + (int)rng.below(3);
                if (labels[b]) ids[(size_t)b * T + 1 + rng.below(n)] = 3;
            }
        };
        std::vector<int32_t> ids, labels;
        double first = 0, last = 0;
        for (int step = 0; step < 300; ++step) {
            batch(32, ids, labels);
            StepContext ctx{true, 1, (uint64_t)step, 0};
            const float l =
                train_step(store, opt, [&] { return cross_entropy(m.forward(ids, 32, 9, ctx), labels, -1, 0.0f); },
                           3e-3f, 1.0f);
            if (step < 20) first += l / 20;
            if (step >= 280) last += l / 20;
        }
        batch(200, ids, labels);
        const std::vector<float> y = logits_of(m, ids, 200, 9);
        int correct = 0;
        for (int b = 0; b < 200; ++b) correct += (y[2 * b + 1] > y[2 * b]) == (labels[b] == 1);
        CHECK(last < 0.5 * first);
        CHECK(correct >= 180);  // chance is 100
    }
}

TEST_CASE("cls: sentence matching is balanced, and each negative is another sentence of similar length") {
    Rng rng(3);
    std::vector<std::vector<int32_t>> en, de;
    std::vector<std::string> de_text;
    for (int i = 0; i < 200; ++i) {
        const int n = 3 + (int)rng.below(30);
        en.emplace_back(n, 10 + i % 50);
        de.emplace_back(n + (int)rng.below(3), 100 + i);
        de_text.push_back(i == 7 ? "a repeated line" : i == 8 ? "a repeated line" : "line " + std::to_string(i));
    }
    const std::vector<ClsExample> ex = match_examples(en, de, de_text, 11, 5, 1, 2);
    REQUIRE(ex.size() == 400);
    int positives = 0;
    double neg_gap = 0, random_gap = 0;
    for (int i = 0; i < 200; ++i) {
        const ClsExample &pos = ex[2 * i], &neg = ex[2 * i + 1];
        positives += pos.label;
        CHECK(pos.label == 1);
        CHECK(neg.label == 0);
        CHECK(pos.ids[0] == 1);
        CHECK(pos.ids[1 + en[i].size()] == 2);  // [SEP] after the English side
        CHECK(std::equal(en[i].begin(), en[i].end(), neg.ids.begin() + 1));  // the same English
        const std::vector<int32_t> neg_de(neg.ids.begin() + 2 + en[i].size(), neg.ids.end());
        CHECK(neg_de != de[i]);
        const int j = neg_de.at(0) - 100;  // German line j carries the ids 100 + j
        CHECK(de_text[j] != de_text[i]);
        neg_gap += std::abs((double)de[j].size() - (double)de[i].size()) / 200;
        random_gap += std::abs((double)de[(i * 37 + 11) % 200].size() - (double)de[i].size()) / 200;
    }
    CHECK(positives == 200);
    CHECK(neg_gap < 0.2 * random_gap);
    // A function of the seed.
    const std::vector<ClsExample> again = match_examples(en, de, de_text, 11, 5, 1, 2),
                                  other = match_examples(en, de, de_text, 12, 5, 1, 2);
    int same = 0, moved = 0;
    for (size_t k = 0; k < ex.size(); ++k) same += again[k].ids == ex[k].ids, moved += other[k].ids != ex[k].ids;
    CHECK(same == 400);
    CHECK(moved > 50);
    CHECK_THROWS_AS(match_examples({{1}}, {{2}}, {"x"}, 1, 5, 1, 2), Error);
}

// ---- the runner ------------------------------------------------------------------------------

namespace {

std::vector<std::string> quick_args(const ScratchDir& dir, const std::string& variants) {
    return {"--preset=quick", "--variants=" + variants, "--threads=1", "--runs-dir=" + dir / "runs",
            "--listops-dir=" + dir / "listops"};
}

JsonObject result_of(const std::string& run_dir) {
    return parse_json_object(read_file(run_dir + "/result.json"), run_dir + "/result.json");
}

}  // namespace

TEST_CASE("cls: the quick preset writes run directories, LRA's TSV files and a report; resume repeats the run") {
    const std::string exe = synth_test::binary_or_skip("cls");
    if (exe.empty()) return;
    ScratchDir dir;
    std::vector<std::string> args = quick_args(dir, "V,R");
    args.push_back("--save-every=30");
    const auto r = synth_test::run_process(exe, args, dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    for (const char* f : {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"})
        CHECK(std::filesystem::exists(dir / "listops" + "/" + f));
    const std::string run = dir / "runs/cls-listops-quick/V-seed1337";
    for (const char* f : {"config.json", "metrics.jsonl", "final.ckpt", "best.ckpt", "checkpoint-step30.ckpt"})
        CHECK(std::filesystem::exists(run + "/" + f));
    const JsonObject res = result_of(run);
    for (const char* k : {"val_acc", "test_acc", "val_loss", "test_loss", "final_test_acc", "train_tok_s", "steps_s"})
        CHECK(res.has(k));
    CHECK(res.num("test_acc") >= 0.0);
    CHECK(res.num("test_acc") <= 1.0);
    CHECK(res.at("data_hash").size() == 16);
    CHECK(read_file(run + "/metrics.jsonl").find("\"val_acc\"") != std::string::npos);
    const std::string md = read_file(dir / "runs/cls-listops-quick/report.md");
    CHECK(md.find("test_acc") != std::string::npos);
    CHECK(md.find("| R |") != std::string::npos);

    // Resuming V from step 30 ends in the uninterrupted run's numbers.
    std::vector<std::string> again = quick_args(dir, "V");
    again.push_back("--resume=" + run + "/checkpoint-step30.ckpt");
    const auto r2 = synth_test::run_process(exe, again, dir.path);
    REQUIRE_MESSAGE(r2.status == 0, r2.err);
    CHECK(r2.err.find("resumed from") != std::string::npos);
    const JsonObject res2 = result_of(run);
    for (const char* k : {"val_loss", "val_acc", "test_loss", "test_acc", "best_step", "data_hash"})
        CHECK(res2.at(k) == res.at(k));

    // A finished run is not overwritten by a new sweep.
    const auto r3 = synth_test::run_process(exe, quick_args(dir, "R"), dir.path);
    CHECK(r3.status == 1);  // R's run directory is finished
    CHECK(r3.err.find("--overwrite") != std::string::npos);
}

TEST_CASE("cls: m30k-match on the quick preset trains on balanced pairs" * synth_test::skip_unless(synth_test::has_data("multi30k_en_de"), "data set multi30k_en_de missing: run `make data`")) {
    const std::string exe = synth_test::binary_or_skip("cls");
    if (exe.empty() || cached_data_dir("multi30k_en_de").empty()) return;
    ScratchDir dir;
    const auto r = synth_test::run_process(
        exe, {"--task=m30k-match", "--preset=quick", "--variants=V", "--steps=10", "--eval-every=10", "--threads=1",
              "--runs-dir=" + dir / "runs"},
        dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(r.err.find("2000/2028/2000 pairs") != std::string::npos);  // 1000 + 1014 + 1000 lines, two pairs each
    const JsonObject res = result_of(dir / "runs/cls-m30k-match-quick/V-seed1337");
    CHECK(res.num("val_acc") >= 0.0);
    CHECK(res.at("task") == "m30k-match");
}

TEST_CASE("cls: bad input fails before training, naming the problem") {
    const std::string exe = synth_test::binary_or_skip("cls");
    if (exe.empty()) return;
    ScratchDir dir;
    const auto help = synth_test::run_process(exe, {"--help"}, dir.path);
    CHECK(help.status == 0);
    CHECK(help.out.find("--task") != std::string::npos);
    CHECK(help.out.find("lra") != std::string::npos);
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--task=sst"}, "unknown --task 'sst'"},
        {{"--bogus=1"}, "bogus"},
        {{"--variants=V,Nope"}, "Nope"},
        {{"--pool=max"}, "--pool must be cls or mean"},
        {{"--preset=huge"}, "unknown --preset 'huge'"},
        {{"--task=m30k-match", "--preset=lra"}, "--preset=lra"},
        {{"--task=m30k-match", "--listops-max-depth=3"}, "--listops-max-depth is a flag of --task=listops"},
        {{"--bpe-vocab=500"}, "--bpe-vocab is a flag of --task=m30k-match"},
        {{"--max-len=30"}, "raise --max-len, or give --truncate"},
        {{"--listops-min-length=70"}, "no length is strictly between 70 and 60"},
        {{"--heads=3"}, "--heads=3 must divide --d-model=32"},
        {{"--batch=0"}, "--batch=0 must be positive"},
    };
    for (const auto& [extra, message] : cases) {
        CAPTURE(message);
        std::vector<std::string> args = quick_args(dir, "V");
        args.insert(args.end(), extra.begin(), extra.end());
        const auto r = synth_test::run_process(exe, args, dir.path);
        CHECK(r.status == 1);
        CHECK(r.err.find(message) != std::string::npos);
        CHECK(!std::filesystem::exists(dir / "runs/cls-listops-quick/V-seed1337/result.json"));
    }
    // --truncate cuts instead, and says how many.
    std::vector<std::string> cut = quick_args(dir, "V");
    cut.insert(cut.end(), {"--max-len=30", "--truncate", "--steps=2"});
    const auto r = synth_test::run_process(exe, cut, dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(result_of(dir / "runs/cls-listops-quick/V-seed1337").num("truncated") > 0);
}

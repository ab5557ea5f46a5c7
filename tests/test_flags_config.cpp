// --config=RUN_DIR/config.json replay, the library half (src/base/flags_config.h): the flags a
// run directory records become the values of the flags the command line did not give.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "base/flags.h"
#include "base/flags_config.h"
#include "base/io.h"
#include "base/json.h"
#include "error_of.h"
#include "subprocess.h"
#include "tiny_text.h"

using namespace synth;
using synth_test::error_of;

namespace {

struct Options {
    int steps = 100;
    float lr = 1e-3f;
    bool share = false;
    std::string variants = "V", run_dir, config;
    Flags flags{"lm", "test"};
    Options() {
        flags.add("steps", &steps, "steps", FlagRole::Training);
        flags.add("lr", &lr, "lr", FlagRole::Training);
        flags.add("share-w2", &share, "D: one W2", FlagRole::Model);
        flags.add("variants", &variants, "variants");
        flags.add("run-dir", &run_dir, "where");
        flags.add("config", &config, "a run's config.json to replay");
    }
};

// What src/runs/run_dir.cpp writes: run facts, then every flag as "flag.<name>".
const char* kConfig =
    R"({"binary": "lm", "git_commit": "56623fd", "threads": 1, "group_hash": "368ef09825a1c408", )"
    R"("flag.steps": "2000", "flag.lr": "0.003", "flag.share-w2": "true", "flag.variants": "R", )"
    R"("flag.run-dir": "runs/old/R-seed1", "flag.config": ""})";

}  // namespace

TEST_CASE("flags: --config replays a run directory's config.json; the command line overrides it") {
    const auto saved = flags_of_config_json(kConfig, "RUN/config.json");
    CHECK(saved.size() == 6);
    CHECK(saved.at("steps") == "2000");
    CHECK(saved.count("binary") == 0);  // run facts are not flags

    Options o;
    REQUIRE(o.flags.parse({"--config=RUN/config.json", "--steps=50"}));
    apply_config(o.flags, saved, {"run-dir", "config"}, "RUN/config.json");
    CHECK(o.steps == 50);  // given on the command line: kept
    CHECK(o.lr == doctest::Approx(0.003f));
    CHECK(o.share);
    CHECK(o.variants == "R");
    CHECK(o.flags.given("lr"));   // replayed flags count as given (resume checks, settings lines)
    CHECK(o.run_dir.empty());     // skipped: where this run goes is this run's
    CHECK(o.config == "RUN/config.json");
}

TEST_CASE("flags: a config.json with a flag the program lacks, or without flags, is an error naming the file") {
    Options o;
    REQUIRE(o.flags.parse(std::vector<std::string>{}));
    CHECK(error_of([&] { apply_config(o.flags, {{"beam", "4"}}, {}, "mt-run/config.json"); }) ==
          doctest::Contains("mt-run/config.json sets --beam, which this program does not have"));
    CHECK(error_of([] { flags_of_config_json(R"({"binary": "lm"})", "x/config.json"); }) ==
          doctest::Contains("x/config.json records no flags"));
    CHECK(error_of([] { flags_of_config_json("not json", "x/config.json"); }) == doctest::Contains("x/config.json"));
    CHECK(error_of([&] { apply_config(o.flags, {{"steps", "many"}}, {}); }) == doctest::Contains("--steps"));
}

TEST_CASE("flags: --help gives a default once, and none when it is empty") {
    int seed = 1;
    std::string seeds, out;
    Flags f("lm", "test");
    f.add("seed", &seed, "the seed");
    f.add("seeds", &seeds, "comma-separated seeds (default: --seed)");
    f.add("out", &out, "the output stem");
    const std::string help = f.usage();
    CHECK(help.find("the seed (default: 1)\n") != std::string::npos);
    CHECK(help.find("comma-separated seeds (default: --seed)\n") != std::string::npos);
    CHECK(help.find("the output stem\n") != std::string::npos);
    CHECK(help.find("(default: )") == std::string::npos);
}

TEST_CASE("flags: build/lm --config=RUN_DIR/config.json replays a run; the command line and the run's place differ") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    synth_test::ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    auto first = synth_test::run_process(
        lm, {"--data=" + dir / "tiny.txt", "--preset=none", "--variants=R", "--seeds=1", "--d-model=16", "--layers=1",
             "--heads=2", "--d-ff=32", "--seq=8", "--batch=4", "--steps=2", "--warmup=1", "--lr=0.003",
             "--eval-every=2", "--eval-batches=1", "--threads=1", "--run-dir=" + dir / "first"},
        dir.path);
    INFO("stderr: ", first.err);
    REQUIRE(first.status == 0);
    const std::string saved = dir / "first/config.json";
    auto again = synth_test::run_process(lm, {"--config=" + saved, "--steps=3", "--run-dir=" + dir / "again"}, dir.path);
    INFO("replay stderr: ", again.err);
    REQUIRE(again.status == 0);
    const JsonObject a = parse_json_object(read_file(saved), saved);
    const JsonObject b = parse_json_object(read_file(dir / "again/config.json"), "again/config.json");
    CHECK(b.at("flag.steps") == "3");
    CHECK(b.at("flag.config") == saved);
    CHECK(b.at("flag.run-dir") == dir / "again");
    // Every other flag is the saved run's (not the defaults: --lr=0.003, --d-model=16, ...).
    int compared = 0;
    for (const auto& [k, v] : a.fields) {
        if (k.rfind("flag.", 0) != 0 || k == "flag.steps" || k == "flag.run-dir" || k == "flag.config") continue;
        CAPTURE(k);
        CHECK(b.at(k) == v);
        ++compared;
    }
    CHECK(compared > 30);
    CHECK(b.at("flag.lr") == "0.003");
}

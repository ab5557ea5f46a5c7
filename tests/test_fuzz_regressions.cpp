// Replays the fuzz targets' seed inputs (fuzz/seeds/<target>/) and every input a fuzzer once
// crashed on (tests/fuzz_regressions/<target>-<name>) through the same checks the libFuzzer
// targets run (fuzz/fuzz_targets.h), so a fixed bug stays fixed in the ordinary test build.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <string>

#include "../fuzz/fuzz_targets.h"
#include "base/io.h"

namespace fs = std::filesystem;

namespace {

const std::map<std::string, void (*)(const std::string&)> kTargets = {
    {"checkpoint", synth_fuzz::fuzz_checkpoint},
    {"safetensors", synth_fuzz::fuzz_safetensors},
    {"flags", synth_fuzz::fuzz_flags},
    {"bpe", synth_fuzz::fuzz_bpe},
    {"tokenizers", synth_fuzz::fuzz_tokenizers}};

// The repository root: the nearest ancestor of the test binary that has fuzz/ and tests/.
fs::path repo_root() {
    std::error_code ec;
    fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    for (; !ec && dir.has_relative_path(); dir = dir.parent_path()) {
        std::error_code missing;  // set when a candidate does not exist; that is not an error
        if (fs::is_directory(dir / "fuzz/seeds", missing) && fs::is_directory(dir / "tests", missing)) return dir;
    }
    return {};
}

// Runs one input through a target; anything but a clean return or a synth::Error inside the
// target (which the target itself catches) fails the check with the input's name.
void replay(const std::string& target, const fs::path& file) {
    INFO("input ", file.string(), " (target ", target, ")");
    const std::string bytes = synth::read_file(file.string());
    CHECK_NOTHROW(kTargets.at(target)(bytes));
}

}  // namespace

TEST_CASE("fuzz: seeds and saved crash inputs pass every target's checks") {
    const fs::path root = repo_root();
    if (root.empty()) {
        MESSAGE("skipped: no fuzz/seeds above the test binary");
        return;
    }
    int replayed = 0;
    for (const auto& [target, run] : kTargets) {
        for (const auto& entry : fs::directory_iterator(root / "fuzz/seeds" / target)) {
            replay(target, entry.path());
            ++replayed;
        }
    }
    const fs::path saved = root / "tests/fuzz_regressions";
    if (fs::is_directory(saved)) {
        for (const auto& entry : fs::directory_iterator(saved)) {
            const std::string name = entry.path().filename().string();
            const std::string target = name.substr(0, name.find('-'));
            INFO("file ", name);
            REQUIRE(kTargets.count(target) == 1);  // named <target>-<anything>
            replay(target, entry.path());
            ++replayed;
        }
    }
    CHECK(replayed >= 5);
}

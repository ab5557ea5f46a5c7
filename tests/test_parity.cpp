// Parity with an independent PyTorch implementation (scripts/torch_reference.py): for each
// default variant, build/parity dumps one forward, backward and clipped AdamW step of a small
// LM in float32, and the script recomputes all of it in float64 from docs/variants.md's definitions.
// And interoperability: the script rebuilds a model from a safetensors file of synth's alone
// (src/train/safetensors.h, read with its own reader) and gets synth's logits.
// Skipped, with a message, when build/parity, the script or PyTorch is not available.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include "skips.h"
#include "variant_list.h"
#include "base/io.h"
#include "subprocess.h"

namespace fs = std::filesystem;
using synth_test::ProcessResult;
using synth_test::run_process;
using synth_test::ScratchDir;
using synth_test::sibling_binary;

namespace {

const std::string kPython = "/usr/bin/python3";  // where Debian's python3-torch is installed
const int kExitNoTorch = 77;                     // torch_reference.py: torch not importable

// scripts/torch_reference.py in the first directory above the test binary that has it.
std::string reference_script() {
    std::error_code ec;
    fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    for (; !ec && dir.has_relative_path(); dir = dir.parent_path())
        if (fs::exists(dir / "scripts/torch_reference.py", ec)) return (dir / "scripts/torch_reference.py").string();
    return "";
}

// Lines of `text` that contain `needle`.
std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.find(needle) != std::string::npos) out.push_back(line);
    return out;
}

// True, after saying why the calling test is skipped, when build/parity or the script is missing.
bool tools_missing(const std::string& parity, const std::string& script) {
    if (!parity.empty() && !script.empty()) return false;
    MESSAGE("skipped: " << (parity.empty() ? "build/parity is not built next to the test binary"
                                           : "scripts/torch_reference.py not found above the test binary"));
    return true;
}

// True, after saying why the calling test is skipped, when the script could not run because
// PyTorch (or /usr/bin/python3) is missing.
bool torch_missing(const ProcessResult& check) {
    if (check.status != kExitNoTorch && check.status != -1) return false;
    std::string why = check.status == -1 ? "cannot run " + kPython : check.err;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    MESSAGE("skipped: PyTorch is not available: " << why);
    return true;
}

// The script's report: exit status 1, an "ok" summary line for each (variant, file) of `ok`,
// and a mismatch in the tampered file (a copy of V's), `bad` among the mismatches listed.
void check_report(const ProcessResult& check, const std::vector<std::pair<std::string, std::string>>& ok,
                  const std::string& tampered, const std::string& bad) {
    CHECK(check.status == 1);  // the tampered file, and only it, must fail
    for (const auto& [variant, file] : ok) {
        CAPTURE(file);
        std::vector<std::string> line = lines_with(check.out, "[" + file + "]");
        REQUIRE(line.size() == 1);
        CHECK(line[0].rfind(variant + ": ok ", 0) == 0);
    }
    std::vector<std::string> line = lines_with(check.out, "[" + tampered + "]");
    REQUIRE(line.size() == 1);
    CHECK(line[0].rfind("V: MISMATCH in 1 of", 0) == 0);
    CHECK(lines_with(check.out, bad).size() == 1);
}

// A copy of a file whose last float (in a dump, the last element of the last parameter after
// the AdamW step; in a safetensors file, of the last parameter) is moved by 0.5, far more than
// any step: the comparison must catch it.
void write_tampered(const std::string& from, const std::string& to) {
    std::string bytes = synth::read_file(from);
    float v;
    std::memcpy(&v, &bytes[bytes.size() - 4], 4);
    v += 0.5f;
    std::memcpy(&bytes[bytes.size() - 4], &v, 4);
    synth::write_file_atomic(to, bytes);
}

}  // namespace

TEST_CASE("parity: forward, gradients and one AdamW step match PyTorch for every variant and every pair" * synth_test::skip_unless(synth_test::python_has_torch(), "PyTorch: /usr/bin/python3 cannot import torch (apt-get install python3-torch)")) {
    const std::string parity = sibling_binary("parity"), script = reference_script();
    if (tools_missing(parity, script)) return;
    const std::vector<std::string> variants = causal_variants_and_pairs();  // the parity model is the LM
    ScratchDir dir;
    REQUIRE(!dir.path.empty());
    std::string list;
    for (const std::string& v : variants) list += (list.empty() ? "" : ",") + v;
    ProcessResult dump = run_process(parity, {"--out-dir=" + dir.path, "--variants=" + list}, dir.path);
    REQUIRE_MESSAGE(dump.status == 0, dump.err);
    // Sequences over 64 tokens, where causal attention skips whole blocks above the diagonal
    // (Q K^T and P V for V, Dense's W2 for D, P V with batch-shared weights for R, and the
    // mixtures, whose weights' gradient sums over the skipped entries too), renamed
    // long-<variant>.bin.
    const std::vector<std::string> long_variants = {"V", "R", "D", "R+V", "D+V"};
    const std::string long_dir = dir / "long";
    REQUIRE(std::filesystem::create_directory(long_dir));
    ProcessResult dump_long = run_process(
        parity, {"--out-dir=" + long_dir, "--variants=V,R,D,R+V,D+V", "--seq=160", "--tokens=150", "--batch=2"}, dir.path);
    REQUIRE_MESSAGE(dump_long.status == 0, dump_long.err);
    for (const std::string& v : long_variants)
        std::filesystem::rename(long_dir + "/" + v + ".bin", dir / ("long-" + v + ".bin"));

    // All variants plus one tampered file in ONE Python process: importing torch takes seconds.
    write_tampered(dir / "V.bin", dir / "tampered.bin");
    std::vector<std::string> args = {script, "parity"};
    for (const std::string& v : variants) args.push_back(dir / (v + ".bin"));
    for (const std::string& v : long_variants) args.push_back(dir / ("long-" + v + ".bin"));
    args.push_back(dir / "tampered.bin");
    ProcessResult check = run_process(kPython, args, dir.path);
    if (torch_missing(check)) return;
    INFO(check.out << check.err);
    std::vector<std::pair<std::string, std::string>> ok;
    for (const std::string& v : variants) ok.push_back({v, v + ".bin"});
    for (const std::string& v : long_variants) ok.push_back({v, "long-" + v + ".bin"});
    check_report(check, ok, "tampered.bin", "BAD after/ln_f.b (update)");
}

TEST_CASE("parity: PyTorch rebuilds the model from synth's safetensors file and gets synth's logits" * synth_test::skip_unless(synth_test::python_has_torch(), "PyTorch: /usr/bin/python3 cannot import torch (apt-get install python3-torch)")) {
    const std::string parity = sibling_binary("parity"), script = reference_script();
    if (tools_missing(parity, script)) return;
    // Rfix+V: a parameter the file marks as fixed, which the rebuilt model must freeze too.
    const std::vector<std::string> variants = {"V", "R", "D+V", "Rfix+V"};
    ScratchDir dir;
    REQUIRE(!dir.path.empty());
    ProcessResult dump =
        run_process(parity, {"--out-dir=" + dir.path, "--variants=V,R,D+V,Rfix+V", "--safetensors"}, dir.path);
    REQUIRE_MESSAGE(dump.status == 0, dump.err);
    // The script compares each file with the dump of the same name beside it.
    write_tampered(dir / "V.safetensors", dir / "tampered.safetensors");
    synth::write_file_atomic(dir / "tampered.bin", synth::read_file(dir / "V.bin"));

    std::vector<std::string> args = {script, "safetensors"};
    for (const std::string& v : variants) args.push_back(dir / (v + ".safetensors"));
    args.push_back(dir / "tampered.safetensors");
    ProcessResult check = run_process(kPython, args, dir.path);
    if (torch_missing(check)) return;
    INFO(check.out << check.err);
    std::vector<std::pair<std::string, std::string>> ok;
    for (const std::string& v : variants) ok.push_back({v, v + ".safetensors"});
    check_report(check, ok, "tampered.safetensors", "BAD ln_f.b (exported)");
    CHECK(lines_with(check.out, "(tolerance rel 1e-05)").size() == variants.size() + 1);
}

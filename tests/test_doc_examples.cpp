// The docs that teach, checked against the code: docs/tour.md's trace lines are what its own
// command prints, docs/adding-a-variant.md's example compiles as written, and
// scripts/load_safetensors.py (docs/checkpoints.md) rebuilds an exported model without synth.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <cmath>
#include <cstring>

#include "attention/variant.h"
#include "base/io.h"
#include "engine/autograd.h"
#include "models/transformer.h"
#include "skips.h"
#include "subprocess.h"
#include "tiny_text.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"

namespace fs = std::filesystem;
using synth_test::run_process;
using synth_test::ScratchDir;

namespace {

// The repository file `rel` (docs/tour.md) in the first directory above the test binary that has it.
std::string repo_file(const std::string& rel) {
    std::error_code ec;
    fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    for (; !ec && dir.has_relative_path(); dir = dir.parent_path())
        if (fs::exists(dir / rel, ec)) return (dir / rel).string();
    return "";
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

std::vector<std::string> split_words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// The first ```cpp block of a markdown text.
std::string first_cpp_block(const std::string& md) {
    std::string out;
    bool in = false;
    for (const std::string& line : lines_of(md)) {
        if (!in && line == "```cpp") in = true;
        else if (in && line == "```") return out;
        else if (in) out += line + "\n";
    }
    return "";
}

// A C++ compiler on PATH ($CXX's first word if set, else g++ or c++), or "".
std::string compiler() {
    std::vector<std::string> names;
    if (const char* cxx = std::getenv("CXX"); cxx && *cxx) {
        const std::vector<std::string> w = split_words(cxx);
        if (!w.empty()) names.push_back(w.back());  // "ccache g++" -> g++
    }
    names.push_back("g++");
    names.push_back("c++");
    const char* path = std::getenv("PATH");
    for (const std::string& n : names) {
        std::istringstream dirs(path ? path : "");
        for (std::string d; std::getline(dirs, d, ':');)
            if (!d.empty() && ::access((d + "/" + n).c_str(), X_OK) == 0) return d + "/" + n;
    }
    return "";
}

bool tour_can_run() {
    return synth_test::has_data("tinyshakespeare") && !synth_test::sibling_binary("lm").empty() &&
           !repo_file("docs/tour.md").empty();
}

}  // namespace

TEST_CASE("docs: the tour's trace lines are what its SYNTH_TRACE=1 command prints" *
          synth_test::skip_unless(tour_can_run(), "the tour's trace: data set tinyshakespeare (`make data`) and build/lm")) {
    const std::string tour = synth::read_file(repo_file("docs/tour.md"));
    // The command, as the tour writes it: SYNTH_TRACE=1 build/lm ARGS 2>&1 | grep ...
    std::vector<std::string> args;
    for (const std::string& line : lines_of(tour)) {
        const size_t at = line.find("SYNTH_TRACE=1 build/lm ");
        if (at == std::string::npos) continue;
        const std::string cmd = line.substr(at + 23, line.find(" 2>&1") - at - 23);
        args = split_words(cmd);
        break;
    }
    REQUIRE_MESSAGE(!args.empty(), "docs/tour.md has no `SYNTH_TRACE=1 build/lm ...` command");
    ScratchDir dir;
    for (std::string& a : args)
        if (a.rfind("--runs-dir=", 0) == 0) a = "--runs-dir=" + dir / "runs";  // not /tmp/tour
    ::setenv("SYNTH_TRACE", "1", 1);
    const synth_test::ProcessResult r = run_process(synth_test::sibling_binary("lm"), args, dir.path);
    ::unsetenv("SYNTH_TRACE");
    REQUIRE_MESSAGE(r.status == 0, r.err);

    // The program's trace: "fwd    3 layernorm     (16, 64, 128), (128), (128) -> (16, 64, 128)".
    const std::regex traced(R"(^(fwd|bwd) +(\d+) (\S+) +(.*)$)");
    std::vector<std::string> fwd, bwd;
    for (const std::string& line : lines_of(r.out + r.err)) {
        std::smatch m;
        if (!std::regex_match(line, m, traced)) continue;
        std::vector<std::string>& v = m[1] == "fwd" ? fwd : bwd;
        const size_t i = std::stoul(m[2]);
        if (v.size() <= i) v.resize(i + 1);
        v[i] = m[3].str() + " " + m[4].str();
    }
    REQUIRE(!fwd.empty());
    CHECK(fwd.size() == bwd.size());

    // The tour's quoted lines, indented: "    fwd 5 linear       x (16, 64, 128) W_q (128, 128) -> Q".
    // Each names the op at its index, and every shape it quotes is in the program's line.
    const std::regex quoted(R"(^    (fwd|bwd) +(\d+) +(\S+)(.*)$)"), shape(R"(\(\d+(, \d+)*\))");
    int checked = 0;
    for (const std::string& line : lines_of(tour)) {
        std::smatch m;
        if (!std::regex_match(line, m, quoted)) continue;
        CAPTURE(line);
        const std::vector<std::string>& v = m[1] == "fwd" ? fwd : bwd;
        const size_t i = std::stoul(m[2]);
        REQUIRE(i < v.size());
        CAPTURE(v[i]);
        CHECK(v[i].rfind(m[3].str() + " ", 0) == 0);
        const std::string rest = m[4];
        for (std::sregex_iterator s(rest.begin(), rest.end(), shape), e; s != e; ++s)
            CHECK(v[i].find(s->str()) != std::string::npos);
        ++checked;
    }
    CHECK(checked >= 25);  // the page quotes every forward op and the main backward ones
    // The batch the page names is the traced step's: the first op's output is (B, T, d).
    CHECK(tour.find("batch B = 16") != std::string::npos);
    CHECK(fwd[1].find("-> (16, 64, 128)") != std::string::npos);
}

TEST_CASE("docs: adding-a-variant.md's example compiles as written" *
          synth_test::skip_unless(!compiler().empty() && !repo_file("docs/adding-a-variant.md").empty(),
                                  "adding-a-variant.md's example: no C++ compiler (g++) on PATH")) {
    const std::string code = first_cpp_block(synth::read_file(repo_file("docs/adding-a-variant.md")));
    REQUIRE(code.find("SYNTH_REGISTER_VARIANT") != std::string::npos);
    ScratchDir dir;
    synth::write_file_atomic(dir / "example.cpp", code);
    const std::string src = fs::path(repo_file("src/attention/variant.h")).parent_path().parent_path().string();
    // Compiled to an object (not linked into build/tests: the example's variant would then join
    // every registry-driven test and build/parity, which does not know it).
    const synth_test::ProcessResult r =
        run_process(compiler(), {"-std=c++17", "-Wall", "-Wextra", "-Werror", "-O0", "-I" + src, "-c", dir / "example.cpp",
                                 "-o", dir / "example.o"},
                    dir.path);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(fs::exists(dir / "example.o"));
}

namespace {

bool loader_can_run() {
    return synth_test::python_has_torch() && !synth_test::sibling_binary("lm").empty() &&
           !synth_test::sibling_binary("export").empty() && !repo_file("scripts/load_safetensors.py").empty();
}

// synth's logits (T, vocab) for `ids` of the model in a safetensors file, built from its config
// the way build/lm builds it.
std::vector<float> synth_logits(const std::string& path, const std::vector<int32_t>& ids) {
    using namespace synth;
    const Checkpoint ck = import_safetensors(path);
    const std::map<std::string, std::string> c = config_map(ck.config);
    LmConfig cfg;
    cfg.dropout = 0.0f;
    cfg.layers = std::stoi(c.at("layers"));
    cfg.d_ff = std::stoi(c.at("d-ff"));
    cfg.attn.d_model = std::stoi(c.at("d-model"));
    cfg.attn.heads = std::stoi(c.at("heads"));
    cfg.attn.max_len = std::stoi(c.at("seq"));
    cfg.attn.variant = c.at("variant");
    for (const Checkpoint::Tensor1& t : ck.params)
        if (t.name == "tok_emb") cfg.vocab = (int)t.shape[0];
    for (const Setting& st : all_settings()) {
        const auto it = c.find(st.name);
        if (it == c.end()) continue;
        if (std::holds_alternative<int>(st.value)) cfg.attn.settings.set(st.name, std::stoi(it->second));
        if (std::holds_alternative<bool>(st.value)) cfg.attn.settings.set(st.name, it->second == "true" || it->second == "1");
        if (std::holds_alternative<std::string>(st.value)) cfg.attn.settings.set(st.name, it->second);
    }
    ParamStore store;
    TransformerLM lm(store, cfg);
    store.finalize(1);
    restore(ck, store, nullptr);
    NoGrad ng;
    StepContext ctx;
    const Tensor logits = lm.forward(ids, 1, (int)ids.size(), ctx);
    return std::vector<float>(logits.data, logits.data + logits.numel());
}

}  // namespace

TEST_CASE("docs: scripts/load_safetensors.py rebuilds build/export's V, R and D LMs in PyTorch and gets synth's logits" *
          synth_test::skip_unless(loader_can_run(), "load_safetensors.py: PyTorch for /usr/bin/python3, build/lm, build/export")) {
    ScratchDir dir;
    synth::write_file_atomic(dir / "tiny.txt", tiny_text());
    const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
    std::string id_list;
    for (int32_t i : ids) id_list += (id_list.empty() ? "" : ",") + std::to_string(i);
    for (const std::string v : {"V", "R", "D", "R+V"}) {
        CAPTURE(v);
        // A few training steps, so the parameters are a trained model's, not the initial draw.
        const synth_test::ProcessResult run = run_process(
            synth_test::sibling_binary("lm"),
            {"--data=" + dir / "tiny.txt", "--preset=none", "--variants=" + v, "--d-model=32", "--layers=2", "--heads=2",
             "--d-ff=64", "--seq=16", "--batch=4", "--steps=4", "--warmup=2", "--eval-every=4", "--eval-batches=2",
             "--threads=1", "--runs-dir=" + dir / ("runs-" + v)},
            dir.path);
        REQUIRE_MESSAGE(run.status == 0, run.err);
        std::string ckpt;  // the run directory's final.ckpt, wherever the runner names it
        for (const auto& e : fs::recursive_directory_iterator(dir / ("runs-" + v)))
            if (e.path().filename() == "final.ckpt") ckpt = e.path().string();
        REQUIRE(!ckpt.empty());
        const std::string st = dir / (v + ".safetensors"), out = dir / (v + ".f32");
        const synth_test::ProcessResult exp =
            run_process(synth_test::sibling_binary("export"), {"--checkpoint=" + ckpt, "--out=" + st}, dir.path);
        REQUIRE_MESSAGE(exp.status == 0, exp.err);
        const synth_test::ProcessResult py = run_process(
            "/usr/bin/python3", {repo_file("scripts/load_safetensors.py"), st, "--ids=" + id_list, "--logits-out=" + out},
            dir.path);
        REQUIRE_MESSAGE(py.status == 0, py.err);
        CHECK(py.out.find("variant " + v + ", 2 layers") != std::string::npos);
        const std::vector<float> want = synth_logits(st, ids);
        const std::string got_bytes = synth::read_file(out);
        REQUIRE(got_bytes.size() == want.size() * sizeof(float));
        std::vector<float> got(want.size());
        std::memcpy(got.data(), got_bytes.data(), got_bytes.size());
        double err = 0, scale = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            err = std::max(err, (double)std::fabs(got[i] - want[i]));
            scale = std::max(scale, (double)std::fabs(want[i]));
        }
        CAPTURE(err);
        CAPTURE(scale);
        CHECK(err <= 1e-5 * scale);
    }
}

// Issue 40's classes, one test each: one writer per run directory (claims), the report trusting
// nothing it reads, every parameter against what it indexes, outputs that never destroy, and
// numbers from the environment parsed as strictly as flags.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "attention/conv_layer.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/io.h"
#include "base/json.h"
#include "base/table.h"
#include "engine/gemm/blas.h"
#include "models/sampling.h"
#include "error_of.h"
#include "runs/run_claim.h"
#include "runs/run_dir.h"
#include "subprocess.h"
#include "text/corpus.h"
#include "tiny_text.h"
#include "train/trainer.h"

using namespace synth;
using synth_test::error_of;
using synth_test::ScratchDir;
namespace fs = std::filesystem;

namespace {

std::string msg(const doctest::String& s) { return s.c_str(); }

std::string replaced(std::string s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
}

// A child process that claims `dir`, says so on a pipe, and holds the claim until killed.
struct ClaimingChild {
    pid_t pid = -1;
    explicit ClaimingChild(const std::string& dir) {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            try {
                RunClaim claim(dir, false);
                (void)!write(fds[1], "y", 1);
                for (;;) pause();
            } catch (...) {
                (void)!write(fds[1], "n", 1);
            }
            _exit(1);
        }
        close(fds[1]);
        char c = 0;
        REQUIRE(read(fds[0], &c, 1) == 1);
        close(fds[0]);
        REQUIRE(c == 'y');
    }
    void kill9() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            pid = -1;
        }
    }
    ~ClaimingChild() { kill9(); }
};

std::string host() {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    return h;
}

}  // namespace

TEST_CASE("reliability: one writer per run directory; a dead writer's claim is taken over, another host's only when asked") {
    ScratchDir dir;
    const std::string run = dir / "run";
    {
        ClaimingChild first(run);
        ClaimInfo info;
        REQUIRE(read_claim(run, info));
        CHECK(info.pid == first.pid);
        CHECK(info.host == host());
        const std::string err = msg(error_of([&] { RunClaim second(run, false); }));
        CHECK(err.find("run directory " + run + " is in use by another run: pid " + std::to_string(first.pid) +
                       " on host " + host()) != std::string::npos);
        // --take-over does not break a live writer's lock.
        CHECK(msg(error_of([&] { RunClaim second(run, true); })).find("is in use by another run") != std::string::npos);
        // kill -9: the lock goes with the process; the claim file stays and is taken over (same host).
        first.kill9();
        REQUIRE(read_claim(run, info));
        RunClaim second(run, false);
        REQUIRE(read_claim(run, info));
        CHECK(info.pid == (long)getpid());
    }
    ClaimInfo info;
    CHECK(!read_claim(run, info));  // released at the end of the claim
    // A claim of another host, whose process this host cannot see: refused unless --take-over.
    write_file_atomic(run + "/claim.json", "{\"host\": \"elsewhere\", \"pid\": 42, \"started\": \"2026-01-01T00:00:00Z\"}\n");
    const std::string err = msg(error_of([&] { RunClaim c(run, false); }));
    CHECK(err.find("is claimed by pid 42 on host elsewhere (since 2026-01-01T00:00:00Z)") != std::string::npos);
    CHECK(err.find("--take-over") != std::string::npos);
    { RunClaim c(run, true); }
    CHECK(!read_claim(run, info));
    // The process-wide claim: a second claim of the same directory by this process is a no-op.
    claim_run_dir(run, false);
    claim_run_dir(run + "/", false);
    CHECK(read_claim(run, info));
    release_run_dir(run);
    CHECK(!read_claim(run, info));
}

TEST_CASE("reliability: a second build/lm on a live run directory is refused naming the first; no result is lost") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    const std::string run = dir / "run";
    const std::vector<std::string> args = {"--data=" + dir.path + "/tiny.txt", "--preset=none", "--variants=V",
                                           "--d-model=16", "--layers=1", "--heads=2", "--d-ff=32", "--seq=16",
                                           "--batch=4", "--steps=4", "--warmup=2", "--eval-every=2",
                                           "--eval-batches=1", "--threads=1", "--save-every=2", "--run-dir=" + run};
    REQUIRE(synth_test::run_process(lm, args, dir.path).status == 0);
    const std::string result = read_file(run + "/result.json");
    {
        ClaimingChild first(run);
        std::vector<std::string> over = args;
        over.push_back("--overwrite");
        const auto r = synth_test::run_process(lm, over, dir.path);
        CHECK(r.status != 0);
        CHECK(r.err.find("is in use by another run: pid " + std::to_string(first.pid)) != std::string::npos);
        CHECK(read_file(run + "/result.json") == result);
        // The report refuses a directory a live writer holds.
        const auto rep = synth_test::run_process(lm, {"--report", run, "--out=" + dir.path + "/rep"}, dir.path);
        CHECK(rep.status != 0);
        CHECK(rep.err.find("report: run " + run + " is being written by pid " + std::to_string(first.pid)) !=
              std::string::npos);
    }
    // --resume of a finished run keeps its result.json until the new one is written: killed at
    // once, the old result is still there.
    std::vector<std::string> resume = args;
    resume.push_back("--resume=" + run + "/checkpoint-step2.ckpt");
    synth_test::run_process(lm, resume, dir.path, 5);
    CHECK(read_file(run + "/result.json") == result);
}

TEST_CASE("reliability: JSON with a repeated key is an error; an object's own errors name its file") {
    CHECK(msg(error_of([] { parse_json_object("{\"a\": 1, \"b\": 2, \"a\": 3}", "x/result.json"); }))
              .find("x/result.json: bad JSON at byte") != std::string::npos);
    CHECK(msg(error_of([] { parse_json_object("{\"a\": 1, \"a\": 1}", "f"); })).find("key 'a' appears twice") !=
          std::string::npos);
    const JsonObject o = parse_json_object("{\"val_loss\": \"abc\"}", "runs/x/result.json");
    CHECK(msg(error_of([&] { o.num("val_loss"); })) == "runs/x/result.json: 'val_loss' is 'abc', not a finite number");
    CHECK(msg(error_of([&] { o.at("group"); })) == "runs/x/result.json: no key 'group'");
}

TEST_CASE("reliability: Markdown cells escape '|' and line breaks") {
    Table t;
    t.columns = {"variant", "a|b"};
    t.rows = {{"R|V\nx", "1\\"}};
    const std::string md = t.to_markdown();
    CHECK(md == "| variant | a\\|b |\n|---|---|\n| R\\|V x | 1\\\\ |\n");
    CHECK(t.to_csv() == "variant,a|b\n\"R|V\nx\",1\\\n");
}

TEST_CASE("reliability: the report refuses a run whose files disagree, are out of range, or are another binary's") {
    ScratchDir dir;
    const std::string group = "d-model=16\n";
    auto make = [&](const std::string& name, const std::string& result_extra, const std::string& config_extra,
                    const std::string& binary = "lm") {
        const std::string d = dir / name;
        fs::create_directories(d);
        write_file_atomic(d + "/result.json", "{\"variant\": \"V\", \"seed\": 1, \"params\": 100, \"val_loss\": 2.5" +
                                                  result_extra + ", \"group_hash\": \"" + short_hash(group) +
                                                  "\", \"group\": \"d-model=16\\n\"}\n");
        write_file_atomic(d + "/config.json", "{\"binary\": \"" + binary + "\", \"group_hash\": \"" + short_hash(group) +
                                                  "\", \"flag.seed\": \"1\", \"flag.variants\": \"V,R\"" +
                                                  config_extra + "}\n");
        return d;
    };
    auto refused = [&](const std::string& d) { return msg(error_of([&] { find_runs({d}, "lm"); })); };
    CHECK(find_runs({make("good", "", "")}, "lm").size() == 1);
    CHECK(refused(make("cls", "", "", "cls")).find("is a run of cls (its config.json), not of lm") != std::string::npos);
    const std::string d1 = make("seed", "", "");
    write_file_atomic(d1 + "/result.json", replaced(read_file(d1 + "/result.json"), "\"seed\": 1", "\"seed\": 1e308"));
    CHECK(refused(d1) == "report: run " + d1 + ": result.json has seed = 1e308, not an integer in [0, 2.14748e+09]");
    const std::string d2 = make("params", "", "");
    write_file_atomic(d2 + "/result.json", replaced(read_file(d2 + "/result.json"), "\"params\": 100", "\"params\": -5"));
    CHECK(refused(d2).find("report: run " + d2 + ": result.json has params = -5") != std::string::npos);
    CHECK(refused(make("loss", ", \"test_loss\": -1", "")).find("test_loss = -1") != std::string::npos);
    CHECK(refused(make("acc", ", \"val_acc\": 1.5", "")).find("val_acc = 1.5") != std::string::npos);
    CHECK(find_runs({make("diverged", ", \"test_loss\": null", "")}, "lm").size() == 1);
    const std::string d3 = make("other", "", "");
    write_file_atomic(d3 + "/config.json", "{\"binary\": \"lm\", \"group_hash\": \"0123456789abcdef\"}\n");
    CHECK(refused(d3).find("report: run " + d3 + ": config.json (group 0123456789abcdef) and result.json") !=
          std::string::npos);
    const std::string d6 = make("seedmix", "", "");
    write_file_atomic(d6 + "/config.json", "{\"binary\": \"lm\", \"group_hash\": \"" + short_hash(group) +
                                               "\", \"flag.seed\": \"2\"}\n");
    CHECK(refused(d6) == "report: run " + d6 + ": config.json has seed 2 but result.json seed 1");
    const std::string d4 = make("dup", ", \"val_loss\": 3", "");
    CHECK(refused(d4).find(d4 + "/result.json: bad JSON") != std::string::npos);
    const std::string d5 = make("nogroup", "", "");
    write_file_atomic(d5 + "/result.json", "{\"variant\": \"V\", \"seed\": 1, \"params\": 3}\n");
    CHECK(refused(d5) == "report: run " + d5 + ": result.json has no 'group' (not a finished run of lm?)");
}

TEST_CASE("reliability: settings against what they index: schedules, conv kernels and L, environment numbers") {
    TrainConfig c;
    c.lr = 1e-4f;
    c.min_lr = 1e-3f;
    CHECK(msg(error_of([&] { c.validate(); })).find("--min-lr=0.001 is above --lr=0.0001") != std::string::npos);
    c.schedule = "constant";  // no floor to decay to
    c.validate();
    AttnConfig a;
    a.max_len = 16;
    a.settings.set("conv-kernels", "3,100001");
    a.layer = 1;
    CHECK(msg(error_of([&] { conv_kernel_size(a); })).find("kernel size 100001 is wider than") != std::string::npos);
    a.settings.set("conv-kernels", "3,31");
    CHECK(conv_kernel_size(a) == 31);  // fairseq's default sizes stay valid at any L
    a.max_len = 64;
    a.settings.set("conv-kernels", "127");
    CHECK(conv_kernel_size(a) == 127);
    a.settings.set("conv-kernels", "128");
    CHECK(msg(error_of([&] { conv_kernel_size(a); })).find("at most 127") != std::string::npos);
    CHECK(threads_from_env("SLURM_CPUS_PER_TASK", "4") == 4);
    for (const char* bad : {"4x", "0", "-2", "1e3", "257", " 4", "99999999999"}) {
        CAPTURE(bad);
        CHECK(threads_from_env("SLURM_CPUS_PER_TASK", bad) == 0);
    }
    CHECK(threads_from_env("OMP_NUM_THREADS", "3,2") == 3);
    CHECK(threads_from_env("SLURM_CPUS_PER_TASK", "3,2") == 0);
    setenv("SLURM_CPUS_PER_TASK", "4x", 1);
    setenv("OMP_NUM_THREADS", "2", 1);
    CHECK(default_threads() == 2);  // the bad value is ignored, the next source used
    unsetenv("SLURM_CPUS_PER_TASK");
    unsetenv("OMP_NUM_THREADS");
}

TEST_CASE("reliability: translation data whose every line is whitespace is refused, naming the file") {
    ScratchDir dir;
    write_file_atomic(dir / "train.de", "ein haus\nzwei\n");
    write_file_atomic(dir / "train.en", " \n\t\n");
    CHECK(msg(error_of([&] { load_parallel(dir.path, "train", "de", "en"); }))
              .find(dir / "train.en" + ": every one of its 2 lines is empty or whitespace") != std::string::npos);
    write_file_atomic(dir / "train.en", "a house\n \n");  // one blank line among sentences is data
    CHECK(load_parallel(dir.path, "train", "de", "en").src.size() == 2);
}

TEST_CASE("reliability: outputs never destroy: not an input, a regular file or absent, in a writable directory") {
    ScratchDir dir;
    write_file_atomic(dir / "in.txt", "data");
    fs::create_directories(dir / "adir");
    fs::create_symlink(dir / "in.txt", dir / "link");
    mkfifo((dir / "fifo").c_str(), 0644);
    check_output_path(dir / "new.md", {dir / "in.txt"}, "--out");
    check_output_path(dir / "sub/new.md", {}, "--out");  // its directory is created
    write_file_atomic(dir / "old.md", "x");
    check_output_path(dir / "old.md", {dir / "in.txt"}, "--out");
    CHECK(msg(error_of([&] { check_output_path(dir / "in.txt", {dir / "in.txt"}, "--out"); }))
              .find("is also an input of this command") != std::string::npos);
    CHECK(msg(error_of([&] { check_output_path(dir / "./in.txt", {dir / "in.txt"}, "--out"); }))
              .find("is also an input") != std::string::npos);
    CHECK(msg(error_of([&] { check_output_path(dir / "adir", {}, "--out"); })).find("a directory") != std::string::npos);
    CHECK(msg(error_of([&] { check_output_path(dir / "link", {}, "--out"); })).find("symbolic link") != std::string::npos);
    CHECK(msg(error_of([&] { check_output_path(dir / "fifo", {}, "--out"); })).find("not a regular file") !=
          std::string::npos);
    chmod((dir / "adir").c_str(), 0555);
    if (geteuid() != 0)
        CHECK(msg(error_of([&] { check_output_path(dir / "adir/x.md", {}, "--out"); })).find("not writable") !=
              std::string::npos);
    chmod((dir / "adir").c_str(), 0755);
    // write_file_atomic itself never replaces what is not a regular file.
    CHECK(msg(error_of([&] { write_file_atomic(dir / "link", "y"); })).find("a symbolic link") != std::string::npos);
    CHECK(read_file(dir / "in.txt") == "data");
    CHECK(fs::is_symlink(dir / "link"));
    CHECK(msg(error_of([&] { write_file_atomic(dir / "adir", "y"); })).find("a directory") != std::string::npos);
    // A directory regenerated into: absent, empty or marked as ours.
    check_generated_dir(dir / "gen", ".synth-generated", "--listops-dir");
    mark_generated_dir(dir / "gen", ".synth-generated", "listops\n");
    write_file_atomic(dir / "gen/train.tsv", "x");
    check_generated_dir(dir / "gen", ".synth-generated", "--listops-dir");
    fs::create_directories(dir / "users");
    check_generated_dir(dir / "users", ".synth-generated", "--listops-dir");  // empty
    write_file_atomic(dir / "users/basic_train.tsv", "mine");
    CHECK(msg(error_of([&] { check_generated_dir(dir / "users", ".synth-generated", "--listops-dir"); }))
              .find("--listops-dir='" + dir / "users" + "' holds files this command did not write") != std::string::npos);
    CHECK(msg(error_of([&] { check_generated_dir(dir / "in.txt", ".synth-generated", "--listops-dir"); }))
              .find("is not a directory") != std::string::npos);
    // The report's outputs: STEM.md a directory is refused before anything is written.
    fs::create_directories(dir / "stem.md");
    CHECK(msg(error_of([&] { check_report_outputs(dir / "stem", {dir.path}); })).find("a directory") != std::string::npos);
    CHECK(!fs::exists(dir / "stem.csv"));
    // So is a directory where STEM-budget.csv goes.
    fs::remove(dir / "stem.md");
    fs::create_directories(dir / "stem-budget.csv");
    CHECK(msg(error_of([&] { check_report_outputs(dir / "stem", {dir.path}); })).find("stem-budget.csv") != std::string::npos);
}

TEST_CASE("reliability: a lost write is an error; text read from a descriptor gets the training data's checks") {
    std::FILE* full = std::fopen("/dev/full", "w");
    if (full) {
        CHECK(msg(error_of([&] { write_all(full, std::string(1 << 17, 'x'), "standard output"); }))
                  .find("cannot write to standard output: No space left on device") != std::string::npos);
        std::fclose(full);
    }
    auto through_pipe = [](const std::string& bytes) {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        REQUIRE(write(fds[1], bytes.data(), bytes.size()) == (ssize_t)bytes.size());
        close(fds[1]);
        std::string out;
        const doctest::String err = error_of([&] { out = read_fd_text(fds[0], "standard input"); });
        close(fds[0]);
        return std::make_pair(out, msg(err));
    };
    CHECK(through_pipe("ein Haus\nzwei\n").first == "ein Haus\nzwei\n");
    CHECK(through_pipe("").first.empty());
    CHECK(through_pipe(std::string("a\0b\n", 4)).second.find("standard input") != std::string::npos);
    CHECK(through_pipe("caf\xc3\n").second.find("standard input") != std::string::npos);
    CHECK(through_pipe("caf\xc3\n").second.find("UTF-8") != std::string::npos);
}

namespace {

// A toy parallel corpus (dir/par) and 2 steps of a tiny model trained on it: its final.ckpt.
std::string tiny_mt_checkpoint(const std::string& mt, const ScratchDir& dir) {
    fs::create_directories(dir / "par");
    const char* en[] = {"the dog runs", "a cat sleeps", "the red house", "a big dog sees the cat"};
    const char* de[] = {"der hund rennt", "eine katze schläft", "das rote haus", "ein grosser hund sieht die katze"};
    std::string src, tgt;
    for (int i = 0; i < 40; ++i) src += std::string(en[i % 4]) + "\n", tgt += std::string(de[i % 4]) + "\n";
    for (const char* split : {"train", "val", "test"}) {
        write_file_atomic(dir / ("par/" + std::string(split) + ".en"), src);
        write_file_atomic(dir / ("par/" + std::string(split) + ".de"), tgt);
    }
    auto r = synth_test::run_process(
        mt, {"--data=" + dir / "par", "--preset=none", "--variants=V", "--d-model=16", "--layers=1", "--heads=2",
             "--d-ff=32", "--max-len=32", "--bpe-vocab=300", "--batch-tokens=128", "--steps=2", "--warmup=1",
             "--eval-every=2", "--beam=1", "--test-sets=test", "--threads=1", "--runs-dir=" + dir / "runs"},
        dir.path);
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    for (const auto& e : fs::recursive_directory_iterator(dir / "runs"))
        if (e.path().filename() == "final.ckpt") return e.path().string();
    FAIL("no final.ckpt");
    return "";
}

}  // namespace

TEST_CASE("reliability: --translate reads stdin with the training data's checks; lost output exits non-zero") {
    const std::string mt = synth_test::binary_or_skip("mt");
    if (mt.empty()) return;
    ScratchDir dir;
    const std::string ck = tiny_mt_checkpoint(mt, dir);
    write_file_atomic(dir / "in.en", "the dog runs\na cat sleeps\n");
    auto ok = synth_test::run_process(mt, {"--translate", "--checkpoint=" + ck, "--threads=1"}, dir.path, 0, dir / "in.en");
    INFO("stderr: ", ok.err);
    CHECK(ok.status == 0);
    CHECK(std::count(ok.out.begin(), ok.out.end(), '\n') == 2);  // one hypothesis a line
    write_file_atomic(dir / "bad.en", "the dog\xc3 runs\n");
    auto bad = synth_test::run_process(mt, {"--translate", "--checkpoint=" + ck, "--threads=1"}, dir.path, 0, dir / "bad.en");
    CHECK(bad.status == 1);
    CHECK(bad.err.find("standard input") != std::string::npos);
    CHECK(bad.err.find("UTF-8") != std::string::npos);
    write_file_atomic(dir / "nul.en", std::string("the dog\0 runs\n", 14));
    auto nul = synth_test::run_process(mt, {"--translate", "--checkpoint=" + ck, "--threads=1"}, dir.path, 0, dir / "nul.en");
    CHECK(nul.status == 1);
    CHECK(nul.err.find("standard input") != std::string::npos);
    if (!fs::exists("/dev/full")) return;
    auto full = synth_test::run_process(mt, {"--translate", "--checkpoint=" + ck, "--threads=1"}, dir.path, 0,
                                        dir / "in.en", "/dev/full");
    CHECK(full.status == 1);
    CHECK(full.err.find("cannot write to standard output") != std::string::npos);
}

TEST_CASE("reliability: --generate: a newline by default, a final newline, sampling checked, lost output an error") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    REQUIRE(synth_test::run_process(lm, {"--data=" + dir / "tiny.txt", "--preset=none", "--variants=V", "--seeds=1",
                                         "--d-model=16", "--layers=1", "--heads=2", "--d-ff=32", "--seq=8", "--batch=4",
                                         "--steps=2", "--eval-every=2", "--eval-batches=1", "--threads=1",
                                         "--runs-dir=" + dir / "runs"},
                                    dir.path)
                .status == 0);
    const std::string ck = dir / "runs/lm-tiny-none/V-seed1/final.ckpt";
    const std::vector<std::string> gen = {"--generate", "--checkpoint=" + ck, "--tokens=20", "--threads=1"};
    auto ok = synth_test::run_process(lm, gen, dir.path);
    INFO("stderr: ", ok.err);
    REQUIRE(ok.status == 0);
    CHECK(ok.out.size() >= 21);
    CHECK(ok.out.front() == '\n');  // the default prompt
    CHECK(ok.out.back() == '\n');   // the output ends its last line
    auto with = [&](const std::string& flag) {
        std::vector<std::string> a = gen;
        a.push_back(flag);
        return synth_test::run_process(lm, a, dir.path);
    };
    auto top = with("--top-k=1000");
    CHECK(top.status == 1);
    CHECK(top.err.find("--top-k=1000 must lie in [0, ") != std::string::npos);
    auto cold = with("--temperature=0");
    CHECK(cold.status == 1);
    CHECK(cold.err.find("--temperature=0 must be a positive finite number") != std::string::npos);
    if (!fs::exists("/dev/full")) return;
    auto full = synth_test::run_process(lm, gen, dir.path, 0, "", "/dev/full");
    CHECK(full.status == 1);
    CHECK(full.err.find("cannot write to standard output") != std::string::npos);
}

TEST_CASE("reliability: --bench checks memory first; --listops-dir never replaces a user's files") {
    const std::string lm = synth_test::binary_or_skip("lm"), cls = synth_test::binary_or_skip("cls");
    if (lm.empty() || cls.empty()) return;
    ScratchDir dir;
    auto bench = synth_test::run_process(lm, {"--bench", "--vocab=2000000000", "--variants=V", "--threads=1"}, dir.path);
    CHECK(bench.status == 1);
    CHECK(bench.err.find("GiB") != std::string::npos);
    fs::create_directories(dir / "mine");
    write_file_atomic(dir / "mine/basic_train.tsv", "a user's own file\n");
    auto ls = synth_test::run_process(cls, {"--preset=quick", "--variants=V", "--threads=1", "--runs-dir=" + dir / "runs",
                                            "--listops-dir=" + dir / "mine"},
                                      dir.path);
    CHECK(ls.status == 1);
    CHECK(ls.err.find("--listops-dir='" + dir / "mine" + "' holds files this command did not write") != std::string::npos);
    CHECK(read_file(dir / "mine/basic_train.tsv") == "a user's own file\n");
}

TEST_CASE("reliability: sampling settings are checked against the vocabulary, naming the flag") {
    CHECK(msg(error_of([] { check_sampling(Sampling{1.0f, 66}, 65); })).find("--top-k=66 must lie in [0, 65]") !=
          std::string::npos);
    CHECK(msg(error_of([] { check_sampling(Sampling{1.0f, -1}, 65); })).find("--top-k=-1") != std::string::npos);
    CHECK(msg(error_of([] { check_sampling(Sampling{-2.0f, 0}, 65); })).find("--temperature=-2") != std::string::npos);
    CHECK(msg(error_of([] { check_sampling(Sampling{INFINITY, 0}, 65); })).find("--temperature=inf") != std::string::npos);
    check_sampling(Sampling{0.5f, 65}, 65);
    check_sampling(Sampling{1.0f, 0}, 65);
}

// subprocess.h: helpers for tests that run the built binaries (build/lm, build/mt) as child
// processes and for tests that need a scratch directory.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "base/io.h"
#include "base/json.h"

extern char** environ;

namespace synth_test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at scope exit.
struct ScratchDir {
    std::string path;
    ScratchDir() {
        std::string tmpl = std::filesystem::temp_directory_path().string() + "/synth-test-XXXXXX";
        path = ::mkdtemp(tmpl.data()) ? tmpl : "";
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// The path of a binary built next to this test binary (build/<name> beside build/tests), or
// "" if it does not exist (tests then skip with a message).
inline std::string sibling_binary(const std::string& name) {
    std::error_code ec;
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return "";
    std::filesystem::path bin = self.parent_path() / name;
    return std::filesystem::exists(bin, ec) ? bin.string() : "";
}

// sibling_binary(name), or "" after saying why the calling test is skipped.
inline std::string binary_or_skip(const std::string& name) {
    const std::string path = sibling_binary(name);
    if (path.empty()) MESSAGE("skipped: build/" << name << " is not built next to the test binary");
    return path;
}

struct ProcessResult {
    int status = -1;  // exit status, or 128 + signal number if the child was killed
    std::string out, err;
};

// Runs `exe args...` with stdout and stderr captured through files in `dir`, and waits for it;
// with kill_after_ms > 0, sends it SIGKILL if it is still running after that many milliseconds.
// With `stdin_path`, standard input is read from that file; with `stdout_path` (e.g.
// "/dev/full"), standard output goes there instead (and `out` is then empty).
inline ProcessResult run_process(const std::string& exe, const std::vector<std::string>& args,
                                 const std::string& dir, int kill_after_ms = 0, const std::string& stdin_path = "",
                                 const std::string& stdout_path = "") {
    const std::string out_path = stdout_path.empty() ? dir + "/.stdout" : stdout_path, err_path = dir + "/.stderr";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (!stdin_path.empty()) posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv = {exe};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ProcessResult r;
    pid_t pid;
    int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return r;
    int st = 0;
    bool reaped = false;
    for (int waited = 0; waited < kill_after_ms && !reaped; ++waited) {
        reaped = waitpid(pid, &st, WNOHANG) == pid;
        if (!reaped) usleep(1000);
    }
    if (kill_after_ms > 0 && !reaped) kill(pid, SIGKILL);
    while (!reaped && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = stdout_path.empty() ? synth::read_file(out_path) : "";
    r.err = synth::read_file(err_path);
    return r;
}

// A run directory's result.json as "key=value" lines, without its timings (throughputs,
// seconds), which differ between any two runs of the same numbers.
inline std::string result_without_timings(const std::string& run_dir) {
    const synth::JsonObject r = synth::parse_json_object(synth::read_file(run_dir + "/result.json"), run_dir);
    std::string out;
    for (const auto& [k, v] : r.fields)
        if (k.find("tok_s") == std::string::npos && k != "steps_s" && k != "wall_s" && k != "train_s" &&
            k != "decode_sent_s")
            out += k + "=" + v + "\n";
    return out;
}

}  // namespace synth_test

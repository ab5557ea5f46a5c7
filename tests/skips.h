// skips.h: tests that cannot run here (no data set, no PyTorch, no oneDNN) are skipped by doctest
// itself, so its summary counts them as skipped, not passed.
//
//     TEST_CASE("data: ..." * synth_test::skip_unless(synth_test::has_data("ptb"), "data set ptb: run `make data`"))
//
// doctest decides at registration (static initialisation) whether a test case is skipped, so the
// conditions are evaluated then, once per process. Each reason given for a skip is remembered,
// and main.cpp prints the reasons after doctest's summary. `./build/tests --no-skip` runs the
// skipped cases anyway; their bodies still return early, with a message, where they cannot run.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include "base/error.h"
#include "text/corpus.h"

extern char** environ;

namespace synth_test {

// The reasons of the skipped test cases, each once.
inline std::set<std::string>& skip_reasons() {
    static std::set<std::string> reasons;
    return reasons;
}

// doctest::skip() when `ok` is false, remembering `why`.
inline doctest::skip skip_unless(bool ok, const std::string& why) {
    if (!ok) skip_reasons().insert(why);
    return doctest::skip(!ok);
}

// Whether data set `set` is where synth::data_dir looks ($SYNTH_DATA_DIR, else data/cache/).
inline bool has_data(const std::string& set) {
    try {
        synth::data_dir(set);
        return true;
    } catch (const synth::Error&) {
        return false;
    }
}

// Whether `python` finds the torch package (without importing it, which takes seconds); what the
// PyTorch checks (scripts/torch_reference.py, scripts/load_safetensors.py) run under.
inline bool python_has_torch(const std::string& python = "/usr/bin/python3") {
    static const bool has = [&] {
        if (::access(python.c_str(), X_OK) != 0) return false;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        const char* argv[] = {python.c_str(), "-c",
                              "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('torch') else 1)",
                              nullptr};
        pid_t pid;
        int st = -1;
        const bool ok = posix_spawn(&pid, python.c_str(), &fa, nullptr, const_cast<char**>(argv), environ) == 0 &&
                        waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        posix_spawn_file_actions_destroy(&fa);
        return ok;
    }();
    return has;
}

}  // namespace synth_test

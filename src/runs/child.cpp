#include "runs/child.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cstring>

#include "base/error.h"

extern char** environ;

namespace synth {

void run_self(const std::vector<std::string>& args, const std::string& what) {
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    const int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
    SYNTH_CHECK(rc == 0, "cannot start the process of ", what, ": ", std::strerror(rc));
    int status = 0;
    waitpid(pid, &status, 0);
    SYNTH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, what, " failed");
}

}  // namespace synth

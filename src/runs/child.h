// child.h: this program run again as a child process, e.g. to measure one configuration
// whose peak memory must be its own (build/lm --bench runs each variant in a fresh process).
#pragma once

#include <string>
#include <vector>

namespace synth {

// Runs /proc/self/exe with `args` (argv, the program name first) and waits for it; its output
// goes where this process's goes. Throws naming `what` unless it exits with status 0.
void run_self(const std::vector<std::string>& args, const std::string& what);

}  // namespace synth

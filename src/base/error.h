// error.h: the one error type every layer of synth throws, and the check macro.
//
// Library code never exits or prints on bad input: it throws synth::Error with a
// message that names the problem. Each binary's main() catches it, prints
// "error: <message>" on one line to stderr and exits with status 1.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace synth {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Builds a message from any streamable pieces: fail("bad size ", n).
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    throw Error(os.str());
}

}  // namespace synth

// SYNTH_CHECK(cond, pieces...) throws synth::Error built from the pieces when cond is false.
#define SYNTH_CHECK(cond, ...)                  \
    do {                                        \
        if (!(cond)) ::synth::fail(__VA_ARGS__); \
    } while (0)

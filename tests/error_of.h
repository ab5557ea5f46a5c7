// error_of.h: the message of the synth::Error a piece of code throws, for checking messages.
#pragma once

#include <doctest/doctest.h>

#include "base/error.h"

namespace synth_test {

// The message of the synth::Error that f() throws, or "<no error>".
template <typename F>
doctest::String error_of(F f) {
    try {
        f();
    } catch (const synth::Error& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace synth_test

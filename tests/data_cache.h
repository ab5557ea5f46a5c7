// data_cache.h: how the tests find the real data sets.
//
// By the binaries' rule, synth::data_dir (src/text/corpus.h): $SYNTH_DATA_DIR/<set> if that variable
// is set, else data/cache/<set> under the working directory. `make data` fills data/cache/
// (data/README.md), and ./build/tests runs from the repository root, so a fresh clone needs
// nothing else. A test whose set is missing is skipped with data_dir's own message, which
// names the directory it looked in and the command that fetches it.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "base/error.h"
#include "text/corpus.h"

// data_dir(set), or "" after telling why the calling test is skipped.
inline std::string cached_data_dir(const std::string& set) {
    try {
        return synth::data_dir(set);
    } catch (const synth::Error& e) {
        MESSAGE("skipping: " << std::string(e.what()));
        return "";
    }
}

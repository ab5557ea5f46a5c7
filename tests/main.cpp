// The doctest runner: every tests/*.cpp links into build/tests. Like every synth binary it
// first makes sure OpenBLAS runs an AVX2/AVX-512 kernel (blas.h), so the GEMM tests check
// the numbers of the kernel the programs really use. After doctest's summary it says why test
// cases were skipped (tests/skips.h): a data set, PyTorch or oneDNN missing here.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "engine/gemm/blas.h"
#include "skips.h"

int main(int argc, char** argv) {
    synth::blas_select_kernel(argc, argv);
    doctest::Context context(argc, argv);
    const int rc = context.run();
    if (!context.shouldExit() && !synth_test::skip_reasons().empty()) {
        std::fprintf(stderr, "test cases skipped here (`--no-skip` runs them anyway):\n");
        for (const std::string& why : synth_test::skip_reasons()) std::fprintf(stderr, "  %s\n", why.c_str());
    }
    return rc;
}

// The doctest runner: every tests/*.cpp links into build/tests. Like every synth binary it
// first makes sure OpenBLAS runs an AVX2/AVX-512 kernel (blas.h), so the GEMM tests check
// the numbers of the kernel the programs really use.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "engine/gemm/blas.h"

int main(int argc, char** argv) {
    synth::blas_select_kernel(argc, argv);
    doctest::Context context(argc, argv);
    return context.run();
}

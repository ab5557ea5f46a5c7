#include "cli.h"

#include <cstdio>
#include <exception>

#include "blas.h"

namespace synth {

int cli_main(int argc, char** argv, int (*run)(int, char**)) {
    blas_select_kernel(argc, argv);
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

}  // namespace synth

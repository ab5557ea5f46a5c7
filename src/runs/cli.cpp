#include "runs/cli.h"

#include <cstdio>
#include <exception>
#include <new>

#include "engine/gemm/blas.h"

namespace synth {

int cli_main(int argc, char** argv, int (*run)(int, char**)) {
    blas_select_kernel(argc, argv);
    try {
        return run(argc, argv);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory: the flags ask for more than this machine has (lower --batch, "
                             "--batch-tokens, --beam, --seq, --max-len or the model size)\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}

}  // namespace synth

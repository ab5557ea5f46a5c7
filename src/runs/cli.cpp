#include "runs/cli.h"

#include <cstdio>
#include <exception>
#include <new>

#include "engine/gemm/blas.h"
#include "train/dist.h"

namespace synth {

// A failure on one rank of several ends them all (dist::abort_all): the others would wait for it
// in the next all-reduce forever.
static int failed(const std::string& message) {
    const std::string at = dist::where();
    std::fprintf(stderr, "error: %s%s\n", at.empty() ? "" : ("[" + at + "] ").c_str(), message.c_str());
    if (dist::world() > 1) dist::abort_all(1);
    dist::finish();
    return 1;
}

int cli_main(int argc, char** argv, int (*run)(int, char**)) {
    blas_select_kernel(argc, argv);  // may re-execute the program: before MPI starts
    try {
        dist::start(argc, argv);
        // Rank 0 prints the results; the other ranks' stdout would repeat them (their stderr stays).
        if (!dist::is_writer() && !std::freopen("/dev/null", "w", stdout)) return failed("cannot silence stdout");
        const int status = run(argc, argv);
        dist::finish();
        return status;
    } catch (const std::bad_alloc&) {
        return failed("out of memory: the flags ask for more than this machine has (lower --batch, "
                      "--batch-tokens, --beam, --seq, --max-len or the model size)");
    } catch (const std::exception& e) {
        return failed(e.what());
    }
}

}  // namespace synth

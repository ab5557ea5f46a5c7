// cli.h: what every synth binary does around its real work.
#pragma once

namespace synth {

// Selects the OpenBLAS kernel (blas.h; may re-execute the program), then runs `run` and turns
// any exception into one "error: <message>" line on stderr and exit status 1.
int cli_main(int argc, char** argv, int (*run)(int, char**));

}  // namespace synth

// cli.h: what every synth binary does around its real work.
#pragma once

namespace synth {

// Selects the OpenBLAS kernel (blas.h; may re-execute the program), joins the run's MPI ranks when
// a launcher started several (train/dist.h: refused without MPI; stdout kept on rank 0 only),
// then runs `run` and turns any exception into one "error: <message>" line on stderr and exit
// status 1 (with several ranks: the rank named, and every rank ended).
int cli_main(int argc, char** argv, int (*run)(int, char**));

}  // namespace synth

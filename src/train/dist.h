// dist.h: data-parallel training over MPI ranks (docs/distributed.md).
//
// One run, N processes (ranks), each with its OpenMP threads as today. Every rank builds the same
// model from the same seed and samples the same global batch of the step (a function of the seed
// and the step only, never of N); it trains on its rows of it, rank_slice(), and after backward
// the ranks' gradients are summed with one in-place MPI_Allreduce over ParamStore's contiguous
// gradient arena, each rank's share weighted so that the sum is the gradient of the global
// batch's mean loss. Every rank then takes the same clipped AdamW step, so the parameters stay
// identical without ever being sent. Rank 0 alone writes files and progress lines (is_writer()).
//
//   dist::start(argc, argv);          // cli_main does this; MPI_Init only when a launcher started us
//   const dist::Slice s = dist::rank_slice(B);     // rows [s.lo, s.hi) of the step's global batch
//   ... the trainer all-reduces (train_step) ...
//   if (dist::is_writer()) write_file_atomic(...);
//
// Built without MPI (no mpicxx, or make MPI=0) this file is the single-process case: world() 1,
// and a launch as several ranks is refused by start() rather than training N unrelated copies.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace synth::dist {

// ---- the process's place in the run ------------------------------------------------------
// Joins the run's ranks when a launcher (mpirun, srun, mpiexec) started this process as one of
// several: MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread calls MPI; OpenMP
// threads compute between the calls). Throws when the launcher says N > 1 but this binary has no
// MPI, or MPI sees a world of 1 (srun without --mpi=pmix). Safe to call again; a plain start
// (no launcher) never calls MPI_Init, so a single-process run is the same with or without MPI.
void start(int& argc, char**& argv);
// MPI_Finalize when start() initialised MPI (at the end of main).
void finish();
// Ends the whole run at once, every rank, with exit status `code` (MPI_Abort; exit() without MPI).
[[noreturn]] void abort_all(int code);

int rank();         // 0 .. world() - 1
int world();        // number of ranks; 1 without a launcher
int local_ranks();  // ranks on this node (they share its cores and memory)
inline bool is_writer() { return rank() == 0; }  // only rank 0 writes files and prints progress
bool built_with_mpi();
// "rank 1 of 4 on node7" (empty with one rank): the prefix of a rank's error messages.
std::string where();

// ---- slicing the global batch ------------------------------------------------------------
struct Slice {
    int64_t lo = 0, hi = 0;  // rows [lo, hi)
    int64_t size() const { return hi - lo; }
};
// Rank `rank`'s rows of a global batch of `rows`: contiguous blocks, the first `rows % world`
// ranks one row longer. Throws when some rank would get no row (rows < world).
Slice rank_slice(int64_t rows, int rank, int world);
inline Slice rank_slice(int64_t rows) { return rank_slice(rows, rank(), world()); }

// ---- what a launcher tells a process ------------------------------------------------------
struct Launch {
    int size = 1;       // ranks the launcher started (1: none, or a single one)
    int rank = 0;
    std::string how;    // the variable that said so, e.g. "OMPI_COMM_WORLD_SIZE=2"
    bool mpi = false;   // an MPI launcher's variables (not only Slurm's)
};
// From the environment (getenv by default): Open MPI's OMPI_COMM_WORLD_SIZE/RANK, PMI's
// PMI_SIZE/RANK (MPICH, Intel MPI, srun --mpi=pmi2), PMIx's PMIX_RANK (srun --mpi=pmix), and an
// srun step's SLURM_STEP_NUM_TASKS/SLURM_PROCID. Not SLURM_NTASKS: an sbatch script sees it as a
// single process.
Launch launch_from_env(const std::function<const char*(const char*)>& getenv_fn = nullptr);

// ---- reductions (no-ops with one rank) ----------------------------------------------------
enum class Reduce {
    Mpi,      // MPI_Allreduce in place: MPI picks the algorithm (and so the summation order)
    Ordered,  // each element summed in rank order 0, 1, ..., N-1 by its owner rank, then shared
              // (MPI_Alltoallv + MPI_Allgatherv: the same bytes on the wire as a ring allreduce);
              // independent of MPI's algorithm choice, the network and the library version
};
Reduce parse_reduce(const std::string& name);  // "mpi" | "ordered"
// Sums `data` (n floats) over the ranks, in place: every rank receives the same sum.
void allreduce_sum(float* data, int64_t n, Reduce how);
// Sums of a few doubles over the ranks, always in rank order (all ranks get the same bits).
std::vector<double> sum_ordered(const std::vector<double>& local);
// Rank 0's value, on every rank.
double broadcast(double v);
// Throws on every rank when the n floats are not the same bytes on every rank (e.g. the
// parameters after a resume or at the end of training), naming `what` and the first rank that differs.
void check_same(const float* data, int64_t n, const std::string& what);
// Seconds spent in allreduce_sum since start (the per-step all-reduce time of docs/distributed.md).
double allreduce_seconds();

// ---- the weighting of a step's gradient ----------------------------------------------------
// A rank's loss is the mean of its `count` terms (target tokens, labelled rows); the global loss
// is the mean over all ranks' terms, sum_r count_r * loss_r / sum_r count_r. So rank r's gradient
// enters the sum with weight count_r / sum_r count_r (1 / N when every rank has as many terms).
inline double share_weight(double count, double total) { return total > 0 ? count / total : 0.0; }

}  // namespace synth::dist

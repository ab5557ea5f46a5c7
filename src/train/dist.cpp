#include "train/dist.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/clock.h"
#include "base/error.h"

#ifdef SYNTH_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (the C++ bindings warn under -Wextra)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace synth::dist {

namespace {
int g_rank = 0, g_world = 1, g_local = 1;
[[maybe_unused]] bool g_initialised = false;  // by us: finish() finalizes
double g_allreduce_s = 0;

// The split of rank_slice without its check (a reduction of fewer elements than ranks is fine).
Slice split(int64_t n, int r, int w) {
    const int64_t base = n / w, extra = n % w;
    const int64_t lo = r * base + std::min<int64_t>(r, extra);
    return {lo, lo + base + (r < extra ? 1 : 0)};
}

uint64_t fnv1a(const void* p, size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

#ifdef SYNTH_MPI
// Written once start() knows the rank, so the handler only calls write() and _exit().
char g_term_message[512];
volatile sig_atomic_t g_aborting = 0;  // this rank already said why it ends (abort_all)

// mpirun (or srun) sends SIGTERM to the remaining ranks when one dies or the job is cancelled:
// rank 0 says so in words before it goes, the others go quietly. Files are written atomically
// (base/io.h), so nothing partial is left under a final name, and result.json is never written.
void on_sigterm(int) {
    if (g_rank == 0 && !g_aborting) {
        ssize_t ignored = write(2, g_term_message, std::strlen(g_term_message));
        (void)ignored;
    }
    _exit(128 + SIGTERM);
}

void on_mpi_error(MPI_Comm* comm, int* code, ...) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(*code, text, &len);
    std::fprintf(stderr,
                 "error: [%s] MPI failed (%s): another rank died or the network between the ranks failed; the run "
                 "stops without a result.json (resume it from its last checkpoint with --resume)\n",
                 where().c_str(), text);
    std::fflush(stderr);
    MPI_Abort(*comm, 1);
}

MPI_Comm world_comm() { return MPI_COMM_WORLD; }
#endif
}  // namespace

Slice rank_slice(int64_t rows, int r, int w) {
    SYNTH_CHECK(w >= 1 && r >= 0 && r < w, "rank_slice: rank ", r, " of ", w);
    SYNTH_CHECK(rows >= w, "a global batch of ", rows, " rows cannot be shared by ", w,
                " ranks (every rank needs at least one): raise --batch or start fewer ranks");
    return split(rows, r, w);
}

Launch launch_from_env(const std::function<const char*(const char*)>& getenv_fn) {
    auto get = [&](const char* k) -> const char* { return getenv_fn ? getenv_fn(k) : std::getenv(k); };
    auto num = [&](const char* k, int& out) {
        const char* v = get(k);
        if (!v || !*v) return false;
        char* end = nullptr;
        const long n = std::strtol(v, &end, 10);
        if (*end || n < 0 || n > 1 << 24) return false;
        out = (int)n;
        return true;
    };
    // One launcher family, the first present: a rank of mpirun under Slurm also inherits Slurm's
    // variables of the step that started mpirun's daemons, which describe those, not the ranks.
    auto family = [&](const char* size_var, const char* rank_var, bool mpi, Launch& l) {
        int s = 1, r = 0;
        const bool has_size = size_var && num(size_var, s), has_rank = num(rank_var, r);
        if (!has_size && !has_rank) return false;
        l.rank = r;
        l.size = std::max(s, r + 1);  // PMIx alone does not say the size; a rank > 0 says "several"
        l.how = has_size ? std::string(size_var) + "=" + get(size_var) : std::string(rank_var) + "=" + get(rank_var);
        l.mpi = mpi;
        return true;
    };
    Launch l;
    if (family("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", true, l)) return l;
    if (family("PMI_SIZE", "PMI_RANK", true, l)) return l;
    if (get("PMIX_RANK") && family(get("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : nullptr, "PMIX_RANK", true, l))
        return l;
    if (get("SLURM_STEP_NUM_TASKS") && family("SLURM_STEP_NUM_TASKS", "SLURM_PROCID", false, l)) return l;
    return Launch{};
}

bool built_with_mpi() {
#ifdef SYNTH_MPI
    return true;
#else
    return false;
#endif
}

int rank() { return g_rank; }
int world() { return g_world; }
int local_ranks() { return g_local; }

std::string where() {
    if (g_world == 1) return "";
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    return "rank " + std::to_string(g_rank) + " of " + std::to_string(g_world) + " on " + host;
}

void start(int& argc, char**& argv) {
    const Launch l = launch_from_env();
#ifndef SYNTH_MPI
    (void)argc, (void)argv;
    if (l.size > 1) {
        if (l.rank != 0) std::exit(2);  // rank 0 says why; mpirun reports the others' exit
        fail("this binary was built without MPI, but a launcher started it as one of ", l.size, " processes (", l.how,
             "): it would train ", l.size, " unrelated copies of the run. Rebuild with MPI (make MPI=1, which needs "
             "mpicxx: apt-get install libopenmpi-dev openmpi-bin) or start a single process (docs/distributed.md)");
    }
#else
    if (!l.mpi && l.size == 1) return;  // no MPI launcher: one process, and MPI stays out of it
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        g_initialised = true;
        if (provided < MPI_THREAD_FUNNELED) {
            std::fprintf(stderr, "error: this MPI library gives no MPI_THREAD_FUNNELED, which OpenMP threads inside a rank need\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Comm_rank(world_comm(), &g_rank);
    MPI_Comm_size(world_comm(), &g_world);
    MPI_Comm node;
    MPI_Comm_split_type(world_comm(), MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &g_local);
    MPI_Comm_free(&node);
    MPI_Errhandler handler;
    MPI_Comm_create_errhandler(on_mpi_error, &handler);
    MPI_Comm_set_errhandler(world_comm(), handler);
    if (l.size > 1 && g_world != l.size) {
        if (g_rank != 0 || l.rank != 0) std::exit(2);
        fail("a launcher started this process as one of ", l.size, " (", l.how, "), but MPI sees a world of ", g_world,
             ": each process would train its own copy. Under Slurm start the ranks with srun --mpi=pmix (srun "
             "--mpi=list shows the choices) or mpirun (docs/distributed.md)");
    }
    if (g_world > 1) {
        std::snprintf(g_term_message, sizeof g_term_message,
                      "error: [%s] stopped by SIGTERM: another rank died or the job was cancelled (the launcher's "
                      "message says which); the run stops without a result.json (resume it from its last checkpoint "
                      "with --resume)\n",
                      where().c_str());
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigterm;
        sigaction(SIGTERM, &sa, nullptr);
    }
#endif
}

void finish() {
#ifdef SYNTH_MPI
    if (g_initialised) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
        g_initialised = false;
    }
#endif
}

void abort_all(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
#ifdef SYNTH_MPI
    g_aborting = 1;
    if (g_world > 1) MPI_Abort(world_comm(), code);
#endif
    std::exit(code);
}

Reduce parse_reduce(const std::string& name) {
    if (name == "mpi") return Reduce::Mpi;
    if (name == "ordered") return Reduce::Ordered;
    fail("--allreduce=", name, " is not mpi | ordered");
}

void allreduce_sum(float* data, int64_t n, Reduce how) {
    if (g_world == 1 || n == 0) return;
#ifdef SYNTH_MPI
    const double t0 = now_seconds();
    const int W = g_world;
    if (how == Reduce::Mpi) {
        const int64_t chunk = 1 << 30;  // MPI counts are int
        for (int64_t off = 0; off < n; off += chunk)
            MPI_Allreduce(MPI_IN_PLACE, data + off, (int)std::min(chunk, n - off), MPI_FLOAT, MPI_SUM, world_comm());
    } else {
        // Rank c owns elements split(n, c, W): it receives every rank's copy of them, sums them
        // in rank order and hands the sums to all (the reduce-scatter and all-gather of a ring
        // allreduce, with the order fixed).
        SYNTH_CHECK(n / W < (int64_t)1 << 30, "--allreduce=ordered: ", n, " floats are too many for ", W, " ranks");
        std::vector<int> counts(W), displs(W), rcounts(W), rdispls(W);
        for (int c = 0; c < W; ++c) {
            const Slice s = split(n, c, W);
            counts[c] = (int)s.size();
            displs[c] = (int)s.lo;
        }
        const int mine = counts[g_rank];
        for (int c = 0; c < W; ++c) {
            rcounts[c] = mine;
            rdispls[c] = c * mine;
        }
        static std::vector<float> buf;  // W copies of this rank's block; kept between steps
        buf.resize((size_t)W * mine);
        MPI_Alltoallv(data, counts.data(), displs.data(), MPI_FLOAT, buf.data(), rcounts.data(), rdispls.data(),
                      MPI_FLOAT, world_comm());
        float* out = data + displs[g_rank];
#pragma omp parallel for schedule(static)
        for (int i = 0; i < mine; ++i) {
            float s = buf[i];
            for (int c = 1; c < W; ++c) s += buf[(size_t)c * mine + i];
            out[i] = s;
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(), MPI_FLOAT,
                       world_comm());
    }
    g_allreduce_s += now_seconds() - t0;
#else
    (void)data, (void)how;
#endif
}

std::vector<double> sum_ordered(const std::vector<double>& local) {
    if (g_world == 1) return local;
    std::vector<double> all(local.size() * g_world), out(local.size(), 0.0);
#ifdef SYNTH_MPI
    MPI_Allgather(local.data(), (int)local.size(), MPI_DOUBLE, all.data(), (int)local.size(), MPI_DOUBLE, world_comm());
#endif
    for (int r = 0; r < g_world; ++r)
        for (size_t k = 0; k < local.size(); ++k) out[k] += all[r * local.size() + k];
    return out;
}

double broadcast(double v) {
#ifdef SYNTH_MPI
    if (g_world > 1) MPI_Bcast(&v, 1, MPI_DOUBLE, 0, world_comm());
#endif
    return v;
}

void check_same(const float* data, int64_t n, const std::string& what) {
    if (g_world == 1) return;
    const uint64_t h = fnv1a(data, (size_t)n * sizeof(float));
    std::vector<uint64_t> all(g_world);
#ifdef SYNTH_MPI
    MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, world_comm());
#else
    (void)h;
#endif
    for (int r = 1; r < g_world; ++r)
        SYNTH_CHECK(all[r] == all[0], "the ", what, " of rank ", r, " differ from rank 0's (all ", g_world,
                    " ranks must hold the same): the ranks did not start from the same checkpoint, or their "
                    "reductions gave different sums (try --allreduce=ordered)");
}

double allreduce_seconds() { return g_allreduce_s; }

}  // namespace synth::dist

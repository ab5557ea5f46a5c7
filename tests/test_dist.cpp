// Data-parallel training (train/dist.h) without MPI: the batch slices, the launcher detection
// that refuses a non-MPI binary started as several ranks, and the gradient weighting, checked by
// running the ranks' slices one after another in this process. tests/mpi/mpi_test.sh runs real
// ranks (make test-mpi).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/rng.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "models/transformer.h"
#include "train/dist.h"

using namespace synth;

namespace {
dist::Launch launch(const std::map<std::string, std::string>& env) {
    return dist::launch_from_env([&](const char* k) -> const char* {
        auto it = env.find(k);
        return it == env.end() ? nullptr : it->second.c_str();
    });
}
}  // namespace

TEST_CASE("dist: rank_slice covers the global batch in contiguous blocks that differ by at most one row") {
    for (int world : {1, 2, 3, 4, 7})
        for (int64_t rows : {7, 8, 9, 32, 33, 100}) {
            if (rows < world) continue;
            int64_t next = 0, lo_size = rows, hi_size = 0;
            for (int r = 0; r < world; ++r) {
                const dist::Slice s = dist::rank_slice(rows, r, world);
                CHECK(s.lo == next);
                CHECK(s.size() >= 1);
                lo_size = std::min(lo_size, s.size());
                hi_size = std::max(hi_size, s.size());
                next = s.hi;
            }
            CHECK(next == rows);
            CHECK(hi_size - lo_size <= 1);
        }
    CHECK(dist::rank_slice(7, 0, 2).size() == 4);  // the first rows % world ranks take one more
    CHECK(dist::rank_slice(7, 1, 2).lo == 4);
    CHECK_THROWS_AS(dist::rank_slice(3, 0, 4), Error);  // a rank without a row
    CHECK_THROWS_AS(dist::rank_slice(8, 2, 2), Error);
}

TEST_CASE("dist: the launcher is read from Open MPI, PMI, PMIx and srun variables, never SLURM_NTASKS alone") {
    CHECK(launch({}).size == 1);
    CHECK_FALSE(launch({}).mpi);
    dist::Launch l = launch({{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "3"}});
    CHECK(l.size == 4);
    CHECK(l.rank == 3);
    CHECK(l.mpi);
    CHECK(l.how == "OMPI_COMM_WORLD_SIZE=4");
    CHECK(launch({{"OMPI_COMM_WORLD_SIZE", "1"}, {"OMPI_COMM_WORLD_RANK", "0"}}).size == 1);  // mpirun -np 1
    CHECK(launch({{"OMPI_COMM_WORLD_SIZE", "1"}}).mpi);
    l = launch({{"PMI_SIZE", "2"}, {"PMI_RANK", "1"}});  // MPICH's hydra, Intel MPI, srun --mpi=pmi2
    CHECK(l.size == 2);
    CHECK(l.rank == 1);
    l = launch({{"PMIX_RANK", "2"}, {"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_PROCID", "2"}});  // srun --mpi=pmix
    CHECK(l.size == 8);
    CHECK(l.rank == 2);
    CHECK(l.mpi);
    CHECK(launch({{"PMIX_RANK", "1"}}).size == 2);  // PMIx alone: a rank > 0 says "several"
    l = launch({{"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_PROCID", "0"}});  // srun without MPI wiring
    CHECK(l.size == 4);
    CHECK_FALSE(l.mpi);
    // An sbatch script with --ntasks=4 is one process; a one-task srun step is one process.
    CHECK(launch({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "0"}}).size == 1);
    CHECK(launch({{"SLURM_STEP_NUM_TASKS", "1"}, {"SLURM_PROCID", "0"}}).size == 1);
    // mpirun's ranks under Slurm inherit the daemons' step variables: Open MPI's own win.
    l = launch({{"OMPI_COMM_WORLD_SIZE", "16"}, {"OMPI_COMM_WORLD_RANK", "5"}, {"SLURM_STEP_NUM_TASKS", "2"},
                {"SLURM_PROCID", "1"}});
    CHECK(l.size == 16);
    CHECK(l.rank == 5);
    CHECK(launch({{"OMPI_COMM_WORLD_SIZE", "x"}}).size == 1);
}

TEST_CASE("dist: a binary without MPI started as one of several ranks refuses") {
    if (dist::built_with_mpi()) return;  // there start() would join the (absent) launcher's ranks
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    setenv("OMPI_COMM_WORLD_RANK", "0", 1);
    int argc = 1;
    char name[] = "tests";
    char* args[] = {name, nullptr};
    char** argv = args;
    std::string message;
    try {
        dist::start(argc, argv);
    } catch (const Error& e) {
        message = e.what();
    }
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("OMPI_COMM_WORLD_RANK");
    CHECK(message.find("built without MPI") != std::string::npos);
    CHECK(message.find("OMPI_COMM_WORLD_SIZE=2") != std::string::npos);
    CHECK(dist::world() == 1);
}

TEST_CASE("dist: one process is a world of one, whose reductions change nothing") {
    CHECK(dist::world() == 1);
    CHECK(dist::rank() == 0);
    CHECK(dist::is_writer());
    CHECK(dist::where().empty());
    std::vector<float> g = {1.5f, -2.0f, 3.25f};
    dist::allreduce_sum(g.data(), (int64_t)g.size(), dist::Reduce::Ordered);
    CHECK(g == std::vector<float>{1.5f, -2.0f, 3.25f});
    CHECK(dist::sum_ordered({2.0, 3.0}) == std::vector<double>{2.0, 3.0});
    CHECK(dist::broadcast(4.5) == 4.5);
    dist::check_same(g.data(), (int64_t)g.size(), "values");
    CHECK(dist::parse_reduce("ordered") == dist::Reduce::Ordered);
    CHECK_THROWS_AS(dist::parse_reduce("ring"), Error);
}

// The weighting of train_step, with the ranks' slices run one after another in one process:
// each slice's mean loss, backward from count_r / total, gradients summed. That is the gradient of
// the whole batch's mean loss; padded targets (ignored) make the counts differ between slices.
TEST_CASE("dist: slices weighted by their target counts give the whole batch's loss and gradient") {
    LmConfig c;
    c.vocab = 13;
    c.layers = 2;
    c.d_ff = 32;
    c.dropout = 0.0f;
    c.attn.d_model = 16;
    c.attn.heads = 2;
    c.attn.max_len = 6;
    c.attn.causal = true;
    ParamStore store;
    TransformerLM lm(store, c);
    store.finalize(5);
    const int B = 5, T = 6;
    std::vector<int32_t> x(B * T), y(B * T);
    Rng rng(9);
    for (int i = 0; i < B * T; ++i) {
        x[i] = (int32_t)rng.below(13);
        y[i] = (int32_t)rng.below(13);
    }
    for (int i : {4, 5, 11, 17, 28, 29}) y[i] = -1;  // padding: rows hold 4, 5, 6, 5 and 4 targets
    auto count = [&](int lo, int hi) {
        double n = 0;
        for (int i = lo * T; i < hi * T; ++i) n += y[i] != -1;
        return n;
    };
    StepContext ctx;
    store.zero_grad();
    Tensor whole = cross_entropy(lm.forward(x, B, T, ctx), y, -1, 0.0f);
    backward(whole);
    const std::vector<float> g_whole(store.grad(), store.grad() + store.size());
    const double loss_whole = whole.data[0];

    for (int world : {2, 3}) {
        store.zero_grad();
        double total = 0, weighted = 0;
        for (int r = 0; r < world; ++r) total += count(dist::rank_slice(B, r, world).lo, dist::rank_slice(B, r, world).hi);
        CHECK(total == count(0, B));
        for (int r = 0; r < world; ++r) {
            const dist::Slice s = dist::rank_slice(B, r, world);
            const std::vector<int32_t> xs(x.begin() + s.lo * T, x.begin() + s.hi * T), ys(y.begin() + s.lo * T, y.begin() + s.hi * T);
            Tensor l = cross_entropy(lm.forward(xs, (int)s.size(), T, ctx), ys, -1, 0.0f);
            const double n = count((int)s.lo, (int)s.hi);
            weighted += n * l.data[0];
            backward(scale(l, (float)dist::share_weight(n, total)));
        }
        CHECK(weighted / total == doctest::Approx(loss_whole).epsilon(1e-6));
        double max_err = 0, max_g = 0;
        for (int64_t i = 0; i < store.size(); ++i) {
            max_err = std::max(max_err, (double)std::fabs(store.grad()[i] - g_whole[i]));
            max_g = std::max(max_g, (double)std::fabs(g_whole[i]));
        }
        CHECK(max_g > 1e-3);
        CHECK(max_err <= 1e-5 * max_g);
        // Equal weights (TrainTask::loss_count unset) would be wrong here: the counts differ.
        CHECK(dist::share_weight(count(0, 3), total) != doctest::Approx(1.0 / world));
    }
}

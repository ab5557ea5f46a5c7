// mpi_train: a tiny character LM trained through the shared Trainer on 1 or several MPI ranks,
// built from library calls (not the runners), for tests/mpi/mpi_test.sh and the measurements of
// results/mpi.md. Each rank takes dist::rank_slice() of every global batch, which
// sample_lm_batch draws from (seed, step) alone; rank 0 writes --out: one loss per step (%.9g),
// from the first step it trained (a resumed run: after its checkpoint), then the validation loss
// and a hash of the final parameters.
//
//   mpirun --allow-run-as-root --oversubscribe -np 2 build/mpi_train --batch=8 --out=/tmp/two.txt
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/flags.h"
#include "base/hash.h"
#include "base/io.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "models/transformer.h"
#include "runs/cli.h"
#include "text/corpus.h"
#include "train/dist.h"
#include "train/trainer.h"
#include "../tiny_text.h"

namespace synth {

static int run(int argc, char** argv) {
    TrainConfig tc;
    tc.steps = 20;
    tc.warmup = 5;
    tc.lr = 3e-3f;
    tc.log_every = 10;
    tc.eval_every = 1 << 30;  // the last step only
    int batch = 8, seq = 32, d = 64, d_ff = 128, layers = 2, heads = 4, fail_at = -1, allreduce_bench = 0;
    float dropout = 0.0f;
    std::string out, pid_dir, prefix = "/tmp/mpi_train";
    Flags f("mpi_train", "A tiny LM on 1 or several MPI ranks (tests/mpi/mpi_test.sh).");
    tc.bind(f);
    f.add("batch", &batch, "global batch (rows), shared by the ranks");
    f.add("seq", &seq, "context length");
    f.add("d", &d, "model width");
    f.add("d-ff", &d_ff, "FFN width");
    f.add("layers", &layers, "blocks");
    f.add("heads", &heads, "heads");
    f.add("dropout", &dropout, "residual dropout");
    f.add("out", &out, "rank 0 writes the per-step losses, the validation loss and the parameters' hash here");
    f.add("pid-dir", &pid_dir, "each rank writes <dir>/rank<r>.pid (the kill test)");
    f.add("fail-at", &fail_at, "rank 1 throws at this step (the failure test)");
    f.add("allreduce-bench", &allreduce_bench, "after training, time this many all-reduces of the gradient arena alone");
    f.add("prefix", &prefix, "--save-every checkpoints are <prefix>-step<N>.ckpt");
    if (!f.parse(argc, argv)) return 0;
    tc.validate();
    const std::string compute = tc.configure_compute();
    if (dist::is_writer()) std::fprintf(stderr, "mpi_train: %s\n", compute.c_str());
    if (!pid_dir.empty())
        write_file_atomic(pid_dir + "/rank" + std::to_string(dist::rank()) + ".pid", std::to_string(getpid()) + "\n");

    std::vector<int32_t> tokens;  // characters folded into a vocabulary of 32
    for (int rep = 0; rep < 4; ++rep)
        for (unsigned char c : tiny_text()) tokens.push_back((int32_t)(c % 32));
    LmConfig mc;
    mc.vocab = 32;
    mc.layers = layers;
    mc.d_ff = d_ff;
    mc.dropout = dropout;
    mc.attn.d_model = d;
    mc.attn.heads = heads;
    mc.attn.max_len = seq;
    mc.attn.causal = true;
    ParamStore store;
    TransformerLM model(store, mc);
    store.finalize((uint64_t)tc.seed);

    // The global batch of the step, from (seed, step) only; this rank trains on its rows of it.
    const dist::Slice s = dist::rank_slice(batch);
    std::vector<int32_t> gx((size_t)batch * seq), gy(gx.size());
    TrainTask task;
    task.loss = [&](int64_t step, StepContext& ctx, int64_t& n_tokens) {
        SYNTH_CHECK(!(step == fail_at && dist::rank() == 1), "rank 1 fails at step ", step, " (--fail-at)");
        sample_lm_batch(tokens, batch, seq, (uint64_t)tc.seed, (uint64_t)step, gx.data(), gy.data());
        const std::vector<int32_t> x(gx.begin() + s.lo * seq, gx.begin() + s.hi * seq),
            y(gy.begin() + s.lo * seq, gy.begin() + s.hi * seq);
        n_tokens = (int64_t)x.size();
        return cross_entropy(model.forward(x, (int)s.size(), seq, ctx), y, -1, 0.0f);
    };
    task.loss_count = [&] { return (double)(s.size() * seq); };  // every target counts (no padding)
    task.validate = [&] {
        NoGrad ng;
        StepContext ctx;
        double sum = 0;
        const std::vector<LmBatch> val = eval_lm_batches(std::vector<int32_t>(tokens.begin(), tokens.begin() + 4096), 8, seq);
        for (const LmBatch& b : val) sum += cross_entropy(model.forward(b.x, b.rows, b.seq, ctx), b.y, -1, 0.0f).data[0];
        return sum / (double)val.size();
    };
    task.config = f.dump();
    Trainer trainer(store, tc, "mpi_train", prefix);
    if (!tc.resume.empty()) trainer.resume(load_checkpoint(tc.resume), tc.resume);  // every rank reads it
    const TrainResult t = trainer.run(task, tc.steps);

    // The all-reduce alone: the ranks meet first (sum_ordered), so no rank's wait is counted.
    std::vector<double> alone;
    for (int i = 0; i < allreduce_bench; ++i) {
        dist::sum_ordered({0.0});
        const double t0 = dist::allreduce_seconds();
        dist::allreduce_sum(store.grad(), store.size(), dist::parse_reduce(tc.allreduce));
        alone.push_back(dist::allreduce_seconds() - t0);
    }
    std::sort(alone.begin(), alone.end());
    const double alone_ms = alone.empty() ? 0.0 : 1e3 * alone[alone.size() / 2];

    if (dist::is_writer()) {
        std::string text;
        char line[64];
        for (const CurveRow& r : trainer.curve) {
            std::snprintf(line, sizeof line, "%.9g\n", r.train_loss);
            text += line;
        }
        std::snprintf(line, sizeof line, "val %.9g\n", t.last_val);
        text += line;
        text += "params " + short_hash(std::string((const char*)store.data(), (size_t)store.size() * sizeof(float))) + "\n";
        if (!out.empty()) write_file_atomic(out, text);
        std::printf("{\"ranks\": %d, \"threads\": %d, \"batch\": %d, \"params\": %lld, \"tokens_per_s\": %.0f, "
                    "\"step_ms\": %.1f, \"allreduce_ms_per_step\": %.2f, \"allreduce_alone_ms\": %.2f}\n",
                    dist::world(), tc.threads, batch, (long long)store.size(), t.tokens_per_s(),
                    1e3 * t.compute_s / (double)t.steps, 1e3 * t.allreduce_s / (double)t.steps, alone_ms);
    }
    return 0;
}

}  // namespace synth

int main(int argc, char** argv) { return synth::cli_main(argc, argv, synth::run); }

#include "engine/profile.h"

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/clock.h"
#include "base/json.h"
#include "engine/gemm/precision.h"

namespace synth::profile {

bool g_on = false;

namespace {

struct Kind {
    const char* op;  // a string literal; kinds compare by content (one literal per op, any TU)
    OpTotals t;
};

// One mode's figures: training steps (ops with gradients enabled, their backwards, train_step's
// phases) or inference passes (ops under an outermost NoGrad).
struct Table {
    std::vector<Kind> kinds;
    int64_t units = 0;  // training steps, or inference passes
    double wall_s = 0;  // their wall time
};

Table g_train, g_infer;
// Training phases, in the order the report lists them.
const char* const kPhases[] = {"step", "forward", "backward", "zero_grad", "allreduce", "clip", "adamw"};
constexpr int kNumPhases = sizeof kPhases / sizeof kPhases[0];
double g_phase_s[kNumPhases] = {0};
int g_phase_depth[kNumPhases] = {0};

OpTotals* g_running = nullptr;  // the op whose forward or backward runs now
bool g_running_bwd = false;
double g_op_t0 = 0;
size_t g_op_arena0 = 0;  // the arena in use when the running op began
double g_infer_t0 = 0;
// Inside an outermost NoGrad (autograd.cpp calls inference_begin/end): ops count as inference.
// Kept here, not asked of autograd, which sits above this file.
bool g_in_inference = false;
int g_gemm_depth = 0;
bool g_atexit = false;
bool g_cpu_clock = false;  // SYNTH_PROFILE=cpu
size_t g_arena_capacity = SIZE_MAX;  // the scratch arena's size after the last training step
int64_t g_warmup_steps = 0;          // training steps dropped as warm-up since the last report

// Wall time, or with SYNTH_PROFILE=cpu the process's CPU time: on a machine shared with other
// jobs, wall time charges an op for the time the scheduler gave to others, while CPU time does
// not (at 1 thread it is the op's own work; at n threads the sum over them).
double now() {
    if (!g_cpu_clock) return now_seconds();
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

OpTotals& kind(Table& t, const char* op) {
    for (Kind& k : t.kinds)
        if (k.op == op || std::strcmp(k.op, op) == 0) return k.t;
    t.kinds.push_back({op, {}});
    return t.kinds.back().t;
}

int64_t bytes_of(const Tensor& t) { return t.data ? t.numel() * (int64_t)sizeof(float) : 0; }

void report_at_exit() { report(stderr, "rest of the process"); }

}  // namespace

void enable(bool want) {
    static const bool env = [] {
        const char* e = std::getenv("SYNTH_PROFILE");
        g_cpu_clock = e && std::strcmp(e, "cpu") == 0;
        return e && (std::strcmp(e, "1") == 0 || g_cpu_clock);
    }();
    g_on = want || env;
    if (g_on && !g_atexit) {
        std::atexit(report_at_exit);
        g_atexit = true;
    }
}

void Op::begin(const char* op, std::initializer_list<const Tensor*> inputs) {
    if (g_running) return;  // not nested: the outer op counts the time
    OpTotals& k = kind(!g_in_inference ? g_train : g_infer, op);
    ++k.fwd_calls;
    for (const Tensor* t : inputs) k.bytes += (double)bytes_of(*t);
    g_running = &k;
    g_running_bwd = false;
    active_ = true;
    g_op_t0 = now();
}

void Op::end() {
    g_running->fwd_s += now() - g_op_t0;
    // What the op wrote: the activations it took from the arena (outputs, their gradients' space,
    // any workspace), read off the arena rather than asked of new_tensor, which sits below this file.
    g_running->bytes += (double)(scratch().in_use_bytes() - g_op_arena0);
    g_running = nullptr;
}

void backward_begin(const char* op, const Tensor* inputs, size_t n_inputs, const Tensor& output) {
    OpTotals& k = kind(g_train, op);
    ++k.bwd_calls;
    double bytes = (double)bytes_of(output);  // its gradient, read
    for (size_t i = 0; i < n_inputs; ++i)
        bytes += (double)bytes_of(inputs[i]) * (inputs[i].grad ? 3 : 1);  // read; gradient read and written
    k.bytes += bytes;
    g_running = &k;
    g_running_bwd = true;
    g_op_t0 = now();
}

void backward_end() {
    if (!g_running) return;
    g_running->bwd_s += now() - g_op_t0;
    g_running = nullptr;
}

void Gemm::begin(double flops) {
    if (g_gemm_depth++ > 0) return;  // inside another timed product
    active_ = true;
    flops_ = flops;
    t0_ = now();
}

void Gemm::end() {
    --g_gemm_depth;
    OpTotals& k = g_running ? *g_running : kind(!g_in_inference ? g_train : g_infer, "(no op)");
    k.gemm_s += now() - t0_;
    k.gemm_flops += flops_;
}

static void clear_tables();

static int phase_index(const char* name) {
    for (int i = 0; i < kNumPhases; ++i)
        if (std::strcmp(kPhases[i], name) == 0) return i;
    return -1;
}

void Phase::begin(const char* name) {
    const int i = phase_index(name);
    if (i < 0 || g_phase_depth[i]++ > 0) return;
    name_ = kPhases[i];
    t0_ = now();
}

void Phase::end() {
    const int i = phase_index(name_);
    --g_phase_depth[i];
    const double s = now() - t0_;
    g_phase_s[i] += s;
    if (i != 0) return;
    // Warm-up: until the activation arena has kept its size for a whole step, a step pays for
    // growing it (and first touching its pages) and oneDNN for creating its primitives, which no
    // later step does. Such steps, and everything recorded before them, are dropped.
    const size_t capacity = scratch().capacity_bytes();
    if (capacity != g_arena_capacity) {
        g_arena_capacity = capacity;
        clear_tables();
        ++g_warmup_steps;
        return;
    }
    g_train.wall_s += s;
    ++g_train.units;
}

void inference_begin() {
    g_in_inference = true;
    g_infer_t0 = now();
}
void inference_end() {
    g_in_inference = false;
    g_infer.wall_s += now() - g_infer_t0;
    ++g_infer.units;
}

OpTotals totals(const std::string& op, bool train) {
    for (const Kind& k : (train ? g_train : g_infer).kinds)
        if (op == k.op) return k.t;
    return {};
}

double phase_seconds(const std::string& phase) {
    const int i = phase_index(phase.c_str());
    return i < 0 ? 0.0 : g_phase_s[i];
}

static void clear_tables() {
    g_train = Table{};
    g_infer = Table{};
    std::fill(g_phase_s, g_phase_s + kNumPhases, 0.0);
}

void reset() {
    clear_tables();
    g_warmup_steps = 0;
}

// ---- the report ---------------------------------------------------------------------------------

namespace {

std::string num(double v, int decimals) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return b;
}

// The table of one mode on `out`, and its JSON object appended to `json`.
void report_table(std::FILE* out, std::string& json, const Table& t, bool train) {
    const char* unit = train ? "step" : "pass";
    const char* units = train ? "steps" : "passes";
    std::vector<Kind> kinds = t.kinds;
    std::stable_sort(kinds.begin(), kinds.end(), [](const Kind& a, const Kind& b) {
        return a.t.fwd_s + a.t.bwd_s > b.t.fwd_s + b.t.bwd_s;
    });
    const double n = (double)std::max<int64_t>(t.units, 1), wall = t.wall_s;
    double fwd = 0, bwd = 0, gemm = 0, flops = 0, bytes = 0;
    for (const Kind& k : kinds) fwd += k.t.fwd_s, bwd += k.t.bwd_s, gemm += k.t.gemm_s, flops += k.t.gemm_flops,
                                bytes += k.t.bytes;
    auto pct = [&](double s) { return wall > 0 ? num(100.0 * s / wall, 1) : std::string("-"); };
    auto ms = [&](double s) { return num(1e3 * s / n, 2); };
    auto gflops = [](double f, double s) { return s > 0 ? num(f / s * 1e-9, 1) : std::string("-"); };
    std::fprintf(out, "profile, %s: %lld %s, %s ms per %s; GEMM %s%% of it (%s GFLOP/s)%s\n",
                 train ? "training" : "inference", (long long)t.units, units, ms(wall).c_str(), unit, pct(gemm).c_str(),
                 gflops(flops, gemm).c_str(),
                 train && g_warmup_steps ? (" after " + std::to_string(g_warmup_steps) + " warm-up steps").c_str() : "");
    std::fprintf(out, "  %-16s %9s %9s %9s %9s %6s %9s %9s %9s\n", "op", "fwd calls", "fwd ms", "bwd calls", "bwd ms",
                 "% " , "GEMM ms", "GFLOP/s", "MB");
    for (const Kind& k : kinds)
        std::fprintf(out, "  %-16s %9s %9s %9s %9s %6s %9s %9s %9s\n", k.op, num(k.t.fwd_calls / n, 1).c_str(),
                     ms(k.t.fwd_s).c_str(), num(k.t.bwd_calls / n, 1).c_str(), ms(k.t.bwd_s).c_str(),
                     pct(k.t.fwd_s + k.t.bwd_s).c_str(), ms(k.t.gemm_s).c_str(), gflops(k.t.gemm_flops, k.t.gemm_s).c_str(),
                     num(k.t.bytes / n / 1e6, 1).c_str());
    std::fprintf(out, "  %-16s %9s %9s %9s %9s %6s %9s %9s %9s\n", "ops", "", ms(fwd).c_str(), "", ms(bwd).c_str(),
                 pct(fwd + bwd).c_str(), ms(gemm).c_str(), gflops(flops, gemm).c_str(), num(bytes / n / 1e6, 1).c_str());
    // What the step spends outside the ops.
    std::string extra;
    if (train) {
        const double outside_fwd = g_phase_s[1] - fwd, outside_bwd = g_phase_s[2] - bwd;
        std::fprintf(out, "  %-16s %9s %9s %9s %9s %6s   (model code, the tape, between ops)\n", "outside ops", "",
                     ms(outside_fwd).c_str(), "", ms(outside_bwd).c_str(), pct(outside_fwd + outside_bwd).c_str());
        for (int i = 3; i < kNumPhases; ++i) {
            std::fprintf(out, "  %-16s %9s %9s %9s %9s %6s\n", kPhases[i], "", ms(g_phase_s[i]).c_str(), "", "",
                         pct(g_phase_s[i]).c_str());
            extra += ",\"" + std::string(kPhases[i]) + "_s\":" + num(g_phase_s[i], 6);
        }
        extra += ",\"forward_s\":" + num(g_phase_s[1], 6) + ",\"backward_s\":" + num(g_phase_s[2], 6);
    } else {
        std::fprintf(out, "  %-16s %9s %9s %9s %9s %6s   (model code between ops)\n", "outside ops", "",
                     ms(wall - fwd).c_str(), "", "", pct(wall - fwd).c_str());
    }
    json += std::string("\"") + (train ? "train" : "inference") + "\":{\"" + units + "\":" + std::to_string(t.units) +
            ",\"wall_s\":" + num(wall, 6) +
            (train ? ",\"warmup_steps\":" + std::to_string(g_warmup_steps) : std::string()) + ",\"ops_fwd_s\":" + num(fwd, 6) + ",\"ops_bwd_s\":" + num(bwd, 6) +
            ",\"gemm_s\":" + num(gemm, 6) + ",\"gemm_share\":" + num(wall > 0 ? gemm / wall : 0, 4) +
            ",\"gemm_gflop\":" + num(flops * 1e-9, 3) + extra + ",\"ops\":[";
    for (size_t i = 0; i < kinds.size(); ++i) {
        const OpTotals& k = kinds[i].t;
        json += std::string(i ? "," : "") + "{\"op\":\"" + kinds[i].op + "\",\"fwd_calls\":" + std::to_string(k.fwd_calls) +
                ",\"fwd_s\":" + num(k.fwd_s, 6) + ",\"bwd_calls\":" + std::to_string(k.bwd_calls) + ",\"bwd_s\":" +
                num(k.bwd_s, 6) + ",\"gemm_s\":" + num(k.gemm_s, 6) + ",\"gemm_gflop\":" + num(k.gemm_flops * 1e-9, 3) +
                ",\"bytes\":" + num(k.bytes, 0) + "}";
    }
    json += "]}";
}

}  // namespace

void report(std::FILE* out, const std::string& title) {
    if (g_train.units == 0 && g_infer.units == 0 && g_train.kinds.empty() && g_infer.kinds.empty()) return;
    std::fprintf(out, "profile of %s (%d threads, %s); per step or pass, %s ms:\n", title.c_str(), omp_get_max_threads(),
                 provider_name(gemm_provider()), g_cpu_clock ? "CPU (SYNTH_PROFILE=cpu)" : "wall");
    std::string json = "{\"profile\":{\"title\":";
    append_json_string(json, title, "profile title");
    json += ",\"threads\":" +
                       std::to_string(omp_get_max_threads()) + ",\"gemm\":\"" + provider_name(gemm_provider()) + "\",\"clock\":\"" +
            (g_cpu_clock ? "cpu" : "wall") + "\"";
    for (bool train : {true, false}) {
        const Table& t = train ? g_train : g_infer;
        if (t.units == 0 && t.kinds.empty()) continue;
        json += ",";
        report_table(out, json, t, train);
    }
    json += "}}";
    std::fprintf(out, "%s\n", json.c_str());
    std::fflush(out);
    reset();
}

}  // namespace synth::profile

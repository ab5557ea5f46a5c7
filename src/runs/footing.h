// footing.h: what two runs must share to be compared or continued as one (docs/statistics.md,
// "4. Equal footing"): the report pairs only seeds on one footing, and a run resumes only on its own.
#pragma once

#include <string>

#include "base/json.h"

namespace synth {

// What two paired runs must share: config.json's cpu ("unknown CPU" for runs from before it was
// recorded), OpenBLAS kernel, precision, GEMM provider (openblas-fp32 for an fp32 run from before
// it was recorded) and threads. Builds of different commits pair (scripts/fixed_seed_runs.sh
// holds refactorings to bit-identical training); a modified tree (-dirty) is marked.
struct Footing {
    std::string cpu, blas_kernel, precision, gemm_provider, threads, commit;
    bool cpu_known() const { return cpu != "unknown CPU"; }
    bool dirty() const;
    std::string text() const;  // "CPU, kernel K, fp32, openblas-fp32, 1 thread(s)"
};
Footing footing_of(const JsonObject& config);
// Same CPU (an unknown CPU pairs only with an unknown one), kernel, precision, provider,
// threads. Otherwise false, with `why` ("A vs B") when given.
bool same_footing(const Footing& a, const Footing& b, std::string* why = nullptr);

}  // namespace synth

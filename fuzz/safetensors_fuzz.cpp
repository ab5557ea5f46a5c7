// libFuzzer entry point for fuzz_safetensors (see fuzz_targets.h); built and run by scripts/fuzz.sh.
#include <cstdio>
#include <cstdlib>

#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        synth_fuzz::fuzz_safetensors(std::string(reinterpret_cast<const char*>(data), size));
    } catch (const synth_fuzz::FuzzFailure& e) {
        std::fprintf(stderr, "fuzz_safetensors: property violated: %s\n", e.what());
        std::abort();
    }
    return 0;
}

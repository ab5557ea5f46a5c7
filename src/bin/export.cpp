// export: a checkpoint's parameters as a safetensors file (src/train/safetensors.h), which PyTorch
// and Hugging Face tooling read; docs/checkpoints.md describes the file and how to load it.
//
//   build/export --checkpoint=checkpoints/lm-R-step1000.ckpt --out=lm-R.safetensors
//
// Any checkpoint of build/lm or build/mt works (a -step<N>.ckpt, a .best.ckpt or the kept
// parameters); the optimizer state stays behind, the config and tokenizer go along as metadata.
#include <cstdio>
#include <string>

#include "train/checkpoint.h"
#include "runs/cli.h"
#include "base/error.h"
#include "base/flags.h"
#include "base/io.h"
#include "train/safetensors.h"

namespace {

int run(int argc, char** argv) {
    std::string checkpoint, out;
    synth::Flags flags("export", "Write a checkpoint's parameters, config and tokenizer as a safetensors file.");
    flags.add("checkpoint", &checkpoint, "the synth checkpoint (.ckpt) to read (required)");
    flags.add("out", &out, "the safetensors file to write, replaced atomically (required)");
    if (!flags.parse(argc, argv)) return 0;
    SYNTH_CHECK(flags.positional().empty(), "unexpected argument '", flags.positional()[0], "' (flags are --key=value)");
    SYNTH_CHECK(!checkpoint.empty(), "--checkpoint is required (see --help)");
    SYNTH_CHECK(!out.empty(), "--out is required (see --help)");
    synth::check_output_path(out, {checkpoint}, "--out");  // never the checkpoint it reads, nor a directory

    const synth::Checkpoint ck = synth::load_checkpoint(checkpoint);
    synth::export_safetensors(out, ck);
    size_t values = 0;
    for (const synth::Checkpoint::Tensor1& p : ck.params) values += p.values.size();
    std::printf("%s: %zu tensors, %zu values, step %lld -> %s\n", checkpoint.c_str(), ck.params.size(), values,
                (long long)ck.step, out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return synth::cli_main(argc, argv, run); }

// safetensors.h: the safetensors tensor file format, written and read here without a library,
// so that a synth model loads in PyTorch/Hugging Face tooling (docs/checkpoints.md).
//
// Layout (little-endian):
//   N       u64, the byte length of the header
//   header  N bytes of UTF-8 JSON, padded with spaces to a multiple of 8 as the reference
//           writer does:
//             {"__metadata__":{"key":"value",...},
//              "<name>":{"dtype":"F32","shape":[d0,...],"data_offsets":[begin,end]},...}
//   data    the tensors' raw values; offsets are bytes from the start of the data block, the
//           tensors lie back to back, the first at 0 and the last ending at the end of the file.
// The writer puts "__metadata__" first (omitted when empty) and the tensors in the given order,
// compact, as the reference (Rust) implementation does. The reader accepts any key order and
// whitespace, returns the tensors in data order and is strict about everything else: F32 only,
// shapes matching the byte spans, no gaps, overlaps or trailing bytes, well-formed UTF-8 JSON
// (escapes included), no duplicate keys. Every count is checked against the bytes present before
// anything is allocated, so arbitrary bytes give a synth::Error naming the source, never a crash
// or a huge allocation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "engine/tensor.h"

namespace synth {

// The reference implementation's limit on N: larger headers are refused before being read.
constexpr uint64_t kMaxSafetensorsHeader = 100000000;

struct NamedTensor {
    std::string name;  // "block0.attn.R.r"
    Shape shape;       // [] is a scalar (one value); a 0 dimension is an empty tensor
    std::vector<float> values;
};

struct SafeTensors {
    std::vector<NamedTensor> tensors;  // in data order
    std::map<std::string, std::string> metadata;
};

// The file's bytes. Throws if a name repeats or is "__metadata__", a shape does not match its
// values, or a name or metadata string is not valid UTF-8 (JSON cannot hold it).
std::string to_safetensors(const std::vector<NamedTensor>& tensors, const std::map<std::string, std::string>& metadata);
// Parses a whole file; `source` (a path) starts every error message.
SafeTensors from_safetensors(const std::string& bytes, const std::string& source = "safetensors");

// A checkpoint's parameters under their synth names, with the metadata
//   format=synth, config (its "key=value" lines), tokenizer (serialized), step, and
//   fixed: the comma-separated names of the parameters that are not trained (Rfix's R)
// written atomically (io.h). The optimizer state and the run's position are left out.
void export_safetensors(const std::string& path, const Checkpoint& ck);
// The parameters and metadata of a file written by export_safetensors (format=synth), ready
// for restore() into a ParamStore; no optimizer state (restore then leaves AdamW as it is).
Checkpoint import_safetensors(const std::string& path);

}  // namespace synth

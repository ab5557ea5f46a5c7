// checkpoint.h: one documented, versioned, checksummed file format for models in training.
//
// Layout (little-endian):
//   magic    8 bytes  "SYNTHCKP"
//   version  u32      kCheckpointVersion
//   then sections, each: tag u32, length u64, payload. A tag is its four ASCII letters in
//   file order; each of the five sections appears exactly once, in any order:
//     'CONF' resolved config, "key=value\n" lines: the binary's --flags (Flags::dump()) plus
//            run facts such as variant=R
//     'TOKN' tokenizer or BPE merges, serialized by their own serialize()
//     'PARM' parameter table: count u32, then per parameter: name (u32 len + bytes),
//            ndim u32 (at most 4), dims u32[ndim] (each >= 1), trainable u8 (0 or 1),
//            offset u64 into the value block
//            followed by the flat value block (u64 count + f32 values). Parameters are stored
//            back to back in table order: offsets are running sums and the counts add up.
//     'OPTM' AdamW state: t i64, m and v (u64 count + f32 values each; count 0 when absent).
//            m and v are parallel to the value block (same count, same order).
//     'STAT' step i64, data position i64, RNG state u64[4], best validation loss f64
//   checksum u64     FNV-1a 64 of every byte before it
// Saving writes a temporary file, fsyncs it and renames it over the target, so an
// interrupted save leaves the previous checkpoint intact. Loading verifies magic, version,
// section lengths and the checksum, and names the problem when any of them is wrong; every
// count is checked against the bytes that remain before anything is allocated, so arbitrary
// bytes produce a synth::Error, never a crash or a huge allocation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/flags.h"
#include "engine/optim.h"
#include "engine/params.h"

namespace synth {

constexpr uint32_t kCheckpointVersion = 1;

struct Checkpoint {
    std::string config;     // "key=value\n" lines
    std::string tokenizer;  // serialized tokenizer / BPE
    struct Tensor1 {
        std::string name;
        Shape shape;
        bool trainable = true;
        std::vector<float> values;
    };
    std::vector<Tensor1> params;
    int64_t adam_t = 0;
    std::vector<float> adam_m, adam_v;  // one per value of params, in order; empty when not saved
    int64_t step = 0, data_pos = 0;
    uint64_t rng[4] = {0, 0, 0, 0};
    double best_val = 0.0;

    // The value of `key` in config, or throws naming the missing key. As in config_map, a later
    // line overrides an earlier one: the trainer's counters (tokens=...) follow the run's flags,
    // which may hold a flag of the same name (build/lm's --tokens).
    std::string config_value(const std::string& key) const;
    // The value of `key` as a finite number >= 0 (seconds, counts), or throws naming the key.
    double config_number(const std::string& key) const;
};

// Captures a store (and optionally an optimizer) into a Checkpoint.
Checkpoint capture(const ParamStore& store, const AdamW* opt);
// Copies a checkpoint's parameters (and optimizer state, if opt and present) into a store
// built for the same model. Throws, naming the first parameter that is missing, extra or of
// a different shape (e.g. a checkpoint of another variant or vocabulary); the store is then
// left unchanged.
void restore(const Checkpoint& ck, ParamStore& store, AdamW* opt);

// The consistency every checkpoint file relies on: config lines are "key=value", parameter
// names are unique and non-empty, shapes have at most 4 dimensions, all positive, and match
// the values, the optimizer moments (if any) match the values. Throws naming `where` and the
// problem.
void check_checkpoint(const Checkpoint& ck, const std::string& where);

std::string serialize_checkpoint(const Checkpoint& ck);
// Throws synth::Error on truncation, wrong magic/version, bad lengths or checksum mismatch.
Checkpoint deserialize_checkpoint(const std::string& bytes, const std::string& source = "checkpoint");

void save_checkpoint(const std::string& path, const Checkpoint& ck);  // atomic
Checkpoint load_checkpoint(const std::string& path);

// "key=value" lines (a checkpoint's config, Flags::dump()) as a map; the last line of a key wins.
std::map<std::string, std::string> config_map(const std::string& lines);

// --resume continues the training of one variant from the checkpoint at `path`. Throws unless
// `variants` (the --variants list) names exactly the checkpoint's variant, the checkpoint has
// optimizer state (checked before the config, which a kept-parameters file lacks), and it was
// trained with the same value of every FlagRole::Model flag of `now`. The FlagRole::Training
// flags may differ (e.g. more --steps), but then the run no longer reproduces the
// uninterrupted one, so each difference is printed as a warning (except for `exempt` keys,
// which the recipe does not depend on). That it holds the binary's kind of model is the
// driver's check (src/runs/driver.h), which knows the tasks.
void check_resume(const Checkpoint& ck, const std::string& path, const std::vector<std::string>& variants,
                  const Flags& now, const std::vector<std::string>& exempt = {});

}  // namespace synth

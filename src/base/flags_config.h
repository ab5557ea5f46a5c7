// flags_config.h: replaying a run's flags from its run directory (--config=RUN_DIR/config.json),
// as nanoGPT's config files: the file gives every flag it records, the command line overrides.
//
//   Flags f(...);  ...  f.parse(argc, argv);
//   if (!config.empty())
//       apply_config(f, flags_of_config_json(read_file(config), config), {"run-dir", "runs-dir", "config"});
//
// config.json (src/runs/run_dir.h) records each resolved flag as "flag.<name>": "<value>" beside
// run facts (binary, git_commit, host, ...), which are not flags and are ignored here.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/flags.h"

namespace synth {

// The flags a run directory's config.json records, by name ("steps" -> "2000"). Throws naming
// `source` when the text is not a flat JSON object or records no flag.
std::map<std::string, std::string> flags_of_config_json(const std::string& json, const std::string& source);

// Gives every flag of `saved` that the command line did not give its saved value, as if given
// (apply_defaults), except the flags in `skip` (those that name where this run goes, or the
// --config flag itself). A saved flag this program does not have is an error naming it and
// `source`: the file is from another binary or an incompatible version (nanoGPT's rule:
// unknown config keys are errors).
void apply_config(Flags& f, const std::map<std::string, std::string>& saved, const std::vector<std::string>& skip,
                  const std::string& source = "config.json");

}  // namespace synth

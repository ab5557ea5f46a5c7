// hash.h: a short content hash, for names that must change when their content does (run
// groups, generated data directories, corpus fingerprints). Not cryptographic.
#pragma once

#include <string>

namespace synth {

std::string short_hash(const std::string& bytes);  // 16 hex digits of FNV-1a 64

}  // namespace synth

// The variants the tests loop over, derived from the registry: every registered variant and
// every mixture of two logits sources, so a new variant is tested without editing a list.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "attention/variant.h"

inline std::vector<std::string> variants_and_pairs() {
    std::vector<std::string> out;
    for (const synth::VariantInfo& v : synth::variants()) out.push_back(v.name);
    const std::vector<std::string> sources = synth::logits_source_names();
    for (size_t i = 0; i < sources.size(); ++i)
        for (size_t j = i + 1; j < sources.size(); ++j) out.push_back(sources[i] + "+" + sources[j]);
    return out;
}

// The maximum length L at which the tests build `variant` ("R+V"): the largest test_len its
// components declare (VariantInfo::test_len: one at which their settings act), else `fallback`.
inline int test_length(const std::string& variant, int fallback = 6) {
    int L = fallback;
    for (const std::string& part : synth::parse_variant(variant))
        L = std::max(L, synth::variant_info(part).test_len);
    return L;
}

// The same, without the encoder-only ones: what a decoder (the LM, mt) can use.
inline std::vector<std::string> causal_variants_and_pairs() {
    std::vector<std::string> out;
    for (const std::string& v : variants_and_pairs())
        if (synth::causal_ok(v)) out.push_back(v);
    return out;
}

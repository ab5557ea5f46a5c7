// pair_match.h: Multi30k sentence-pair matching, an encoding-only task (docs/classification.md).
//
// Each English sentence of a split gives two examples,
//     [CLS] English [SEP] German   label 1 for its own translation,
//                                  label 0 for a German sentence of the same split drawn
//                                  among those of similar length,
// so the classes are exactly balanced and length alone does not tell them apart. The negative
// for sentence i is drawn uniformly among the `window` German sentences on either side of i's
// in the split's order by BPE length (ties by line), never one with i's German text; the draws
// are a function of the seed and the split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace synth {

// One classification example: its token ids (starting with [CLS]) and its class.
struct ClsExample {
    std::vector<int32_t> ids;
    int32_t label = 0;
};

// en[i], de[i]: the BPE ids of line i (no specials); de_text[i] its raw German line. Returns
// 2 n examples: for each i its positive, then its negative. Throws if a split has fewer than 2
// distinct German lines or window < 1.
std::vector<ClsExample> match_examples(const std::vector<std::vector<int32_t>>& en,
                                       const std::vector<std::vector<int32_t>>& de,
                                       const std::vector<std::string>& de_text, uint64_t seed, int window, int32_t cls,
                                       int32_t sep);

}  // namespace synth

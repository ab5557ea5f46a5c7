// listops.h: ListOps (Nangia & Bowman 2018) as Long Range Arena generates and tokenises it.
//
// A C++ reimplementation of LRA's generator, lra_benchmarks/data/listops.py, drawing from our
// seeded Rng (src/base/rng.h) instead of Python's `random` (docs/classification.md):
//   - a node at depth < max_depth is a value with probability 1 - VALUE_P = 0.75, else an
//     operator; at depth max_depth it is always a value (the root is at depth 1);
//   - a value is uniform in 0..9; an operator has randint(2, max_args) arguments (inclusive),
//     generated first, then its operator drawn uniformly from MIN, MAX, MED, SM (FIRST and LAST
//     are commented out in LRA, and here);
//   - a tree's length counts values 1 and operators 2 (the operator and its ']') plus their
//     arguments: the token count of the tokenised source;
//   - trees are drawn until train + valid + test distinct ones satisfy
//     min_length < length < max_length (both strict, as LRA); LRA keeps a Python set of trees,
//     here the first occurrence of each source string, in draw order; the first `train` are the
//     training split, the next `valid` validation, the rest test;
//   - MED is int(np.median(args)) (the mean of the two middle values for an even count,
//     truncated), SM is the sum mod 10.
// Sources are written as LRA's to_string writes them, one pair of parentheses per tuple of its
// left-nested tree: "[MIN 3 4 ]" is "( ( ( [MIN 3 ) 4 ) ] )".
//
// LRA's input pipeline (lra_benchmarks/listops/input_pipeline.py) renames ']' to 'X', deletes
// the parentheses and splits on whitespace, so the tokens are [MIN [MAX [MED [SM X 0..9;
// listops_tokenize does the same.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace synth {

struct ListOpsConfig {
    uint64_t seed = 0;
    int train = 96000, valid = 2000, test = 2000;  // examples per split (LRA's defaults)
    int max_depth = 10, max_args = 10;
    int min_length = 500, max_length = 2000;  // exclusive bounds on the token count

    std::string describe() const;  // "key=value" lines: what the data is a function of
};

struct ListOpsExample {
    std::string source;  // LRA's to_string form, with parentheses
    int target = 0;      // the value, 0..9
    int length = 0;      // tokens after tokenisation
    int depth = 0;       // deepest node (the root is 1)
    int max_args = 0;    // most arguments of any operator
};

struct ListOpsData {
    std::vector<ListOpsExample> train, valid, test;
    int64_t draws = 0;  // trees drawn, rejected ones included
};

// Throws on bounds that cannot be met (e.g. min_length + 1 >= max_length).
ListOpsData generate_listops(const ListOpsConfig& cfg);

// LRA's TSV: "Source\tTarget" then one "source\ttarget" row per example, with the "\r\n" line
// ends of Python's csv.writer.
std::string listops_tsv(const std::vector<ListOpsExample>& split);
// Reads what listops_tsv writes; throws naming `path` and the line on anything else.
std::vector<ListOpsExample> parse_listops_tsv(const std::string& text, const std::string& path);

// The vocabulary: 0 <pad>, 1 <cls>, then [MIN [MAX [MED [SM X 0 .. 9.
constexpr int kListOpsPad = 0, kListOpsCls = 1, kListOpsVocab = 17;
const std::vector<std::string>& listops_tokens();  // id -> token
// LRA's tokenisation of a source: ']' -> 'X', no parentheses, whitespace-separated tokens.
// Throws on a token outside the vocabulary.
std::vector<int32_t> listops_tokenize(const std::string& source);

}  // namespace synth

// findings.h: the paper's comparisons: its default sweep, and its findings (docs/variants.md,
// "Findings") read off a results table. Outside src/attention/, this is the one place that
// names variants: the comparisons are the paper's, as data; no code path depends on a name.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace synth {

// The paper's nine variants, the default sweep of every runner.
inline const char* paper_sweep() { return "V,R,Rfix,D,FR,FD,R+V,D+V,R+D"; }

struct FindingRow {
    int64_t params;
    double val_loss, test_loss;  // nats per token
    double tok_s;                // training throughput
};

// The Markdown "Findings" section for an LM table (findings 1-5), from the validation losses
// of the variants it holds (a finding whose variants are missing is left out).
std::string lm_findings(const std::map<std::string, FindingRow>& rows, bool is_char);
// Where the vanilla Transformer of an LM table lands against published numbers for the same
// data set (docs/references.md); empty when there is none.
std::string lm_reference_note(const std::string& data, const std::map<std::string, FindingRow>& rows, int steps);

}  // namespace synth

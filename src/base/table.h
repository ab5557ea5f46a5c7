// table.h: result tables written as CSV (for machines) and Markdown (for people).
#pragma once

#include <string>
#include <vector>

namespace synth {

struct Table {
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;

    std::string to_csv() const;
    std::string to_markdown() const;
};

std::string fmt(double v, int decimals);
// A whole number with thousands separators (12000 -> "12,000"); a fraction with 2 decimals ("0.44").
std::string with_commas(double x);

}  // namespace synth

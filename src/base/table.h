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

}  // namespace synth

#include "base/table.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "base/io.h"

namespace synth {

static std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

std::string Table::to_csv() const {
    std::ostringstream os;
    auto line = [&](const std::vector<std::string>& r) {
        for (size_t i = 0; i < r.size(); ++i) os << (i ? "," : "") << csv_field(r[i]);
        os << "\n";
    };
    line(columns);
    for (const auto& r : rows) line(r);
    return os.str();
}

// A Markdown table cell: '|' escaped, a line break (which would end the row) a space, and a
// backslash doubled so that it cannot escape the cell's closing '|'.
static std::string markdown_cell(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += "\\|";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n' || c == '\r') out += ' ';
        else out += c;
    }
    return out;
}

std::string Table::to_markdown() const {
    std::ostringstream os;
    os << "|";
    for (const auto& c : columns) os << " " << markdown_cell(c) << " |";
    os << "\n|";
    for (size_t i = 0; i < columns.size(); ++i) os << "---|";
    os << "\n";
    for (const auto& r : rows) {
        os << "|";
        for (const auto& f : r) os << " " << markdown_cell(f) << " |";
        os << "\n";
    }
    return os.str();
}

std::string fmt(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string with_commas(double x) {
    if (x != std::floor(x)) return fmt(x, 2);
    const bool negative = x < 0;
    std::string digits = fmt(std::fabs(x), 0), out = negative ? "-" : "";
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

}  // namespace synth

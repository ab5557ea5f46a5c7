#include "report.h"

#include <sys/stat.h>

#include <cstdio>
#include <sstream>

#include "common.h"
#include "io.h"

namespace synth {

int Table::col(const std::string& name) const {
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return (int)i;
    fail("table has no column '", name, "'");
}

void Table::upsert(const std::vector<std::string>& row, const std::string& key) {
    SYNTH_CHECK(row.size() == columns.size(), "row has ", row.size(), " fields for ", columns.size(), " columns");
    const int k = col(key);
    for (auto& r : rows)
        if (r[k] == row[k]) {
            r = row;
            return;
        }
    rows.push_back(row);
}

void Table::remove(const std::string& key, const std::string& value) {
    const int k = col(key);
    std::vector<std::vector<std::string>> kept;
    for (auto& r : rows)
        if (r[k] != value) kept.push_back(r);
    rows.swap(kept);
}

static std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
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

std::string Table::to_markdown() const {
    std::ostringstream os;
    os << "|";
    for (const auto& c : columns) os << " " << c << " |";
    os << "\n|";
    for (size_t i = 0; i < columns.size(); ++i) os << "---|";
    os << "\n";
    for (const auto& r : rows) {
        os << "|";
        for (const auto& f : r) os << " " << f << " |";
        os << "\n";
    }
    return os.str();
}

Table Table::from_csv(const std::string& text, const std::vector<std::string>& expected_columns) {
    std::vector<std::vector<std::string>> recs;
    std::vector<std::string> rec;
    std::string field;
    bool quoted = false, any = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
            else if (c == '"') quoted = false;
            else field += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            rec.push_back(field), field.clear();
        } else if (c == '\n') {
            rec.push_back(field), field.clear();
            recs.push_back(rec), rec.clear();
            any = false;
            continue;
        } else {
            field += c;
        }
        any = true;
    }
    SYNTH_CHECK(!quoted, "CSV: unterminated quote");
    if (any) rec.push_back(field), recs.push_back(rec);
    SYNTH_CHECK(!recs.empty() && recs[0] == expected_columns, "CSV header does not match the expected columns");
    Table t;
    t.columns = expected_columns;
    for (size_t i = 1; i < recs.size(); ++i) {
        SYNTH_CHECK(recs[i].size() == expected_columns.size(), "CSV line ", i + 1, " has ", recs[i].size(),
                    " fields, expected ", expected_columns.size());
        t.rows.push_back(recs[i]);
    }
    return t;
}

Table Table::load_or_empty(const std::string& path, const std::vector<std::string>& columns) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Table{columns, {}};
    try {
        return from_csv(read_file(path), columns);
    } catch (const Error& e) {
        fail("cannot merge into '", path, "': ", e.what(), " (move it away to start a new table)");
    }
}

std::string fmt(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

Table merge_results(const std::string& stem, const std::vector<std::string>& columns, const std::vector<std::string>& row,
                    const std::string& key, const std::function<std::string(const Table&)>& render,
                    const std::function<void()>& also) {
    FileLock lock(stem + ".lock");
    Table table = Table::load_or_empty(stem + ".csv", columns);
    table.upsert(row, key);
    write_file_atomic(stem + ".md", render(table));
    write_file_atomic(stem + ".csv", table.to_csv());
    if (also) also();
    return table;
}

}  // namespace synth

// report.h: result tables written as CSV (for machines) and Markdown (for people).
//
// A sweep can be split across processes (one variant each); each run merges its rows into
// the existing CSV by key, so `--variants=V` then `--variants=R` yields one table.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace synth {

struct Table {
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;

    // Replaces the rows whose value in column `key` equals row[key], else appends.
    void upsert(const std::vector<std::string>& row, const std::string& key);
    // Removes every row whose `key` column equals value.
    void remove(const std::string& key, const std::string& value);
    std::string to_csv() const;
    std::string to_markdown() const;
    // Parses CSV written by to_csv (fields with commas or quotes are quoted). Throws on a
    // malformed file or one whose header differs from `expected_columns`.
    static Table from_csv(const std::string& text, const std::vector<std::string>& expected_columns);
    // from_csv of `path` if it exists, else an empty table with these columns.
    static Table load_or_empty(const std::string& path, const std::vector<std::string>& columns);
    int col(const std::string& name) const;
};

std::string fmt(double v, int decimals);

// Merges `row` into <stem>.csv by its `key` column and rewrites <stem>.md as render(table),
// under the lock <stem>.lock, re-reading what other processes wrote (a sweep can be split
// across processes). `also`, if given, runs under the same lock (e.g. a curve file).
Table merge_results(const std::string& stem, const std::vector<std::string>& columns, const std::vector<std::string>& row,
                    const std::string& key, const std::function<std::string(const Table&)>& render,
                    const std::function<void()>& also = {});

}  // namespace synth

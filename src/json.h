// json.h: the flat JSON objects of run directories ({"key": "text" | number | true | false}).
//
// config.json, result.json and each line of metrics.jsonl are flat objects: that is all synth
// writes and all it reads back, so a small strict reader suffices (nested values are an error).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace synth {

// One flat object in key order. Values keep their JSON spelling: a string's text, or the
// number / true / false as written.
struct JsonObject {
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<bool> quoted;  // per field: a string (true) or a bare number/literal (false)

    void text(const std::string& key, const std::string& value);
    void number(const std::string& key, double value, int decimals = -1);  // -1: 17 significant digits (exact)
    void integer(const std::string& key, long long value);
    std::string dump() const;  // one line, no trailing newline
    bool has(const std::string& key) const;
    const std::string& at(const std::string& key) const;  // throws naming the key
    double num(const std::string& key) const;              // throws unless a finite number
};

// Parses one flat object; `where` names the file (and line) in errors.
JsonObject parse_json_object(const std::string& text, const std::string& where);

}  // namespace synth

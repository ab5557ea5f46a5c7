// json.h: the JSON synth reads and writes, and nothing more.
//
// - JsonReader, a bounds-checked cursor for reading a known structure (the safetensors header:
//   objects, strings with every escape and UTF-8 checked, arrays of non-negative integers);
//   errors name the source and the byte.
// - JsonObject, the flat objects of run directories ({"key": "text" | number | true | false}):
//   config.json, result.json and each line of metrics.jsonl. Nested values are an error when
//   read; written, they are arrays made by json_array and json_numbers (build/lm
//   --dump-attention's maps).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace synth {

// Appends s as a JSON string literal: quotes, backslashes and control characters escaped,
// everything else as its UTF-8 bytes. Throws naming `what` if s is not valid UTF-8.
void append_json_string(std::string& out, const std::string& s, const std::string& what);

class JsonReader {
public:
    // `offset`: the bytes before `text` in its file, so that errors give file offsets; `what`
    // names the text in errors ("bad header at byte 13: ...").
    JsonReader(const std::string& text, const std::string& source, size_t offset = 0, std::string what = "JSON")
        : s_(text), source_(source), what_(std::move(what)), offset_(offset) {}

    void skip_ws();
    bool take(char c);     // skips whitespace, then consumes c if it comes next
    bool next_is(char c);  // skips whitespace, then tells whether c comes next
    void expect(char c, const std::string& context);
    void expect_end();  // only whitespace may follow
    std::string string();
    uint64_t integer();  // non-negative, no leading zeros, no fraction
    std::vector<uint64_t> integers(const std::string& context);  // [n, ...]
    // A number, true, false or null, as written (for values read back as text).
    std::string literal();
    [[noreturn]] void bad(const std::string& what) const;

private:
    [[noreturn]] void syntax(const std::string& expected) const;
    void escape(std::string& out);
    uint32_t hex4();

    const std::string& s_;
    const std::string& source_;
    std::string what_;
    size_t offset_, pos_ = 0;
};

// One flat object in key order. Values keep their JSON spelling: a string's text, or the
// number / true / false / null as written.
struct JsonObject {
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<bool> quoted;  // per field: a string (true) or a bare number/literal (false)
    std::string where;         // the file it was parsed from (parse_json_object), named in at's and num's errors

    void text(const std::string& key, const std::string& value);
    void number(const std::string& key, double value, int decimals = -1);  // -1: 17 significant digits (exact)
    void integer(const std::string& key, long long value);
    void raw(const std::string& key, const std::string& json);  // a value already written as JSON
    std::string dump() const;  // one line, no trailing newline
    bool has(const std::string& key) const;
    const std::string& at(const std::string& key) const;  // throws naming the key
    double num(const std::string& key) const;              // throws unless a finite number
};

// "[a, b, ...]" of values already written as JSON.
std::string json_array(const std::vector<std::string>& values);
// "[x, y, ...]" of n numbers with `digits` significant digits; a non-finite one as null.
std::string json_numbers(const float* v, size_t n, int digits);
// A JSON string literal (append_json_string).
std::string json_string(const std::string& s, const std::string& what);

// Parses one flat object; `where` names the file (and line) in errors, also in the object's
// own (at, num). A key that appears twice is an error.
JsonObject parse_json_object(const std::string& text, const std::string& where);

}  // namespace synth

#include "base/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/error.h"
#include "base/utf8.h"

namespace synth {

// Appends s as a JSON string literal: quotes, backslashes and control characters escaped,
// everything else as its UTF-8 bytes. Throws naming `what` if s is not valid UTF-8.
void append_json_string(std::string& out, const std::string& s, const std::string& what) {
    out += '"';
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            uint32_t cp;
            const char* why = nullptr;
            const int len = utf8_next(s, i, &cp, &why);
            SYNTH_CHECK(len > 0, what, " is not valid UTF-8 (", why, " at byte ", i, "), which JSON cannot hold");
            out.append(s, i, (size_t)len);
            i += (size_t)len;
            continue;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += (char)c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += (char)c;
        }
        ++i;
    }
    out += '"';
}


// ---- JsonReader ------------------------------------------------------------------------------

static bool digit(char c) { return c >= '0' && c <= '9'; }

static std::string describe(unsigned char c) {
    char buf[32];
    if (c >= 0x20 && c < 0x7f) std::snprintf(buf, sizeof buf, "'%c'", c);
    else std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
}

void JsonReader::skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
}

bool JsonReader::next_is(char c) {
    skip_ws();
    return pos_ < s_.size() && s_[pos_] == c;
}

bool JsonReader::take(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) return ++pos_, true;
    return false;
}

void JsonReader::expect(char c, const std::string& context) {
    if (!take(c)) syntax(std::string("expected '") + c + "' " + context);
}

void JsonReader::expect_end() {
    skip_ws();
    if (pos_ != s_.size()) syntax("expected only spaces after the " + what_ + "'s closing '}'");
}

std::string JsonReader::string() {
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != '"') syntax("expected a string");
    ++pos_;
    std::string out;
    for (;;) {
        if (pos_ >= s_.size()) bad("unterminated string");
        const unsigned char c = (unsigned char)s_[pos_];
        if (c == '"') {
            ++pos_;
            return out;
        }
        if (c < 0x20) bad(describe(c) + " inside a string (JSON requires control characters escaped)");
        if (c >= 0x80) {
            uint32_t cp;
            const char* why = nullptr;
            const int len = utf8_next(s_, pos_, &cp, &why);
            if (len == 0) bad(std::string("invalid UTF-8: ") + why);
            out.append(s_, pos_, (size_t)len);
            pos_ += (size_t)len;
        } else if (c != '\\') {
            out += (char)c;
            ++pos_;
        } else {
            escape(out);
        }
    }
}

uint64_t JsonReader::integer() {
    skip_ws();
    if (pos_ >= s_.size() || !digit(s_[pos_])) syntax("expected a non-negative integer");
    if (s_[pos_] == '0' && pos_ + 1 < s_.size() && digit(s_[pos_ + 1])) bad("integer with a leading zero");
    uint64_t v = 0;
    for (; pos_ < s_.size() && digit(s_[pos_]); ++pos_) {
        const uint64_t d = (uint64_t)(s_[pos_] - '0');
        if (v > (UINT64_MAX - d) / 10) bad("integer larger than 2^64 - 1");
        v = v * 10 + d;
    }
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))
        bad("expected an integer, found a fraction or an exponent");
    return v;
}

std::vector<uint64_t> JsonReader::integers(const std::string& context) {
    // Its length is bounded by the text's, so arbitrary bytes cannot make it huge.
    expect('[', context);
    std::vector<uint64_t> out;
    if (take(']')) return out;
    do out.push_back(integer());
    while (take(','));
    expect(']', "or ',' in " + context);
    return out;
}

std::string JsonReader::literal() {
    skip_ws();
    const size_t start = pos_;
    while (pos_ < s_.size() && (digit(s_[pos_]) || std::string("+-.eEtruefalsn").find(s_[pos_]) != std::string::npos))
        ++pos_;
    const std::string v = s_.substr(start, pos_ - start);
    char* end = nullptr;
    std::strtod(v.c_str(), &end);
    if (v.empty() || !(v == "true" || v == "false" || v == "null" || *end == '\0'))
        syntax("expected a string, a number, true, false or null");
    return v;
}

void JsonReader::bad(const std::string& what) const { fail(source_, ": bad ", what_, " at byte ", offset_ + pos_, ": ", what); }

void JsonReader::syntax(const std::string& expected) const {
    bad(expected + ", found " + (pos_ < s_.size() ? describe((unsigned char)s_[pos_]) : "the end of the " + what_));
}

// After a backslash: one escape sequence, \uXXXX (and surrogate pairs) as UTF-8.
void JsonReader::escape(std::string& out) {
    ++pos_;
    if (pos_ >= s_.size()) bad("unterminated string");
    const char e = s_[pos_++];
    switch (e) {
        case '"': case '\\': case '/': out += e; return;
        case 'b': out += '\b'; return;
        case 'f': out += '\f'; return;
        case 'n': out += '\n'; return;
        case 'r': out += '\r'; return;
        case 't': out += '\t'; return;
        case 'u': break;
        default: --pos_, bad("invalid escape sequence \\" + describe((unsigned char)e));
    }
    uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) bad("\\u escape of a lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (s_.compare(pos_, 2, "\\u") != 0) bad("\\u escape of a high surrogate not followed by a low one");
        pos_ += 2;
        const uint32_t low = hex4();
        if (low < 0xDC00 || low > 0xDFFF) bad("\\u escape of a high surrogate not followed by a low one");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
}

uint32_t JsonReader::hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k, ++pos_) {
        const char c = pos_ < s_.size() ? s_[pos_] : '\0';
        const int d = digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) bad("\\u escape needs four hex digits");
        v = v << 4 | (uint32_t)d;
    }
    return v;
}

// ---- JsonObject ------------------------------------------------------------------------------

void JsonObject::text(const std::string& key, const std::string& value) {
    fields.emplace_back(key, value);
    quoted.push_back(true);
}

void JsonObject::number(const std::string& key, double v, int decimals) {
    char buf[64];
    if (!std::isfinite(v)) std::snprintf(buf, sizeof buf, "null");  // JSON has no NaN or infinity
    else if (decimals >= 0) std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    else std::snprintf(buf, sizeof buf, "%.17g", v);
    fields.emplace_back(key, buf);
    quoted.push_back(false);
}

void JsonObject::integer(const std::string& key, long long v) {
    fields.emplace_back(key, std::to_string(v));
    quoted.push_back(false);
}

void JsonObject::raw(const std::string& key, const std::string& json) {
    fields.emplace_back(key, json);
    quoted.push_back(false);
}

std::string json_array(const std::vector<std::string>& values) {
    std::string out = "[";
    for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + values[i];
    return out + "]";
}

std::string json_numbers(const float* v, size_t n, int digits) {
    std::string out = "[";
    char buf[32];
    for (size_t i = 0; i < n; ++i) {
        if (std::isfinite(v[i])) std::snprintf(buf, sizeof buf, "%s%.*g", i ? ", " : "", digits, v[i]);
        else std::snprintf(buf, sizeof buf, "%snull", i ? ", " : "");
        out += buf;
    }
    return out + "]";
}

std::string json_string(const std::string& s, const std::string& what) {
    std::string out;
    append_json_string(out, s, what);
    return out;
}

std::string JsonObject::dump() const {
    std::string out = "{";
    for (size_t i = 0; i < fields.size(); ++i)
    {
        out += i ? ", " : "";
        append_json_string(out, fields[i].first, "key '" + fields[i].first + "'");
        out += ": ";
        if (quoted[i]) append_json_string(out, fields[i].second, "the value of '" + fields[i].first + "'");
        else out += fields[i].second;
    }
    return out + "}";
}

bool JsonObject::has(const std::string& key) const {
    for (const auto& f : fields)
        if (f.first == key) return true;
    return false;
}

const std::string& JsonObject::at(const std::string& key) const {
    for (const auto& f : fields)
        if (f.first == key) return f.second;
    fail(where.empty() ? "" : where + ": ", "no key '", key, "'");
}

double JsonObject::num(const std::string& key) const {
    const std::string& s = at(key);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    SYNTH_CHECK(!s.empty() && *end == '\0' && std::isfinite(v), where.empty() ? "" : where + ": ", "'", key, "' is '",
                s, "', not a finite number");
    return v;
}

JsonObject parse_json_object(const std::string& text, const std::string& where) {
    JsonReader j(text, where);
    JsonObject o;
    o.where = where;
    j.expect('{', "at the start of the object");
    if (!j.take('}')) {
        do {
            const std::string key = j.string();
            // A repeated key is an error, not "first wins": which value a reader takes would be a guess.
            if (o.has(key)) j.bad("key '" + key + "' appears twice");
            j.expect(':', "after '" + key + "'");
            const bool is_text = j.next_is('"');
            o.fields.emplace_back(key, is_text ? j.string() : j.literal());
            o.quoted.push_back(is_text);
        } while (j.take(','));
        j.expect('}', "or ',' in the object");
    }
    j.expect_end();
    return o;
}

}  // namespace synth

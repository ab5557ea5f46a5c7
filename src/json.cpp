#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common.h"

namespace synth {

static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') out += '\\', out += (char)c;
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else out += (char)c;
    }
    return out + "\"";
}

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

std::string JsonObject::dump() const {
    std::string out = "{";
    for (size_t i = 0; i < fields.size(); ++i)
        out += (i ? ", " : "") + quote(fields[i].first) + ": " + (quoted[i] ? quote(fields[i].second) : fields[i].second);
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
    fail("no key '", key, "'");
}

double JsonObject::num(const std::string& key) const {
    const std::string& s = at(key);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    SYNTH_CHECK(!s.empty() && *end == '\0' && std::isfinite(v), "'", key, "' is '", s, "', not a finite number");
    return v;
}

JsonObject parse_json_object(const std::string& t, const std::string& where) {
    size_t i = 0;
    auto bad = [&](const char* what) { fail(where, ": ", what, " at byte ", i); };
    auto ws = [&] {
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
    };
    auto string = [&] {
        if (i >= t.size() || t[i] != '"') bad("expected a string");
        ++i;
        std::string s;
        while (true) {
            if (i >= t.size()) bad("unterminated string");
            char c = t[i++];
            if (c == '"') return s;
            if ((unsigned char)c < 0x20) bad("control character in a string");
            if (c != '\\') {
                s += c;
                continue;
            }
            if (i >= t.size()) bad("unterminated escape");
            c = t[i++];
            if (c == 'n') s += '\n';
            else if (c == 't') s += '\t';
            else if (c == 'r') s += '\r';
            else if (c == 'b') s += '\b';
            else if (c == 'f') s += '\f';
            else if (c == '"' || c == '\\' || c == '/') s += c;
            else if (c == 'u') {
                if (i + 4 > t.size()) bad("short \\u escape");
                const unsigned long u = std::strtoul(t.substr(i, 4).c_str(), nullptr, 16);
                if (u >= 0x80) bad("non-ASCII \\u escape");  // synth writes none
                s += (char)u;
                i += 4;
            } else bad("unknown escape");
        }
    };
    JsonObject o;
    ws();
    if (i >= t.size() || t[i] != '{') bad("expected '{'");
    ++i;
    ws();
    if (i < t.size() && t[i] == '}') ++i;
    else
        while (true) {
            ws();
            std::string key = string();
            ws();
            if (i >= t.size() || t[i] != ':') bad("expected ':'");
            ++i;
            ws();
            if (i < t.size() && t[i] == '"') o.text(key, string());
            else {
                const size_t start = i;
                while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ' ' && t[i] != '\n') ++i;
                const std::string v = t.substr(start, i - start);
                if (v.empty() || v[0] == '{' || v[0] == '[') bad("expected a string, a number or a literal");
                o.fields.emplace_back(key, v);
                o.quoted.push_back(false);
            }
            ws();
            if (i < t.size() && t[i] == ',') {
                ++i;
                continue;
            }
            if (i < t.size() && t[i] == '}') {
                ++i;
                break;
            }
            bad("expected ',' or '}'");
        }
    ws();
    if (i != t.size()) bad("trailing characters");
    return o;
}

}  // namespace synth

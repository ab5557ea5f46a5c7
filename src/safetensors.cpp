#include "safetensors.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "common.h"
#include "data.h"
#include "io.h"

namespace synth {

// Values are copied with memcpy, so the file is little-endian only on a little-endian host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace {

constexpr size_t kLengthBytes = 8;  // the u64 header length
const std::string kMetadataKey = "__metadata__";

// ---- writing ---------------------------------------------------------------------------

// Appends s as a JSON string literal: quotes, backslashes and control characters escaped,
// everything else as its UTF-8 bytes. Throws naming `what` if s is not valid UTF-8.
void put_json_string(std::string& out, const std::string& s, const std::string& what) {
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

// ---- reading ---------------------------------------------------------------------------

// A cursor over the header: the JSON subset safetensors uses (objects, strings, arrays of
// non-negative integers). Every read is bounds-checked; errors name the source and the byte.
class Json {
public:
    Json(const std::string& text, const std::string& source) : s_(text), source_(source) {}

    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    // Skips whitespace, then consumes c if it comes next.
    bool take(char c) {
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == c) return ++pos_, true;
        return false;
    }
    void expect(char c, const std::string& context) {
        if (!take(c)) syntax(std::string("expected '") + c + "' " + context);
    }
    // Only whitespace (the padding) may follow the top-level object.
    void expect_end() {
        skip_ws();
        if (pos_ != s_.size()) syntax("expected only spaces after the header's closing '}'");
    }

    std::string string() {
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

    uint64_t integer() {
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

    // [n, ...]: its length is bounded by the header's, so arbitrary bytes cannot make it huge.
    std::vector<uint64_t> integers(const std::string& context) {
        expect('[', context);
        std::vector<uint64_t> out;
        if (take(']')) return out;
        do out.push_back(integer());
        while (take(','));
        expect(']', "or ',' in " + context);
        return out;
    }

    [[noreturn]] void bad(const std::string& what) const {
        fail(source_, ": bad header at byte ", kLengthBytes + pos_, ": ", what);
    }

private:
    static bool digit(char c) { return c >= '0' && c <= '9'; }
    static std::string describe(unsigned char c) {
        char buf[32];
        if (c >= 0x20 && c < 0x7f) std::snprintf(buf, sizeof buf, "'%c'", c);
        else std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
        return buf;
    }
    [[noreturn]] void syntax(const std::string& expected) const {
        bad(expected + ", found " + (pos_ < s_.size() ? describe((unsigned char)s_[pos_]) : "the end of the header"));
    }

    // After a backslash: one escape sequence, \uXXXX (and surrogate pairs) as UTF-8.
    void escape(std::string& out) {
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
    uint32_t hex4() {
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k, ++pos_) {
            const char c = pos_ < s_.size() ? s_[pos_] : '\0';
            const int d = digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
            if (d < 0) bad("\\u escape needs four hex digits");
            v = v << 4 | (uint32_t)d;
        }
        return v;
    }

    const std::string& s_;
    const std::string& source_;
    size_t pos_ = 0;
};

// One tensor's header entry, before it is checked against the data block.
struct Entry {
    std::string name, dtype;
    std::vector<uint64_t> shape, offsets;
};

template <typename T>
std::string list_str(const std::vector<T>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
    return out + "]";
}

Entry read_entry(Json& j, const std::string& name) {
    Entry e{name, "", {}, {}};
    const std::string of = " of tensor '" + name + "'";
    bool has_dtype = false, has_shape = false, has_offsets = false;
    j.expect('{', "opening the entry" + of);
    if (!j.take('}')) {
        do {
            const std::string field = j.string();
            j.expect(':', "after '" + field + "'" + of);
            bool* seen;
            if (field == "dtype") e.dtype = j.string(), seen = &has_dtype;
            else if (field == "shape") e.shape = j.integers("the shape" + of), seen = &has_shape;
            else if (field == "data_offsets") e.offsets = j.integers("the data_offsets" + of), seen = &has_offsets;
            else j.bad("unknown field '" + field + "'" + of + " (expected dtype, shape, data_offsets)");
            if (*seen) j.bad("field '" + field + "'" + of + " appears twice");
            *seen = true;
        } while (j.take(','));
        j.expect('}', "or ',' in the entry" + of);
    }
    if (!has_dtype || !has_shape || !has_offsets)
        j.bad("tensor '" + name + "' lacks " + (!has_dtype ? "dtype" : !has_shape ? "shape" : "data_offsets"));
    if (e.offsets.size() != 2)
        j.bad("data_offsets" + of + " has " + std::to_string(e.offsets.size()) + " numbers, not [begin, end]");
    return e;
}

void read_metadata(Json& j, std::map<std::string, std::string>& metadata) {
    j.expect('{', "opening __metadata__ (an object of strings)");
    if (j.take('}')) return;
    do {
        const std::string key = j.string();
        j.expect(':', "after metadata key '" + key + "'");
        if (!metadata.emplace(key, j.string()).second) j.bad("metadata key '" + key + "' appears twice");
    } while (j.take(','));
    j.expect('}', "or ',' in __metadata__");
}

constexpr uint64_t kTooMany = UINT64_MAX;

// The number of values of `shape` (any 0 dimension makes an empty tensor), or kTooMany when
// their bytes would not fit in a u64. Unlike numel_of, safe for any dimensions.
uint64_t count_values(const Shape& shape) {
    const uint64_t limit = UINT64_MAX / sizeof(float);
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    uint64_t numel = 1;
    for (int d : shape) {
        if (numel > limit / (uint64_t)d) return kTooMany;
        numel *= (uint64_t)d;
    }
    return numel;
}

// "fixed" metadata: comma-separated parameter names.
std::set<std::string> split_names(const std::string& list) {
    std::set<std::string> out;
    std::stringstream ss(list);
    std::string name;
    while (std::getline(ss, name, ',')) out.insert(name);
    return out;
}

}  // namespace

std::string to_safetensors(const std::vector<NamedTensor>& tensors, const std::map<std::string, std::string>& metadata) {
    std::string header = "{";
    if (!metadata.empty()) {
        header += "\"" + kMetadataKey + "\":{";
        for (const auto& [key, value] : metadata) {
            if (header.back() != '{') header += ',';
            put_json_string(header, key, "metadata key '" + key + "'");
            header += ':';
            put_json_string(header, value, "the metadata value of '" + key + "'");
        }
        header += '}';
    }
    std::set<std::string> names;
    uint64_t offset = 0;
    for (const NamedTensor& t : tensors) {
        SYNTH_CHECK(t.name != kMetadataKey, "a tensor cannot be named ", kMetadataKey);
        SYNTH_CHECK(names.insert(t.name).second, "tensor '", t.name, "' appears twice");
        for (int d : t.shape) SYNTH_CHECK(d >= 0, "tensor '", t.name, "' has a negative dimension ", d);
        SYNTH_CHECK(t.values.size() == count_values(t.shape), "tensor '", t.name, "' has ", t.values.size(),
                    " values but shape ", list_str(t.shape));
        if (header.size() > 1) header += ',';
        put_json_string(header, t.name, "tensor name '" + t.name + "'");
        header += ":{\"dtype\":\"F32\",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
        const uint64_t end = offset + t.values.size() * sizeof(float);
        header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
        offset = end;
    }
    header += '}';
    header.append((8 - header.size() % 8) % 8, ' ');  // the data block starts 8-byte aligned

    const uint64_t n = header.size();
    std::string out;
    out.reserve(kLengthBytes + n + offset);
    out.append(reinterpret_cast<const char*>(&n), kLengthBytes);
    out += header;
    for (const NamedTensor& t : tensors)
        out.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
    return out;
}

SafeTensors from_safetensors(const std::string& bytes, const std::string& source) {
    SYNTH_CHECK(bytes.size() >= kLengthBytes, source, ": truncated: ", bytes.size(),
                " bytes, fewer than the 8 of the header length");
    uint64_t n;
    std::memcpy(&n, bytes.data(), kLengthBytes);
    SYNTH_CHECK(n <= kMaxSafetensorsHeader, source, ": header length ", n, " is over the limit of ",
                kMaxSafetensorsHeader, " bytes (not a safetensors file?)");
    SYNTH_CHECK(n <= bytes.size() - kLengthBytes, source, ": truncated: the header length ", n,
                " runs past the end of the ", bytes.size(), "-byte file");
    const std::string header = bytes.substr(kLengthBytes, n);
    const uint64_t data_begin = kLengthBytes + n, data_bytes = bytes.size() - data_begin;

    SafeTensors st;
    std::vector<Entry> entries;
    std::set<std::string> names;
    bool has_metadata = false;
    Json j(header, source);
    j.expect('{', "at the start of the header");
    if (!j.take('}')) {
        do {
            const std::string key = j.string();
            j.expect(':', "after '" + key + "'");
            if (key == kMetadataKey) {
                if (has_metadata) j.bad(kMetadataKey + " appears twice");
                has_metadata = true;
                read_metadata(j, st.metadata);
            } else {
                if (!names.insert(key).second) j.bad("tensor '" + key + "' appears twice");
                entries.push_back(read_entry(j, key));
            }
        } while (j.take(','));
        j.expect('}', "or ',' after a header entry");
    }
    j.expect_end();

    std::vector<Shape> shapes(entries.size());
    std::vector<uint64_t> numel(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
        const Entry& e = entries[i];
        SYNTH_CHECK(e.dtype == "F32", source, ": tensor '", e.name, "' has dtype ", e.dtype.substr(0, 40),
                    "; synth reads only F32");
        for (uint64_t d : e.shape) {
            SYNTH_CHECK(d <= (uint64_t)INT32_MAX, source, ": tensor '", e.name, "' has dimension ", d, " in shape ",
                        list_str(e.shape), " (at most 2^31 - 1)");
            shapes[i].push_back((int)d);
        }
        const uint64_t begin = e.offsets[0], end = e.offsets[1];
        SYNTH_CHECK(begin <= end && end <= data_bytes, source, ": tensor '", e.name, "' has data_offsets ",
                    list_str(e.offsets), " outside the ", data_bytes, "-byte data block");
        const uint64_t span = end - begin;
        numel[i] = count_values(shapes[i]);
        SYNTH_CHECK(numel[i] != kTooMany && numel[i] * sizeof(float) == span, source, ": tensor '", e.name,
                    "' of shape ", list_str(e.shape), " has ",
                    numel[i] == kTooMany ? "more than 2^62" : std::to_string(numel[i]), " values but its data_offsets ",
                    list_str(e.offsets), " span ", span, " bytes");
    }
    // In data order, each tensor must start where the previous one ended.
    std::vector<size_t> order(entries.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return entries[a].offsets < entries[b].offsets; });
    uint64_t at = 0;
    for (size_t k = 0; k < order.size(); ++k) {
        const Entry& e = entries[order[k]];
        SYNTH_CHECK(e.offsets[0] >= at, source, ": tensor '", e.name, "' at ", list_str(e.offsets),
                    " overlaps tensor '", entries[order[k - 1]].name, "' at ", list_str(entries[order[k - 1]].offsets));
        SYNTH_CHECK(e.offsets[0] == at, source, ": ", e.offsets[0] - at, " bytes before tensor '", e.name, "' at ",
                    list_str(e.offsets), " belong to no tensor");
        at = e.offsets[1];
    }
    SYNTH_CHECK(at == data_bytes, source, ": ", data_bytes - at, " trailing bytes after the last tensor");

    for (size_t i : order) {
        Entry& e = entries[i];
        NamedTensor t{std::move(e.name), std::move(shapes[i]), std::vector<float>(numel[i])};
        if (numel[i] > 0) std::memcpy(t.values.data(), bytes.data() + data_begin + e.offsets[0], numel[i] * sizeof(float));
        st.tensors.push_back(std::move(t));
    }
    return st;
}

void export_safetensors(const std::string& path, const Checkpoint& ck) {
    check_checkpoint(ck, "checkpoint");
    std::vector<NamedTensor> tensors;
    std::string fixed;
    for (const Checkpoint::Tensor1& p : ck.params) {
        tensors.push_back({p.name, p.shape, p.values});
        if (p.trainable) continue;
        SYNTH_CHECK(p.name.find(',') == std::string::npos, "parameter '", p.name, "' has a comma in its name");
        fixed += (fixed.empty() ? "" : ",") + p.name;
    }
    const std::map<std::string, std::string> metadata = {{"format", "synth"},
                                                         {"config", ck.config},
                                                         {"tokenizer", ck.tokenizer},
                                                         {"step", std::to_string(ck.step)},
                                                         {"fixed", fixed}};
    write_file_atomic(path, to_safetensors(tensors, metadata));
}

Checkpoint import_safetensors(const std::string& path) {
    SafeTensors st = from_safetensors(read_file(path), path);
    auto value = [&](const std::string& key) -> const std::string& {
        auto it = st.metadata.find(key);
        SYNTH_CHECK(it != st.metadata.end(), path, ": the metadata has no '", key, "' (build/export writes it)");
        return it->second;
    };
    SYNTH_CHECK(value("format") == "synth", path, ": metadata format is '", value("format").substr(0, 40),
                "', not 'synth': the file has no synth config to rebuild the model from");
    Checkpoint ck;
    ck.config = value("config");
    ck.tokenizer = value("tokenizer");
    const std::string& step = value("step");
    const auto [end, ec] = std::from_chars(step.data(), step.data() + step.size(), ck.step);
    SYNTH_CHECK(ec == std::errc() && end == step.data() + step.size() && ck.step >= 0, path, ": metadata step '",
                step.substr(0, 40), "' is not a non-negative integer");
    // Absent "fixed": every parameter is trained (a file written by other tools).
    std::set<std::string> fixed = st.metadata.count("fixed") ? split_names(st.metadata.at("fixed")) : std::set<std::string>{};
    for (NamedTensor& t : st.tensors) {
        const bool trainable = fixed.erase(t.name) == 0;
        ck.params.push_back({std::move(t.name), std::move(t.shape), trainable, std::move(t.values)});
    }
    SYNTH_CHECK(fixed.empty(), path, ": metadata 'fixed' names '", *fixed.begin(),
                "', which is not a tensor of the file");
    check_checkpoint(ck, path);
    return ck;
}

}  // namespace synth

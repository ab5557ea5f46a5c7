#include "train/safetensors.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/utf8.h"
#include "base/io.h"
#include "base/json.h"

namespace synth {

// Values are copied with memcpy, so the file is little-endian only on a little-endian host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace {

constexpr size_t kLengthBytes = 8;  // the u64 header length
const std::string kMetadataKey = "__metadata__";

// ---- writing ---------------------------------------------------------------------------

// ---- reading ---------------------------------------------------------------------------

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

Entry read_entry(JsonReader& j, const std::string& name) {
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

void read_metadata(JsonReader& j, std::map<std::string, std::string>& metadata) {
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
            append_json_string(header, key, "metadata key '" + key + "'");
            header += ':';
            append_json_string(header, value, "the metadata value of '" + key + "'");
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
        append_json_string(header, t.name, "tensor name '" + t.name + "'");
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
    JsonReader j(header, source, kLengthBytes, "header");
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

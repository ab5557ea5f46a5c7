#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/io.h"

namespace synth {

// Values are copied with memcpy, so the file is little-endian only on a little-endian host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint I/O assumes a little-endian host");

namespace {

constexpr char kMagic[8] = {'S', 'Y', 'N', 'T', 'H', 'C', 'K', 'P'};
constexpr size_t kHeaderBytes = 8 + 4;       // magic, version
constexpr size_t kSectionHeaderBytes = 4 + 8;  // tag, length
constexpr size_t kChecksumBytes = 8;
constexpr int kMaxDims = 4;  // a Tensor has at most 4 dimensions
// The smallest possible PARM entry: empty name length, ndim, trainable, offset.
constexpr size_t kMinParamEntryBytes = 4 + 4 + 1 + 8;
constexpr size_t kStatBytes = 8 + 8 + 4 * 8 + 8;

// A section tag is its four ASCII letters in file order ("CONF" is the bytes C, O, N, F).
constexpr uint32_t tag_of(const char (&s)[5]) {
    return (uint32_t)(uint8_t)s[0] | (uint32_t)(uint8_t)s[1] << 8 | (uint32_t)(uint8_t)s[2] << 16 |
           (uint32_t)(uint8_t)s[3] << 24;
}
constexpr uint32_t kConf = tag_of("CONF"), kTokn = tag_of("TOKN"), kParm = tag_of("PARM"), kOptm = tag_of("OPTM"),
                   kStat = tag_of("STAT");

// "PARM", or the four bytes in hex when they are not printable letters.
std::string tag_name(uint32_t tag) {
    std::string s;
    for (int i = 0; i < 4; ++i) {
        char c = (char)(tag >> (8 * i) & 0xff);
        if (c < 0x20 || c > 0x7e) {
            char buf[16];
            std::snprintf(buf, sizeof buf, "0x%08x", tag);
            return buf;
        }
        s += c;
    }
    return s;
}

std::string shape_str(const Shape& s) {
    std::string out = "(";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + ")";
}

// FNV-1a, 64-bit (Fowler, Noll, Vo): offset basis 0xcbf29ce484222325, prime 0x100000001b3.
uint64_t fnv1a64(const char* p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; ++i) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

// ---- writing ---------------------------------------------------------------------------

struct Writer {
    std::string out;
    template <typename T>
    void put(T x) {
        out.append(reinterpret_cast<const char*>(&x), sizeof x);
    }
    void bytes(const std::string& s) { out += s; }
    void floats(const std::vector<float>& v) {
        put<uint64_t>(v.size());
        if (!v.empty()) out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    }
    // Sections are written with a placeholder length that end_section() fills in.
    size_t begin_section(uint32_t tag) {
        put(tag);
        put<uint64_t>(0);
        return out.size();
    }
    void end_section(size_t start) {
        uint64_t len = out.size() - start;
        std::memcpy(&out[start - 8], &len, 8);
    }
};

// ---- reading ---------------------------------------------------------------------------

// Reads little-endian values from bytes [pos, end) of a buffer; every read is bounds-checked
// and a short read throws, naming the source, the section and the byte offset.
class Reader {
public:
    Reader(const std::string& bytes, size_t pos, size_t end, std::string where)
        : b_(bytes), pos_(pos), end_(end), where_(std::move(where)) {}

    size_t remaining() const { return end_ - pos_; }
    size_t pos() const { return pos_; }

    template <typename T>
    T get(const char* what) {
        need(sizeof(T), what);
        T x;
        std::memcpy(&x, b_.data() + pos_, sizeof x);
        pos_ += sizeof x;
        return x;
    }
    std::string bytes(size_t n, const char* what) {
        need(n, what);
        std::string s = b_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    // u64 count, then count floats. The count is checked against the bytes left before
    // anything is allocated, so a corrupt count cannot ask for gigabytes.
    std::vector<float> floats(const char* what) {
        uint64_t n = get<uint64_t>(what);
        SYNTH_CHECK(n <= remaining() / sizeof(float), where_, ": ", what, " claims ", n, " values (",
                    n * sizeof(float), " bytes) at byte ", pos_, " but only ", remaining(), " bytes remain");
        std::vector<float> v(n);
        if (n > 0) std::memcpy(v.data(), b_.data() + pos_, n * sizeof(float));
        pos_ += n * sizeof(float);
        return v;
    }
    void expect_end() {
        SYNTH_CHECK(pos_ == end_, where_, ": ", remaining(), " unexpected bytes at byte ", pos_);
    }
    [[noreturn]] void corrupt(const std::string& msg) const { fail(where_, ": ", msg); }

private:
    void need(size_t n, const char* what) const {
        SYNTH_CHECK(n <= remaining(), where_, ": truncated: ", what, " at byte ", pos_, " needs ", n,
                    " bytes but only ", remaining(), " remain");
    }
    const std::string& b_;
    size_t pos_, end_;
    std::string where_;
};

// Every line "key=value" with a non-empty key; the text is empty or ends with '\n'.
void check_config(const std::string& config, const std::string& where) {
    size_t start = 0, line = 1;
    while (start < config.size()) {
        size_t nl = config.find('\n', start);
        SYNTH_CHECK(nl != std::string::npos, where, ": config line ", line, " does not end with a newline");
        size_t eq = config.find('=', start);
        SYNTH_CHECK(eq != std::string::npos && eq > start && eq < nl, where, ": config line ", line, " '",
                    config.substr(start, std::min<size_t>(nl - start, 80)), "' is not key=value");
        start = nl + 1;
        ++line;
    }
}


void read_params(Reader& r, Checkpoint& ck) {
    uint32_t count = r.get<uint32_t>("parameter count");
    if (count > r.remaining() / kMinParamEntryBytes)
        r.corrupt("parameter count " + std::to_string(count) + " cannot fit in the " + std::to_string(r.remaining()) +
                  " bytes of the section");
    struct Entry {
        uint64_t offset, numel;
    };
    std::vector<Entry> entries(count);
    ck.params.resize(count);
    std::unordered_set<std::string> names;
    for (uint32_t i = 0; i < count; ++i) {
        Checkpoint::Tensor1& p = ck.params[i];
        uint32_t len = r.get<uint32_t>("parameter name length");
        p.name = r.bytes(len, "parameter name");
        if (p.name.empty()) r.corrupt("parameter " + std::to_string(i) + " has an empty name");
        if (!names.insert(p.name).second) r.corrupt("parameter '" + p.name + "' appears twice");
        uint32_t ndim = r.get<uint32_t>("number of dimensions");
        if (ndim > kMaxDims)
            r.corrupt("parameter '" + p.name + "' has " + std::to_string(ndim) + " dimensions (at most 4)");
        uint64_t numel = 1;
        for (uint32_t d = 0; d < ndim; ++d) {
            uint32_t dim = r.get<uint32_t>("dimension");
            // Bounding numel by the section size keeps the product from overflowing.
            if (dim == 0 || dim > (uint32_t)INT32_MAX || numel > r.remaining() / dim)
                r.corrupt("parameter '" + p.name + "' has an impossible dimension " + std::to_string(dim));
            p.shape.push_back((int)dim);
            numel *= dim;
        }
        uint8_t trainable = r.get<uint8_t>("trainable flag");
        if (trainable > 1) r.corrupt("parameter '" + p.name + "' has trainable flag " + std::to_string(trainable));
        p.trainable = trainable == 1;
        entries[i] = {r.get<uint64_t>("value offset"), numel};
    }
    std::vector<float> block = r.floats("value block");
    // Parameters are stored back to back in table order, so each value is copied exactly once.
    uint64_t expect = 0;
    for (uint32_t i = 0; i < count; ++i) {
        if (entries[i].offset != expect)
            r.corrupt("parameter '" + ck.params[i].name + "' starts at value " + std::to_string(entries[i].offset) +
                      ", expected " + std::to_string(expect));
        if (entries[i].numel > block.size() - expect)
            r.corrupt("parameter '" + ck.params[i].name + "' runs past the end of the value block");
        ck.params[i].values.assign(block.begin() + expect, block.begin() + expect + entries[i].numel);
        expect += entries[i].numel;
    }
    if (expect != block.size())
        r.corrupt("the value block has " + std::to_string(block.size()) + " values but the parameters use " +
                  std::to_string(expect));
}

}  // namespace

void check_checkpoint(const Checkpoint& ck, const std::string& where) {
    check_config(ck.config, where);
    SYNTH_CHECK(ck.step >= 0 && ck.adam_t >= 0, where, ": negative step ", ck.step, " or optimizer step ", ck.adam_t);
    std::unordered_set<std::string> names;
    size_t total = 0;
    for (const Checkpoint::Tensor1& p : ck.params) {
        SYNTH_CHECK(!p.name.empty(), where, ": a parameter has an empty name");
        SYNTH_CHECK(names.insert(p.name).second, where, ": parameter '", p.name, "' appears twice");
        SYNTH_CHECK((int)p.shape.size() <= kMaxDims, where, ": parameter '", p.name, "' has ", p.shape.size(),
                    " dimensions (at most ", kMaxDims, ")");
        for (int d : p.shape) SYNTH_CHECK(d > 0, where, ": parameter '", p.name, "' has shape ", shape_str(p.shape));
        SYNTH_CHECK(p.values.size() == (size_t)numel_of(p.shape), where, ": parameter '", p.name, "' has shape ",
                    shape_str(p.shape), " but ", p.values.size(), " values");
        total += p.values.size();
    }
    SYNTH_CHECK(ck.adam_m.size() == ck.adam_v.size() && (ck.adam_m.empty() || ck.adam_m.size() == total), where,
                ": optimizer state has ", ck.adam_m.size(), " and ", ck.adam_v.size(),
                " moments for ", total, " parameter values");
}

std::string Checkpoint::config_value(const std::string& key) const {
    const std::map<std::string, std::string> m = config_map(config);
    auto it = m.find(key);
    if (it == m.end()) fail("the checkpoint's config has no key '", key, "'");
    return it->second;
}

double Checkpoint::config_number(const std::string& key) const {
    const std::string s = config_value(key);
    char* end = nullptr;
    const double x = std::strtod(s.c_str(), &end);
    SYNTH_CHECK(!s.empty() && *end == '\0' && std::isfinite(x) && x >= 0, "checkpoint config ", key, "='", s,
                "' is not a number >= 0");
    return x;
}

Checkpoint capture(const ParamStore& store, const AdamW* opt) {
    Checkpoint ck;
    for (const Param& p : store.params()) {
        const float* w = p.t.data;
        ck.params.push_back({p.name, p.shape, p.trainable, std::vector<float>(w, w + numel_of(p.shape))});
        if (opt) {
            ck.adam_m.insert(ck.adam_m.end(), opt->m + p.offset, opt->m + p.offset + numel_of(p.shape));
            ck.adam_v.insert(ck.adam_v.end(), opt->v + p.offset, opt->v + p.offset + numel_of(p.shape));
        }
    }
    if (opt) ck.adam_t = opt->t;
    return ck;
}

void restore(const Checkpoint& ck, ParamStore& store, AdamW* opt) {
    check_checkpoint(ck, "checkpoint");
    // Check everything before copying anything, so a refused checkpoint leaves the model as it was.
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < ck.params.size(); ++i) index[ck.params[i].name] = i;
    for (const Param& p : store.params()) {
        auto it = index.find(p.name);
        SYNTH_CHECK(it != index.end(), "checkpoint has no parameter '", p.name,
                    "' (was it trained with another --variants?)");
        const Checkpoint::Tensor1& c = ck.params[it->second];
        SYNTH_CHECK(c.shape == p.shape, "checkpoint parameter ", p.name, " has shape ", shape_str(c.shape),
                    " but the model expects ", shape_str(p.shape));
        SYNTH_CHECK(c.trainable == p.trainable, "checkpoint parameter ", p.name, " is ",
                    c.trainable ? "trainable" : "fixed", " but the model's is ", p.trainable ? "trainable" : "fixed",
                    " (was it trained with another --variants?)");
    }
    for (const Checkpoint::Tensor1& c : ck.params)
        SYNTH_CHECK(store.find(c.name), "checkpoint has parameter '", c.name,
                    "' that the model does not have (was it trained with another --variants?)");

    const bool with_opt = opt && !ck.adam_m.empty();
    size_t at = 0;  // position of the parameter in the checkpoint's packed moment arrays
    std::vector<size_t> start(ck.params.size());
    for (size_t i = 0; i < ck.params.size(); ++i) start[i] = at, at += ck.params[i].values.size();
    for (const Param& p : store.params()) {
        size_t i = index.at(p.name);
        const std::vector<float>& w = ck.params[i].values;
        std::memcpy(p.t.data, w.data(), w.size() * sizeof(float));
        if (with_opt) {
            std::memcpy(opt->m + p.offset, ck.adam_m.data() + start[i], w.size() * sizeof(float));
            std::memcpy(opt->v + p.offset, ck.adam_v.data() + start[i], w.size() * sizeof(float));
        }
    }
    if (with_opt) opt->t = ck.adam_t;
}

std::string serialize_checkpoint(const Checkpoint& ck) {
    check_checkpoint(ck, "checkpoint");
    size_t values = 0;
    for (const auto& p : ck.params) values += p.values.size();
    Writer w;
    w.out.reserve(ck.config.size() + ck.tokenizer.size() + (values + ck.adam_m.size() * 2) * sizeof(float) +
                  ck.params.size() * 64 + 256);
    w.out.append(kMagic, sizeof kMagic);
    w.put<uint32_t>(kCheckpointVersion);

    size_t s = w.begin_section(kConf);
    w.bytes(ck.config);
    w.end_section(s);

    s = w.begin_section(kTokn);
    w.bytes(ck.tokenizer);
    w.end_section(s);

    s = w.begin_section(kParm);
    w.put<uint32_t>((uint32_t)ck.params.size());
    uint64_t offset = 0;
    for (const auto& p : ck.params) {
        w.put<uint32_t>((uint32_t)p.name.size());
        w.bytes(p.name);
        w.put<uint32_t>((uint32_t)p.shape.size());
        for (int d : p.shape) w.put<uint32_t>((uint32_t)d);
        w.put<uint8_t>(p.trainable ? 1 : 0);
        w.put<uint64_t>(offset);
        offset += p.values.size();
    }
    w.put<uint64_t>(values);
    for (const auto& p : ck.params)
        w.out.append(reinterpret_cast<const char*>(p.values.data()), p.values.size() * sizeof(float));
    w.end_section(s);

    s = w.begin_section(kOptm);
    w.put<int64_t>(ck.adam_t);
    w.floats(ck.adam_m);
    w.floats(ck.adam_v);
    w.end_section(s);

    s = w.begin_section(kStat);
    w.put<int64_t>(ck.step);
    w.put<int64_t>(ck.data_pos);
    for (uint64_t x : ck.rng) w.put<uint64_t>(x);
    w.put<double>(ck.best_val);
    w.end_section(s);

    w.put<uint64_t>(fnv1a64(w.out.data(), w.out.size()));
    return w.out;
}

namespace {

struct Section {
    size_t begin, end;  // the payload's bytes
};

// Checks the magic, the version, every section header and the checksum, and returns where each
// section's payload is.
std::unordered_map<uint32_t, Section> find_sections(const std::string& bytes, const std::string& source) {
    const size_t n = bytes.size();
    // A file shorter than the magic but agreeing with it so far is reported as truncated below.
    SYNTH_CHECK(std::memcmp(bytes.data(), kMagic, std::min(n, sizeof kMagic)) == 0,
                source, ": not a synth checkpoint (it does not start with \"SYNTHCKP\")");
    SYNTH_CHECK(n >= kHeaderBytes + kChecksumBytes, source, ": truncated: ", n,
                " bytes, fewer than the header and checksum need");
    uint32_t version;
    std::memcpy(&version, bytes.data() + sizeof kMagic, 4);
    SYNTH_CHECK(version == kCheckpointVersion, source, ": checkpoint format version ", version,
                ", but this build reads version ", kCheckpointVersion);

    // Walk the section headers first: a truncated file shows up here as a section that claims
    // more bytes than remain, which is a clearer message than a checksum mismatch.
    std::unordered_map<uint32_t, Section> sections;
    const size_t body_end = n - kChecksumBytes;
    size_t pos = kHeaderBytes;
    while (pos < body_end) {
        SYNTH_CHECK(body_end - pos >= kSectionHeaderBytes, source, ": truncated or corrupt: ", body_end - pos,
                    " stray bytes at byte ", pos, " where a section header should start");
        uint32_t tag;
        uint64_t len;
        std::memcpy(&tag, bytes.data() + pos, 4);
        std::memcpy(&len, bytes.data() + pos + 4, 8);
        pos += kSectionHeaderBytes;
        SYNTH_CHECK(tag == kConf || tag == kTokn || tag == kParm || tag == kOptm || tag == kStat, source,
                    ": unknown section '", tag_name(tag), "' at byte ", pos - kSectionHeaderBytes);
        SYNTH_CHECK(len <= body_end - pos, source, ": truncated or corrupt: section '", tag_name(tag), "' at byte ",
                    pos - kSectionHeaderBytes, " claims ", len, " bytes but only ", body_end - pos,
                    " remain before the checksum");
        SYNTH_CHECK(sections.emplace(tag, Section{pos, pos + (size_t)len}).second, source, ": section '",
                    tag_name(tag), "' appears twice");
        pos += len;
    }
    uint64_t stored, computed = fnv1a64(bytes.data(), body_end);
    std::memcpy(&stored, bytes.data() + body_end, 8);
    if (stored != computed) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "stored %016llx, computed %016llx", (unsigned long long)stored,
                      (unsigned long long)computed);
        fail(source, ": checksum mismatch (", buf, "): the file is corrupt or truncated");
    }
    for (uint32_t tag : {kConf, kTokn, kParm, kOptm, kStat})
        SYNTH_CHECK(sections.count(tag), source, ": no '", tag_name(tag), "' section");
    return sections;
}

}  // namespace

Checkpoint deserialize_checkpoint(const std::string& bytes, const std::string& source) {
    const std::unordered_map<uint32_t, Section> sections = find_sections(bytes, source);
    auto reader = [&](uint32_t tag) {
        const Section& s = sections.at(tag);
        return Reader(bytes, s.begin, s.end, source + " (section " + tag_name(tag) + ")");
    };
    Checkpoint ck;
    {
        Reader r = reader(kConf);
        ck.config = r.bytes(r.remaining(), "config");
        check_config(ck.config, source);
    }
    {
        Reader r = reader(kTokn);
        ck.tokenizer = r.bytes(r.remaining(), "tokenizer");
    }
    {
        Reader r = reader(kParm);
        read_params(r, ck);
        r.expect_end();
    }
    {
        Reader r = reader(kOptm);
        ck.adam_t = r.get<int64_t>("optimizer step");
        ck.adam_m = r.floats("first moments");
        ck.adam_v = r.floats("second moments");
        r.expect_end();
    }
    {
        Reader r = reader(kStat);
        SYNTH_CHECK(r.remaining() == kStatBytes, source, ": section STAT has ", r.remaining(), " bytes, expected ",
                    kStatBytes);
        ck.step = r.get<int64_t>("step");
        ck.data_pos = r.get<int64_t>("data position");
        for (uint64_t& x : ck.rng) x = r.get<uint64_t>("rng state");
        ck.best_val = r.get<double>("best validation loss");
    }
    check_checkpoint(ck, source);
    return ck;
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) { write_file_atomic(path, serialize_checkpoint(ck)); }

Checkpoint load_checkpoint(const std::string& path) { return deserialize_checkpoint(read_file(path), path); }

std::map<std::string, std::string> config_map(const std::string& lines) {
    std::map<std::string, std::string> m;
    std::istringstream in(lines);
    std::string line;
    while (std::getline(in, line)) {
        size_t eq = line.find('=');
        if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return m;
}

void check_resume(const Checkpoint& ck, const std::string& path, const std::vector<std::string>& variants,
                  const Flags& now, const std::vector<std::string>& exempt) {
    const std::map<std::string, std::string> held_config = config_map(ck.config);
    const std::string held = ck.config_value("variant");
    std::string list;
    for (const std::string& v : variants) list += (list.empty() ? "" : ",") + v;
    SYNTH_CHECK(variants.size() == 1, "--resume continues one variant, but --variants=", list, " names ", variants.size(),
                " (", path, " holds ", held, ": add --variants=", held, ")");
    SYNTH_CHECK(variants[0] == held, "checkpoint ", path, " holds variant ", held, " but --variants=", variants[0]);
    SYNTH_CHECK(!ck.adam_m.empty(), "checkpoint ", path, " has no optimizer state, so training cannot continue from it "
                "(--resume takes the -step<N>.ckpt files that --save-every writes)");
    const std::map<std::string, std::string> flags = config_map(now.dump());
    for (const std::string& key : now.names(FlagRole::Model)) {
        const std::string was = now.saved_value(held_config, key);
        SYNTH_CHECK(was == flags.at(key), "checkpoint ", path, " was trained with --", key, "=", was,
                    " but this run has --", key, "=", flags.at(key));
    }
    for (const std::string& key : now.names(FlagRole::Training)) {
        const std::string was = now.saved_value(held_config, key);
        if (was != flags.at(key) && std::find(exempt.begin(), exempt.end(), key) == exempt.end())
            std::fprintf(stderr, "warning: checkpoint %s was trained with --%s=%s, this run has --%s=%s: it will not "
                         "reproduce the uninterrupted run\n", path.c_str(), key.c_str(), was.c_str(), key.c_str(),
                         flags.at(key).c_str());
    }
}

}  // namespace synth

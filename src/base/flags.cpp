#include "base/flags.h"

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "base/error.h"

namespace synth {

Flags::Flags(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void Flags::add_entry(const std::string& name, Kind kind, void* ptr, const std::string& help, FlagRole role) {
    for (const Entry& e : entries_) SYNTH_CHECK(e.name != name, "flag --", name, " registered twice");
    Entry e{name, help, "", kind, ptr, role, false, std::nullopt};
    e.default_text = value_text(e);
    entries_.push_back(e);
}

void Flags::add(const std::string& n, int* v, const std::string& h, FlagRole r) { add_entry(n, Kind::Int, v, h, r); }
void Flags::add(const std::string& n, int64_t* v, const std::string& h, FlagRole r) { add_entry(n, Kind::Int64, v, h, r); }
void Flags::add(const std::string& n, float* v, const std::string& h, FlagRole r) { add_entry(n, Kind::Float, v, h, r); }
void Flags::add(const std::string& n, double* v, const std::string& h, FlagRole r) { add_entry(n, Kind::Double, v, h, r); }
void Flags::add(const std::string& n, bool* v, const std::string& h, FlagRole r) { add_entry(n, Kind::Bool, v, h, r); }
void Flags::add(const std::string& n, std::string* v, const std::string& h, FlagRole r) { add_entry(n, Kind::String, v, h, r); }

std::string Flags::value_text(const Entry& e) {
    std::ostringstream os;
    switch (e.kind) {
        case Kind::Int: os << *static_cast<int*>(e.ptr); break;
        case Kind::Int64: os << *static_cast<int64_t*>(e.ptr); break;
        case Kind::Float: os << *static_cast<float*>(e.ptr); break;
        case Kind::Double: os << *static_cast<double*>(e.ptr); break;
        case Kind::Bool: os << (*static_cast<bool*>(e.ptr) ? "true" : "false"); break;
        case Kind::String: os << *static_cast<std::string*>(e.ptr); break;
    }
    return os.str();
}

// Whole-string numeric parsing: "12abc", "", "1e999" and out-of-range values are errors.
static long long parse_integer(const std::string& flag, const std::string& s, long long lo, long long hi) {
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(s.c_str(), &end, 10);
    SYNTH_CHECK(!s.empty() && end && *end == '\0' && errno == 0, "flag --", flag, ": '", s,
                "' is not an integer");
    SYNTH_CHECK(x >= lo && x <= hi, "flag --", flag, ": ", s, " is out of range");
    return x;
}

static double parse_real(const std::string& flag, const std::string& s) {
    errno = 0;
    char* end = nullptr;
    double x = std::strtod(s.c_str(), &end);
    SYNTH_CHECK(!s.empty() && end && *end == '\0' && errno == 0 && std::isfinite(x), "flag --", flag,
                ": '", s, "' is not a finite number");
    return x;
}

bool Flags::parse(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    return parse(args);
}

bool Flags::parse(const std::vector<std::string>& args) {
    for (const std::string& a : args) {
        if (a == "--help" || a == "-h") {
            std::fputs(usage().c_str(), stdout);
            return false;
        }
        if (a.rfind("--", 0) != 0) {
            positional_.push_back(a);
            continue;
        }
        size_t eq = a.find('=');
        std::string key = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        Entry* e = nullptr;
        for (Entry& c : entries_)
            if (c.name == key) e = &c;
        SYNTH_CHECK(e, "unknown flag --", key, " (see --help)");
        if (eq == std::string::npos) {
            SYNTH_CHECK(e->kind == Kind::Bool, "flag --", key, " needs a value: --", key, "=...");
            *static_cast<bool*>(e->ptr) = true;
            e->given = true;
            continue;
        }
        set(*e, a.substr(eq + 1));
    }
    return true;
}

void Flags::set(Entry& e, const std::string& v) {
    const std::string& key = e.name;
    switch (e.kind) {
        case Kind::Int: *static_cast<int*>(e.ptr) = (int)parse_integer(key, v, -2147483647LL - 1, 2147483647LL); break;
        case Kind::Int64: *static_cast<int64_t*>(e.ptr) = parse_integer(key, v, INT64_MIN, INT64_MAX); break;
        case Kind::Float: {
            double x = parse_real(key, v);
            SYNTH_CHECK(std::fabs(x) <= FLT_MAX, "flag --", key, ": ", v, " is out of range for a float");
            *static_cast<float*>(e.ptr) = (float)x;
            break;
        }
        case Kind::Double: *static_cast<double*>(e.ptr) = parse_real(key, v); break;
        case Kind::String: *static_cast<std::string*>(e.ptr) = v; break;
        case Kind::Bool:
            if (v == "true" || v == "1") *static_cast<bool*>(e.ptr) = true;
            else if (v == "false" || v == "0") *static_cast<bool*>(e.ptr) = false;
            else fail("flag --", key, ": '", v, "' is not true/false");
            break;
    }
    e.given = true;
}

bool Flags::given(const std::string& name) const {
    for (const Entry& e : entries_)
        if (e.name == name) return e.given;
    fail("flag --", name, " is not registered");
}

std::string Flags::usage() const {
    std::ostringstream os;
    os << "usage: " << program_ << " [--key=value ...]\n" << summary_ << "\n\nflags:\n";
    for (const Entry& e : entries_) {
        if (e.help.rfind("internal:", 0) == 0) continue;
        std::string left = "  --" + e.name;
        os << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << e.help;
        // No "(default: )" for an empty default, nor a second one where the help gives its own.
        if (!e.default_text.empty() && e.help.find("(default:") == std::string::npos)
            os << " (default: " << e.default_text << ")";
        os << "\n";
    }
    os << "  --help                show this message\n";
    if (!epilog_.empty()) os << "\n" << epilog_;
    return os.str();
}

std::string Flags::dump() const {
    std::ostringstream os;
    for (const Entry& e : entries_) os << e.name << "=" << value_text(e) << "\n";
    return os.str();
}

std::vector<std::string> Flags::names(FlagRole role) const {
    std::vector<std::string> out;
    for (const Entry& e : entries_)
        if (e.role == role) out.push_back(e.name);
    return out;
}

void Flags::load(const std::string& lines, FlagRole role) {
    std::map<std::string, std::string> values;
    std::istringstream is(lines);
    for (std::string line; std::getline(is, line);) {
        const size_t eq = line.find('=');
        if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
    }
    for (Entry& e : entries_)
        if (e.role == role) set(e, saved_value(values, e.name));
}

const Flags::Entry& Flags::entry(const std::string& name) const {
    for (const Entry& e : entries_)
        if (e.name == name) return e;
    fail("no flag --", name, " is registered");
}

void Flags::default_when_missing(const std::string& name, const std::string& value) {
    entry(name);  // throws for an unregistered name
    for (Entry& e : entries_)
        if (e.name == name) e.missing_text = value;
}

std::string Flags::saved_value(const std::map<std::string, std::string>& config, const std::string& name) const {
    auto it = config.find(name);
    if (it != config.end()) return it->second;
    const Entry& e = entry(name);
    SYNTH_CHECK(e.missing_text, "the saved config has no value for --", name);
    return *e.missing_text;
}

bool Flags::at_missing_default(const std::string& name) const {
    const Entry& e = entry(name);
    return e.missing_text && value_text(e) == *e.missing_text;
}

void apply_defaults(Flags& f, const std::map<std::string, std::string>& defaults) {
    std::vector<std::string> args;
    for (const auto& [k, v] : defaults)
        if (!f.given(k)) args.push_back("--" + k + "=" + v);
    f.parse(args);
}

std::string describe_presets(const std::vector<std::pair<std::string, std::map<std::string, std::string>>>& presets) {
    std::string s = "presets (the flags each sets when they are not given):\n";
    for (const auto& [name, flags] : presets) {
        s += "  " + name + ":";
        for (const auto& [k, v] : flags) s += " --" + k + "=" + v;
        s += "\n";
    }
    return s;
}

void require_positive(FlagValues flags) {
    for (auto [name, v] : flags) SYNTH_CHECK(v > 0, "--", name, "=", v, " must be positive");
}

void require_non_negative(FlagValues flags) {
    for (auto [name, v] : flags) SYNTH_CHECK(v >= 0, "--", name, "=", v, " must be >= 0");
}

void require_fraction(FlagValues flags) {
    for (auto [name, v] : flags) SYNTH_CHECK(v >= 0 && v < 1, "--", name, "=", v, " must be in [0, 1)");
}

std::vector<std::string> split_list(const std::string& s, const std::string& flag) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    const std::string of = flag.empty() ? "" : " (" + flag + ")";
    while (std::getline(ss, item, ',')) {
        SYNTH_CHECK(!item.empty(), "empty entry in list '", s, "'", of);
        out.push_back(item);
    }
    SYNTH_CHECK(!out.empty(), flag.empty() ? "empty list ''" : flag + " is empty: give a comma-separated list");
    return out;
}

}  // namespace synth

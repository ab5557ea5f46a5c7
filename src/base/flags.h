// flags.h: --key=value command-line flags bound to typed variables.
//
//   int steps = 100;  std::string data = "tinyshakespeare";
//   Flags f("lm", "Train Synthesizer language models.");
//   f.add("steps", &steps, "training steps");
//   f.add("data", &data, "tinyshakespeare|ptb|PATH");
//   f.parse(argc, argv);            // --help prints usage and exits 0
//
// Unknown flags, missing '=' for non-bool flags, malformed numbers and trailing junk
// ("12abc") throw synth::Error naming the flag. A bool flag accepts --x, --x=true|false|1|0.
// Range checks are the caller's job (use SYNTH_CHECK after parse()).
//
// A flag table is also a config's field table: each flag has a role. dump() is the resolved
// config a checkpoint saves; load() reads a checkpoint's Model flags back (to rebuild its
// network); check_resume() (checkpoint.h) compares the Model flags (must match) and the
// Training flags (a difference is a warning) of a checkpoint with this run's.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace synth {

enum class FlagRole {
    Run,       // where and how to run: paths, logging, reports
    Model,     // the network's shape and definition: a checkpoint is only valid with the same values
    Training,  // the training recipe: a resumed run reproduces the uninterrupted one only with the same values
};

class Flags {
public:
    Flags(std::string program, std::string summary);

    void add(const std::string& name, int* v, const std::string& help, FlagRole role = FlagRole::Run);
    void add(const std::string& name, int64_t* v, const std::string& help, FlagRole role = FlagRole::Run);
    void add(const std::string& name, float* v, const std::string& help, FlagRole role = FlagRole::Run);
    void add(const std::string& name, double* v, const std::string& help, FlagRole role = FlagRole::Run);
    void add(const std::string& name, bool* v, const std::string& help, FlagRole role = FlagRole::Run);
    void add(const std::string& name, std::string* v, const std::string& help, FlagRole role = FlagRole::Run);

    // Parses argv[1..]. Positional (non --) arguments are collected in positional().
    // Returns false if --help was given (usage already printed to stdout).
    bool parse(int argc, char** argv);
    // Parses a vector of "--key=value" strings (used by parse(), the tests and fuzz/).
    bool parse(const std::vector<std::string>& args);

    // Whether the user set this flag explicitly (as opposed to a default).
    bool given(const std::string& name) const;
    const std::vector<std::string>& positional() const { return positional_; }
    // --help: every flag but the internal ones (help text starting "internal:"), then the epilog.
    std::string usage() const;
    void set_epilog(std::string text) { epilog_ = std::move(text); }
    // "key=value" lines for every flag, in registration order: the resolved config.
    std::string dump() const;
    // The names of the flags with this role, in registration order.
    std::vector<std::string> names(FlagRole role) const;
    // Sets every flag of `role` from "key=value" lines (a checkpoint's config), as if given.
    // Throws naming the first flag the lines lack or whose value does not parse.
    void load(const std::string& lines, FlagRole role);
    // A config saved before flag `name` existed means `value` (an attention variant's setting
    // at its registered default: registering a new variant must not orphan older checkpoints).
    void default_when_missing(const std::string& name, const std::string& value);
    // The value a saved config (config_map of its lines) holds for flag `name`, or the value
    // given to default_when_missing(); throws naming the flag otherwise.
    std::string saved_value(const std::map<std::string, std::string>& config, const std::string& name) const;
    // Whether flag `name` holds the value a config without it means (default_when_missing()).
    bool at_missing_default(const std::string& name) const;

private:
    enum class Kind { Int, Int64, Float, Double, Bool, String };
    struct Entry {
        std::string name, help, default_text;
        Kind kind;
        void* ptr;
        FlagRole role;
        bool given = false;
        std::optional<std::string> missing_text;  // the value a config without the flag means, if any
    };
    const Entry& entry(const std::string& name) const;
    void add_entry(const std::string& name, Kind kind, void* ptr, const std::string& help, FlagRole role);
    void set(Entry& e, const std::string& value);
    static std::string value_text(const Entry& e);
    std::string program_, summary_, epilog_;
    std::vector<Entry> entries_;
    std::vector<std::string> positional_;
};

// Gives every flag of `defaults` (a preset: name -> value) that was not given its value there,
// as if given.
void apply_defaults(Flags& f, const std::map<std::string, std::string>& defaults);

// A --help epilog listing, per preset, the flags it sets when they are not given.
std::string describe_presets(const std::vector<std::pair<std::string, std::map<std::string, std::string>>>& presets);

// Range checks on parsed values that name the flag, e.g. "--d-model=0 must be positive".
using FlagValues = std::initializer_list<std::pair<const char*, double>>;
void require_positive(FlagValues flags);      // > 0
void require_non_negative(FlagValues flags);  // >= 0
void require_fraction(FlagValues flags);      // in [0, 1)

// "a,b,c" -> {"a", "b", "c"}; throws on an empty list or entry, naming `flag` when given.
std::vector<std::string> split_list(const std::string& s, const std::string& flag = "");

}  // namespace synth

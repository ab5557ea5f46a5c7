#include "base/flags_config.h"

#include <algorithm>

#include "base/error.h"
#include "base/json.h"

namespace synth {

std::map<std::string, std::string> flags_of_config_json(const std::string& json, const std::string& source) {
    const JsonObject o = parse_json_object(json, source);
    std::map<std::string, std::string> flags;
    const std::string prefix = "flag.";
    for (const auto& [key, value] : o.fields)
        if (key.compare(0, prefix.size(), prefix) == 0) flags[key.substr(prefix.size())] = value;
    SYNTH_CHECK(!flags.empty(), source, " records no flags (\"flag.<name>\" keys): not a run directory's config.json");
    return flags;
}

void apply_config(Flags& f, const std::map<std::string, std::string>& saved, const std::vector<std::string>& skip,
                  const std::string& source) {
    std::vector<std::string> known;
    for (FlagRole role : {FlagRole::Run, FlagRole::Model, FlagRole::Training})
        for (const std::string& n : f.names(role)) known.push_back(n);
    std::map<std::string, std::string> now;  // the current values, from "key=value" lines
    const std::string dump = f.dump();
    for (size_t at = 0, end; at < dump.size(); at = end + 1) {
        end = dump.find('\n', at);
        if (end == std::string::npos) end = dump.size();
        const size_t eq = dump.find('=', at);
        if (eq < end) now[dump.substr(at, eq - at)] = dump.substr(eq + 1, end - eq - 1);
    }
    std::map<std::string, std::string> replay;
    for (const auto& [name, value] : saved) {
        if (std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
        SYNTH_CHECK(std::find(known.begin(), known.end(), name) != known.end(), source, " sets --", name, ", which this program does not have (a config of another ",
                    "binary or version?)");
        // A variant's setting saved at its registered default is what leaving it out means: not
        // given (a setting given for a variant the run lacks is an error).
        if (!f.given(name) && f.at_missing_default(name) && now[name] == value) continue;
        replay[name] = value;
    }
    apply_defaults(f, replay);
}

}  // namespace synth

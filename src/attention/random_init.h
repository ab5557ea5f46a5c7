// attention/random_init.h: how the random synthesizers (R, Rfix, FR) draw their matrices, the
// setting they share.
#pragma once

#include "attention/variant.h"

namespace synth {

inline Setting random_init_setting() {
    return Setting::choice("r-init", "normal",
                           "initialisation of the random synthesizer matrices: normal (N(0, 0.02)), glorot "
                           "(Glorot-uniform; R with mesh-tensorflow's fans) or unit (N(0, 1): logits of unit scale, "
                           "so a fixed R is not near-uniform averaging)",
                           {"normal", "glorot", "unit"});
}

// normal: N(0, 0.02). unit: N(0, 1). glorot: Glorot-uniform with the given fans (0 = the last two dims).
// R passes the fans mesh-tensorflow computes for its R variable, of shape [L, H, L] there:
// TensorFlow's fans of a 3-D shape [r, i, o] are (r i, r o), so fan_in = L H, fan_out = L L.
inline InitSpec random_init(const AttnConfig& c, int64_t fan_in, int64_t fan_out) {
    const std::string& how = c.settings.text("r-init");
    if (how == "glorot") return InitSpec::glorot(fan_in, fan_out);
    return InitSpec(Init::Normal, how == "unit" ? 1.0f : 0.02f);
}

}  // namespace synth

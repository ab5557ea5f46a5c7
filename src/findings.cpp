#include "findings.h"

#include <cmath>
#include <sstream>

#include "report.h"

namespace synth {

std::string lm_findings(const std::map<std::string, FindingRow>& r, bool is_char) {
    auto has = [&](const char* v) { return r.count(v) > 0; };
    auto m = [&](const char* v) { return r.at(v).val_loss; };
    auto show = [&](const char* v) {
        return std::string(v) + " " + fmt(m(v), 4) + (is_char ? " nats (" + fmt(m(v) / std::log(2.0), 3) + " bpc)"
                                                              : " nats (ppl " + fmt(std::exp(m(v)), 1) + ")");
    };
    auto pct = [&](const char* a, const char* b) {
        return std::string(a) + " vs " + b + ": " + (m(a) >= m(b) ? "+" : "") + fmt(100.0 * (m(a) - m(b)) / m(b), 1) + "% loss";
    };
    // "Competitive" = within 3% of V's validation loss.
    auto close = [&](const char* a, const char* b) { return std::fabs(m(a) - m(b)) <= 0.03 * m(b); };
    std::ostringstream os;
    os << "\n## Findings (the paper's 1-5, docs/variants.md), from the validation losses above\n\n";
    if (has("V") && has("R") && has("Rfix"))
        os << "1. **Trainable R vs V; Rfix vs R.** " << show("R") << " vs " << show("V") << ": "
           << (close("R", "V") ? "competitive (within 3%)" : m("R") < m("V") ? "R is better" : "R is clearly worse")
           << " (" << pct("R", "V") << ")"
           << ". " << show("Rfix") << ": " << (m("Rfix") > m("R") + 0.01 ? "worse than R — confirmed." : "not worse than R — refuted here.")
           << "\n";
    if (has("D") && has("R"))
        os << "2. **D about as good as R.** " << show("D") << " vs " << show("R") << ": "
           << (std::fabs(m("D") - m("R")) <= 0.03 * m("R") ? "within 3% — confirmed."
               : m("D") < m("R")                            ? "D is better than R by more than 3% — D is at least as good."
                                                            : "D is worse than R by more than 3% — not confirmed.")
           << " (" << pct("D", "R") << ")"
           << "\n";
    if (has("V") && (has("R+V") || has("D+V"))) {
        os << "3. **Mixtures with V beat V.** ";
        for (const char* mv : {"R+V", "D+V"})
            if (has(mv)) os << show(mv) << " vs " << show("V") << (m(mv) < m("V") ? " (better); " : " (not better); ");
        os << "\n";
    }
    if ((has("FR") && has("R")) || (has("FD") && has("D"))) {
        os << "4. **Factorized close to full, with fewer parameters.** ";
        for (auto [f, full] : {std::pair<const char*, const char*>{"FR", "R"}, {"FD", "D"}})
            if (has(f) && has(full))
                os << show(f) << " with " << r.at(f).params << " params vs " << show(full) << " with "
                   << r.at(full).params << " (" << fmt(100.0 * (m(f) - m(full)) / m(full), 1) << "% loss difference); ";
        os << "\n";
    }
    if (has("V") && has("R"))
        os << "5. **R faster than V.** Training throughput R " << fmt(r.at("R").tok_s, 0) << " tok/s vs V "
           << fmt(r.at("V").tok_s, 0) << " tok/s: R is " << fmt(r.at("R").tok_s / r.at("V").tok_s, 2)
           << "x V's speed (wall-clock throughput of this run, model shape above; other jobs may have shared the "
              "cores, so results/bench.md, measured on a quiet machine, is the controlled comparison).\n";
    return os.str();
}

std::string lm_reference_note(const std::string& data, const std::map<std::string, FindingRow>& rows, int steps) {
    if (!rows.count("V")) return "";
    const FindingRow& v = rows.at("V");
    if (data == "tinyshakespeare")
        return "\n**Reference.** nanoGPT's CPU setting (4 layers, d=128, context 64, batch 12, 2,000 iterations) "
               "reaches ~1.88 nats/char validation and its 6x384 baby GPT 1.4697; our V here: " +
               fmt(v.val_loss, 4) + ".\n";
    if (data == "ptb")
        return "\n**Reference.** Zaremba et al.'s small LSTM (2x200, 13 epochs) reaches 115.91 test perplexity; our V "
               "here: " + fmt(std::exp(v.test_loss), 1) + " after " + std::to_string(steps) + " steps.\n";
    return "";
}

}  // namespace synth

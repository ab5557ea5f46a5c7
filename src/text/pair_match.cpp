#include "text/pair_match.h"

#include <algorithm>
#include <numeric>

#include "base/error.h"
#include "base/rng.h"

namespace synth {

std::vector<ClsExample> match_examples(const std::vector<std::vector<int32_t>>& en,
                                       const std::vector<std::vector<int32_t>>& de,
                                       const std::vector<std::string>& de_text, uint64_t seed, int window, int32_t cls,
                                       int32_t sep) {
    const int n = (int)en.size();
    SYNTH_CHECK(de.size() == en.size() && de_text.size() == en.size(), "match_examples: ", en.size(), " English, ",
                de.size(), " German and ", de_text.size(), " German lines");
    SYNTH_CHECK(window >= 1, "the negative window ", window, " must be at least 1");
    SYNTH_CHECK(n >= 2 && std::any_of(de_text.begin(), de_text.end(), [&](const std::string& t) { return t != de_text[0]; }),
                "sentence matching needs at least 2 distinct German sentences, got ", n, " lines");
    std::vector<int> order(n), rank(n);  // lines by German length; each line's place in it
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return de[a].size() < de[b].size(); });
    for (int p = 0; p < n; ++p) rank[order[p]] = p;
    Rng rng(seed);
    auto pair = [&](int i, int j, int32_t label) {
        ClsExample e;
        e.ids.push_back(cls);
        e.ids.insert(e.ids.end(), en[i].begin(), en[i].end());
        e.ids.push_back(sep);
        e.ids.insert(e.ids.end(), de[j].begin(), de[j].end());
        e.label = label;
        return e;
    };
    std::vector<ClsExample> out;
    out.reserve(2 * (size_t)n);
    for (int i = 0; i < n; ++i) {
        // The window widens until it holds another German text (only repeated lines need that).
        int j = -1;
        for (int w = window; j < 0; w *= 2) {
            const int lo = std::max(0, rank[i] - w), hi = std::min(n - 1, rank[i] + w);
            std::vector<int> candidates;
            for (int p = lo; p <= hi; ++p)
                if (de_text[order[p]] != de_text[i]) candidates.push_back(order[p]);
            if (!candidates.empty()) j = candidates[rng.below(candidates.size())];
        }
        out.push_back(pair(i, i, 1));
        out.push_back(pair(i, j, 0));
    }
    return out;
}

}  // namespace synth

#include "text/listops.h"

#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/rng.h"

namespace synth {

namespace {

const char* const kOperators[] = {"[MIN", "[MAX", "[MED", "[SM"};  // LRA's OPERATORS, in its order
constexpr double kValueP = 0.25;                                  // LRA's VALUE_P

// One drawn subtree: its source text, value and shape.
struct Tree {
    std::string source;
    int value = 0, length = 0, depth = 0, max_args = 0;
};

// The operator's value on its arguments (LRA's to_value).
int apply(int op, std::vector<int> args) {
    switch (op) {
        case 0: return *std::min_element(args.begin(), args.end());
        case 1: return *std::max_element(args.begin(), args.end());
        case 2: {  // int(np.median(args)): the middle value, or the two middle values' mean, truncated
            std::sort(args.begin(), args.end());
            const size_t n = args.size();
            return n % 2 ? args[n / 2] : (args[n / 2 - 1] + args[n / 2]) / 2;
        }
        default: {
            int s = 0;
            for (int a : args) s += a;
            return s % 10;
        }
    }
}

// LRA's generate_tree(depth, max_depth, max_args), drawing in its order. `budget` is how many
// more tokens the tree may have and still be shorter than max_length: once it goes negative the
// tree will be rejected whatever follows, so drawing stops (false). Each tree is an independent
// draw, so this changes how much of the stream a rejected tree uses, not which trees are kept.
bool draw_tree(Rng& rng, int depth, const ListOpsConfig& c, int& budget, Tree& out) {
    const double r = depth < c.max_depth ? rng.uniform() : 1.0;
    if (r > kValueP) {
        out.value = (int)rng.below(10);
        out.source = std::to_string(out.value);
        out.length = out.depth = 1;
        out.max_args = 0;
        return --budget >= 0;
    }
    budget -= 2;  // the operator and its ']'
    if (budget < 0) return false;
    const int n = 2 + (int)rng.below((uint64_t)c.max_args - 1);  // randint(2, max_args)
    std::vector<Tree> args(n);
    std::vector<int> values(n);
    out.length = 2, out.depth = 0, out.max_args = n;
    for (int i = 0; i < n; ++i) {
        if (!draw_tree(rng, depth + 1, c, budget, args[i])) return false;
        values[i] = args[i].value;
        out.length += args[i].length;
        out.depth = std::max(out.depth, args[i].depth + 1);
        out.max_args = std::max(out.max_args, args[i].max_args);
    }
    const int op = (int)rng.below(4);
    out.value = apply(op, values);
    // to_string of the left-nested tuples (((op, a0), a1), ..., END): one "( " per tuple.
    std::string s;
    for (int i = 0; i <= n; ++i) s += "( ";
    s += kOperators[op];
    for (int i = 0; i < n; ++i) s += " " + args[i].source + " )";
    s += " ] )";
    out.source = std::move(s);
    return true;
}

}  // namespace

std::string ListOpsConfig::describe() const {
    std::ostringstream os;
    os << "generator=lra-listops-1\nseed=" << seed << "\ntrain=" << train << "\nvalid=" << valid << "\ntest=" << test
       << "\nmax-depth=" << max_depth << "\nmax-args=" << max_args << "\nmin-length=" << min_length
       << "\nmax-length=" << max_length << "\n";
    return os.str();
}

ListOpsData generate_listops(const ListOpsConfig& c) {
    SYNTH_CHECK(c.train >= 1 && c.valid >= 1 && c.test >= 1, "listops: every split needs at least one example (", c.train,
                "/", c.valid, "/", c.test, ")");
    SYNTH_CHECK(c.max_depth >= 2 && c.max_depth <= 64, "listops: max depth ", c.max_depth, " must be in [2, 64]");
    SYNTH_CHECK(c.max_args >= 2, "listops: max args ", c.max_args, " must be at least 2");
    SYNTH_CHECK(c.min_length >= 0 && c.min_length + 1 < c.max_length, "listops: no length is strictly between ",
                c.min_length, " and ", c.max_length);
    // The longest tree the depth allows: a value at max_depth, 2 + max_args subtrees above it.
    int64_t longest = 1;
    for (int d = c.max_depth - 1; d >= 1 && longest <= c.min_length; --d) longest = 2 + (int64_t)c.max_args * longest;
    SYNTH_CHECK(longest > c.min_length, "listops: trees of depth ", c.max_depth, " and ", c.max_args,
                " arguments have at most ", longest, " tokens, not more than ", c.min_length);
    const size_t total = (size_t)c.train + c.valid + c.test;
    Rng rng(c.seed);
    std::unordered_set<std::string> seen;
    std::vector<ListOpsExample> all;
    ListOpsData d;
    // No tree in 1e4 draws per wanted example means the bounds are (almost) unsatisfiable.
    const int64_t give_up = 10000 * (int64_t)total + 1000000;
    while (all.size() < total) {
        SYNTH_CHECK(d.draws < give_up, "listops: only ", all.size(), " of ", total, " distinct trees after ", d.draws,
                    " draws; widen the length bounds or raise the depth");
        ++d.draws;
        Tree t;
        int budget = c.max_length - 1;
        if (!draw_tree(rng, 1, c, budget, t) || t.length <= c.min_length || t.length >= c.max_length) continue;
        if (!seen.insert(t.source).second) continue;
        all.push_back({std::move(t.source), t.value, t.length, t.depth, t.max_args});
    }
    d.train.assign(std::make_move_iterator(all.begin()), std::make_move_iterator(all.begin() + c.train));
    d.valid.assign(std::make_move_iterator(all.begin() + c.train), std::make_move_iterator(all.begin() + c.train + c.valid));
    d.test.assign(std::make_move_iterator(all.begin() + c.train + c.valid), std::make_move_iterator(all.end()));
    return d;
}

std::string listops_tsv(const std::vector<ListOpsExample>& split) {
    std::string out = "Source\tTarget\r\n";
    for (const ListOpsExample& e : split) out += e.source + "\t" + std::to_string(e.target) + "\r\n";
    return out;
}

std::vector<ListOpsExample> parse_listops_tsv(const std::string& text, const std::string& path) {
    std::vector<ListOpsExample> out;
    std::istringstream is(text);
    std::string line;
    int lineno = 0;
    while (std::getline(is, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (lineno == 1) {
            SYNTH_CHECK(line == "Source\tTarget", path, ":1: expected the header 'Source<TAB>Target'");
            continue;
        }
        const size_t tab = line.find('\t');
        SYNTH_CHECK(tab != std::string::npos && line.find('\t', tab + 1) == std::string::npos, path, ":", lineno,
                    ": expected 'source<TAB>target'");
        const std::string target = line.substr(tab + 1);
        SYNTH_CHECK(target.size() == 1 && target[0] >= '0' && target[0] <= '9', path, ":", lineno, ": target '", target,
                    "' is not a digit 0-9");
        ListOpsExample e;
        e.source = line.substr(0, tab);
        e.target = target[0] - '0';
        out.push_back(std::move(e));
    }
    SYNTH_CHECK(lineno >= 1, path, ": empty file (expected the header 'Source<TAB>Target')");
    return out;
}

const std::vector<std::string>& listops_tokens() {
    static const std::vector<std::string> t = {"<pad>", "<cls>", "[MIN", "[MAX", "[MED", "[SM", "X", "0", "1", "2",
                                               "3",     "4",     "5",    "6",    "7",    "8",   "9"};
    return t;
}

std::vector<int32_t> listops_tokenize(const std::string& source) {
    static const std::unordered_map<std::string, int32_t> index = [] {
        std::unordered_map<std::string, int32_t> m;
        for (size_t i = 2; i < listops_tokens().size(); ++i) m[listops_tokens()[i]] = (int32_t)i;
        m["]"] = m["X"];  // LRA renames ']' to 'X' before tokenising
        return m;
    }();
    std::vector<int32_t> ids;
    std::istringstream is(source);
    for (std::string tok; is >> tok;) {
        if (tok == "(" || tok == ")") continue;  // LRA deletes the parentheses
        auto it = index.find(tok);
        SYNTH_CHECK(it != index.end(), "listops: unknown token '", tok, "' in a source");
        ids.push_back(it->second);
    }
    return ids;
}

}  // namespace synth

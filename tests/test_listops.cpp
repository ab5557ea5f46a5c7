// The ListOps generator (src/text/listops.h): determinism, every label against an independent
// evaluator of the token string, LRA's bounds, string form, tokens and TSV files.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/listops.h"

using namespace synth;

namespace {

// What a tokenised source says, found by a stack machine over the tokens rather than by the
// generator's recursion over its tree.
struct Evaluated {
    int value = -1, length = 0, depth = 0, min_args = 1 << 30, max_args = 0;
};

Evaluated evaluate_tokens(const std::vector<int32_t>& ids) {
    const std::vector<std::string>& tok = listops_tokens();
    struct Frame {
        std::string op;
        int counts[10] = {0};  // how many arguments had each value
        int n = 0;
    };
    std::vector<Frame> stack;
    Evaluated e;
    e.length = (int)ids.size();
    auto push_value = [&](int v) {
        if (stack.empty()) {
            REQUIRE(e.value == -1);  // one root only
            e.value = v;
        } else {
            ++stack.back().counts[v];
            ++stack.back().n;
        }
    };
    for (int32_t id : ids) {
        const std::string& t = tok.at(id);
        if (t[0] == '[') {
            stack.push_back(Frame{t});
            e.depth = std::max(e.depth, (int)stack.size() + 1);  // its arguments sit one level deeper
        } else if (t == "X") {
            REQUIRE(!stack.empty());
            const Frame f = stack.back();
            stack.pop_back();
            e.min_args = std::min(e.min_args, f.n), e.max_args = std::max(e.max_args, f.n);
            // By counts of each digit: the k-th smallest value is where the running count passes k.
            auto kth = [&](int k) {
                for (int v = 0, seen = 0; v < 10; ++v)
                    if ((seen += f.counts[v]) > k) return v;
                return -1;
            };
            int r = 0;
            if (f.op == "[MIN") r = kth(0);
            else if (f.op == "[MAX") r = kth(f.n - 1);
            else if (f.op == "[MED") r = f.n % 2 ? kth(f.n / 2) : (kth(f.n / 2 - 1) + kth(f.n / 2)) / 2;
            else {
                for (int v = 0; v < 10; ++v) r += v * f.counts[v];
                r %= 10;
            }
            push_value(r);
        } else {
            REQUIRE(t.size() == 1);
            push_value(t[0] - '0');
            if (stack.empty()) e.depth = 1;
        }
    }
    REQUIRE(stack.empty());
    return e;
}

ListOpsConfig small(uint64_t seed) {
    ListOpsConfig c;
    c.seed = seed;
    c.train = 300, c.valid = 50, c.test = 50;
    c.min_length = 20, c.max_length = 120, c.max_depth = 6, c.max_args = 5;
    return c;
}

std::vector<ListOpsExample> all_of(const ListOpsData& d) {
    std::vector<ListOpsExample> v = d.train;
    v.insert(v.end(), d.valid.begin(), d.valid.end());
    v.insert(v.end(), d.test.begin(), d.test.end());
    return v;
}

}  // namespace

TEST_CASE("listops: the data is a function of (seed, counts, lengths, depth, args)") {
    const ListOpsData a = generate_listops(small(7)), b = generate_listops(small(7)), c = generate_listops(small(8));
    CHECK(listops_tsv(a.train) == listops_tsv(b.train));
    CHECK(listops_tsv(a.test) == listops_tsv(b.test));
    CHECK(a.draws == b.draws);
    CHECK(listops_tsv(a.train) != listops_tsv(c.train));
    ListOpsConfig deeper = small(7);
    deeper.max_depth = 7;
    CHECK(listops_tsv(generate_listops(deeper).train) != listops_tsv(a.train));
    CHECK(a.train.size() == 300);
    CHECK(a.valid.size() == 50);
    CHECK(a.test.size() == 50);
    CHECK(small(7).describe() != small(8).describe());
}

TEST_CASE("listops: every label equals an independent stack evaluator's, within LRA's bounds") {
    for (const ListOpsConfig& c : {small(1), small(2), [] {
             ListOpsConfig lra_like;  // LRA's depth and arguments at shorter lengths
             lra_like.seed = 3, lra_like.train = 200, lra_like.valid = 20, lra_like.test = 20;
             lra_like.min_length = 100, lra_like.max_length = 300;
             return lra_like;
         }()}) {
        CAPTURE(c.describe());
        int by_value[10] = {0};
        for (const ListOpsExample& e : all_of(generate_listops(c))) {
            CAPTURE(e.source);
            const Evaluated v = evaluate_tokens(listops_tokenize(e.source));
            CHECK(v.value == e.target);
            CHECK(v.length == e.length);
            CHECK(v.depth == e.depth);
            CHECK(v.max_args == e.max_args);
            CHECK(v.length > c.min_length);
            CHECK(v.length < c.max_length);
            CHECK(v.depth <= c.max_depth);
            CHECK(v.min_args >= 2);
            CHECK(v.max_args <= c.max_args);
            ++by_value[e.target];
        }
        for (int k = 0; k < 10; ++k) CHECK(by_value[k] > 0);  // every class occurs
    }
}

TEST_CASE("listops: examples are distinct across all three splits") {
    const ListOpsData d = generate_listops(small(5));
    std::set<std::string> sources;
    for (const ListOpsExample& e : all_of(d)) sources.insert(e.source);
    CHECK(sources.size() == d.train.size() + d.valid.size() + d.test.size());
}

TEST_CASE("listops: LRA's string form, tokens and TSV files") {
    // ((([MIN, 3), 4), ]) as LRA's to_string writes it, and its tokens after LRA's pipeline.
    const std::vector<std::string>& tok = listops_tokens();
    std::vector<std::string> words;
    for (int32_t id : listops_tokenize("( ( ( [MIN 3 ) 4 ) ] )")) words.push_back(tok[id]);
    CHECK(words == std::vector<std::string>{"[MIN", "3", "4", "X"});
    CHECK(tok.size() == (size_t)kListOpsVocab);
    CHECK(tok[kListOpsPad] == "<pad>");
    CHECK(tok[kListOpsCls] == "<cls>");
    CHECK_THROWS_WITH_AS(listops_tokenize("( [FIRST 3 ] )"), doctest::Contains("unknown token '[FIRST'"), Error);

    const ListOpsData d = generate_listops(small(9));
    for (const ListOpsExample& e : d.valid) {
        // Each operator opens one "(" per argument plus one, and every tuple closes with " )".
        CHECK(e.source.rfind("( ", 0) == 0);
        CHECK(std::count(e.source.begin(), e.source.end(), '(') == std::count(e.source.begin(), e.source.end(), ')'));
    }
    const std::string tsv = listops_tsv(d.valid);
    CHECK(tsv.rfind("Source\tTarget\r\n", 0) == 0);
    const std::vector<ListOpsExample> back = parse_listops_tsv(tsv, "val.tsv");
    REQUIRE(back.size() == d.valid.size());
    for (size_t i = 0; i < back.size(); ++i) {
        CHECK(back[i].source == d.valid[i].source);
        CHECK(back[i].target == d.valid[i].target);
    }
    CHECK_THROWS_WITH_AS(parse_listops_tsv("Source\tTarget\n( [MIN 1 2 ] )\t12\n", "x.tsv"),
                         doctest::Contains("x.tsv:2: target '12'"), Error);
    CHECK_THROWS_WITH_AS(parse_listops_tsv("source,target\n", "y.tsv"), doctest::Contains("y.tsv:1"), Error);
    CHECK_THROWS_WITH_AS(parse_listops_tsv("Source\tTarget\nno tab\n", "z.tsv"), doctest::Contains("z.tsv:2"), Error);
}

TEST_CASE("listops: settings no tree can satisfy are refused before drawing") {
    ListOpsConfig c = small(1);
    c.min_length = 50, c.max_length = 51;
    CHECK_THROWS_WITH_AS(generate_listops(c), doctest::Contains("no length is strictly between 50 and 51"), Error);
    c = small(1);
    c.max_depth = 2, c.max_args = 3, c.min_length = 10;  // at most 2 + 3 values = 5 tokens
    CHECK_THROWS_WITH_AS(generate_listops(c), doctest::Contains("at most 5 tokens"), Error);
    c = small(1);
    c.max_args = 1;
    CHECK_THROWS_AS(generate_listops(c), Error);
    c = small(1);
    c.valid = 0;
    CHECK_THROWS_AS(generate_listops(c), Error);
}

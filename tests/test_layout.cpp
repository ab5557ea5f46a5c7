// The layer rules of docs/layers.md, checked on the source tree at test time: every .cpp sits
// in a layer folder, every #include of src/ resolves and none runs up a layer, no include
// circle, no function longer than 80 lines. Each scanner is also run on small made-up trees,
// so a check that could never fail would show.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <set>

#include "source_tree.h"

using synth_test::Tree;

namespace {

// The layers, lowest first: each folder of src/ and the layers directly under it. A file may
// include its own folder and everything below it, transitively. docs/layers.md lists the same
// (checked below); the Makefile's LAYERS lists the folders it compiles.
struct Layer {
    std::string folder;
    std::vector<std::string> on;
};
const std::vector<Layer> kLayers = {
    {"base", {}},
    {"engine/gemm", {"base"}},
    {"engine", {"engine/gemm"}},
    {"text", {"base"}},
    {"attention", {"engine", "text"}},
    {"models", {"attention"}},
    {"train", {"models"}},
    {"runs", {"train"}},
    {"tasks", {"runs"}},
    {"bin", {"tasks"}},
};

// The longest function outside src/engine/ops.cpp, whose op functions each hold a forward and
// its backward closure side by side by design (docs/tour.md).
const int kMaxFunctionLines = 80;
const std::string kExemptFromLength = "src/engine/ops.cpp";

// Folder -> every folder it may include (itself among them).
std::map<std::string, std::set<std::string>> may_include(const std::vector<Layer>& layers) {
    std::map<std::string, std::set<std::string>> allowed;
    for (const Layer& l : layers) {  // lowest first, so every layer it stands on is complete
        std::set<std::string>& a = allowed[l.folder];
        a.insert(l.folder);
        for (const std::string& below : l.on) a.insert(allowed[below].begin(), allowed[below].end());
    }
    return allowed;
}

// "src/engine/gemm/blas.h" -> "engine/gemm"; "src/x.cpp" -> "".
std::string folder_of(const std::string& src_path) {
    const size_t slash = src_path.rfind('/');
    return slash <= 4 ? "" : src_path.substr(4, slash - 4);
}

// The quoted includes of a C++ file, with their line numbers.
std::vector<std::pair<int, std::string>> includes_of(const std::string& text) {
    static const std::regex include(R"(^\s*#\s*include\s*"([^"]+)\")");
    std::vector<std::pair<int, std::string>> out;
    std::istringstream in(synth_test::strip_comments(text));
    std::string line;
    std::smatch m;
    for (int n = 1; std::getline(in, line); ++n)
        if (line.find('#') != std::string::npos && std::regex_search(line, m, include)) out.emplace_back(n, m[1]);
    return out;
}

bool is_src_code(const std::string& path) {
    return path.rfind("src/", 0) == 0 && (path.size() > 2 && (path.substr(path.size() - 2) == ".h" ||
                                                              path.substr(path.size() - 4) == ".cpp"));
}

// Every file of src/ outside a layer folder, and every include of a src/ file that does not
// resolve to src/<path> or that names a folder its own may not include.
std::vector<std::string> layout_problems(const Tree& tree, const std::vector<Layer>& layers) {
    const auto allowed = may_include(layers);
    std::vector<std::string> problems;
    for (const auto& [path, text] : tree) {
        if (!is_src_code(path)) continue;
        const std::string from = folder_of(path);
        if (!allowed.count(from)) {
            problems.push_back(path + ": not in a layer folder (docs/layers.md)");
            continue;
        }
        for (const auto& [line, target] : includes_of(text)) {
            const std::string where = path + ":" + std::to_string(line) + ": \"" + target + "\"";
            if (!tree.count("src/" + target)) {
                problems.push_back(where + " is not a file of src/ (includes name their folder)");
                continue;
            }
            const std::string to = folder_of("src/" + target);
            if (!allowed.at(from).count(to)) problems.push_back(where + ": " + from + "/ may not include " + to + "/");
        }
    }
    return problems;
}

// A circle of includes between units (a unit is x.h with x.cpp: src/engine/ops), as the list
// of units around it, the first repeated at the end; empty if there is none.
std::vector<std::string> include_cycle(const Tree& tree) {
    auto unit = [](const std::string& path) { return path.substr(0, path.rfind('.')); };
    std::map<std::string, std::set<std::string>> edges;
    for (const auto& [path, text] : tree) {
        if (!is_src_code(path)) continue;
        std::set<std::string>& out = edges[unit(path)];
        for (const auto& inc : includes_of(text))
            if (unit("src/" + inc.second) != unit(path)) out.insert(unit("src/" + inc.second));
    }
    std::map<std::string, int> state;  // 0 unseen, 1 on the current path, 2 done
    std::vector<std::string> path, cycle;
    std::function<bool(const std::string&)> visit = [&](const std::string& u) {
        state[u] = 1;
        path.push_back(u);
        for (const std::string& v : edges[u]) {
            if (state[v] == 1) {
                cycle.assign(std::find(path.begin(), path.end(), v), path.end());
                cycle.push_back(v);
                return true;
            }
            if (state[v] == 0 && visit(v)) return true;
        }
        path.pop_back();
        state[u] = 2;
        return false;
    };
    std::vector<std::string> units;
    for (const auto& e : edges) units.push_back(e.first);
    for (const std::string& u : units)
        if (state[u] == 0 && visit(u)) return cycle;
    return {};
}

struct FunctionSpan {
    std::string name;
    int first_line = 0, last_line = 0;
    int lines() const { return last_line - first_line + 1; }
};

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t\n\r"), e = s.find_last_not_of(" \t\n\r");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// What a '{' opens at namespace or class scope, judged from the text before it since the last
// ';', '{' or '}' (the head): a scope whose members are scanned in turn (namespace, class,
// extern "C"), a function body, or data (an initializer or an enum). Inner braces are those
// within a body or data; Head braces are member initialisers (`S() : a_{1} {`).
enum class Brace { Scope, Function, Data, Inner, Head };

Brace classify(const std::string& head) {
    static const std::regex word_scope(R"(\bnamespace\b)"),
        record(R"(^(template\s*<[^{]*>\s*)?(struct|class|union)\b)"),
        enumeration(R"(^(typedef\s+)?enum\b)"), extern_c(R"(^extern\b[^(]*$)"), oper(R"(\boperator\b)");
    const std::string h = trim(head);
    if (std::regex_search(h, word_scope) || std::regex_search(h, extern_c)) return Brace::Scope;
    if (std::regex_search(h, enumeration)) return Brace::Data;
    if (std::regex_search(h, record) && h.find('(') == std::string::npos) return Brace::Scope;
    if (std::regex_search(h, oper)) return Brace::Function;
    int depth = 0;
    for (size_t i = 0; i < h.size(); ++i) {
        const char c = h[i];
        if (c == '(') {
            if (depth == 0) return Brace::Function;
            ++depth;
        } else if (c == ')') {
            --depth;
        } else if (c == '=' && depth == 0) {
            return Brace::Data;
        }
    }
    return Brace::Data;
}

// The name a function head declares: the (qualified) identifier before its first '('.
std::string function_name(const std::string& head) {
    const std::string h = trim(head);
    size_t open = h.find('(');
    const size_t op = h.find("operator");
    if (op != std::string::npos) open = h.find('(', h.find_first_not_of(" ", op + 8) + 1);
    size_t b = open;
    while (b > 0 && (synth_test::is_word_char(h[b - 1]) || h[b - 1] == ':' || h[b - 1] == '~' ||
                     (op != std::string::npos && b > op)))
        --b;
    return trim(h.substr(b, open - b));
}

// Every function body at namespace or class scope in C++ text: its name and its lines, from
// the first line of its head to its closing brace. Lambdas and local classes count with the
// function they are written in.
std::vector<FunctionSpan> function_spans(const std::string& text) {
    const std::string code = synth_test::strip_comments(text, synth_test::Keep::Structure);
    std::vector<Brace> stack;
    std::vector<FunctionSpan> open, done;
    std::string head;
    int line = 1, head_line = 1;
    for (const char c : code) {
        const bool scanning = stack.empty() || stack.back() == Brace::Scope;
        if (c == '{') {
            Brace kind = Brace::Inner;
            if (scanning) {
                // Member initialisers in braces (`: a_{1}, b_{}`) belong to the head.
                const std::string h = trim(head);
                const size_t close = h.rfind(')');
                static const std::regex colon(R"((^|[^:]):([^:]|$))");  // not ::
                const bool init_list = close != std::string::npos && std::regex_search(h.substr(close), colon);
                if (init_list && !h.empty() && (synth_test::is_word_char(h.back()) || h.back() == '>')) {
                    head += "{";
                    stack.push_back(Brace::Head);
                    continue;
                }
                kind = classify(head);
                if (kind == Brace::Function) open.push_back({function_name(head), head_line, 0});
                head.clear();
            }
            stack.push_back(kind);
        } else if (c == '}') {
            if (stack.empty()) continue;  // unbalanced: the scanner's input is not C++
            const Brace kind = stack.back();
            stack.pop_back();
            if (kind == Brace::Head) {
                head += "}";
                continue;
            }
            if (kind == Brace::Function) {
                open.back().last_line = line;
                done.push_back(open.back());
                open.pop_back();
            }
            if (stack.empty() || stack.back() == Brace::Scope) head.clear();
        } else if (scanning) {
            if (c == ';') {
                head.clear();
            } else if (c == ':' && (trim(head) == "public" || trim(head) == "private" || trim(head) == "protected")) {
                head.clear();
            } else if (!head.empty() || !std::isspace(static_cast<unsigned char>(c))) {
                if (trim(head).empty()) head_line = line;
                head += c;
            }
        }
        if (c == '\n') ++line;
    }
    return done;
}

// The functions of a tree's src/ files longer than `max_lines`, as "path:line name (N lines)".
std::vector<std::string> long_functions(const Tree& tree, int max_lines) {
    std::vector<std::string> out;
    for (const auto& [path, text] : tree) {
        if (!is_src_code(path) || path == kExemptFromLength) continue;
        for (const FunctionSpan& f : function_spans(text))
            if (f.lines() > max_lines)
                out.push_back(path + ":" + std::to_string(f.first_line) + " " + f.name + " (" +
                              std::to_string(f.lines()) + " lines)");
    }
    return out;
}

// The layer table of docs/layers.md: each row whose first cell is a backticked folder
// (`engine/gemm/`), with the backticked folders of its last cell (what it may include).
std::vector<std::pair<std::string, std::set<std::string>>> documented_layers(const std::string& md) {
    static const std::regex row(R"(^\|\s*`([a-z/]+)/`\s*\|.*\|([^|]*)\|\s*$)"), folder("`([a-z/]+)/`");
    std::vector<std::pair<std::string, std::set<std::string>>> out;
    std::istringstream in(md);
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
        if (!std::regex_match(line, m, row)) continue;
        std::set<std::string> includes;
        const std::string cell = m[2];
        for (std::sregex_iterator it(cell.begin(), cell.end(), folder), end; it != end; ++it)
            includes.insert((*it)[1]);
        out.emplace_back(m[1], includes);
    }
    return out;
}

Tree source_tree() {
    const auto root = synth_test::source_root();
    REQUIRE_MESSAGE(!root.empty(), "no src/ and docs/ above the test binary");
    return synth_test::read_tree(root, {"src", "docs/layers.md"});
}

std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (const std::string& l : lines) s += "\n  " + l;
    return s;
}

}  // namespace

TEST_CASE("layout: the layer checks fail on a made-up tree that breaks each rule") {
    const Tree good = {
        {"src/base/error.h", "#pragma once\n"},
        {"src/engine/ops.h", "#include \"base/error.h\"\n#include \"engine/gemm/blas.h\"\n"},
        {"src/engine/gemm/blas.h", "#include \"base/error.h\"\n"},
        {"src/text/bpe.h", "#include \"base/error.h\"\n"},
        {"src/models/lm.cpp", "#include \"engine/ops.h\"\n#include \"text/bpe.h\"\n// #include \"bin/x.h\"\n"},
        {"src/bin/lm.cpp", "#include \"models/lm.h\"\n"},
        {"src/models/lm.h", "#include \"engine/ops.h\"\n"},
    };
    CHECK(layout_problems(good, kLayers).empty());
    CHECK(include_cycle(good).empty());

    Tree loose = good;  // a .cpp straight in src/
    loose["src/util.cpp"] = "";
    REQUIRE(layout_problems(loose, kLayers).size() == 1);
    CHECK(layout_problems(loose, kLayers)[0].find("src/util.cpp: not in a layer folder") == 0);

    Tree up = good;  // the engine reaching up into models, text reaching into the engine
    up["src/engine/ops.h"] += "#include \"models/lm.h\"\n";
    up["src/text/bpe.h"] += "#include \"engine/ops.h\"\n";
    const auto problems = layout_problems(up, kLayers);
    REQUIRE(problems.size() == 2);
    CHECK(problems[0] == "src/engine/ops.h:3: \"models/lm.h\": engine/ may not include models/");
    CHECK(problems[1] == "src/text/bpe.h:2: \"engine/ops.h\": text/ may not include engine/");
    CHECK(include_cycle(up) == std::vector<std::string>{"src/models/lm", "src/engine/ops", "src/models/lm"});

    Tree unresolved = good;  // a missing header, and one named without its folder
    unresolved["src/models/lm.cpp"] += "#include \"models/gone.h\"\n#include \"lm.h\"\n";
    CHECK(layout_problems(unresolved, kLayers).size() == 2);

    Tree circle = good;  // a circle inside one layer, through a .cpp
    circle["src/engine/gemm/blas.cpp"] = "#include \"engine/gemm/precision.h\"\n";
    circle["src/engine/gemm/precision.h"] = "#include \"engine/gemm/blas.h\"\n";
    CHECK(layout_problems(circle, kLayers).empty());
    CHECK(include_cycle(circle).size() == 3);
}

TEST_CASE("layout: the function scanner measures bodies at namespace and class scope") {
    const std::string code =
        "#include <x>\n"                                        // 1
        "#define BLOCK { {\n"                                   // 2
        "namespace a {\n"                                       // 3
        "const int table[] = {1, 2, 3};\n"                      // 4
        "enum class E { X, Y };\n"                              // 5
        "int f(int x) {\n"                                      // 6
        "    auto g = [&](int y) { return y + 1; };\n"          // 7
        "    if (x) { return g(x); }  // }}} in a comment\n"    // 8
        "    const char* s = \"}\";\n"                          // 9
        "    return 0;\n"                                       // 10
        "}\n"                                                   // 11
        "struct S : Base {\n"                                   // 12
        "  public:\n"                                           // 13
        "    S() : a_{1}, b_(2) {\n"                            // 14
        "        a_ = 3;\n"                                     // 15
        "    }\n"                                               // 16
        "    bool operator==(const S& o) const { return a_ == o.a_; }\n"  // 17
        "    int a_, b_;\n"                                     // 18
        "};\n"                                                  // 19
        "template <class T>\n"                                  // 20
        "T Outer::h(T t) const\n"                               // 21
        "{\n"                                                   // 22
        "    /* } */ return t;\n"                               // 23
        "}\n"                                                   // 24
        "}  // namespace a\n";                                  // 25
    const auto spans = function_spans(code);
    REQUIRE(spans.size() == 4);
    CHECK(spans[0].name == "f");
    CHECK(spans[0].first_line == 6);
    CHECK(spans[0].last_line == 11);
    CHECK(spans[1].name == "S");
    CHECK(spans[1].first_line == 14);
    CHECK(spans[1].lines() == 3);
    CHECK(spans[2].name == "operator==");
    CHECK(spans[2].lines() == 1);
    CHECK(spans[3].name == "Outer::h");
    CHECK(spans[3].first_line == 20);
    CHECK(spans[3].last_line == 24);

    std::string long_body = "void long_one() {\n";
    for (int i = 0; i < 80; ++i) long_body += "    x();\n";
    long_body += "}\n";  // 82 lines
    const Tree tree = {{"src/base/a.cpp", long_body}, {kExemptFromLength, long_body}, {"tests/t.cpp", long_body}};
    CHECK(long_functions(tree, 81) == std::vector<std::string>{"src/base/a.cpp:1 long_one (82 lines)"});
    CHECK(long_functions(tree, 82).empty());
}

TEST_CASE("layout: docs/layers.md lists the layers and what each may include") {
    const Tree tree = source_tree();
    REQUIRE(tree.count("docs/layers.md"));
    const auto documented = documented_layers(tree.at("docs/layers.md"));
    const auto allowed = may_include(kLayers);
    REQUIRE(documented.size() == kLayers.size());
    for (size_t i = 0; i < kLayers.size(); ++i) {
        CAPTURE(kLayers[i].folder);
        CHECK(documented[i].first == kLayers[i].folder);
        std::set<std::string> below = allowed.at(kLayers[i].folder);
        below.erase(kLayers[i].folder);
        auto list = [](const std::set<std::string>& folders) {
            std::string s;
            for (const std::string& f : folders) s += f + "/ ";
            return s;
        };
        CHECK(list(documented[i].second) == list(below));
    }
    // And the parser is not blind: a row out of order or a wrong cell shows.
    const std::string md = "| `base/` | x | nothing |\n| `engine/gemm/` | y | `base/` |\n";
    REQUIRE(documented_layers(md).size() == 2);
    CHECK(documented_layers(md)[1].second == std::set<std::string>{"base"});
}

TEST_CASE("layout: every .cpp in a layer folder, every include resolved and none running up a layer") {
    const Tree tree = source_tree();
    const auto problems = layout_problems(tree, kLayers);
    CHECK_MESSAGE(problems.empty(), joined(problems));
}

TEST_CASE("layout: no include circle between the units of src/") {
    const auto cycle = include_cycle(source_tree());
    CHECK_MESSAGE(cycle.empty(), joined(cycle));
}

TEST_CASE("layout: no function longer than 80 lines outside the op bodies of src/engine/ops.cpp") {
    const auto found = long_functions(source_tree(), kMaxFunctionLines);
    CHECK_MESSAGE(found.empty(), joined(found));
}

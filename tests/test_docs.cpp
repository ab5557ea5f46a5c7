// Docs that cannot drift: every path, binary, file, class and function that README.md, docs/*.md
// and the READMEs of results/, data/ and fuzz/ name exists in the tree, and so does every path
// that the comments of src/ and the scripts name. What counts as a reference:
//   - a path starting src/, scripts/, tests/ or docs/, anywhere in the text (`*`, `**`,
//     `<placeholder>` and `{a,b}` match as in a shell): the file or folder exists;
//   - build/NAME, NAME a lowercase word: src/bin/NAME.cpp exists (but for build/tests and
//     kBuildFolders, the folders make writes);
//   - a backticked name in prose (not in a fenced block):
//       `Class::member`, `ns::name`, either with (arguments): the text `Class::member` occurs in
//         the C++ code, or a C++ file that declares Class (struct, class, enum, namespace) has
//         `member`;
//       `name()` (empty parentheses), `snake_case_name`, `CamelCase` (3 characters or more):
//         the name is a word of the code;
//       `name.py`, `name.sh`: a file of that name exists;
//     and single lowercase words (`mix`), math (`softmax(w)`, `Q K^T`), flags, commands, shapes
//     and dotted parameter names are not references;
//   - a relative Markdown link `[text](target#anchor)`: the target exists, and docs/README.md
//     links every page of docs/;
//   - a file name `x.h` or `x.cpp` (not a path's last part), in the docs and in the comments of
//     src/: a file of that name exists; and a file of src/ opening `// name.h:` is name.h.
// "The code" is src/, tests/, scripts/, fuzz/'s sources and data/fetch.sh with their comments
// left out, so a name that survives only in a comment does not count. kNotCode lists the names
// of other projects that the docs cite.
#include <doctest/doctest.h>

#include <regex>
#include <set>

#include "source_tree.h"

using synth_test::Tree;

namespace {

// Names the docs cite from other code (fairseq, nanoGPT, Long Range Arena, Multi30k's file
// names), and the system header a comment names: written as the docs and comments write them.
const std::set<std::string> kNotCode = {
    "LightConvEncoderLayer", "LightweightConv1dTBC", "Linear", "lightconv_iwslt_de_en", "lightconv_lm",
    "padding_l", "transformer_tiny", "weight_dropout", "weight_softmax",  // fairseq
    "eval_iters",                                                         // nanoGPT
    "classifier_head",                                                    // Long Range Arena
    "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr",           // Multi30k (data/README.md)
    "cblas.h",                                                            // OpenBLAS
};

// Paths the docs name on purpose although they do not exist: a file the reader is shown how
// to write (docs/adding-a-variant.md), folders that make writes under build/.
const std::set<std::string> kBuildFolders = {"debug", "portable", "obj", "fuzz"};

const char* const kSelf = "tests/test_docs.cpp";  // its made-up docs and names do not count

bool ends_with(const std::string& s, const std::string& end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}
bool is_cpp(const std::string& path) { return ends_with(path, ".h") || ends_with(path, ".cpp"); }
bool is_doc(const std::string& path) {
    return path == "README.md" || path == "results/README.md" || path == "data/README.md" || path == "fuzz/README.md" ||
           (path.rfind("docs/", 0) == 0 && ends_with(path, ".md"));
}

// The code a reference may point to, and the words in it.
struct Code {
    std::map<std::string, std::string> files;  // path -> text without comments
    std::set<std::string> words, basenames;
};

Code code_of(const Tree& tree) {
    Code code;
    for (const auto& [path, text] : tree) {
        const bool code_file = path.rfind("src/", 0) == 0 || path.rfind("tests/", 0) == 0 ||
                               path.rfind("scripts/", 0) == 0 || (path.rfind("fuzz/", 0) == 0 && is_cpp(path)) ||
                               path == "data/fetch.sh";
        if (!code_file) continue;
        code.basenames.insert(path.substr(path.rfind('/') + 1));
        if (path == kSelf) continue;
        std::string body;
        if (is_cpp(path)) {
            body = synth_test::strip_comments(text);
        } else {  // a script: whole-line '#' comments out
            std::istringstream in(text);
            for (std::string line; std::getline(in, line);) {
                const size_t first = line.find_first_not_of(" \t");
                body += (first != std::string::npos && line[first] == '#') ? "\n" : line + "\n";
            }
        }
        for (size_t i = 0; i < body.size();) {
            if (!synth_test::is_word_char(body[i])) {
                ++i;
                continue;
            }
            size_t j = i;
            while (j < body.size() && synth_test::is_word_char(body[j])) ++j;
            if (!std::isdigit(static_cast<unsigned char>(body[i]))) code.words.insert(body.substr(i, j - i));
            i = j;
        }
        code.files[path] = std::move(body);
    }
    return code;
}

// A path as a pattern: `*` and `<...>` any name, `**` anything, `{a,b}` either.
std::regex path_pattern(const std::string& path) {
    std::string re;
    for (size_t i = 0; i < path.size(); ++i) {
        const char c = path[i];
        if (c == '*' && i + 1 < path.size() && path[i + 1] == '*') {
            re += ".*";
            ++i;
        } else if (c == '*') {
            re += "[^/]*";
        } else if (c == '<' && path.find('>', i) != std::string::npos) {
            i = path.find('>', i);
            re += "[^/]+";
        } else if (c == '{') {
            re += "(";
        } else if (c == '}') {
            re += ")";
        } else if (c == ',') {
            re += "|";
        } else {
            if (std::string(".+()[]^$|\\?").find(c) != std::string::npos) re += '\\';
            re += c;
        }
    }
    return std::regex(re);
}

bool path_exists(const Tree& tree, const std::string& path) {
    if (path.find_first_of("*<{") == std::string::npos) return synth_test::tree_has(tree, path);
    std::regex pattern;
    try {
        pattern = path_pattern(path);
    } catch (const std::regex_error&) {  // unbalanced braces: a path no file can have
        return false;
    }
    for (const auto& entry : tree) {  // the file, then each folder above it
        for (std::string p = entry.first;; p = p.substr(0, p.rfind('/'))) {
            if (std::regex_match(p, pattern) || std::regex_match(p + "/", pattern)) return true;
            if (p.find('/') == std::string::npos) break;
        }
    }
    return false;
}

// A qualified name (`A::b`, `A::b(x)`) of the code.
bool qualified_exists(const Code& code, std::string name) {
    name = name.substr(0, name.find('('));
    const size_t last = name.rfind("::");
    const std::string member = name.substr(last + 2), owner_path = name.substr(0, last);
    const size_t colon = owner_path.rfind(':');
    const std::string owner = colon == std::string::npos ? owner_path : owner_path.substr(colon + 1);
    const std::regex declares("\\b(struct|class|namespace|enum class|enum)\\s+" + owner + "\\b");
    for (const auto& [path, text] : code.files) {
        if (!is_cpp(path)) continue;
        if (text.find(name) != std::string::npos) return true;
        if (text.find(owner) != std::string::npos && synth_test::has_word(text, member) &&
            std::regex_search(text, declares))
            return true;
    }
    return false;
}

struct Problem {
    std::string where, what;
};

// Every path and build/ binary named in `text`, checked against the tree.
void check_paths(const Tree& tree, const std::string& file, const std::string& text, std::vector<Problem>& out) {
    static const std::regex path(R"((^|[^A-Za-z0-9_./-])((src|scripts|tests|docs|build)/[A-Za-z0-9_./*<>{},-]*))");
    std::istringstream in(text);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.find('/') == std::string::npos) continue;
        for (std::sregex_iterator it(line.begin(), line.end(), path), end; it != end; ++it) {
            std::string p = (*it)[2];
            if (p.find('{') == std::string::npos && p.find(',') != std::string::npos) p = p.substr(0, p.find(','));
            while (!p.empty() && (p.back() == '.' || p.back() == ',')) p.pop_back();
            const std::string where = file + ":" + std::to_string(n);
            if (p.rfind("build/", 0) == 0) {
                static const std::regex binary("[a-z_]+");
                const std::string bin = p.substr(6);
                if (!std::regex_match(bin, binary) || kBuildFolders.count(bin)) continue;
                if (bin != "tests" && !tree.count("src/bin/" + bin + ".cpp"))
                    out.push_back({where, p + ": no src/bin/" + bin + ".cpp"});
            } else if (!path_exists(tree, p)) {
                out.push_back({where, p + ": no such file or folder"});
            }
        }
    }
}

// The backticked spans of a Markdown text outside fenced blocks, with their line numbers.
std::vector<std::pair<int, std::string>> code_spans(const std::string& md) {
    std::vector<std::pair<int, std::string>> out;
    std::istringstream in(md);
    std::string line;
    bool fenced = false;
    for (int n = 1; std::getline(in, line); ++n) {
        const size_t indent = line.find_first_not_of(" ");
        if (indent != std::string::npos && line.compare(indent, 3, "```") == 0) {
            fenced = !fenced;
            continue;
        }
        if (fenced) continue;
        for (size_t open = line.find('`'); open != std::string::npos;) {
            const size_t close = line.find('`', open + 1);
            if (close == std::string::npos) break;
            out.emplace_back(n, line.substr(open + 1, close - open - 1));
            open = line.find('`', close + 1);
        }
    }
    return out;
}

// Every reference a doc makes (see the top of this file) that the tree does not hold.
void check_names(const Code& code, const std::string& file, const std::string& md, std::vector<Problem>& out) {
    static const std::regex qualified(R"(^~?[A-Za-z_]\w*(::~?[A-Za-z_]\w*)+(\(.*\))?$)"),
        call(R"(^([A-Za-z_]\w*)\(\)$)"),
        snake("^[a-z][a-z0-9]*(_[a-z0-9]+)+$"), camel("^[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*$"),
        file_name(R"(^[\w-]+\.(py|sh)$)");
    for (const auto& [n, span] : code_spans(md)) {
        if (kNotCode.count(span)) continue;
        const std::string where = file + ":" + std::to_string(n);
        std::smatch m;
        if (std::regex_match(span, qualified)) {
            if (!qualified_exists(code, span)) out.push_back({where, "`" + span + "`: not in the code"});
        } else if (std::regex_match(span, m, call) || std::regex_match(span, snake) ||
                   (std::regex_match(span, camel) && span.size() >= 3)) {
            const std::string name = m.size() > 1 ? std::string(m[1]) : span;
            if (!code.words.count(name)) out.push_back({where, "`" + span + "`: not a name in the code"});
        } else if (std::regex_match(span, file_name)) {
            if (!code.basenames.count(span)) out.push_back({where, "`" + span + "`: no file of that name"});
        }
    }
}

// File names without their folder (`tensor.h`) in a doc or a C++ file's comments.
void check_file_names(const Code& code, const std::string& file, const std::string& text,
                      std::vector<Problem>& out) {
    static const std::regex name(R"((^|[^\w/.-])([A-Za-z_][\w-]*\.(h|cpp))\b)");
    std::istringstream in(text);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
        if (line.find(".h") != std::string::npos || line.find(".cpp") != std::string::npos)
        for (std::sregex_iterator it(line.begin(), line.end(), name), end; it != end; ++it)
            if (!code.basenames.count((*it)[2]) && !kNotCode.count((*it)[2]))
                out.push_back({file + ":" + std::to_string(n), std::string((*it)[2]) + ": no file of that name"});
}

// "docs/../README.md" -> "README.md".
std::string normalised(const std::string& path) {
    std::vector<std::string> parts;
    std::istringstream in(path);
    for (std::string part; std::getline(in, part, '/');) {
        if (part == "..") {
            if (!parts.empty()) parts.pop_back();
        } else if (!part.empty() && part != ".") {
            parts.push_back(part);
        }
    }
    std::string out;
    for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
    return out;
}

// The relative link targets of a Markdown file, resolved from its folder, with their lines.
std::vector<std::pair<int, std::string>> links_of(const std::string& file, const std::string& md) {
    static const std::regex link(R"(\]\(([^)\s#]*)(#[^)\s]*)?\))");
    const std::string folder = file.find('/') == std::string::npos ? "" : file.substr(0, file.rfind('/') + 1);
    std::vector<std::pair<int, std::string>> out;
    std::istringstream in(md);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.find("](") == std::string::npos) continue;
        for (std::sregex_iterator it(line.begin(), line.end(), link), end; it != end; ++it) {
            const std::string target = (*it)[1];
            if (target.empty() || target.find("://") != std::string::npos || target.rfind("mailto:", 0) == 0) continue;
            out.emplace_back(n, normalised(folder + target));
        }
    }
    return out;
}

void check_links(const Tree& tree, const std::string& file, const std::string& md, std::vector<Problem>& out) {
    for (const auto& [n, target] : links_of(file, md))
        if (!synth_test::tree_has(tree, target))
            out.push_back({file + ":" + std::to_string(n), "link to " + target + ": no such file or folder"});
}

// docs/README.md, the index of the docs, links every page of docs/.
void check_index(const Tree& tree, std::vector<Problem>& out) {
    if (!tree.count("docs/README.md")) return;
    std::set<std::string> linked;
    for (const auto& link : links_of("docs/README.md", tree.at("docs/README.md"))) linked.insert(link.second);
    for (const auto& entry : tree)
        if (is_doc(entry.first) && entry.first.rfind("docs/", 0) == 0 && entry.first != "docs/README.md" &&
            !linked.count(entry.first))
            out.push_back({"docs/README.md", entry.first + ": not in the index"});
}

// A C++ file's opening comment names the file itself ("// engine/ops.h: ..." or "// ops.h: ...").
void check_self_name(const std::string& file, const std::string& text, std::vector<Problem>& out) {
    static const std::regex opening(R"(^// ([\w/]+\.(h|cpp)):)");
    std::smatch m;
    const std::string first = text.substr(0, text.find('\n'));
    if (std::regex_search(first, m, opening) && !ends_with(file, "/" + std::string(m[1])))
        out.push_back({file + ":1", std::string(m[1]) + ": the file calls itself by another name"});
}

std::vector<Problem> doc_problems(const Tree& tree) {
    const Code code = code_of(tree);
    std::vector<Problem> out;
    for (const auto& [path, text] : tree) {
        if (path == kSelf) continue;
        if (is_doc(path)) {
            check_paths(tree, path, text, out);
            check_names(code, path, text, out);
            check_links(tree, path, text, out);
            check_file_names(code, path, text, out);
        } else if (path.rfind("src/", 0) == 0 && is_cpp(path)) {
            check_paths(tree, path, synth_test::strip_comments(text, synth_test::Keep::Comments), out);
            check_file_names(code, path, synth_test::strip_comments(text, synth_test::Keep::Comments), out);
            check_self_name(path, text, out);
        } else if (path.rfind("scripts/", 0) == 0) {
            check_paths(tree, path, text, out);
        }
    }
    check_index(tree, out);
    return out;
}

std::string joined(const std::vector<Problem>& problems) {
    std::string s;
    for (const Problem& p : problems) s += "\n  " + p.where + ": " + p.what;
    return s;
}

}  // namespace

TEST_CASE("docs: the checker fails when a named path or name is removed") {
    const Tree good = {
        {"README.md", "Read docs/tour.md, then src/train/ (`build/lm`); [all docs](docs/README.md).\n"},
        {"docs/README.md", "[the tour](tour.md#start), [home](../README.md), [web](https://x.org/a.md)\n"},
        {"docs/tour.md",
         "The loop is `Trainer::run` (src/train/trainer.cpp), the step `train_step`, the task a\n"
         "`TrainTask`; its loss `loss()`, see `trainer.h` and `src/attention/<name>.cpp`,\n"
         "`src/train/trainer.*`. Not names: `mix`, `softmax(w)`, `--steps=1`, `Q K^T`, `x.dim(1)`.\n"
         "```\n`NotInProse` in a fenced block\n```\n"},
        {"src/train/trainer.h",
         "// The loop (docs/tour.md).\nstruct Trainer { void run(); };\nstruct TrainTask { float loss(); };\n"},
        {"src/train/trainer.cpp", "void Trainer::run() {}\nvoid train_step() {}\n"},
        {"src/attention/dense.cpp", ""},
        {"src/bin/lm.cpp", ""},
        {"scripts/x.sh", "# runs src/bin/lm.cpp\n"},
    };
    CHECK_MESSAGE(doc_problems(good).empty(), joined(doc_problems(good)));

    auto one_problem = [](const Tree& tree, const std::string& where, const std::string& what) {
        const auto problems = doc_problems(tree);
        CAPTURE(joined(problems));
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].where == where);
        CHECK(problems[0].what.find(what) == 0);
    };
    Tree t = good;  // a named source file gone
    t.erase("src/train/trainer.cpp");
    t["src/train/loop.cpp"] = good.at("src/train/trainer.cpp");
    one_problem(t, "docs/tour.md:1", "src/train/trainer.cpp: no such file");

    t = good;  // a function renamed; its old name left in a comment does not count
    t["src/train/trainer.cpp"] = "void Trainer::run() {}\nvoid train_run() {}  // was train_step\n";
    one_problem(t, "docs/tour.md:1", "`train_step`: not a name");

    t = good;  // a member gone from its class
    t["src/train/trainer.h"] = "struct Trainer { void go(); };\nstruct TrainTask { float loss(); };\n";
    t["src/train/trainer.cpp"] = "void Trainer::go() {}\nvoid train_step() {}\n";
    one_problem(t, "docs/tour.md:1", "`Trainer::run`: not in the code");

    t = good;  // a class renamed
    t["src/train/trainer.h"] = "struct Trainer { void run(); };\nstruct Task { float loss(); };\n";
    one_problem(t, "docs/tour.md:2", "`TrainTask`: not a name");

    t = good;  // a header renamed, with the comment and the doc that name it
    t["src/train/loop.h"] = t.at("src/train/trainer.h");
    t.erase("src/train/trainer.h");
    t["src/train/loop.cpp"] = "// see loop.h, not trainer.h\n";
    const auto problems = doc_problems(t);
    REQUIRE(problems.size() == 2);
    CHECK(problems[0].where == "docs/tour.md:2");
    CHECK(problems[0].what == "trainer.h: no file of that name");
    CHECK(problems[1].where == "src/train/loop.cpp:1");

    t = good;  // a header that still opens with its old name
    t["src/train/trainer.h"] = "// trainer.cpp: the loop.\n" + t.at("src/train/trainer.h");
    one_problem(t, "src/train/trainer.h:1", "trainer.cpp: the file calls itself");

    t = good;  // a page missing from the index, and a link to a page gone
    t["docs/new.md"] = "[back](README.md), [old](old.md)\n";
    const auto links = doc_problems(t);
    REQUIRE(links.size() == 2);
    CHECK(links[0].what == "link to docs/old.md: no such file or folder");
    CHECK(links[1].what == "docs/new.md: not in the index");

    t = good;  // paths no file can match: a half brace, an open placeholder
    t["docs/tour.md"] += "Also src/train/trainer.{h and src/train/<loop.\n";
    CHECK(doc_problems(t).size() == 2);

    t = good;  // a binary, a variant folder and a script's path gone
    t.erase("src/bin/lm.cpp");
    t.erase("src/attention/dense.cpp");
    CHECK(doc_problems(t).size() == 3);
}

TEST_CASE("docs: every path and name that the READMEs and docs/ name exists in the tree") {
    const auto root = synth_test::source_root();
    REQUIRE_MESSAGE(!root.empty(), "no src/ and docs/ above the test binary");
    const Tree tree = synth_test::read_tree(root, {"src", "scripts", "tests", "docs", "README.md", "results",
                                                   "data/README.md", "data/fetch.sh", "fuzz"});
    REQUIRE(tree.count("docs/tour.md"));
    const auto problems = doc_problems(tree);
    CHECK_MESSAGE(problems.empty(), joined(problems));
}

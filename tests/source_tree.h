// The repository's own files as test input, for the checks that keep the layout
// (test_layout.cpp) and the docs (test_docs.cpp) true. A tree is a map from a '/'-separated
// path to the file's text, so every checker also runs on a tree written inline in a test.
#pragma once

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace synth_test {

// Path relative to the repository root -> contents ("" for files not read as text).
using Tree = std::map<std::string, std::string>;

// The repository root: the nearest ancestor of the test binary that has src/ and docs/
// (build/tests and build/debug/tests both find it), or "" if there is none.
inline std::filesystem::path source_root() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    for (; !ec && dir.has_relative_path(); dir = dir.parent_path()) {
        std::error_code missing;
        if (fs::is_directory(dir / "src", missing) && fs::is_directory(dir / "docs", missing)) return dir;
    }
    return {};
}

inline bool is_text_file(const std::string& path) {
    const std::string name = path.substr(path.rfind('/') + 1);
    const std::string ext = name.find('.') == std::string::npos ? "" : name.substr(name.rfind('.'));
    return ext == ".h" || ext == ".cpp" || ext == ".md" || ext == ".py" || ext == ".sh" || ext.empty();
}

// Every file under root/<top> for each top (a folder or a single file). Text files (.h, .cpp,
// .md, .py, .sh, and names without an extension such as scripts/sweep) are read.
inline Tree read_tree(const std::filesystem::path& root, const std::vector<std::string>& tops) {
    namespace fs = std::filesystem;
    Tree tree;
    auto add = [&](const fs::path& file) {
        const std::string rel = fs::relative(file, root).generic_string();
        std::string text;
        if (is_text_file(rel)) {
            std::ifstream in(file, std::ios::binary);
            std::ostringstream s;
            s << in.rdbuf();
            text = s.str();
        }
        tree[rel] = text;
    };
    for (const std::string& top : tops) {
        const fs::path p = root / top;
        if (fs::is_regular_file(p)) add(p);
        if (!fs::is_directory(p)) continue;
        for (const auto& e : fs::recursive_directory_iterator(p))
            if (e.is_regular_file()) add(e.path());
    }
    return tree;
}

// A file of the tree, or a folder that holds one.
inline bool tree_has(const Tree& tree, const std::string& path) {
    std::string p = path;
    while (!p.empty() && p.back() == '/') p.pop_back();
    if (tree.count(p)) return true;
    auto it = tree.lower_bound(p + "/");
    return it != tree.end() && it->first.compare(0, p.size() + 1, p + "/") == 0;
}

// What to keep of C++ text; everything else is blanked to spaces, newlines kept, so line
// numbers still hold.
enum class Keep {
    Code,         // the code with its string literals (comments blanked)
    Structure,    // the code with string and character literals emptied and preprocessor lines
                  // blanked: only the braces, parentheses and names the structure scanners read
    Comments,     // the comments only
};

inline std::string strip_comments(const std::string& text, Keep keep = Keep::Code) {
    std::string out;
    out.reserve(text.size());
    const size_t n = text.size();
    const bool code = keep != Keep::Comments;
    auto put = [&](const std::string& s, bool is_code) {
        for (const char c : s) out += (c == '\n' || is_code == code) ? c : ' ';
    };
    bool line_start = true;  // only whitespace so far on this line
    for (size_t i = 0; i < n;) {
        const char c = text[i];
        const size_t start = i;
        if (c == '/' && i + 1 < n && text[i + 1] == '/') {
            while (i < n && text[i] != '\n') ++i;
            put(text.substr(start, i - start), false);
        } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
            i += 2;
            while (i < n && !(text[i] == '*' && i + 1 < n && text[i + 1] == '/')) ++i;
            i = std::min(i + 2, n);
            put(text.substr(start, i - start), false);
        } else if (keep == Keep::Structure && c == '#' && line_start) {
            while (i < n && text[i] != '\n') i += (text[i] == '\\' && i + 1 < n) ? 2 : 1;
            std::string blank = text.substr(start, i - start);
            for (char& b : blank) b = b == '\n' ? b : ' ';
            put(blank, true);
        } else if (c == '"' || (c == '\'' && !(i > 0 && std::isalnum(static_cast<unsigned char>(text[i - 1]))))) {
            ++i;
            while (i < n && text[i] != c && text[i] != '\n') i += text[i] == '\\' ? 2 : 1;
            if (i < n && text[i] == c) ++i;
            const size_t len = i - start;
            if (keep == Keep::Structure)  // "" of the same length
                put(len < 2 ? std::string(len, c) : std::string(2, c) + std::string(len - 2, ' '), true);
            else
                put(text.substr(start, len), true);
            line_start = false;
        } else {
            if (c == '\n') line_start = true;
            else if (!std::isspace(static_cast<unsigned char>(c))) line_start = false;
            put(std::string(1, c), true);
            ++i;
        }
    }
    return out;
}

inline bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Whether `word` occurs in `text` as a whole word (not inside a longer identifier).
inline bool has_word(const std::string& text, const std::string& word) {
    for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
        const size_t end = at + word.size();
        if ((at == 0 || !is_word_char(text[at - 1])) && (end == text.size() || !is_word_char(text[end])))
            return true;
    }
    return false;
}

}  // namespace synth_test

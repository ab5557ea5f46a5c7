#include "base/utf8.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace synth {

// ---- UTF-8 -----------------------------------------------------------------------------

int utf8_next(const std::string& s, size_t i, uint32_t* cp, const char** why) {
    unsigned char b = (unsigned char)s[i];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int len;
    uint32_t c;
    if (b < 0xC0) {
        *why = "unexpected continuation byte";
        return 0;
    } else if (b < 0xE0) {
        len = 2, c = b & 0x1F;
    } else if (b < 0xF0) {
        len = 3, c = b & 0x0F;
    } else if (b < 0xF8) {
        len = 4, c = b & 0x07;
    } else {
        *why = "invalid byte (0xF8-0xFF never occur in UTF-8)";
        return 0;
    }
    for (int k = 1; k < len; ++k) {
        if (i + k >= s.size()) {
            *why = "truncated multibyte sequence at end of text";
            return 0;
        }
        unsigned char t = (unsigned char)s[i + k];
        if ((t & 0xC0) != 0x80) {
            *why = "truncated multibyte sequence (missing continuation byte)";
            return 0;
        }
        c = (c << 6) | (t & 0x3F);
    }
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_for_len[len]) {
        *why = "overlong encoding";
        return 0;
    }
    if (c >= 0xD800 && c <= 0xDFFF) {
        *why = "UTF-16 surrogate code point";
        return 0;
    }
    if (c > 0x10FFFF) {
        *why = "code point above U+10FFFF";
        return 0;
    }
    *cp = c;
    return len;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += (char)cp;
    } else if (cp < 0x800) {
        out += (char)(0xC0 | (cp >> 6));
        out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += (char)(0xE0 | (cp >> 12));
        out += (char)(0x80 | ((cp >> 6) & 0x3F));
        out += (char)(0x80 | (cp & 0x3F));
    } else {
        out += (char)(0xF0 | (cp >> 18));
        out += (char)(0x80 | ((cp >> 12) & 0x3F));
        out += (char)(0x80 | ((cp >> 6) & 0x3F));
        out += (char)(0x80 | (cp & 0x3F));
    }
}

size_t line_of(const std::string& s, size_t offset) {
    return 1 + (size_t)std::count(s.begin(), s.begin() + (std::ptrdiff_t)offset, '\n');
}

[[noreturn]] void utf8_fail(const std::string& s, size_t offset, const char* why,
                                   const std::string& what) {
    fail("'", what, "' is not valid UTF-8: ", why, " at byte offset ", offset, " (line ",
         line_of(s, offset), ")");
}

// Every code point of `s`; throws naming `what` at the first invalid sequence.
std::vector<uint32_t> utf8_decode(const std::string& s, const std::string& what) {
    std::vector<uint32_t> cps;
    cps.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        uint32_t cp;
        const char* why = nullptr;
        int len = utf8_next(s, i, &cp, &why);
        if (len == 0) utf8_fail(s, i, why, what);
        cps.push_back(cp);
        i += (size_t)len;
    }
    return cps;
}

void check_text(const std::string& bytes, const std::string& path) {
    SYNTH_CHECK(!bytes.empty(), "'", path, "' is empty");
    const void* nul = std::memchr(bytes.data(), 0, bytes.size());
    if (nul) {
        size_t at = (size_t)((const char*)nul - bytes.data());
        fail("'", path, "' looks binary, not text: NUL byte at byte offset ", at, " (line ",
             line_of(bytes, at), ")");
    }
    for (size_t i = 0; i < bytes.size();) {
        if ((unsigned char)bytes[i] < 0x80) {
            ++i;
            continue;
        }
        uint32_t cp;
        const char* why = nullptr;
        int len = utf8_next(bytes, i, &cp, &why);
        if (len == 0) utf8_fail(bytes, i, why, path);
        i += (size_t)len;
    }
}

}  // namespace synth

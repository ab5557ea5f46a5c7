// utf8.h: UTF-8 decoding and validation (RFC 3629), for every reader of text synth accepts:
// the corpora, the tokenizers, JSON and safetensors headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace synth {

// Throws synth::Error naming `path` if `bytes` is empty, contains a NUL byte (a binary file),
// or is not valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF,
// no truncated sequences). The message gives the byte offset and line of the first problem.
void check_text(const std::string& bytes, const std::string& path);

// Decodes the code point starting at s[i] (RFC 3629). On success returns its length in bytes
// and sets *cp; on failure returns 0 and sets *why (e.g. "overlong encoding").
int utf8_next(const std::string& s, size_t i, uint32_t* cp, const char** why);
// Appends the UTF-8 encoding of code point cp (at most U+10FFFF, not a surrogate).
void append_utf8(std::string& out, uint32_t cp);
// Every code point of `s`; throws naming `what` at the first invalid sequence.
std::vector<uint32_t> utf8_decode(const std::string& s, const std::string& what);
// Throws "'what' is not valid UTF-8: <why> at byte offset <offset> (line N)".
[[noreturn]] void utf8_fail(const std::string& s, size_t offset, const char* why, const std::string& what);
// The 1-based line of byte `offset` of `s`.
size_t line_of(const std::string& s, size_t offset);

}  // namespace synth

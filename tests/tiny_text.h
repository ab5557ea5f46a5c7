// A few kilobytes of deterministic text over a small alphabet: a corpus that trains a tiny LM
// in a fraction of a second (tests of the runners: checkpoints, run directories, sweeps).
#pragma once

#include <cstdint>
#include <string>

inline std::string tiny_text() {
    const char* words[] = {"the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "cat", "sat"};
    std::string text;
    uint32_t x = 12345;
    for (int line = 0; line < 60; ++line) {
        for (int w = 0; w < 9; ++w) {
            x = x * 1664525u + 1013904223u;
            text += std::string(w ? " " : "") + words[(x >> 16) % 12];
        }
        text += "\n";
    }
    return text;
}

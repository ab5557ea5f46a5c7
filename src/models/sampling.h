// sampling.h: text from the decoder-only LM (transformer.h), token by token, as --generate and
// --sample draw it: softmax(logits / temperature) over the k most likely tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "models/transformer.h"

namespace synth {

// How each token is drawn.
struct Sampling {
    float temperature = 1.0f;  // logits / temperature before the softmax
    int top_k = 0;             // keep only the k most likely tokens (0 = all)
};

// Throws, naming --temperature or --top-k, unless the temperature is positive and finite and
// top_k lies in [0, vocab].
void check_sampling(const Sampling& how, int vocab);

// Continues `prompt` by n tokens with incremental decoding (cached keys/values and synthetic
// rows), re-priming from the last L/2 tokens whenever the context is full; the seed fixes the
// draws. Returns the prompt and the new tokens. Checks `how` first (check_sampling).
std::vector<int32_t> generate(TransformerLM& model, std::vector<int32_t> prompt, int n, const Sampling& how,
                              uint64_t seed);

}  // namespace synth

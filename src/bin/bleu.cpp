// bleu: score a translation file against a reference file with sacreBLEU's default corpus
// BLEU and chrF2 (see src/text/bleu.h).
//
//   build/bleu HYP REF           # two sacreBLEU-style lines (score with its signature)
//   build/bleu HYP REF --json    # one JSON object
//
// HYP and REF hold one sentence per line, aligned; a final newline is optional.
#include <cstdio>
#include <string>
#include <vector>

#include "text/bleu.h"
#include "runs/cli.h"
#include "base/error.h"
#include "base/flags.h"
#include "base/utf8.h"
#include "base/io.h"

namespace {

// The lines of a text file; a trailing newline does not start an extra (empty) line.
std::vector<std::string> read_lines(const std::string& path) {
    std::string text = synth::read_file(path);
    // As sacreBLEU, which refuses files that are not UTF-8 text: the loaders' check, shared.
    synth::check_text(text, path);
    SYNTH_CHECK(!text.empty(), "'", path, "' is empty");
    return synth::split_lines(text);
}

void print_json(const synth::BleuScore& b, double chrf) {
    std::printf("{\"bleu\": %.6f, \"precisions\": [%.6f, %.6f, %.6f, %.6f], \"bp\": %.6f, \"ratio\": %.6f, "
                "\"hyp_len\": %lld, \"ref_len\": %lld, \"bleu_signature\": \"%s\", \"chrf2\": %.6f, "
                "\"chrf_signature\": \"%s\"}\n",
                b.score, b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3], b.bp, b.ratio,
                (long long)b.sys_len, (long long)b.ref_len, synth::kBleuSignature, chrf, synth::kChrfSignature);
}

int run(int argc, char** argv) {
    bool json = false;
    synth::Flags flags("bleu HYP REF",
                       "Corpus BLEU (sacreBLEU defaults: 13a, exp smoothing, mixed case) and chrF2 of the\n"
                       "hypothesis file HYP against the reference file REF, one sentence per line.");
    flags.add("json", &json, "print one JSON object instead of sacreBLEU-style lines");
    if (!flags.parse(argc, argv)) return 0;
    const std::vector<std::string>& files = flags.positional();
    SYNTH_CHECK(files.size() == 2, "expected two files, HYP and REF, got ", files.size(), " (see --help)");

    std::vector<std::string> hyps = read_lines(files[0]);
    std::vector<std::string> refs = read_lines(files[1]);
    SYNTH_CHECK(hyps.size() == refs.size(), "'", files[0], "' has ", hyps.size(), " lines but '", files[1],
                "' has ", refs.size());

    synth::BleuScore bleu = synth::corpus_bleu(hyps, refs);
    double chrf = synth::corpus_chrf(hyps, refs);
    if (json) {
        print_json(bleu, chrf);
    } else {
        // sacreBLEU prints "NAME|SIGNATURE = SCORE ..."; bleu.signature() is "BLEU = SCORE ...".
        std::printf("BLEU|%s%s\n", synth::kBleuSignature, bleu.signature().substr(4).c_str());
        std::printf("chrF2|%s = %.2f\n", synth::kChrfSignature, chrf);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return synth::cli_main(argc, argv, run); }

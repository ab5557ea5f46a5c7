// Tests for src/text/bleu.h: sacreBLEU-compatible corpus BLEU, 13a tokenisation and chrF.
//
// Expected values are worked out by hand in the comments, and a few are copied from
// sacreBLEU's own test suite (github.com/mjpost/sacrebleu, test/test_bleu.py,
// test/test_sentence_bleu.py, test/test_chrf.py) as independent references.
#include <doctest/doctest.h>

#include <cmath>

#include "text/bleu.h"
#include "base/error.h"

using synth::BleuScore;
using synth::BleuStats;
using synth::compute_bleu;
using synth::corpus_bleu;
using synth::corpus_chrf;
using synth::tokenize_13a;

TEST_CASE("bleu: 13a tokenisation") {
    // ASCII punctuation and symbols are split off...
    CHECK(tokenize_13a("Hello, world!") == "Hello , world !");
    CHECK(tokenize_13a("don't (hi)") == "don't ( hi )");  // ...except the apostrophe
    CHECK(tokenize_13a("x<y 50% $5 a/b") == "x < y 50 % $ 5 a / b");
    // '.' and ',' stay inside numbers, split everywhere else.
    CHECK(tokenize_13a("It costs 3.5 dollars, or 1,000 cents.") == "It costs 3.5 dollars , or 1,000 cents .");
    CHECK(tokenize_13a("Mr. 5.") == "Mr . 5 .");
    CHECK(tokenize_13a("U.S. e.g., 1.5.2 ...") == "U . S . e . g . , 1.5.2 . . .");
    // '-' is split only after a digit.
    CHECK(tokenize_13a("well-known 1990-2000") == "well-known 1990 - 2000");
    // The four HTML entities are unescaped, &quot; before &amp;, so "&amp;quot;" becomes "&quot;"
    // (then tokenised as '&' 'quot' ';').
    CHECK(tokenize_13a("He said &quot;hi&quot;") == "He said \" hi \"");
    CHECK(tokenize_13a("x&lt;y&gt;z") == "x < y > z");
    CHECK(tokenize_13a("a &amp;quot; b") == "a & quot ; b");
    // "<skipped>" vanishes, "-\n" joins a hyphenated line break, other newlines are spaces.
    CHECK(tokenize_13a("data-\nbase<skipped> a\nb") == "database a b");
    // Whitespace is Python's: NBSP and thin space separate tokens; runs collapse.
    CHECK(tokenize_13a("  a\xC2\xA0" "b\xE2\x80\x89" "c\t\t d  ") == "a b c d");
    // Non-ASCII letters are untouched; a period after them is split off.
    CHECK(tokenize_13a("Grüße.") == "Grüße .");
    CHECK(tokenize_13a("") == "");
}

TEST_CASE("bleu: perfect match is 100") {
    BleuScore s = corpus_bleu({"The cat sat on the mat."}, {"The cat sat on the mat."});
    CHECK(s.score == doctest::Approx(100.0));
    for (double p : s.precisions) CHECK(p == doctest::Approx(100.0));
    CHECK(s.bp == 1.0);
    CHECK(s.sys_len == 7);  // "The cat sat on the mat ."
    CHECK(s.ref_len == 7);
}

TEST_CASE("bleu: no unigram match scores 0 with all precisions 0") {
    // sacreBLEU returns early when no n-gram of any order matches (its issue #141), so exp
    // smoothing does not kick in.
    BleuScore s = corpus_bleu({"a b c d"}, {"e f g h"});
    CHECK(s.score == 0.0);
    for (double p : s.precisions) CHECK(p == 0.0);
    // test_sentence_bleu.py, "Example taken from #141": 0.0.
    CHECK(corpus_bleu({"this is a cat"}, {"okay thanks"}).score == 0.0);
    // test_bleu.py: empty hypotheses are kept and score 0.0.
    BleuScore empty = corpus_bleu({"", "", ""}, {"The dog bit the man.", "It was not unexpected.", "x"});
    CHECK(empty.score == 0.0);
    CHECK(empty.bp == 0.0);  // sys_len == 0
}

TEST_CASE("bleu: brevity penalty") {
    // hyp "the cat sat on" (4 tokens), ref "the cat sat on the mat" (6 tokens): every hyp n-gram
    // matches, so all precisions are 100 and BLEU = 100 * BP = 100 * exp(1 - 6/4) = 100 * e^-0.5
    // = 60.6530659713.
    BleuScore s = corpus_bleu({"the cat sat on"}, {"the cat sat on the mat"});
    CHECK(s.bp == doctest::Approx(std::exp(-0.5)).epsilon(1e-12));
    CHECK(s.score == doctest::Approx(60.6530659713).epsilon(1e-10));
    CHECK(s.ratio == doctest::Approx(4.0 / 6.0));
    CHECK(s.signature() == "BLEU = 60.65 100.0/100.0/100.0/100.0 (BP = 0.607 ratio = 0.667 hyp_len = 4 ref_len = 6)");
    // A longer hypothesis is not penalised.
    CHECK(corpus_bleu({"the cat sat on the mat"}, {"the cat sat on"}).bp == 1.0);
}

TEST_CASE("bleu: exp smoothing of zero-match orders") {
    // hyp "the dog sat down", ref "the cat sat down":
    //   1-grams: the, sat, down match          3/4  -> 75
    //   2-grams: "sat down" matches            1/3  -> 33.33
    //   3-grams: no match, 1st zero order      100 / (2 * 2) = 25
    //   4-grams: no match, 2nd zero order      100 / (4 * 1) = 25
    // BLEU = (75 * 100/3 * 25 * 25)^(1/4) = 1562500^(1/4) = 35.3553390593.
    BleuScore s = corpus_bleu({"the dog sat down"}, {"the cat sat down"});
    CHECK(s.precisions[0] == doctest::Approx(75.0));
    CHECK(s.precisions[1] == doctest::Approx(100.0 / 3));
    CHECK(s.precisions[2] == doctest::Approx(25.0));
    CHECK(s.precisions[3] == doctest::Approx(25.0));
    CHECK(s.score == doctest::Approx(35.3553390593).epsilon(1e-10));
}

TEST_CASE("bleu: an order with no hypothesis n-grams at all gives 0 (effective_order is off)") {
    // "the cat" has no 3- or 4-grams: total_3 = total_4 = 0, sacreBLEU stops there with
    // p_3 = p_4 = 0 and my_log(0) = -9999999999, so corpus BLEU is 0 even for a perfect match.
    BleuScore s = corpus_bleu({"the cat"}, {"the cat"});
    CHECK(s.precisions[0] == 100.0);
    CHECK(s.precisions[1] == 100.0);
    CHECK(s.precisions[2] == 0.0);
    CHECK(s.precisions[3] == 0.0);
    CHECK(s.score == 0.0);
}

TEST_CASE("bleu: a corpus sums statistics, it does not average sentence scores") {
    // Sentence 1 (identical, 6 tokens): correct = total = {6, 5, 4, 3}.
    // Sentence 2 "a b" vs "a c": correct {1, 0, 0, 0}, total {2, 1, 0, 0}.
    // Sums: correct {7, 5, 4, 3}, total {8, 6, 4, 3}, lengths 8 and 8, so
    // BLEU = 100 * (7/8 * 5/6 * 1 * 1)^(1/4) = 92.4073895222 (the mean of the two sentence
    // scores would be (100 + 0) / 2 = 50).
    std::vector<std::string> hyps = {"the cat sat on the mat", "a b"}, refs = {"the cat sat on the mat", "a c"};
    BleuStats st = synth::bleu_stats(hyps, refs);
    CHECK(st.correct == std::array<int64_t, 4>{7, 5, 4, 3});
    CHECK(st.total == std::array<int64_t, 4>{8, 6, 4, 3});
    CHECK(st.sys_len == 8);
    CHECK(st.ref_len == 8);
    CHECK(corpus_bleu(hyps, refs).score == doctest::Approx(92.4073895222).epsilon(1e-10));

    BleuStats sum = synth::bleu_stats({hyps[0]}, {refs[0]});
    sum += synth::bleu_stats({hyps[1]}, {refs[1]});
    CHECK(sum.correct == st.correct);
    CHECK(sum.total == st.total);
}

TEST_CASE("bleu: published sacreBLEU values") {
    // test_bleu.py, test_case_statistics: counts [4, 2, 1, 0], totals [6, 5, 4, 3].
    BleuStats st = synth::bleu_stats({"am I am a character sequence"}, {"I am a symbol string sequence a a"});
    CHECK(st.correct == std::array<int64_t, 4>{4, 2, 1, 0});
    CHECK(st.total == std::array<int64_t, 4>{6, 5, 4, 3});
    // Its exp-smoothed score by hand: p = 4/6, 2/5, 1/4 and 1/(2*3) for the zero 4-gram order,
    // BP = exp(1 - 8/6): 100 * exp(-1/3) * (1/90)^(1/4) = 23.2634726977.
    CHECK(compute_bleu(st).score == doctest::Approx(23.2634726977).epsilon(1e-10));

    // test_bleu.py, test_case_scoring: counts [9, 7, 5, 3], totals [10, 8, 6, 4], lengths 11/11
    // -> 0.8375922397 (no zero counts, so smoothing does not matter).
    BleuStats sc;
    sc.correct = {9, 7, 5, 3};
    sc.total = {10, 8, 6, 4};
    sc.sys_len = sc.ref_len = 11;
    CHECK(compute_bleu(sc).score / 100 == doctest::Approx(0.8375922397).epsilon(1e-9));

    // test_bleu.py, test_raw_bleu_cases: "this is a test" against itself -> 1.0.
    CHECK(corpus_bleu({"this is a test"}, {"this is a test"}).score == doctest::Approx(100.0));

    // test_sentence_bleu.py (from sacreBLEU issue #98), 'exp' smoothing with 13a: 8.493. That test
    // turns effective_order on, but all four orders have n-grams here (14 hypothesis tokens), so
    // it changes nothing. By hand: 5/14, 2/13, then 1/(2*12) and 1/(4*11), BP = 1.
    const char* ref = "produc\xC5\xA3ia de zah\xC4\x83r brut se exprim\xC4\x83 \xC3\xAEn zah\xC4\x83r alb;";
    const char* sys = "Produc\xC8\x9Bia de zah\xC4\x83r prim\xC4\x83 va fi exprimat\xC4\x83 \xC3\xAEn ceea ce "
                      "prive\xC8\x99te zah\xC4\x83rul alb;";
    CHECK(corpus_bleu({sys}, {ref}).score == doctest::Approx(8.493).epsilon(1e-3 / 8.493));
}

TEST_CASE("bleu: bad input throws") {
    CHECK_THROWS_AS(corpus_bleu({"a", "b"}, {"a"}), synth::Error);
    CHECK_THROWS_AS(corpus_chrf({"a"}, {"a", "b"}), synth::Error);
    // sacreBLEU: "Empty or `None` reference sentence found."
    CHECK_THROWS_AS(corpus_bleu({"a"}, {""}), synth::Error);
    CHECK_THROWS_AS(corpus_chrf({"a"}, {""}), synth::Error);
}

TEST_CASE("bleu: chrF2") {
    // test_chrf.py, test_cases_effective_order (beta = 3 there, but in every one of these
    // average precision equals average recall, so the F-score is the same for beta = 2).
    CHECK(corpus_chrf({"a"}, {"a"}) == doctest::Approx(100.0));
    CHECK(corpus_chrf({""}, {"reference"}) == 0.0);
    CHECK(corpus_chrf({"a b c"}, {"a b c"}) == doctest::Approx(100.0));
    CHECK(corpus_chrf({"a b c"}, {"abc"}) == doctest::Approx(100.0));  // whitespace is removed
    CHECK(corpus_chrf({""}, {"c"}) == 0.0);
    CHECK(corpus_chrf({"a", "b"}, {"a", "c"}) == doctest::Approx(50.0));
    CHECK(corpus_chrf({"aa"}, {"ab"}) == doctest::Approx(25.0));

    // hyp "ab", ref "abc": order 1: 2/2 precise, 2/3 recalled; order 2: 1/1, 1/2; order 3: the
    // hypothesis has no 3-grams, so the order is skipped. avg P = 1, avg R = 7/12,
    // F2 = 5 P R / (4 P + R) = (35/12) / (55/12) = 7/11.
    CHECK(corpus_chrf({"ab"}, {"abc"}) == doctest::Approx(700.0 / 11));
    // Corpus: counts are summed before averaging. Adding "x y" vs "xz" gives order 1: 3 of 4
    // hyp, 3 of 5 ref; order 2: 1 of 2, 1 of 3. P = (3/4 + 1/2)/2 = 5/8, R = (3/5 + 1/3)/2 = 7/15,
    // F2 = 5 P R / (4 P + R) = (35/24) / (89/30) = 175/356.
    CHECK(corpus_chrf({"ab", "x y"}, {"abc", "xz"}) == doctest::Approx(17500.0 / 356));
    // Characters are code points: "ä" is one character, not two bytes.
    CHECK(corpus_chrf({"\xC3\xA4"}, {"\xC3\xA4"}) == doctest::Approx(100.0));
    CHECK(corpus_chrf({"\xC3\xA4"}, {"\xC3\xB6"}) == 0.0);  // ä vs ö share their first byte only
}

// The statistical protocol of the findings (docs/statistics.md, src/runs/protocol.h) against
// hand-computed cases: the t distribution, one-sided tests, TOST, Holm's correction, the footing
// two paired runs must share, grown seed sets and the splits a table may show.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runs/findings.h"
#include "runs/protocol.h"

using namespace synth;

namespace {

// With 2 degrees of freedom the t CDF is closed: F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
double t2_cdf(double t) { return 0.5 + t / (2 * std::sqrt(2 + t * t)); }

}  // namespace

TEST_CASE("protocol: the t distribution's CDF against closed forms and tables") {
    for (double t : {-12.0, -3.0, -1.0, 0.0, 0.5, 2.0, 4.303})
        CHECK(t_cdf(t, 2) == doctest::Approx(t2_cdf(t)).epsilon(1e-10));
    // df = 1 is Cauchy: F(t) = 1/2 + atan(t) / pi.
    for (double t : {-5.0, -0.3, 1.0, 12.706}) CHECK(t_cdf(t, 1) == doctest::Approx(0.5 + std::atan(t) / M_PI).epsilon(1e-10));
    // The two-sided 95% critical values of the table: F(t_{0.975, df}) = 0.975.
    for (int df : {3, 4, 9, 29}) CHECK(t_cdf(t_critical_95(df), df) == doctest::Approx(0.975).epsilon(2e-4));
    CHECK(t_cdf(INFINITY, 4) == 1.0);
    CHECK(t_cdf(-INFINITY, 4) == 0.0);
}

TEST_CASE("protocol: one-sided t tests and TOST, by hand") {
    // d = 0.01, 0.02, 0.03: mean 0.02, s 0.01, se 0.01 / sqrt 3 = 0.0057735.
    const std::vector<double> d = {0.01, 0.02, 0.03};
    const double se = 0.01 / std::sqrt(3.0);
    // H1 mean > 0: t = 0.02 / se = 3.4641; p = 1 - F(3.4641) = 0.0371.
    CHECK(p_above(d, 0) == doctest::Approx(1 - t2_cdf(0.02 / se)));
    CHECK(p_above(d, 0) == doctest::Approx(0.0371).epsilon(1e-3));
    CHECK(p_below(d, 0) == doctest::Approx(t2_cdf(0.02 / se)));
    // TOST within 0.05: t = (0.02 - 0.05) / se = -5.196 -> 0.01755; (0.02 + 0.05) / se = 12.12 -> 0.00338.
    CHECK(p_below(d, 0.05) == doctest::Approx(0.01755).epsilon(2e-3));
    CHECK(p_above(d, -0.05) == doctest::Approx(0.00338).epsilon(3e-3));
    CHECK(p_equivalent(d, 0.05) == doctest::Approx(t2_cdf(-0.03 / se)));
    // Within 0.025 it is not shown: t = -0.866, p = 0.239.
    CHECK(p_equivalent(d, 0.025) == doctest::Approx(0.239).epsilon(3e-3));
    // A claim's two p values: "d > 0" confirms at 0.0371; "d < 0" is refuted by the same.
    CHECK(claim_p(ClaimTest::Above, d, 0).confirm == doctest::Approx(0.0371).epsilon(1e-3));
    CHECK(claim_p(ClaimTest::Below, d, 0).refute == doctest::Approx(0.0371).epsilon(1e-3));
    // Equivalence within 0.005 refuted: 2 x P(mean > 0.005): t = 2.598, p = 0.0608, x 2.
    CHECK(claim_p(ClaimTest::Equivalent, d, 0.005).refute == doctest::Approx(2 * (1 - t2_cdf(0.015 / se))));
    // One seed: no test.
    CHECK(p_above({1.0}, 0) == 1.0);
    CHECK(p_equivalent({0.0}, 1) == 1.0);
    // No spread: the sign decides.
    CHECK(p_below({-1.0, -1.0, -1.0}, 0) == 0.0);
    CHECK(p_above({-1.0, -1.0, -1.0}, 0) == 1.0);
}

TEST_CASE("protocol: Holm's step-down adjustment, by hand") {
    // Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> max so far 0.06.
    const std::vector<double> adj = holm({0.01, 0.04, 0.03, 0.005});
    REQUIRE(adj.size() == 4);
    CHECK(adj[0] == doctest::Approx(0.03));
    CHECK(adj[1] == doctest::Approx(0.06));
    CHECK(adj[2] == doctest::Approx(0.06));
    CHECK(adj[3] == doctest::Approx(0.02));
    // Capped at 1; one test is its own p.
    CHECK(holm({0.6, 0.7})[0] == doctest::Approx(1.0));
    CHECK(holm({0.02})[0] == doctest::Approx(0.02));
    CHECK(holm({}).empty());
}

TEST_CASE("protocol: a family resolves each placeholder to its Holm-adjusted verdict") {
    FindingsFamily fam("t");
    const std::string a = fam.add({0.01, 0.99}, 3), b = fam.add({0.03, 0.97}, 3),
                      c = fam.add({0.9, 0.001}, 3, ", X worse by more than the margin"), d = fam.add({1, 1}, 1);
    fam.left_out(2);
    const std::string text = fam.resolve("a: " + a + "\nb: " + b + "\nc: " + c + "\nd: " + d + "\n", true);
    // Confirmations: 0.01 x 4 = 0.04 (confirmed), 0.03 x 3 = 0.09 (not); refutation 0.001 x 4.
    CHECK(text.find("a: confirmed at 3 seeds (Holm-adjusted p = 0.040, family of 4)") != std::string::npos);
    CHECK(text.find("b: inconclusive at 3 seeds (Holm-adjusted p = 0.090 for") != std::string::npos);
    CHECK(text.find("c: refuted at 3 seeds, X worse by more than the margin (Holm-adjusted p of the opposite = 0.004, "
                    "family of 4)") != std::string::npos);
    CHECK(text.find("The family of Holm's correction: t, 4 tests (1 confirmed, 1 refuted, 2 inconclusive). 2 pairs left "
                    "out") != std::string::npos);
    CHECK(text.find("d: inconclusive (1 seed: no test)") != std::string::npos);
    CHECK(text.find("@@") == std::string::npos);
}

TEST_CASE("protocol: the measure and margin of each task") {
    CHECK(measure_for("").unit == "nats");
    CHECK(measure_for("").margin == 0.02);
    CHECK(!measure_for("").higher_better);
    CHECK(measure_for("validation BLEU").margin == 0.25);
    CHECK(measure_for("validation accuracy").unit == "points");
    CHECK(measure_for("validation accuracy").margin == 0.5);
}

TEST_CASE("protocol: a pair across CPUs is refused; an unknown CPU pairs only with an unknown one") {
    JsonObject c;
    c.text("cpu", "AMD EPYC (family 26, model 2)");
    c.text("blas_kernel", "Zen");
    c.text("precision", "fp32");
    c.text("gemm_provider", "openblas-fp32");
    c.integer("threads", 1);
    c.text("git_commit", "abc");
    const Footing a = footing_of(c);
    CHECK(a.text() == "AMD EPYC (family 26, model 2), OpenBLAS kernel Zen, fp32, openblas-fp32, 1 thread");
    CHECK(same_footing(a, a));
    Footing b = a;
    b.cpu = "Intel Xeon (family 6, model 85)";
    std::string why;
    CHECK(!same_footing(a, b, &why));
    CHECK(why.find(" vs Intel Xeon") != std::string::npos);
    b = a;
    b.threads = "2";
    CHECK(!same_footing(a, b));
    b = a;
    b.precision = "bf16";
    CHECK(!same_footing(a, b));
    // A run from before config.json named its CPU: unknown, and fp32 before the provider was recorded.
    JsonObject old;
    old.text("blas_kernel", "Zen");
    old.integer("threads", 1);
    old.text("git_commit", "abc-dirty");
    const Footing u = footing_of(old);
    CHECK(!u.cpu_known());
    CHECK(u.gemm_provider == "openblas-fp32");
    CHECK(u.dirty());
    CHECK(!a.dirty());
    CHECK(!same_footing(a, u));
    CHECK(same_footing(u, u));
    // Other commits pair (fixed-seed runs hold refactorings bit-identical).
    Footing later = a;
    later.commit = "def";
    CHECK(same_footing(a, later));
}

TEST_CASE("protocol: seeds a later sweep added are marked and stay outside the verdict") {
    std::vector<SeedRun> runs;
    for (int seed = 1; seed <= 5; ++seed) {
        const std::string sweep = seed <= 3 ? "ts-seeds" : "ts-seeds45";
        // Seeds 1-3 say nothing (mixed signs); seeds 4-5 would tip the mean.
        const double d = seed <= 3 ? (seed == 2 ? 0.01 : -0.01) : -0.05;
        runs.push_back({"R+V", seed, 2.0 + d, 100, 10, NAN, {}, sweep});
        runs.push_back({"V", seed, 2.0, 100, 10, NAN, {}, sweep});
    }
    const std::string md = seeded_findings(runs);
    const size_t at = md.find("3. R+V beats V**");
    REQUIRE(at != std::string::npos);
    const std::string line = md.substr(at, md.find('\n', at) - at);
    CHECK(line.find("inconclusive at 3 seeds") != std::string::npos);
    CHECK(line.find("**Seeds grew**: seeds 4, 5 came from a later sweep") != std::string::npos);
    CHECK(line.find("with them, n = 5") != std::string::npos);
    // Seeds of one sweep grow nothing.
    for (SeedRun& r : runs) r.sweep = "ts-seeds";
    CHECK(seeded_findings(runs).find("Seeds grew") == std::string::npos);
}

TEST_CASE("protocol: a character corpus's table drops the test columns, which are its validation split") {
    RunRecord r;
    r.result.number("val_loss", 1.5);
    r.result.number("val_bpc", 2.1);
    r.result.number("test_loss", 1.5);
    const std::vector<std::string> metrics = {"params", "val_loss", "val_bpc", "test_loss", "test_bpc", "train_tok_s"};
    std::string note;
    CHECK(honest_metrics({r}, metrics, &note) == std::vector<std::string>{"params", "val_loss", "val_bpc", "train_tok_s"});
    CHECK(note.find("no held-out test split") != std::string::npos);
    // A word corpus (PTB: ppl) keeps them.
    RunRecord w;
    w.result.number("val_loss", 5.0);
    w.result.number("val_ppl", 140.0);
    note.clear();
    CHECK(honest_metrics({w}, metrics, &note) == metrics);
    CHECK(note.empty());
    CHECK(sweep_of_dir("results/runs/lm-ts-seeds45/seeds-4_variants-V") == "lm-ts-seeds45");
    CHECK(sweep_of_dir("results/runs/lm-ts-seeds45/seeds-4_variants-V/") == "lm-ts-seeds45");
    CHECK(sweep_of_dir("V-seed1") == "");
}

#include "runs/stats.h"

#include <cmath>

#include "base/error.h"

namespace synth {

double mean_of(const std::vector<double>& x) {
    SYNTH_CHECK(!x.empty(), "mean of no values");
    double s = 0;
    for (double v : x) s += v;
    return s / (double)x.size();
}

double stddev_of(const std::vector<double>& x) {
    if (x.size() < 2) return 0.0;
    const double m = mean_of(x);
    double ss = 0;
    for (double v : x) ss += (v - m) * (v - m);
    return std::sqrt(ss / (double)(x.size() - 1));
}

double t_critical_95(int df) {
    SYNTH_CHECK(df >= 1, "t distribution with ", df, " degrees of freedom");
    // t_{0.975, df} for df = 1..30 (standard tables); beyond, the normal quantile's first
    // Cornish-Fisher correction, within 3e-3 of the exact value (at df = 31) and closer above.
    static const double table[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                     2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                     2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (df <= 30) return table[df - 1];
    const double z = 1.959964;
    return z + (z * z * z + z) / (4.0 * df);
}

Interval ci95(const std::vector<double>& x) {
    Interval r;
    r.n = (int)x.size();
    r.mean = mean_of(x);
    r.lo = r.hi = r.mean;
    if (r.n >= 2) {
        const double half = t_critical_95(r.n - 1) * stddev_of(x) / std::sqrt((double)r.n);
        r.lo = r.mean - half;
        r.hi = r.mean + half;
    }
    return r;
}

}  // namespace synth

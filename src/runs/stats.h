// stats.h: the statistics a seeded table needs: mean, sample standard deviation, and the 95%
// confidence interval of a mean from Student's t distribution.
#pragma once

#include <vector>

namespace synth {

double mean_of(const std::vector<double>& x);
double stddev_of(const std::vector<double>& x);  // sample (n - 1); 0 for n < 2
// The two-sided 95% critical value t_{0.975, df} (df >= 1).
double t_critical_95(int df);

struct Interval {
    double mean = 0, lo = 0, hi = 0;
    int n = 0;
    bool valid() const { return n >= 2; }
};
// mean +- t_{0.975, n-1} * s / sqrt(n); not valid for n < 2.
Interval ci95(const std::vector<double>& x);

}  // namespace synth

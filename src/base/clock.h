// clock.h: wall-clock time for progress lines and run records.
#pragma once

#include <string>

namespace synth {

// "1h02m" / "3m07s".
std::string hms(double seconds);
double now_seconds();  // monotonic

}  // namespace synth

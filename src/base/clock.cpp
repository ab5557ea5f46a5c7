#include "base/clock.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace synth {

std::string hms(double s) {
    char buf[32];
    int t = (int)std::lround(s);
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, t / 60 % 60);
    else std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
    return buf;
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace synth

// build/mt: Synthesizer variants as encoder-decoder translation models. The task is
// src/tasks/mt.cpp; the driver (src/runs/driver.h) runs it. build/mt --help lists the flags.
#include "runs/driver.h"

int main(int argc, char** argv) { return synth::run_task("mt", argc, argv); }

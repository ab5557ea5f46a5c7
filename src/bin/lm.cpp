// build/lm: Synthesizer variants as decoder-only language models. The task is src/tasks/lm.cpp;
// the driver (src/runs/driver.h) runs it. build/lm --help lists the flags.
#include "runs/driver.h"

int main(int argc, char** argv) { return synth::run_task("lm", argc, argv); }

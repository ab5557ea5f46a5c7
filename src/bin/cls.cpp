// build/cls: Synthesizer variants as encoder-only Transformer classifiers. The task is
// src/tasks/cls.cpp; the driver (src/runs/driver.h) runs it. build/cls --help lists the flags.
#include "runs/driver.h"

int main(int argc, char** argv) { return synth::run_task("cls", argc, argv); }

# synth: one plain Makefile.
#   make            build every binary into build/
#   make test       install missing Debian packages, build and run the doctest suite, and check
#                   that every committed results table is what its committed runs give
#   make reports    remake every committed results table from its runs (scripts/reports.sh)
#   make bench      GEMM + model throughput benchmarks (results/bench.md)
#   make run        the quick LM sweep on Tiny Shakespeare, printing the table
#   make test-sweeps scripts/sweep on a local pool, GNU parallel and a one-node Slurm (as root)
#   make data       fetch (or mirror) and sha256-check every data set
#   make fuzz       libFuzzer targets (clang)
#   make clean
#   DEBUG=1         -O0 -g with AddressSanitizer and UndefinedBehaviorSanitizer
#   PORTABLE=1      no -march=native: one build for a cluster of mixed CPUs (build/portable)

CXX      ?= g++
BUILD    := build
CPPFLAGS := -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp -MMD -MP
CXXFLAGS := -std=c++17 -Wall -Wextra -fopenmp
LDLIBS   := -lopenblas -ldnnl -lm

ifeq ($(DEBUG),1)
  BUILD    := build/debug
  CXXFLAGS += -O0 -g -fsanitize=address,undefined -fno-omit-frame-pointer
  LDFLAGS  += -fsanitize=address,undefined
else ifeq ($(PORTABLE),1)
  BUILD    := build/portable
  CXXFLAGS += -O3 -fno-math-errno -fno-trapping-math -g
else
  # -fno-math-errno: nothing here reads errno after sqrt/log, and without it GCC cannot
  # vectorise a loop that calls sqrt (AdamW). -fno-trapping-math: nothing here enables
  # floating-point traps, and without it GCC keeps every loop with a select on a computed float
  # scalar (fast_exp's clamps, a max reduction): the softmax and the cross-entropy. Each
  # operation's IEEE result is unchanged by either flag; only `omp simd` reductions, which
  # license it, then sum in vector lanes.
  CXXFLAGS += -O3 -march=native -fno-math-errno -fno-trapping-math -g
endif

# The library, one folder per layer (docs/layers.md); src/bin/ holds one main per binary.
LAYERS    := base engine engine/gemm attention models train text runs tasks
LIB_SRCS  := $(foreach d,$(LAYERS),$(wildcard src/$(d)/*.cpp))
BIN_SRCS  := $(wildcard src/bin/*.cpp)
TEST_SRCS := $(wildcard tests/*.cpp)
LIB_OBJS  := $(LIB_SRCS:%.cpp=$(BUILD)/obj/%.o)
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/obj/%.o)
BINS      := $(patsubst src/bin/%.cpp,$(BUILD)/%,$(BIN_SRCS))

# Keep every object, the binaries' mains among them (make would delete them as intermediates and
# rebuild them at the next make).
.SECONDARY:

.PHONY: all test test-sweeps bench run reports data deps fuzz clean
all: $(BINS) $(BUILD)/tests

deps:
	@bash scripts/deps.sh

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# The library's objects are linked whole, not through an archive: each attention variant
# registers itself from its own file at start-up (src/attention/variant.h), and nothing else
# references that file, so an archive would leave it out.
$(BUILD)/%: $(BUILD)/obj/src/bin/%.o $(LIB_OBJS)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests: $(TEST_OBJS) $(LIB_OBJS)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	./$(BUILD)/tests
	bash scripts/reports.sh --check

reports: all
	bash scripts/reports.sh

# The Slurm test starts munged, slurmctld and slurmd on this machine and writes the report that
# the GNU parallel test compares its own and the local pool's with (docs/sweeps.md).
test-sweeps: export SYNTH_WITH_SWEEPS := 1
test-sweeps: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	bash tests/sweeps/sweep_test.sh
	bash tests/sweeps/slurm_test.sh
	SWEEP_TEST_REQUIRE_SLURM=1 bash tests/sweeps/parallel_test.sh

bench: export SYNTH_WITH_PLOTS := 1
bench: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	bash scripts/bench.sh

run: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	bash data/fetch.sh tinyshakespeare
	./$(BUILD)/lm --data=tinyshakespeare --preset=quick

data:
	bash data/fetch.sh all

fuzz: all
	bash scripts/fuzz.sh

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BIN_SRCS:%.cpp=$(BUILD)/obj/%.d)

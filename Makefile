# synth: one plain Makefile.
#   make            build every binary into build/
#   make test       install missing Debian packages, build and run the doctest suite, and check
#                   that every committed results table is what its committed runs give
#   make reports    remake every committed results table from its runs (scripts/reports.sh)
#   make bench      GEMM + model throughput benchmarks (results/bench.md)
#   make run        the quick LM sweep on Tiny Shakespeare, printing the table
#   make test-sweeps scripts/sweep on a local pool, GNU parallel and a one-node Slurm (as root)
#   make test-mpi   data-parallel training on 1 and 2 MPI ranks (Open MPI; docs/distributed.md)
#   make data       fetch (or mirror) and sha256-check every data set
#   make fuzz       libFuzzer targets (clang)
#   make clean
#   DEBUG=1         -O0 -g with AddressSanitizer and UndefinedBehaviorSanitizer
#   PORTABLE=1      no -march=native: one build for a cluster of mixed CPUs (build/portable)
#   MPI=1 / MPI=0   with or without MPI (default: with it when mpicxx is on the PATH)
#   ONEDNN=0        without oneDNN: --precision=bf16 then rounds the operands (docs/precision.md)
#   BLAS_CFLAGS=... BLAS_LIBS=...  where OpenBLAS is, e.g. a cluster module's
#                   (default: `pkg-config openblas`, else Debian's libopenblas-openmp-dev; README)

CXX      ?= g++
BUILD    := build
ONEDNN   ?= 1
# Evaluated once (:=), not at every expansion. The trailing slash pkg-config gives is dropped so
# that the command lines, and ccache's hashes of them, are the same as with the Debian default.
ifeq ($(origin BLAS_CFLAGS),undefined)
  BLAS_CFLAGS := $(patsubst %/,%,$(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-openmp))
endif
ifeq ($(origin BLAS_LIBS),undefined)
  BLAS_LIBS := $(patsubst %/,%,$(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas))
endif
CPPFLAGS := -Isrc $(BLAS_CFLAGS) -MMD -MP
CXXFLAGS := -std=c++17 -Wall -Wextra -fopenmp
LDLIBS   := $(BLAS_LIBS) -lm
ifneq ($(ONEDNN),0)
  LDLIBS += -ldnnl
endif

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

# MPI, for one run over several processes (docs/distributed.md): used when mpicxx is on the PATH,
# required with MPI=1, left out with MPI=0. Only src/train/dist.cpp sees it (SYNTH_MPI); its
# object is named after the choice (dist.o, dist-mpi.o), so switching never links a stale one.
# The compiler stays $(CXX) (ccache works); mpicxx only tells the flags. Without MPI a binary is
# what it was, and refuses to start as one of several ranks.
MPICXX ?= mpicxx
ifeq ($(MPI),)
  MPI := $(if $(shell command -v $(MPICXX) 2>/dev/null),1,0)
endif
ifeq ($(MPI),1)
  MPI_CPPFLAGS ?= $(shell $(MPICXX) --showme:compile 2>/dev/null)
  MPI_LIBS     ?= $(shell $(MPICXX) --showme:link 2>/dev/null)
  ifeq ($(strip $(MPI_LIBS)),)
    $(error MPI=1, but `$(MPICXX) --showme:link` says nothing: install Open MPI (SYNTH_WITH_MPI=1 bash scripts/deps.sh), or give MPI_CPPFLAGS and MPI_LIBS)
  endif
  LDLIBS += $(MPI_LIBS)
  DIST_OBJ := dist-mpi.o
else
  DIST_OBJ := dist.o
endif

# The library, one folder per layer (docs/layers.md); src/bin/ holds one main per binary.
LAYERS    := base engine engine/gemm attention models train text runs tasks
LIB_SRCS  := $(foreach d,$(LAYERS),$(wildcard src/$(d)/*.cpp))
BIN_SRCS  := $(wildcard src/bin/*.cpp)
TEST_SRCS := $(wildcard tests/*.cpp)
LIB_OBJS  := $(patsubst %/dist.o,%/$(DIST_OBJ),$(LIB_SRCS:%.cpp=$(BUILD)/obj/%.o))
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/obj/%.o)
BINS      := $(patsubst src/bin/%.cpp,$(BUILD)/%,$(BIN_SRCS))

# Keep the binaries' mains (make would delete them as intermediates and rebuild them at the next
# make). Only those: a bare `.SECONDARY:` makes every target secondary, and make then never
# builds the object of a new source file whose dependents (build/tests) are newer than it.
.SECONDARY: $(BIN_SRCS:%.cpp=$(BUILD)/obj/%.o)

.PHONY: all test test-sweeps test-mpi bench run reports data deps fuzz clean
all: $(BINS) $(BUILD)/tests

deps:
	@SYNTH_ONEDNN=$(ONEDNN) bash scripts/deps.sh

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/src/train/dist-mpi.o: src/train/dist.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(MPI_CPPFLAGS) -DSYNTH_MPI $(CXXFLAGS) -c $< -o $@

# ONEDNN changes one object, src/engine/gemm/onednn.cpp's (the real one or the stub that says
# "not built with oneDNN"), and the link. The build directory remembers the value it was built
# with in a file rewritten only when it changes, so that `make ONEDNN=0` after `make` redoes
# exactly those.
LINK_STAMP := $(BUILD)/obj/link-config
LINK_CONFIG := ONEDNN=$(ONEDNN) $(LDLIBS)
$(shell mkdir -p $(BUILD)/obj && [ "$$(cat $(LINK_STAMP) 2>/dev/null)" = "$(LINK_CONFIG)" ] || echo "$(LINK_CONFIG)" > $(LINK_STAMP))
$(BUILD)/obj/src/engine/gemm/onednn.o: CPPFLAGS += -DSYNTH_ONEDNN=$(if $(filter 0,$(ONEDNN)),0,1)
$(BUILD)/obj/src/engine/gemm/onednn.o: $(LINK_STAMP)

# The library's objects are linked whole, not through an archive: each attention variant
# registers itself from its own file at start-up (src/attention/variant.h), and nothing else
# references that file, so an archive would leave it out.
$(BUILD)/%: $(BUILD)/obj/src/bin/%.o $(LIB_OBJS) $(LINK_STAMP)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS)

$(BUILD)/tests: $(TEST_OBJS) $(LIB_OBJS) $(LINK_STAMP)
	$(CXX) $(CXXFLAGS) $(LDFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS)

# A tiny LM trained from library calls on 1 or several ranks (tests/mpi/mpi_test.sh).
$(BUILD)/mpi_train: $(BUILD)/obj/tests/mpi/mpi_train.o $(LIB_OBJS)
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

# 2 ranks against 1 (losses within tolerance), 2 ranks twice (bit-identical), a rank killed
# (a clean non-zero exit); mpirun as root needs --allow-run-as-root, which the script gives.
test-mpi: export SYNTH_WITH_MPI := 1
test-mpi: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) MPI=1 $(BUILD)/tests $(BUILD)/mpi_train $(BUILD)/lm $(BUILD)/mt $(BUILD)/cls
	./$(BUILD)/tests --test-case='dist*'
	bash tests/mpi/mpi_test.sh $(BUILD)

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

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BIN_SRCS:%.cpp=$(BUILD)/obj/%.d) $(BUILD)/obj/tests/mpi/mpi_train.d

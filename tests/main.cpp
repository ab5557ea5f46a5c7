// The doctest runner: every tests/*.cpp links into build/tests.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

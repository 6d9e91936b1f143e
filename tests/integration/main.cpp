// connscope privileged integration tests (root: network namespaces, BPF).
// CONNSCOPE_AGENT=/path/to/connscope connscope-itest [doctest options]
// See agent_process.hpp for the environment variables.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

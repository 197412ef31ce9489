/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* kiln-test-env: KILN_CPU_SHUFFLE=20261126 */
/* Automatic cross-stream hazards on the CPU backend in its shuffled-completion mode
 * (KILN_CPU_SHUFFLE, read when the backend is first probed: every op starts after a
 * random delay, so work on different streams completes in shuffled order). The
 * patterns and why each fails when a dependency is missing: hazard_patterns.h.
 * Iterations per pattern: KILN_HAZARD_ITERS (default 400); runs under TSan in
 * make check, where a missing dependency is also a reported data race. */
#define _POSIX_C_SOURCE 200809L
#include "hazard_patterns.h"

#define DEFAULT_ITERS 400

static void open_cpu(hz *h, uint64_t seed) {
  if (!getenv("KILN_CPU_SHUFFLE"))
    fail_msg("KILN_CPU_SHUFFLE is not set: the test would not shuffle completion order "
             "(run it through ctest, which sets it)");
  hz_open(h, kt_cpu_device(), seed, hz_iterations(DEFAULT_ITERS));
}

#define STREAM_COUNT_TESTS(pattern)               \
  static void pattern##_2_streams(void **state) { \
    (void)state;                                  \
    hz h;                                         \
    open_cpu(&h, 0x1234u);                        \
    hz_##pattern(&h, 2);                          \
    hz_close(&h);                                 \
  }                                               \
  static void pattern##_3_streams(void **state) { \
    (void)state;                                  \
    hz h;                                         \
    open_cpu(&h, 0x5678u);                        \
    hz_##pattern(&h, 3);                          \
    hz_close(&h);                                 \
  }                                               \
  static void pattern##_4_streams(void **state) { \
    (void)state;                                  \
    hz h;                                         \
    open_cpu(&h, 0x9abcu);                        \
    hz_##pattern(&h, 4);                          \
    hz_close(&h);                                 \
  }

STREAM_COUNT_TESTS(raw)
STREAM_COUNT_TESTS(war)
STREAM_COUNT_TESTS(waw)
STREAM_COUNT_TESTS(rw_param)

static void same_stream_chain_adds_no_cross_stream_wait(void **state) {
  (void)state;
  hz h;
  open_cpu(&h, 0x4242u);
  hz_same_stream_chain(&h);
  hz_close(&h);
}

static void raw_check_fails_without_the_dependency(void **state) {
  (void)state;
  hz h;
  open_cpu(&h, 0x77u);
  hz_detects_missing_dependency(&h);
  hz_close(&h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(raw_2_streams),
      cmocka_unit_test(raw_3_streams),
      cmocka_unit_test(raw_4_streams),
      cmocka_unit_test(war_2_streams),
      cmocka_unit_test(war_3_streams),
      cmocka_unit_test(war_4_streams),
      cmocka_unit_test(waw_2_streams),
      cmocka_unit_test(waw_3_streams),
      cmocka_unit_test(waw_4_streams),
      cmocka_unit_test(rw_param_2_streams),
      cmocka_unit_test(rw_param_3_streams),
      cmocka_unit_test(rw_param_4_streams),
      cmocka_unit_test(same_stream_chain_adds_no_cross_stream_wait),
      cmocka_unit_test(raw_check_fails_without_the_dependency),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock stress */
/* kiln-test-env: KILN_MOCK=1 */
/* Automatic cross-stream hazards on the mock backend, its streams shuffled
 * (kiln_mock_config.shuffle_seed: ops start after random delays) and slowed
 * (delay_ns), so completion order across streams is shuffled differently from the CPU
 * backend's mode. Same patterns as test_hazards.c (hazard_patterns.h says why each
 * fails when a dependency is missing). KILN_HAZARD_ITERS (default 200). */
#define _POSIX_C_SOURCE 200809L
#include "hazard_patterns.h"

#define DEFAULT_ITERS 200

static void open_mock(hz *h, uint64_t seed) {
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.shuffle_seed = seed;
  c.delay_ns = 5000; /* streams take these when they are created */
  KT_OK(kiln_mock_configure(&c));
  hz_open(h, kt_mock_device(), seed, hz_iterations(DEFAULT_ITERS));
}

static void close_mock(hz *h) {
  hz_close(h);
  KT_OK(kiln_mock_configure(NULL));
}

#define STREAM_COUNT_TESTS(pattern)               \
  static void pattern##_2_streams(void **state) { \
    (void)state;                                  \
    hz h;                                         \
    open_mock(&h, 0x1111u);                       \
    hz_##pattern(&h, 2);                          \
    close_mock(&h);                               \
  }                                               \
  static void pattern##_4_streams(void **state) { \
    (void)state;                                  \
    hz h;                                         \
    open_mock(&h, 0x2222u);                       \
    hz_##pattern(&h, 4);                          \
    close_mock(&h);                               \
  }

STREAM_COUNT_TESTS(raw)
STREAM_COUNT_TESTS(war)
STREAM_COUNT_TESTS(waw)
STREAM_COUNT_TESTS(rw_param)

static void same_stream_chain_adds_no_cross_stream_wait(void **state) {
  (void)state;
  hz h;
  open_mock(&h, 0x3333u);
  hz_same_stream_chain(&h);
  close_mock(&h);
}

static void raw_check_fails_without_the_dependency(void **state) {
  (void)state;
  hz h;
  open_mock(&h, 0x4444u);
  hz_detects_missing_dependency(&h);
  close_mock(&h);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(raw_2_streams),
      cmocka_unit_test(raw_4_streams),
      cmocka_unit_test(war_2_streams),
      cmocka_unit_test(war_4_streams),
      cmocka_unit_test(waw_2_streams),
      cmocka_unit_test(waw_4_streams),
      cmocka_unit_test(rw_param_2_streams),
      cmocka_unit_test(rw_param_4_streams),
      cmocka_unit_test(same_stream_chain_adds_no_cross_stream_wait),
      cmocka_unit_test(raw_check_fails_without_the_dependency),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1 must be set)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

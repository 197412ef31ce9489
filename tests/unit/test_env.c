/* SPDX-License-Identifier: MIT */
/* kiln's environment variables (src/platform/env.c, src/core/env.c): the parsers take
 * exactly the documented forms; every variable of the report's table with a value its
 * reader would not take is named once, at error level, with the value, what it takes
 * and what kiln uses instead, and well-formed values say nothing; the readers give the
 * default for what the report names. tests/cli.cmake's cli.env_bad_value_reported_once
 * checks the report end to end: once per process, however many contexts it creates.
 * kiln-test-labels: unit cpu
 * kiln-test-link: static */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kiln_test.h"

static void parse_uint_takes_whole_numbers_in_range(void **state) {
  (void)state;
  uint64_t v = 99;
  assert_int_equal(kiln__parse_uint("0", 0, 10, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(kiln__parse_uint("10", 0, 10, &v), 0);
  assert_int_equal(v, 10);
  assert_int_equal(kiln__parse_uint("0x10", 0, 100, &v), 0);
  assert_int_equal(v, 16);
  assert_int_equal(kiln__parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
  assert_true(v == UINT64_MAX);
  v = 7;
  const char *bad[] = {NULL,
                       "",
                       " 1",
                       "+1",
                       "-1",
                       "1x",
                       "1 ",
                       "11",
                       "abc",
                       "18446744073709551616",
                       "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (kiln__parse_uint(bad[i], 0, 10, &v) != -1)
      fail_msg("'%s' was taken as a number from 0 to 10", bad[i] ? bad[i] : "(null)");
  assert_int_equal(v, 7); /* untouched */
  assert_int_equal(kiln__parse_uint("0", 1, 10, &v), -1);
}

static void env_readers_fall_back_to_their_default(void **state) {
  (void)state;
  static const char *const words[] = {"on", "off", NULL};
  setenv("KILN_TEST_ENV_X", "5", 1);
  assert_int_equal(kiln__env_uint("KILN_TEST_ENV_X", 1, 9, 3), 5);
  setenv("KILN_TEST_ENV_X", "50", 1);
  assert_int_equal(kiln__env_uint("KILN_TEST_ENV_X", 1, 9, 3), 3);
  setenv("KILN_TEST_ENV_X", "", 1);
  assert_int_equal(kiln__env_uint("KILN_TEST_ENV_X", 1, 9, 3), 3);
  setenv("KILN_TEST_ENV_X", "off", 1);
  assert_int_equal(kiln__env_word("KILN_TEST_ENV_X", words, 0), 1);
  setenv("KILN_TEST_ENV_X", "OFF", 1); /* exact words */
  assert_int_equal(kiln__env_word("KILN_TEST_ENV_X", words, 0), 0);
  setenv("KILN_TEST_ENV_X", "1", 1);
  assert_int_equal(kiln__env_flag("KILN_TEST_ENV_X", -1), 1);
  setenv("KILN_TEST_ENV_X", "yes", 1);
  assert_int_equal(kiln__env_flag("KILN_TEST_ENV_X", -1), -1);
  unsetenv("KILN_TEST_ENV_X");
  assert_int_equal(kiln__env_flag("KILN_TEST_ENV_X", -1), -1);
}

/* name, a value its reader refuses, what the line must say of it, a value it takes */
static const struct {
  const char *name, *bad, *says, *good;
} cases[] = {
    {"KILN_CPU_THREADS", "abc", "from 1 to 4096; ignored, using one thread per CPU", "4"},
    {"KILN_COPY_THREADS", "-2", "from 0 to 4096", "0"},
    {"KILN_CPU_SHUFFLE", "seed", "a seed", "0x2a"},
    {"KILN_CPU_FISSION", "no", "0 (fibers only) or 1", "0"},
    {"KILN_POOL", "Off", "on, off or debug; ignored, using on", "debug"},
    {"KILN_AUTOTUNE", "yes", "0, 1, off or on", "on"},
    {"KILN_AUTOTUNE_SAMPLES", "21", "from 1 to 20; ignored, using 3", "20"},
    {"KILN_CALLBACK_WARN_MS", "10s", "milliseconds from 1 to 86400000", "250"},
    {"KILN_OPENCL_FLUSH_IDLE", "false", "0 or 1", "0"},
    {"KILN_OPENCL_EVENTS", "some",
     "needed (a cl_event only where kiln waits on one) or all; ignored, using the platform's "
     "choice",
     "needed"},
    {"KILN_OPENCL_PROFILING", "2", "0 (never) or 1 (always); ignored, using on demand", "1"},
    {"KILN_MOCK", "true", "1 (enable the mock backend) or 0", "1"},
    {"KILN_TRACE_NO_TSC", "y", "1 (stamp with clock_gettime) or 0", "1"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static void report_names_each_bad_value(void **state) {
  (void)state;
  char *saved[NCASES];
  for (size_t i = 0; i < NCASES; i++) {
    const char *v = getenv(cases[i].name);
    saved[i] = v ? strdup(v) : NULL;
    setenv(cases[i].name, cases[i].bad, 1);
  }
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_ERROR);
  kiln__env_report();
  kt_log_capture_stop(&cap);
  for (size_t i = 0; i < NCASES; i++) {
    char line[256];
    snprintf(line, sizeof line, "%s='%s': expected ", cases[i].name, cases[i].bad);
    if (!kt_log_capture_has(&cap, line) || !kt_log_capture_has(&cap, cases[i].says))
      fail_msg("no error naming %s (\"%s\" and \"%s\"); logged:\n%s", cases[i].name, line,
               cases[i].says, cap.text);
  }
  for (size_t i = 0; i < NCASES; i++)
    setenv(cases[i].name, cases[i].good, 1);
  kt_log_capture_start(&cap, KILN_LOG_DEBUG);
  kiln__env_report();
  kt_log_capture_stop(&cap);
  if (cap.text[0])
    fail_msg("well-formed values were reported:\n%s", cap.text);
  for (size_t i = 0; i < NCASES; i++) {
    if (saved[i])
      setenv(cases[i].name, saved[i], 1);
    else
      unsetenv(cases[i].name);
    free(saved[i]);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(parse_uint_takes_whole_numbers_in_range),
    cmocka_unit_test(env_readers_fall_back_to_their_default),
    cmocka_unit_test(report_names_each_bad_value),
};
KT_MAIN_CPU(tests)

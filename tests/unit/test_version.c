/* SPDX-License-Identifier: MIT */
/* Version and status tables: the loaded library agrees with the headers it is built
 * with (kiln/version.h) and with every row of KILN_STATUS_MAP (kiln/status.h).
 * kiln-test-labels: unit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <kiln.h>

static void test_version_number(void **state) {
  (void)state;
  assert_int_equal(kiln_version(), KILN_VERSION_NUMBER);
  assert_int_equal(KILN_VERSION_NUMBER,
                   KILN_VERSION_MAJOR * 10000 + KILN_VERSION_MINOR * 100 + KILN_VERSION_PATCH);
}

static void test_version_string(void **state) {
  (void)state;
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", KILN_VERSION_MAJOR, KILN_VERSION_MINOR,
           KILN_VERSION_PATCH);
  assert_string_equal(KILN_VERSION_STRING, expected);
  assert_non_null(kiln_version_string());
  assert_string_equal(kiln_version_string(), KILN_VERSION_STRING);
}

typedef struct row {
  kiln_status status;
  const char *name, *message, *suggestion;
} row;

static const row rows[] = {
#define ROW_(name, value, msg, sugg) {KILN_##name, "KILN_" #name, msg, sugg},
    KILN_STATUS_MAP(ROW_)
#undef ROW_
};

static void test_status_names(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; ++i)
    assert_string_equal(kiln_status_name(rows[i].status), rows[i].name);
}

static void test_status_messages(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; ++i) {
    assert_string_equal(kiln_status_message(rows[i].status), rows[i].message);
    assert_string_equal(kiln_status_suggestion(rows[i].status), rows[i].suggestion);
  }
}

static void test_status_unknown(void **state) {
  (void)state;
  /* Values not in the table: a name saying so, and never NULL. */
  const kiln_status unknown[] = {(kiln_status)-1000, (kiln_status)1000, (kiln_status)INT32_MIN};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; ++i) {
    assert_string_equal(kiln_status_name(unknown[i]), "KILN_STATUS_UNKNOWN");
    assert_non_null(kiln_status_message(unknown[i]));
    assert_non_null(kiln_status_suggestion(unknown[i]));
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_number), cmocka_unit_test(test_version_string),
      cmocka_unit_test(test_status_names),   cmocka_unit_test(test_status_messages),
      cmocka_unit_test(test_status_unknown),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}

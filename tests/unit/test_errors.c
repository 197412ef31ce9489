/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* The error model: every status of KILN_STATUS_MAP has its name, message and default
 * suggestion; kiln_last_error() is filled by a failing call (status, message naming the
 * value, suggestion, function, caller's file:line through the macros), survives later
 * successful calls, is per thread, and is filled without allocating. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

typedef struct status_row {
  kiln_status value;
  const char *name;
  const char *message;
  const char *suggestion;
} status_row;

static const status_row rows[] = {
#define ROW_(name, value, msg, sugg) {KILN_##name, "KILN_" #name, msg, sugg},
    KILN_STATUS_MAP(ROW_)
#undef ROW_
};
#define ROW_COUNT (sizeof rows / sizeof rows[0])

static void status_table_names_messages_suggestions(void **state) {
  (void)state;
  assert_true(ROW_COUNT >= 20);
  for (size_t i = 0; i < ROW_COUNT; i++) {
    const char *name = kiln_status_name(rows[i].value);
    const char *msg = kiln_status_message(rows[i].value);
    const char *sugg = kiln_status_suggestion(rows[i].value);
    assert_non_null(name);
    assert_non_null(msg);
    assert_non_null(sugg);
    assert_string_equal(name, rows[i].name);
    assert_string_equal(msg, rows[i].message);
    assert_string_equal(sugg, rows[i].suggestion);
    /* every error has something to say and something to suggest */
    if ((int)rows[i].value < 0) {
      assert_true(msg[0] != '\0');
      assert_true(sugg[0] != '\0');
    }
  }
}

static void status_table_values_unique(void **state) {
  (void)state;
  for (size_t i = 0; i < ROW_COUNT; i++)
    for (size_t j = i + 1; j < ROW_COUNT; j++) {
      assert_int_not_equal(rows[i].value, rows[j].value);
      assert_string_not_equal(rows[i].name, rows[j].name);
    }
  assert_int_equal(KILN_SUCCESS, 0);
}

static void status_unknown_value(void **state) {
  (void)state;
  const kiln_status odd[] = {(kiln_status)12345, (kiln_status)-999, (kiln_status)3,
                             KILN_STATUS_END_};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    assert_string_equal(kiln_status_name(odd[i]), "KILN_STATUS_UNKNOWN");
    assert_non_null(kiln_status_message(odd[i]));
    assert_non_null(kiln_status_suggestion(odd[i]));
  }
}

static void last_error_filled_after_failure(void **state) {
  (void)state;
  kiln_device dev = (kiln_device)(uintptr_t)0x1; /* must be overwritten with NULL */
  KT_EXPECT(kiln_device_find(KILN_BACKEND_CPU, 4242, &dev), KILN_ERROR_DEVICE_NOT_FOUND);
  assert_null(dev);
  const kiln_error_info *e = kiln_last_error();
  assert_non_null(e);
  assert_int_equal(e->status, KILN_ERROR_DEVICE_NOT_FOUND);
  assert_int_equal(e->backend, KILN_BACKEND_NONE);
  assert_non_null(kt_strcasestr(e->message, "4242"));
  assert_true(e->suggestion[0] != '\0');
  assert_string_equal(e->function, "kiln_device_find");
  assert_int_equal(e->line, 0);
  assert_string_equal(e->file, "");
  assert_int_equal(e->native_code, 0);
  assert_string_equal(e->native_name, "");
}

static void last_error_names_caller_line_through_macro(void **state) {
  (void)state;
  kiln_pending t = {0x5a5a5a5a};
  unsigned char data[16] = {0};
  int line = __LINE__ + 1;
  kiln_status st = kiln_buffer_write_async(NULL, NULL, 0, sizeof data, data, &t);
  assert_true((int)st < 0);  /* which status: test_bad_input's business */
  assert_int_equal(t.id, 0); /* a failed call writes an empty token */
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, st);
  assert_int_equal(e->line, line);
  const char *base = strrchr(e->file, '/');
  assert_string_equal(base ? base + 1 : e->file, "test_errors.c");
  /* the name the user wrote (the macro) or its _at function */
  assert_int_equal(strncmp(e->function, "kiln_buffer_write_async", 23), 0);
  assert_true(e->message[0] != '\0');

  /* a later failure that did not go through a macro clears file and line */
  KT_EXPECT(kiln_stream_query(NULL), KILN_ERROR_INVALID_HANDLE);
  e = kiln_last_error();
  assert_int_equal(e->line, 0);
  assert_string_equal(e->file, "");
  assert_string_equal(e->function, "kiln_stream_query");

  /* the wait macros too */
  kiln_pending empty = KILN_PENDING_INIT;
  line = __LINE__ + 1;
  st = kiln_wait(&empty);
  assert_int_equal(st, KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(kiln_last_error()->line, line);
  assert_int_equal(strncmp(kiln_last_error()->function, "kiln_wait", 9), 0);
}

static void last_error_survives_success_and_clears(void **state) {
  (void)state;
  KT_EXPECT(kiln_device_count(NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_error_info before = *kiln_last_error();
  unsigned n = 0;
  KT_OK(kiln_device_count(&n));
  assert_true(n >= 1);
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, before.status);
  assert_string_equal(e->message, before.message);
  assert_string_equal(e->function, before.function);

  kiln_clear_error();
  e = kiln_last_error();
  assert_int_equal(e->status, KILN_SUCCESS);
  assert_string_equal(e->message, "");
  assert_string_equal(e->function, "");
  assert_int_equal(e->line, 0);
}

static void last_error_null_argument_names_parameter(void **state) {
  (void)state;
  KT_EXPECT(kiln_device_parse(NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  assert_string_equal(kiln_last_error()->function, "kiln_device_parse");
  kiln_device dev = NULL;
  KT_EXPECT_MSG(kiln_device_parse("cpu:4242", &dev), KILN_ERROR_DEVICE_NOT_FOUND, "4242");
}

/* ---- thread-local detail ---- */

typedef struct thread_result {
  int initial_clean; /* the new thread starts with no error */
  kiln_status got;
  kiln_status seen; /* its kiln_last_error()->status right after */
  int message_ok;
  int rounds_ok;
  unsigned index;
} thread_result;

static void *fail_on_other_thread(void *arg) {
  thread_result *r = arg;
  r->initial_clean =
      kiln_last_error()->status == KILN_SUCCESS && kiln_last_error()->message[0] == '\0';
  r->got = kiln_device_count(NULL);
  r->seen = kiln_last_error()->status;
  r->message_ok = kiln_last_error()->message[0] != '\0';
  return NULL;
}

static void last_error_is_thread_local(void **state) {
  (void)state;
  kiln_device dev = NULL;
  KT_EXPECT_MSG(kiln_device_find(KILN_BACKEND_CPU, 777, &dev), KILN_ERROR_DEVICE_NOT_FOUND, "777");
  kiln_error_info mine = *kiln_last_error();

  thread_result r;
  memset(&r, 0, sizeof r);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, fail_on_other_thread, &r), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_true(r.initial_clean);
  assert_int_equal(r.got, KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(r.seen, KILN_ERROR_INVALID_ARGUMENT);
  assert_true(r.message_ok);

  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, KILN_ERROR_DEVICE_NOT_FOUND);
  assert_string_equal(e->message, mine.message);
  assert_string_equal(e->function, "kiln_device_find");
}

static void *fail_in_rounds(void *arg) {
  thread_result *r = arg;
  char want[32];
  r->rounds_ok = 1;
  for (unsigned i = 0; i < 2000; i++) {
    unsigned index = 1000u + r->index * 10000u + i;
    kiln_device dev = NULL;
    kiln_status st = kiln_device_find(KILN_BACKEND_CPU, index, &dev);
    snprintf(want, sizeof want, "%u", index);
    if (st != KILN_ERROR_DEVICE_NOT_FOUND || kiln_last_error()->status != st ||
        !kt_strcasestr(kiln_last_error()->message, want)) {
      r->rounds_ok = 0;
      break;
    }
  }
  return NULL;
}

static void last_error_thread_local_under_contention(void **state) {
  (void)state;
  enum { N = 4 };
  thread_result r[N];
  pthread_t th[N];
  memset(r, 0, sizeof r);
  for (unsigned i = 0; i < N; i++) {
    r[i].index = i;
    assert_int_equal(pthread_create(&th[i], NULL, fail_in_rounds, &r[i]), 0);
  }
  for (unsigned i = 0; i < N; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  for (unsigned i = 0; i < N; i++)
    assert_true(r[i].rounds_ok);
}

/* ---- filling the detail never allocates ---- */

static void last_error_fill_never_allocates(void **state) {
  (void)state;
  kiln_device dev = kt_cpu_device();
  KT_OK(kt_alloc_install());
  kt_alloc_fail_from(1); /* every allocation fails from now on */

  unsigned *no_count = NULL;
  KT_EXPECT(kiln_device_count(no_count), KILN_ERROR_INVALID_ARGUMENT);
  assert_string_equal(kiln_last_error()->function, "kiln_device_count");
  kiln_device found = NULL;
  KT_EXPECT_MSG(kiln_device_find(KILN_BACKEND_CPU, 31337, &found), KILN_ERROR_DEVICE_NOT_FOUND,
                "31337");
  KT_EXPECT_MSG(kiln_device_parse("cpu:x", &found), KILN_ERROR_INVALID_ARGUMENT, "cpu:x");
  kiln_pending empty = KILN_PENDING_INIT;
  KT_EXPECT(kiln_wait(&empty), KILN_ERROR_INVALID_HANDLE);
  /* refusing bad input, and describing it, asked the allocator for nothing */
  assert_int_equal(kt_alloc_calls(), 0);

  /* a creator that needs memory fails cleanly with the detail filled */
  kiln_context ctx = (kiln_context)(uintptr_t)0x1;
  kiln_status st = kiln_context_create(dev, NULL, &ctx);
  if (kt_alloc_failures() > 0) {
    kt_check_status("kiln_context_create under fail-all", st, KILN_ERROR_OUT_OF_HOST_MEMORY,
                    __FILE__, __LINE__);
    assert_null(ctx);
    assert_string_equal(kiln_last_error()->function, "kiln_context_create");
  } else {
    /* no allocation needed: it must then simply work */
    KT_OK(st);
    kt_alloc_fail_none();
    KT_OK(kiln_context_destroy(ctx));
  }
  kt_alloc_fail_none();
  KT_OK(kt_alloc_uninstall());
  assert_true(kt_alloc_check_clean("last_error_fill_never_allocates"));
}

static void last_error_fill_never_allocates_with_context(void **state) {
  (void)state;
  kiln_device dev = kt_cpu_device();
  KT_OK(kt_alloc_install());
  kiln_context ctx = NULL;
  kiln_stream s = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer b = kt_buffer(ctx, 64);

  kt_alloc_fail_from(1);
  unsigned char data[64] = {0};
  /* a refused range, a refused token: named values, no allocation */
  KT_EXPECT_MSG(kiln_buffer_write(b, 60, 8, data), KILN_ERROR_OUT_OF_RANGE, "60");
  kiln_pending t = {0};
  KT_EXPECT(kiln_buffer_read_async(s, b, 0, 128, data, &t), KILN_ERROR_OUT_OF_RANGE);
  assert_int_equal(t.id, 0);
  assert_int_equal(kt_alloc_calls(), 0);

  /* a buffer that needs memory: if kiln asked and was refused, it says so cleanly */
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 4096;
  kiln_buffer b2 = (kiln_buffer)(uintptr_t)0x1;
  kiln_status st = kiln_buffer_create(ctx, &d, &b2);
  if (kt_alloc_failures() > 0) {
    /* the CPU device's memory is the host's: either out-of-memory status is honest */
    if (st != KILN_ERROR_OUT_OF_DEVICE_MEMORY)
      kt_check_status("kiln_buffer_create under fail-all", st, KILN_ERROR_OUT_OF_HOST_MEMORY,
                      __FILE__, __LINE__);
    assert_int_equal(kiln_last_error()->status, st);
    assert_true(kiln_last_error()->message[0] != '\0');
    assert_null(b2);
  } else {
    KT_OK(st);
    KT_OK(kiln_buffer_destroy(b2));
  }
  kt_alloc_fail_none();
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kt_alloc_uninstall());
  assert_true(kt_alloc_check_clean("last_error_fill_never_allocates_with_context"));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(status_table_names_messages_suggestions),
      cmocka_unit_test(status_table_values_unique),
      cmocka_unit_test(status_unknown_value),
      cmocka_unit_test(last_error_filled_after_failure),
      cmocka_unit_test(last_error_names_caller_line_through_macro),
      cmocka_unit_test(last_error_survives_success_and_clears),
      cmocka_unit_test(last_error_null_argument_names_parameter),
      cmocka_unit_test(last_error_is_thread_local),
      cmocka_unit_test(last_error_thread_local_under_contention),
      cmocka_unit_test(last_error_fill_never_allocates),
      cmocka_unit_test(last_error_fill_never_allocates_with_context),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

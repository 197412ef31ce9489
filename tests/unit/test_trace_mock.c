/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* Tracing of failures, driven by the mock backend: in ring mode the trace is written
 * when an op fails, holding the failed op (status named) and the work before it; the
 * device's loss and reset are instant events of the trace; a failed op's span is
 * coloured "bad". Traces are read back with jansson (tests/trace.cmake). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

static char path[256];

static json_t *load(void) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (!root)
    fail_msg("trace %s does not parse: %s", path, err.text);
  return root;
}

/* Count events with ph and name (and, when status is not NULL, that status). */
static int count(json_t *root, const char *ph, const char *name, const char *status) {
  json_t *evs = json_object_get(root, "traceEvents");
  int c = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *n = json_string_value(json_object_get(ev, "name"));
    if (strcmp(json_string_value(json_object_get(ev, "ph")), ph) || !n || strcmp(n, name))
      continue;
    const char *st = json_string_value(json_object_get(json_object_get(ev, "args"), "status"));
    if (!status || (st && !strcmp(st, status)))
      c++;
  }
  return c;
}

static void ring_written_when_an_op_fails(void **state) {
  (void)state;
  snprintf(path, sizeof path, "/tmp/kiln_test_trace_mock_ring_%d.json", (int)getpid());
  unlink(path);
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = path;
  td.ring_events = 32;
  KT_OK(kiln_trace_start(&td));
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_stream s;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer b = kt_buffer(ctx, 64);
  uint32_t h[16] = {0};
  for (int i = 0; i < 5; i++) {
    kiln_pending t;
    KT_OK(kiln_buffer_write_async(s, b, 0, sizeof h, h, &t));
    KT_OK(kiln_wait(&t));
  }
  assert_int_equal(access(path, F_OK), -1); /* nothing failed: nothing written yet */
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.fail_call = 1;
  c.fail_status = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  KT_OK(kiln_mock_configure(&c));
  kiln_pending t;
  KT_OK(kiln_buffer_fill_async(s, b, 0, sizeof h, &(uint32_t){1}, 4, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  KT_OK(kiln_mock_configure(NULL));
  /* Written at the failure, before anything else could flush it. */
  json_t *root = load();
  assert_int_equal(count(root, "X", "fill", "KILN_ERROR_OUT_OF_DEVICE_MEMORY"), 1);
  assert_int_equal(count(root, "X", "write", "KILN_SUCCESS"), 5);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(root, "otherData"), "written_because")),
      "an operation failed");
  json_t *evs = json_object_get(root, "traceEvents");
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *n = json_string_value(json_object_get(ev, "name"));
    if (n && !strcmp(n, "fill"))
      assert_string_equal(json_string_value(json_object_get(ev, "cname")), "bad");
  }
  json_decref(root);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_trace_stop());
  unlink(path);
}

static void device_loss_and_reset_are_instants(void **state) {
  (void)state;
  snprintf(path, sizeof path, "/tmp/kiln_test_trace_mock_lost_%d.json", (int)getpid());
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = path;
  KT_OK(kiln_trace_start(&td));
  kiln_device dev = kt_mock_device();
  kiln_context ctx;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  kiln_stream s;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer b = kt_buffer(ctx, 64);
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.lose_device_call = 1;
  KT_OK(kiln_mock_configure(&c));
  uint32_t h[16] = {0};
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(s, b, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_DEVICE_LOST);
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_device_reset(dev));
  KT_OK(kiln_trace_stop());
  json_t *root = load();
  assert_int_equal(count(root, "i", "device lost", NULL), 1);
  assert_int_equal(count(root, "i", "device reset", NULL), 1);
  assert_int_equal(count(root, "X", "write", "KILN_ERROR_DEVICE_LOST"), 1);
  json_t *evs = json_object_get(root, "traceEvents");
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *n = json_string_value(json_object_get(ev, "name"));
    if (n && !strcmp(n, "device lost")) {
      assert_string_equal(json_string_value(json_object_get(ev, "cat")), "device");
      assert_true(strlen(json_string_value(json_object_get(json_object_get(ev, "args"), "why"))) >
                  0);
    }
    if (n && !strcmp(n, "device reset"))
      assert_true(json_integer_value(json_object_get(json_object_get(ev, "args"), "generation")) >=
                  1);
  }
  json_decref(root);
  unlink(path);
}

/* The decisions of kiln's services are instants of the trace: the device pool's miss,
 * hit and trim (a slab returned by compact), and the compile cache's miss, memory hit
 * and directory hit (through the blob API on a cache directory of the test's own). */
static int count_cat(json_t *root, const char *cat, const char *name) {
  json_t *evs = json_object_get(root, "traceEvents");
  int c = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *n = json_string_value(json_object_get(ev, "name"));
    const char *k = json_string_value(json_object_get(ev, "cat"));
    if (!strcmp(json_string_value(json_object_get(ev, "ph")), "i") && n && k && !strcmp(n, name) &&
        !strcmp(k, cat))
      c++;
  }
  return c;
}

static void pool_and_cache_decisions_are_instants(void **state) {
  (void)state;
  char dir[] = "/tmp/kiln_test_trace_cache_XXXXXX";
  assert_non_null(mkdtemp(dir));
  setenv("KILN_CACHE_DIR", dir, 1);
  snprintf(path, sizeof path, "/tmp/kiln_test_trace_mock_decisions_%d.json", (int)getpid());
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = path;
  KT_OK(kiln_trace_start(&td));
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_stream s;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_pool pool;
  KT_OK(kiln_pool_create(ctx, NULL, &pool));
  kiln_buffer b;
  KT_OK(kiln_pool_alloc(pool, s, 4096, &b)); /* miss: a slab is carved */
  KT_OK(kiln_pool_free(b, s));
  KT_OK(kiln_stream_synchronize(s));
  KT_OK(kiln_pool_alloc(pool, s, 4096, &b)); /* hit: the block freed on this stream */
  KT_OK(kiln_pool_free(b, s));
  KT_OK(kiln_stream_synchronize(s));
  KT_OK(kiln_pool_compact(pool)); /* trim: the idle slab goes back */
  KT_OK(kiln_pool_destroy(pool));

  static const char key[] = "trace-test-key";
  static const char blob[] = "a cached value";
  void *got = NULL;
  size_t got_bytes = 0;
  KT_OK(kiln_cache_get("tracetest", key, sizeof key, &got, &got_bytes)); /* miss */
  assert_null(got);
  KT_OK(kiln_cache_put("tracetest", key, sizeof key, blob, sizeof blob));
  KT_OK(kiln_cache_get("tracetest", key, sizeof key, &got, &got_bytes)); /* memory hit */
  assert_non_null(got);
  kiln_cache_free(got, got_bytes);
  kiln_cache_drop_memory();
  KT_OK(kiln_cache_get("tracetest", key, sizeof key, &got, &got_bytes)); /* directory hit */
  assert_non_null(got);
  assert_memory_equal(got, blob, sizeof blob);
  kiln_cache_free(got, got_bytes);
  uint64_t removed = 0;
  KT_OK(kiln_cache_clear(&removed));

  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_trace_stop());
  unsetenv("KILN_CACHE_DIR");
  json_t *root = load();
  assert_true(count_cat(root, "pool", "miss") >= 1);
  assert_true(count_cat(root, "pool", "hit") >= 1);
  assert_true(count_cat(root, "pool", "trim") >= 1);
  assert_true(count_cat(root, "cache", "miss") >= 1);
  assert_int_equal(count_cat(root, "cache", "hit"), 2);
  json_decref(root);
  unlink(path);
  char sub[sizeof dir + 16];
  snprintf(sub, sizeof sub, "%s/tracetest", dir);
  rmdir(sub);
  rmdir(dir);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ring_written_when_an_op_fails),
      cmocka_unit_test(device_loss_and_reset_are_instants),
      cmocka_unit_test(pool_and_cache_decisions_are_instants),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* The hybrid dispatcher's failure paths on the mock backend: a target whose device is
 * lost fails the run that met the loss (DEVICE_LOST naming the target) and is avoided
 * by every later ADAPTIVE decision, counted and shown in the statistics; FIXED mode on
 * it refuses with DEVICE_LOST; with every target lost, decide says so. A kernel task on
 * the mock (its fake compiler's kernel writing a code) under every injected backend
 * failure of a run, once and from N on: the run returns the injected status naming the
 * step, nothing is learned, no device memory is left behind. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

/* Writes n bytes into a buffer of its context: a backend call that loses the device. */
static kiln_status touch_fn(kiln_context ctx, size_t n, void *user) {
  (void)user;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = n;
  kiln_buffer b = NULL;
  kiln_status st = kiln_buffer_create(ctx, &bd, &b);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(b, 0, n, "\0", 1);
  kiln_buffer_destroy(b);
  return st;
}

static void lost_target_is_avoided(void **state) {
  (void)state;
  kiln_device mock = kt_mock_device();
  kiln_context cpu = NULL, mc = NULL;
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &cpu));
  KT_OK(kiln_context_create(mock, NULL, &mc));
  kiln_hybrid_target tg[2] = {{cpu, NULL}, {mc, NULL}};
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.targets = tg;
  d.target_count = 2;
  d.flags = KILN_HYBRID_NO_EXPLORATION;
  kiln_hybrid h = NULL;
  KT_OK(kiln_hybrid_create(&d, &h));
  d.mode = KILN_HYBRID_FIXED;
  d.fixed_target = 1;
  kiln_hybrid hf = NULL;
  KT_OK(kiln_hybrid_create(&d, &hf));
  kiln_hybrid_fn fns[2] = {touch_fn, touch_fn};
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "touch";
  td.fns = fns;
  kiln_hybrid_task t = NULL, tf = NULL;
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  KT_OK(kiln_hybrid_task_create(hf, &td, &tf));
  for (int i = 0; i < 3; i++) {                      /* the mock is the faster target */
    KT_OK(kiln_hybrid_record(t, 0, 64, 1000000000)); /* 1 s */
    KT_OK(kiln_hybrid_record(t, 1, 64, 10));
  }
  unsigned k = 9;
  KT_OK(kiln_hybrid_run(t, 64, NULL, &k));
  assert_int_equal(k, 1);

  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.lose_device_call = 1; /* the next backend call */
  KT_OK(kiln_mock_configure(&c));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_EXPECT_MSG(kiln_hybrid_run(t, 64, NULL, &k), KILN_ERROR_DEVICE_LOST,
                "task 'touch' on target 1 (mock:0)");
  kt_log_capture_stop(&cap);
  assert_int_equal(k, 1);
  assert_true(kt_log_capture_has(&cap, "decisions avoid it"));
  for (int i = 0; i < 5; i++) {
    kiln_hybrid_reason why;
    KT_OK(kiln_hybrid_run(t, 64, NULL, &k));
    assert_int_equal(k, 0);
    KT_OK(kiln_hybrid_decide(t, 64, &k, &why));
    assert_int_equal(why, KILN_HYBRID_REASON_ONLY);
  }
  kiln_hybrid_target_stats s = KILN_HYBRID_TARGET_STATS_INIT;
  KT_OK(kiln_hybrid_get_stats(t, 1, &s));
  assert_int_equal(s.lost, 1);
  assert_int_equal(s.failures, 1);
  assert_int_equal(s.runs, 4); /* 3 recorded + 1 run before the loss */
  char json[4096];
  KT_OK(kiln_hybrid_stats_json(t, json, sizeof json, NULL));
  assert_non_null(strstr(json, "\"failures\":1,\"lost\":true"));
  /* the loss is the dispatcher's: its FIXED twin learns it at its own first run */
  KT_EXPECT_MSG(kiln_hybrid_run(tf, 64, NULL, &k), KILN_ERROR_DEVICE_LOST, "target 1");
  KT_EXPECT_MSG(kiln_hybrid_decide(tf, 64, &k, NULL), KILN_ERROR_DEVICE_LOST,
                "where FIXED mode sends it, lost its device");
  KT_OK(kiln_hybrid_destroy(hf));
  KT_OK(kiln_hybrid_destroy(h));

  /* every target lost: decide says so */
  tg[0].context = mc;
  d.mode = KILN_HYBRID_ADAPTIVE;
  d.target_count = 1;
  KT_OK(kiln_hybrid_create(&d, &h));
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  KT_EXPECT(kiln_hybrid_run(t, 8, NULL, &k), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT_MSG(kiln_hybrid_decide(t, 8, &k, NULL), KILN_ERROR_DEVICE_LOST, "no target can run");
  KT_OK(kiln_hybrid_destroy(h));

  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_context_destroy(mc));
  KT_OK(kiln_device_reset(mock));
  KT_OK(kiln_context_destroy(cpu));
}

/* One kernel task run on the mock: a kernel writing its code into each of 8 items. */
static const char *code_src = "/* hybrid mock test */\n"
                              "KILN_KERNEL void code(KILN_GLOBAL kiln_u32 *out) {\n"
                              "  out[kiln_global_id(0)] = 12345u;\n"
                              "}\n";

static kiln_status run_once(kiln_hybrid_task t, uint32_t out[8]) {
  memset(out, 0, 8 * sizeof(uint32_t));
  kiln_hybrid_arg a = {KILN_HYBRID_ARG_OUT, out, sizeof(uint32_t)};
  return kiln_hybrid_run_kernel(t, 8, &a, 1, NULL);
}

static void kernel_run_backend_failures(void **state) {
  (void)state;
  kiln_context mc = NULL;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &mc));
  kiln_hybrid_target tg[1] = {{mc, NULL}};
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.targets = tg;
  d.target_count = 1;
  kiln_hybrid h = NULL;
  KT_OK(kiln_hybrid_create(&d, &h));
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "code";
  td.source = code_src;
  td.kernel = "code";
  kiln_hybrid_task t = NULL;
  KT_OK(kiln_hybrid_task_create(h, &td, &t));
  uint32_t out[8];
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(run_once(t, out));
  const uint64_t calls = kiln_mock_calls();
  assert_true(calls >= 3);      /* buffer, launch, read */
  const uint32_t code = out[0]; /* the fake compiler's code of this source */
  assert_int_not_equal(code, 0);
  for (int i = 0; i < 8; i++)
    assert_int_equal(out[i], code);
  uint64_t runs = 1, failures = 0;
  for (int from = 0; from < 2; from++)
    for (uint64_t n = 1; n <= calls; n++) {
      kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
      c.fail_status = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
      if (from)
        c.fail_from_call = n;
      else
        c.fail_call = n;
      KT_OK(kiln_mock_configure(&c));
      kiln_status st = run_once(t, out);
      KT_OK(kiln_mock_configure(NULL));
      if (st == KILN_SUCCESS) {
        /* a call after the read (the buffers' release) may fail unseen: then the data
         * must be whole, and the run is learned */
        for (int i = 0; i < 8; i++)
          if (out[i] != code)
            fail_msg("fail %s call %llu of %llu: the run succeeded with out[%d] = %u",
                     from ? "from" : "at", (unsigned long long)n, (unsigned long long)calls, i,
                     out[i]);
        runs++;
        continue;
      }
      failures++;
      const kiln_error_info *e = kiln_last_error();
      if (!kt_strcasestr(e->message, "task 'code' on target 0 (mock:0)") ||
          strcmp(e->function, "kiln_hybrid_run_kernel") != 0)
        fail_msg("fail call %llu: message '%s' from %s", (unsigned long long)n, e->message,
                 e->function);
      assert_int_equal(kiln_mock_buffer_bytes(), 0);
    }
  assert_true(failures >= 2 * (calls - 1)); /* every call up to the read is seen */
  KT_OK(run_once(t, out));
  runs++;
  assert_int_equal(out[7], code);
  kiln_hybrid_target_stats s = KILN_HYBRID_TARGET_STATS_INIT;
  KT_OK(kiln_hybrid_get_stats(t, 0, &s));
  assert_int_equal(s.runs, runs);
  assert_int_equal(s.failures, failures);
  assert_int_equal(s.lost, 0);
  KT_OK(kiln_hybrid_destroy(h));
  KT_OK(kiln_context_destroy(mc));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lost_target_is_avoided),
      cmocka_unit_test(kernel_run_backend_failures),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* A stream destroyed while another stream's worker waits on it for a hazard
 * dependency (run under TSan by make check): stream B's launch writes the buffer that
 * stream A's held launch writes, so B's worker waits on A; the gate opens, the main
 * thread waits A's token and destroys A at once, racing B's worker inside its wait on
 * A (op.c's wait_until took A's wait lock while A's teardown destroyed it: a race TSan
 * reported; teardown now waits out the threads inside a wait on the stream). Every
 * launch runs once, in order. KILN_STRESS_OPS (default 150) scales the rounds. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>

#include "kiln_test.h"

static int rounds(void) {
  const char *v = getenv("KILN_STRESS_OPS");
  int n = v && *v ? atoi(v) : 150;
  return n > 0 ? n : 150;
}

typedef struct opener {
  kt_gate *gate;
  unsigned delay_us;
} opener;

static void *open_later(void *arg) {
  opener *o = arg;
  kt_sleep_us(o->delay_us);
  kt_gate_open(o->gate);
  return NULL;
}

static void destroy_while_another_stream_waits_on_it(void **state) {
  kt_env *env = *state;
  kiln_kernel gate_k = kt_gate_kernel(env->ctx);
  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_buffer buf = kt_buffer(env->ctx, 64 * sizeof(uint32_t));
  KT_OK(kiln_buffer_fill(buf, 0, 64 * sizeof(uint32_t), &(uint32_t){0}, sizeof(uint32_t)));
  const uint64_t offset = 0;
  const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, buf, &offset, &one);
  kiln_range r = kiln_range_1d(64);
  int n = rounds();
  for (int i = 0; i < n; i++) {
    kiln_stream a, b;
    KT_OK(kiln_stream_create(env->ctx, NULL, &a));
    KT_OK(kiln_stream_create(env->ctx, NULL, &b));
    kt_gate gate;
    kt_gate_init(&gate);
    kiln_pending held, a_add, b_add;
    KT_OK(kt_gate_launch_async(a, gate_k, &gate, &held));
    KT_OK(kiln_launch_async(a, add, &r, args, 3, &a_add));
    KT_OK(kiln_launch_async(b, add, &r, args, 3, &b_add)); /* waits on a's launch */
    opener o = {&gate, (unsigned)(i % 7) * 20u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, open_later, &o), 0);
    KT_OK(kiln_wait(&held));
    KT_OK(kiln_wait(&a_add));
    KT_OK(kiln_stream_destroy(a)); /* b's worker may still be inside its wait on a */
    KT_OK(kiln_wait(&b_add));
    KT_OK(kiln_stream_destroy(b));
    assert_int_equal(pthread_join(t, NULL), 0);
  }
  uint32_t got[64];
  KT_OK(kiln_buffer_read(buf, 0, sizeof got, got));
  for (int j = 0; j < 64; j++)
    assert_int_equal(got[j], 2u * (uint32_t)n);
  KT_OK(kiln_buffer_destroy(buf));
  KT_OK(kiln_kernel_destroy(add));
  KT_OK(kiln_kernel_destroy(gate_k));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(destroy_while_another_stream_waits_on_it, kt_setup_plain,
                                      kt_teardown),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

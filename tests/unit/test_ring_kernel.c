/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl */
/* The "ring kernel" pattern (docs/ring.md): a persistent kernel, written in the kiln
 * dialect with kiln_ring_dialect_source() before it, serves host requests while it
 * runs. The host formats an inbox and an outbox ring in two buffers' storage
 * (KILN_NATIVE_HOST_POINTER, CPU backend), launches the server asynchronously, sends
 * requests and reads the answers with the blocking pop, then sends "stop" and waits
 * for the launch. Both kinds: SPSC rings (one server work-item) and MPMC rings with
 * four server work-items (the CPU backend runs a small launch's work-items one after
 * another on its worker: the first serves until it takes a stop, then each of the
 * others takes its own; the protocol is MPMC's all the same). On OpenCL the dialect header refuses
 * to compile, saying why (no fine-grained SVM with atomics in kiln's OpenCL memory). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "ring_server_src.h"

static char *program_text(void) {
  const char *dialect = kiln_ring_dialect_source();
  size_t a = strlen(dialect), b = strlen(server_src);
  char *text = malloc(a + b + 1);
  assert_non_null(text);
  memcpy(text, dialect, a);
  memcpy(text + a, server_src, b + 1);
  return text;
}

/* A buffer of `bytes` whose storage holds a ring (CPU backend). */
static kiln_ring ring_in_buffer(kt_env *env, kiln_ring_kind kind, kiln_buffer *buf) {
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.kind = kind;
  d.capacity = 8; /* small: the server and the host wait on each other often */
  d.message_bytes = 16;
  size_t bytes = 0;
  KT_OK(kiln_ring_bytes_needed(&d, &bytes));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = bytes;
  KT_OK(kiln_buffer_create(env->ctx, &bd, buf));
  void *mem = NULL;
  KT_OK(kiln_buffer_get_native(*buf, KILN_NATIVE_HOST_POINTER, &mem));
  kiln_ring r = NULL;
  KT_OK(kiln_ring_init_in(mem, bytes, &d, &r));
  return r;
}

static void serve(kt_env *env, kiln_ring_kind kind, unsigned servers) {
  char *text = program_text();
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = text;
  pd.name = "ring_server";
  kiln_program prog = NULL;
  kiln_status st = kiln_program_create(env->ctx, &pd, &prog);
  if (st != KILN_SUCCESS)
    fail_msg("%s\n%s", kiln_last_error()->message, kiln_last_build_log());
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(prog, "ring_server", &k));
  kiln_buffer inbuf, outbuf;
  kiln_ring inbox = ring_in_buffer(env, kind, &inbuf);
  kiln_ring outbox = ring_in_buffer(env, kind, &outbuf);
  int mpmc = kind == KILN_RING_MPMC;
  kiln_arg args[3] = {kiln_arg_buffer(inbuf), kiln_arg_buffer(outbuf),
                      kiln_arg_scalar(&mpmc, sizeof mpmc)};
  kiln_range range = kiln_range_1d(servers);
  kiln_pending tok = KILN_PENDING_INIT;
  KT_OK(kiln_launch_async(env->stream, k, &range, args, 3, &tok));

  enum { REQUESTS = 2000 };
  unsigned char *answered = calloc(REQUESTS, 1);
  assert_non_null(answered);
  uint32_t sent = 0, got = 0, by_server[4] = {0, 0, 0, 0};
  while (got < REQUESTS) {
    /* keep up to 6 requests in flight, then collect an answer */
    while (sent < REQUESTS && sent - got < 6) {
      uint32_t req[4] = {sent, sent % 1000u, 0, sent * 7u};
      KT_OK(mpmc ? kiln_ring_push_wait_mpmc(inbox, req, KILN_RING_FOREVER)
                 : kiln_ring_push_wait_spsc(inbox, req, KILN_RING_FOREVER));
      sent++;
    }
    uint32_t resp[4];
    /* 10 s: a server that stopped serving fails the test instead of hanging it */
    st = mpmc ? kiln_ring_pop_wait_mpmc(outbox, resp, 10000000000ull)
              : kiln_ring_pop_wait_spsc(outbox, resp, 10000000000ull);
    KT_OK(st);
    assert_true(resp[0] < sent);
    assert_int_equal(answered[resp[0]], 0);
    answered[resp[0]] = 1;
    assert_int_equal(resp[1], (resp[0] % 1000u) * (resp[0] % 1000u) + 1u);
    assert_int_equal(resp[3], (resp[0] * 7u) ^ 0xA5A5A5A5u);
    assert_true(resp[2] < servers);
    by_server[resp[2]]++;
    if (!mpmc)
      assert_int_equal(resp[0], got); /* one server, SPSC: in order */
    got++;
  }
  for (unsigned i = 0; i < servers; i++) {
    uint32_t stop[4] = {0xFFFFFFFFu, 0, 0, 0};
    KT_OK(mpmc ? kiln_ring_push_wait_mpmc(inbox, stop, KILN_RING_FOREVER)
               : kiln_ring_push_wait_spsc(inbox, stop, KILN_RING_FOREVER));
  }
  KT_OK(kiln_wait(&tok));
  size_t left = 1;
  KT_OK(kiln_ring_count(inbox, &left));
  assert_int_equal(left, 0);
  KT_OK(kiln_ring_count(outbox, &left));
  assert_int_equal(left, 0);
  assert_int_equal(by_server[0] + by_server[1] + by_server[2] + by_server[3], REQUESTS);
  free(answered);
  KT_OK(kiln_ring_destroy(inbox));
  KT_OK(kiln_ring_destroy(outbox));
  KT_OK(kiln_buffer_destroy(inbuf));
  KT_OK(kiln_buffer_destroy(outbuf));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(prog));
  free(text);
}

static void spsc_ring_kernel_roundtrip(void **state) {
  kt_env *env = *state;
  if (kt_backend() == KILN_BACKEND_OPENCL) {
    /* kiln's OpenCL memory is no fine-grained SVM: the header refuses, saying so */
    char *text = program_text();
    kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
    pd.source = text;
    kiln_program prog = NULL;
    KT_EXPECT_MSG(kiln_program_create(env->ctx, &pd, &prog), KILN_ERROR_COMPILE_FAILED,
                  "fine-grained SVM");
    assert_null(prog);
    free(text);
    return;
  }
  serve(env, KILN_RING_SPSC, 1);
}

static void mpmc_ring_kernel_four_servers(void **state) {
  kt_env *env = *state;
  if (kt_backend() == KILN_BACKEND_OPENCL)
    return; /* refused above */
  serve(env, KILN_RING_MPMC, 4);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(spsc_ring_kernel_roundtrip, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(mpmc_ring_kernel_four_servers, kt_setup, kt_teardown),
};
KT_MAIN(tests)

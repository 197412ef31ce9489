/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cuda-nogpu stress */
/* The CUDA backend's threads — submitters, each stream's completion thread, waiters,
 * the copy helpers of the staging — against the emulating fake libcuda (a worker
 * thread per CUstream), under TSan in make check: four threads share two streams,
 * each with its own buffer, doing small writes, launches (kt_add_u32, run by the
 * fake) and staged async reads; two streams pass one buffer back and forth through
 * cross-stream hazards with staged transfers of several chunks; pinned blocks come
 * and go while transfers run. Every value is checked. main() points
 * KILN_CUDA_LIBRARY at the fake next to this test (<tree>/tests/cuda/). */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

#define ELEMS 1024u

typedef struct shared {
  kiln_context ctx;
  kiln_stream s[2];
  kiln_kernel add;
  unsigned iters;
} shared;

typedef struct worker {
  shared *sh;
  int id;
  int bad;
  char why[640];
} worker;

static void *small_ops(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = ELEMS * sizeof(uint32_t);
  kiln_buffer b = NULL;
  if (kiln_buffer_create(sh->ctx, &bd, &b) != KILN_SUCCESS) {
    snprintf(w->why, sizeof w->why, "buffer: %s", kiln_last_error()->message);
    w->bad = 1;
    return NULL;
  }
  uint32_t in[ELEMS], out[ELEMS];
  const uint64_t off = 0;
  const uint32_t inc = 3;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &inc);
  kiln_range r = kiln_range_1d(ELEMS);
  kiln_stream s = sh->s[w->id % 2];
  for (unsigned it = 0; it < sh->iters && !w->bad; it++) {
    for (uint32_t i = 0; i < ELEMS; i++)
      in[i] = i * 11u + it + (uint32_t)w->id * 100000u;
    memset(out, 0, sizeof out);
    kiln_pending t[3] = {KILN_PENDING_INIT, KILN_PENDING_INIT, KILN_PENDING_INIT};
    kiln_status st = kiln_buffer_write_async(s, b, 0, sizeof in, in, &t[0]);
    if (st == KILN_SUCCESS)
      st = kiln_launch_async(s, sh->add, &r, args, 3, &t[1]);
    if (st == KILN_SUCCESS)
      st = kiln_buffer_read_async(s, b, 0, sizeof out, out, &t[2]);
    for (int k = 0; k < 3; k++) {
      kiln_status ws = t[k].id ? kiln_wait(&t[k]) : KILN_SUCCESS;
      if (st == KILN_SUCCESS)
        st = ws;
    }
    if (st != KILN_SUCCESS) {
      snprintf(w->why, sizeof w->why, "iteration %u: %s", it, kiln_last_error()->message);
      w->bad = 1;
    }
    for (uint32_t i = 0; i < ELEMS && !w->bad; i++)
      if (out[i] != in[i] + inc) {
        snprintf(w->why, sizeof w->why, "iteration %u: out[%u] = %u, expected %u", it, i, out[i],
                 in[i] + inc);
        w->bad = 1;
      }
  }
  kiln_buffer_destroy(b);
  return NULL;
}

static void *pinned_churn(void *arg) {
  worker *w = arg;
  for (unsigned it = 0; it < w->sh->iters && !w->bad; it++) {
    void *p = NULL;
    if (kiln_host_alloc(w->sh->ctx, 64u << 10, &p) != KILN_SUCCESS ||
        kiln_host_free(w->sh->ctx, p) != KILN_SUCCESS) {
      snprintf(w->why, sizeof w->why, "host memory: %s", kiln_last_error()->message);
      w->bad = 1;
    }
  }
  return NULL;
}

static void open_shared(shared *sh, unsigned iters) {
  memset(sh, 0, sizeof *sh);
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_CUDA, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &sh->ctx));
  for (int i = 0; i < 2; i++)
    KT_OK(kiln_stream_create(sh->ctx, NULL, &sh->s[i]));
  sh->add = kt_add_kernel(sh->ctx);
  sh->iters = iters;
}

static void close_shared(shared *sh) {
  KT_OK(kiln_kernel_destroy(sh->add));
  for (int i = 0; i < 2; i++)
    KT_OK(kiln_stream_destroy(sh->s[i]));
  KT_OK(kiln_context_destroy(sh->ctx));
}

static void four_threads_share_two_streams(void **state) {
  (void)state;
  shared sh;
  open_shared(&sh, 60);
  enum { T = 5 };
  pthread_t t[T];
  worker w[T];
  for (int i = 0; i < T; i++) {
    w[i] = (worker){&sh, i, 0, ""};
    assert_int_equal(pthread_create(&t[i], NULL, i < 4 ? small_ops : pinned_churn, &w[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    if (w[i].bad)
      fail_msg("thread %d: %s", i, w[i].why);
  }
  close_shared(&sh);
}

/* A buffer passed between the streams: s0 writes it (staged, three chunks), s1 reads
 * it back (staged; after the write by the hazard alone), s0 overwrites it (after s1's
 * read: the write-after-read hazard). */
static void staged_transfers_across_streams(void **state) {
  (void)state;
  shared sh;
  open_shared(&sh, 3);
  const size_t n = (9u << 20) + 40;
  unsigned char *a = malloc(n), *b = malloc(n), *back = malloc(n);
  assert_true(a && b && back);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = n;
  kiln_buffer buf = NULL;
  KT_OK(kiln_buffer_create(sh.ctx, &bd, &buf));
  for (unsigned it = 0; it < sh.iters; it++) {
    memset(a, (int)(it * 2 + 1), n);
    memset(b, (int)(it * 2 + 2), n);
    memset(back, 0, n);
    kiln_pending t[3];
    KT_OK(kiln_buffer_write_async(sh.s[0], buf, 0, n, a, &t[0]));
    KT_OK(kiln_buffer_read_async(sh.s[1], buf, 0, n, back, &t[1]));
    KT_OK(kiln_buffer_write_async(sh.s[0], buf, 0, n, b, &t[2]));
    KT_OK(kiln_wait_all(t, 3));
    for (size_t i = 0; i < n; i += 4093)
      if (back[i] != (unsigned char)(it * 2 + 1))
        fail_msg("iteration %u: byte %zu is %u", it, i, back[i]);
  }
  KT_OK(kiln_buffer_read(buf, 0, n, back));
  assert_int_equal(back[n - 1], (unsigned char)(sh.iters * 2));
  KT_OK(kiln_buffer_destroy(buf));
  free(a);
  free(b);
  free(back);
  close_shared(&sh);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(four_threads_share_two_streams),
      cmocka_unit_test(staged_transfers_across_streams),
  };
  char exe[PATH_MAX], lib[PATH_MAX + 64];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0)
    return 1;
  exe[len] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return 1;
  *slash = '\0';
  snprintf(lib, sizeof lib, "%s/../cuda/libkiln_fake_cuda.so", exe);
  setenv("KILN_CUDA_LIBRARY", lib, 1);
  setenv("KILN_TEST_BACKEND", "cuda", 1);
  setenv("KILN_FAKE_CUDA_LAUNCH", "emulate", 1);
  if (!kt_backend_available(KILN_BACKEND_CUDA)) {
    fprintf(stderr, "FAIL: the CUDA backend did not load the fake libcuda at %s\n", lib);
    return 1;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

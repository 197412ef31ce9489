/* SPDX-License-Identifier: MIT */
/* libkiln_mpi under `mpirun -np 2` (tests/mpi.cmake registers one ctest entry per test
 * and backend: `test_mpi TEST BACKEND`). Every rank runs the same test; a failed check
 * prints the rank, file:line and kiln's error, then MPI_Abort()s the job, so the other
 * rank never hangs. A backend that is absent makes every rank exit 77 (skipped).
 * Tests: init and its agreement, blocking send/recv of sizes 0, 1, odd and several
 * chunks (staged and direct), async send chained after async work on the buffer,
 * allreduce and bcast, bad arguments and size mismatches with exact statuses, a
 * thread level below MPI_THREAD_MULTIPLE, allocation-failure sweeps of the staging
 * path on either side, and the mock's device lost during a send. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/mpi.h"
#include "test_alloc.h"

static int g_rank = -1, g_size = 0;
static kiln_backend_kind g_backend = KILN_BACKEND_CPU;

#define CHECK(cond, ...)                                                                        \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      fprintf(stderr, "rank %d: %s:%d: CHECK(%s) failed: ", g_rank, __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                             \
      fprintf(stderr, "\n");                                                                    \
      fflush(stderr);                                                                           \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                             \
    }                                                                                           \
  } while (0)

#define OK(call)                                                             \
  do {                                                                       \
    kiln_status ok_ = (call);                                                \
    CHECK(ok_ == KILN_SUCCESS, "%s -> %s: %s", #call, kiln_status_name(ok_), \
          kiln_last_error()->message);                                       \
  } while (0)

/* The call returns `want` and its message contains `text` (NULL: any). */
#define EXPECT(call, want, text)                                                               \
  do {                                                                                         \
    kiln_status ex_ = (call);                                                                  \
    CHECK(ex_ == (want), "%s -> %s, expected %s: %s", #call, kiln_status_name(ex_),            \
          kiln_status_name(want), kiln_last_error()->message);                                 \
    const char *t_ = (text);                                                                   \
    CHECK(!t_ || strstr(kiln_last_error()->message, t_), "%s: message '%s' lacks '%s'", #call, \
          kiln_last_error()->message, t_);                                                     \
  } while (0)

static kiln_mpi init_with(size_t chunk, unsigned flags) {
  kiln_mpi_desc d = KILN_MPI_DESC_INIT;
  d.backend = g_backend;
  d.chunk_bytes = chunk;
  d.flags = flags;
  kiln_mpi m = NULL;
  OK(kiln_mpi_init(MPI_COMM_WORLD, &d, &m));
  return m;
}

static kiln_context ctx_of(kiln_mpi m) {
  kiln_mpi_info info = KILN_MPI_INFO_INIT;
  OK(kiln_mpi_get_info(m, &info));
  return info.context;
}

static kiln_buffer make_buffer(kiln_context ctx, size_t bytes) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes ? bytes : 1;
  kiln_buffer b = NULL;
  OK(kiln_buffer_create(ctx, &d, &b));
  return b;
}

static unsigned char pattern(size_t i, unsigned seed) {
  return (unsigned char)((i * 131u + seed * 7u + (i >> 8)) & 0xffu);
}

static void fill_host(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = pattern(i, seed);
}

static void check_host(const unsigned char *p, size_t n, unsigned seed, const char *what) {
  for (size_t i = 0; i < n; i++)
    CHECK(p[i] == pattern(i, seed), "%s: byte %zu of %zu is 0x%02x, expected 0x%02x", what, i, n,
          p[i], pattern(i, seed));
}

/* ---------------------------------------------------------------- init */
static void test_init_info(void) {
  kiln_mpi m = init_with(0, 0);
  kiln_mpi_info info = KILN_MPI_INFO_INIT;
  OK(kiln_mpi_get_info(m, &info));
  CHECK(info.rank == g_rank && info.size == g_size, "rank %d size %d", info.rank, info.size);
  CHECK(info.local_size == 2 && info.local_rank == g_rank, "local %d of %d", info.local_rank,
        info.local_size);
  CHECK(info.owns_context == 1 && info.context && info.device, "context");
  CHECK(info.chunk_bytes == (1u << 20) && info.depth == 3, "defaults %zu %u", info.chunk_bytes,
        info.depth);
  CHECK(info.thread_level == MPI_THREAD_MULTIPLE, "thread level %d", info.thread_level);
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  OK(kiln_device_get_props(info.device, &p));
  CHECK(p.backend == g_backend, "backend %d", (int)p.backend);
  /* Debian's Open MPI is built without CUDA: its run-time query says 0 */
  CHECK(info.cuda_aware == 0, "cuda_aware %d without KILN_MPI_CUDA_AWARE", info.cuda_aware);
  OK(kiln_mpi_finalize(m));
  OK(kiln_mpi_finalize(NULL));
  setenv("KILN_MPI_CUDA_AWARE", "1", 1); /* the override, for MPIs without a query */
  m = init_with(0, 0);
  OK(kiln_mpi_get_info(m, &info));
  CHECK(info.cuda_aware == 1, "KILN_MPI_CUDA_AWARE=1 gave cuda_aware %d", info.cuda_aware);
  OK(kiln_mpi_finalize(m));
  unsetenv("KILN_MPI_CUDA_AWARE");

  /* the caller's context */
  kiln_device dev = NULL;
  OK(kiln_device_find(g_backend, 0, &dev));
  kiln_context ctx = NULL;
  OK(kiln_context_create(dev, NULL, &ctx));
  kiln_mpi_desc d = KILN_MPI_DESC_INIT;
  d.context = ctx;
  OK(kiln_mpi_init(MPI_COMM_WORLD, &d, &m));
  OK(kiln_mpi_get_info(m, &info));
  CHECK(info.context == ctx && info.owns_context == 0, "own context kept");
  OK(kiln_mpi_finalize(m));
  OK(kiln_context_destroy(ctx));

  /* bad descriptions fail on every rank, naming the rank */
  char want[64];
  snprintf(want, sizeof want, "rank %d: desc->chunk_bytes 100", g_rank);
  d = (kiln_mpi_desc)KILN_MPI_DESC_INIT;
  d.chunk_bytes = 100;
  EXPECT(kiln_mpi_init(MPI_COMM_WORLD, &d, &m), KILN_ERROR_INVALID_ARGUMENT, want);
  CHECK(m == NULL, "out-parameter NULL on failure");
  d = (kiln_mpi_desc)KILN_MPI_DESC_INIT;
  d.depth = 1;
  EXPECT(kiln_mpi_init(MPI_COMM_WORLD, &d, &m), KILN_ERROR_INVALID_ARGUMENT, "desc->depth 1");
  d = (kiln_mpi_desc)KILN_MPI_DESC_INIT;
  d.struct_size = 8;
  EXPECT(kiln_mpi_init(MPI_COMM_WORLD, &d, &m), KILN_ERROR_INVALID_ARGUMENT, "KILN_MPI_DESC_INIT");
  EXPECT(kiln_mpi_init(MPI_COMM_WORLD, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT, "NULL");
  EXPECT(kiln_mpi_init(MPI_COMM_NULL, NULL, &m), KILN_ERROR_INVALID_ARGUMENT, "MPI_COMM_NULL");
  /* chunk sizes that differ between ranks */
  d = (kiln_mpi_desc)KILN_MPI_DESC_INIT;
  d.backend = g_backend;
  d.chunk_bytes = g_rank == 0 ? 4096 : 8192;
  EXPECT(kiln_mpi_init(MPI_COMM_WORLD, &d, &m), KILN_ERROR_INVALID_ARGUMENT,
         "ranks use values from 4096 to 8192");
  /* a failure on rank 1 only: rank 0 learns of it */
  d = (kiln_mpi_desc)KILN_MPI_DESC_INIT;
  d.backend = g_backend;
  d.flags = g_rank == 1 ? 0x80u : 0u;
  EXPECT(kiln_mpi_init(MPI_COMM_WORLD, &d, &m),
         g_rank == 1 ? KILN_ERROR_INVALID_ARGUMENT : KILN_ERROR_DEPENDENCY_FAILED,
         g_rank == 1 ? "rank 1: desc->flags 0x80" : "kiln_mpi_init failed on rank 1");
  /* a backend without devices (the mock, absent without KILN_MOCK=1) */
  if (g_backend != KILN_BACKEND_MOCK) {
    d = (kiln_mpi_desc)KILN_MPI_DESC_INIT;
    d.backend = KILN_BACKEND_MOCK;
    snprintf(want, sizeof want, "rank %d (node-local rank %d): the mock backend", g_rank, g_rank);
    EXPECT(kiln_mpi_init(MPI_COMM_WORLD, &d, &m), KILN_ERROR_DEVICE_NOT_FOUND, want);
  }
}

/* ---------------------------------------------------------------- send / recv */
static void exchange(kiln_mpi m, size_t bytes, unsigned seed, int tag) {
  kiln_context ctx = ctx_of(m);
  kiln_buffer b = make_buffer(ctx, bytes + 24);
  unsigned char *host = malloc(bytes + 24);
  CHECK(host, "malloc");
  /* rank 0 sends [8, 8 + bytes) of its buffer; rank 1 receives at 16; the bytes
   * around the range must stay as they were */
  if (g_rank == 0) {
    fill_host(host, bytes + 24, seed);
    OK(kiln_buffer_write(b, 0, bytes + 24, host));
    OK(kiln_mpi_send(m, b, 8, bytes, 1, tag));
  } else {
    memset(host, 0xee, bytes + 24);
    OK(kiln_buffer_write(b, 0, bytes + 24, host));
    OK(kiln_mpi_recv(m, b, 16, bytes, 0, tag));
    memset(host, 0, bytes + 24);
    OK(kiln_buffer_read(b, 0, bytes + 24, host));
    for (size_t i = 0; i < bytes; i++)
      CHECK(host[16 + i] == pattern(8 + i, seed),
            "%zu-byte message: byte %zu is 0x%02x, expected "
            "0x%02x",
            bytes, i, host[16 + i], pattern(8 + i, seed));
    for (size_t i = 0; i < 16; i++)
      CHECK(host[i] == 0xee, "byte %zu before the range was written", i);
    for (size_t i = 16 + bytes; i < bytes + 24; i++)
      CHECK(host[i] == 0xee, "byte %zu after the range was written", i);
  }
  free(host);
  OK(kiln_buffer_destroy(b));
}

static void sendrecv_sizes(unsigned flags) {
  const size_t chunk = 64 << 10;
  kiln_mpi m = init_with(chunk, flags);
  /* 0, 1, odd, one chunk exactly, several chunks and a tail, large enough for the
   * direct path (>= 64 KiB), and more chunks than slots */
  const size_t sizes[] = {0, 1, 4099, chunk, 3 * chunk + 17, 9 * chunk + 5};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    exchange(m, sizes[i], (unsigned)i + 1, (int)i);
  OK(kiln_mpi_finalize(m));
}

static void test_sendrecv(void) {
  sendrecv_sizes(0);
}
static void test_sendrecv_staged(void) {
  sendrecv_sizes(KILN_MPI_STAGE_ALWAYS);
}

/* ---------------------------------------------------------------- async */
static void slow_fill(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  unsigned char *p = args[0];
  size_t n = 0;
  memcpy(&n, args[1], sizeof n);
  if (r->begin[0] == 0) {
    struct timespec ts = {0, 30 * 1000 * 1000}; /* the send must wait for this write */
    nanosleep(&ts, NULL);
    fill_host(p, n, 9);
  }
}

/* An async write of pattern 9 on stream s1 (slow), then kiln_mpi_send_async on s2, then
 * an async overwrite on s1: the receiver must get pattern 9 exactly. */
static void test_async_chain(void) {
  const size_t chunk = 64 << 10, bytes = 5 * chunk + 3;
  kiln_mpi m = init_with(chunk, 0);
  kiln_context ctx = ctx_of(m);
  kiln_buffer b = make_buffer(ctx, bytes);
  kiln_stream s1 = NULL, s2 = NULL;
  OK(kiln_stream_create(ctx, NULL, &s1));
  OK(kiln_stream_create(ctx, NULL, &s2));
  unsigned char *host = malloc(bytes);
  CHECK(host, "malloc");
  if (g_rank == 0) {
    memset(host, 0, bytes);
    OK(kiln_buffer_write(b, 0, bytes, host));
    kiln_pending t1, t3;
    kiln_kernel k = NULL;
    if (g_backend == KILN_BACKEND_CPU) {
      static const kiln_param params[] = {{KILN_PARAM_BUFFER_WRITE, 0},
                                          {KILN_PARAM_SCALAR, sizeof(size_t)}};
      kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
      kd.name = "slow_fill";
      kd.fn = slow_fill;
      kd.params = params;
      kd.param_count = 2;
      OK(kiln_kernel_create_native(ctx, &kd, &k));
      kiln_range r = kiln_range_1d(1);
      kiln_arg args[2] = {kiln_arg_buffer(b), kiln_arg_scalar(&bytes, sizeof bytes)};
      OK(kiln_launch_async(s1, k, &r, args, 2, &t1));
    } else {
      fill_host(host, bytes, 9);
      OK(kiln_buffer_write_async(s1, b, 0, bytes, host, &t1));
      struct timespec ts = {0, 30 * 1000 * 1000}; /* rank 1 queues its copy meanwhile */
      nanosleep(&ts, NULL);
    }
    kiln_future f;
    OK(kiln_mpi_send_async(m, s2, b, 0, bytes, 1, 5, &f));
    static const unsigned char zero = 0;
    OK(kiln_buffer_fill_async(s1, b, 0, bytes - 3, &zero, 1, &t3)); /* after the send's reads */
    OK(kiln_future_wait(&f));
    OK(kiln_wait(&t1));
    OK(kiln_wait(&t3));
    if (k)
      OK(kiln_kernel_destroy(k));
  } else {
    kiln_future f;
    OK(kiln_mpi_recv_async(m, s2, b, 0, bytes, 0, 5, &f));
    kiln_buffer copy = NULL;
    kiln_pending tc;
    {
      /* the receive's gate keeps the buffer in flight from the call: a copy queued on
       * another stream right after it waits for the data (rank 0 sends 30 ms later) */
      copy = make_buffer(ctx, bytes);
      OK(kiln_buffer_copy_async(s1, copy, 0, b, 0, bytes, &tc));
      OK(kiln_wait(&tc));
      OK(kiln_buffer_read(copy, 0, bytes, host));
      check_host(host, bytes, 9, "a copy queued after the async receive");
    }
    OK(kiln_future_wait(&f));
    OK(kiln_buffer_read(b, 0, bytes, host));
    check_host(host, bytes, 9, "async receive");
    if (copy)
      OK(kiln_buffer_destroy(copy));
  }
  /* several async transfers on one channel match in order; futures compose */
  kiln_future fs[3];
  kiln_buffer bs[3];
  for (int i = 0; i < 3; i++) {
    size_t n = (size_t)(i + 1) * chunk + 11;
    bs[i] = make_buffer(ctx, n);
    if (g_rank == 0) {
      fill_host(host, n, 20u + (unsigned)i);
      OK(kiln_buffer_write(bs[i], 0, n, host));
      OK(kiln_mpi_send_async(m, s1, bs[i], 0, n, 1, 6, &fs[i]));
    } else {
      OK(kiln_mpi_recv_async(m, s1, bs[i], 0, n, 0, 6, &fs[i]));
    }
  }
  kiln_future all;
  OK(kiln_future_when_all(fs, 3, &all));
  OK(kiln_future_wait(&all));
  if (g_rank == 1)
    for (int i = 0; i < 3; i++) {
      size_t n = (size_t)(i + 1) * chunk + 11;
      OK(kiln_buffer_read(bs[i], 0, n, host));
      check_host(host, n, 20u + (unsigned)i, "queued async receive");
    }
  /* a blocking transfer on the same channel waits for the async ones before it */
  kiln_future f2;
  if (g_rank == 0) {
    fill_host(host, chunk * 2, 30);
    OK(kiln_buffer_write(bs[1], 0, chunk * 2, host));
    OK(kiln_mpi_send_async(m, s1, bs[1], 0, chunk * 2, 1, 7, &f2));
    fill_host(host, chunk * 2, 31);
    OK(kiln_buffer_write(bs[2], 0, chunk * 2, host));
    OK(kiln_mpi_send(m, bs[2], 0, chunk * 2, 1, 7));
    OK(kiln_future_wait(&f2));
  } else {
    OK(kiln_mpi_recv(m, bs[2], 0, chunk * 2, 0, 7));
    OK(kiln_buffer_read(bs[2], 0, chunk * 2, host));
    check_host(host, chunk * 2, 30, "the async send first");
    OK(kiln_mpi_recv(m, bs[2], 0, chunk * 2, 0, 7));
    OK(kiln_buffer_read(bs[2], 0, chunk * 2, host));
    check_host(host, chunk * 2, 31, "then the blocking one");
  }
  for (int i = 0; i < 3; i++)
    OK(kiln_buffer_destroy(bs[i]));
  free(host);
  OK(kiln_stream_destroy(s1));
  OK(kiln_stream_destroy(s2));
  OK(kiln_buffer_destroy(b));
  OK(kiln_mpi_finalize(m));
}

/* Many async transfers at once over four tags, sizes across chunk boundaries, posted
 * in another order across tags on the receiving rank (per tag the same order), plus a
 * thread doing blocking transfers on a fifth tag meanwhile: every byte arrives where
 * it belongs. */
typedef struct side_thread {
  kiln_mpi m;
  kiln_buffer b;
  size_t bytes;
  int failures;
} side_thread;

static void *blocking_side(void *arg) {
  side_thread *t = arg;
  for (int r = 0; r < 4; r++) {
    kiln_status st = g_rank == 0 ? kiln_mpi_send(t->m, t->b, 0, t->bytes, 1, 40)
                                 : kiln_mpi_recv(t->m, t->b, 0, t->bytes, 0, 40);
    if (st != KILN_SUCCESS)
      t->failures++;
  }
  return NULL;
}

static void test_async_many(void) {
  const size_t chunk = 4096;
  enum { N = 24 };
  kiln_mpi m = init_with(chunk, 0);
  kiln_context ctx = ctx_of(m);
  kiln_stream s = NULL;
  OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer bufs[N];
  size_t sizes[N];
  unsigned char *host = malloc(8 * chunk);
  CHECK(host, "malloc");
  for (int i = 0; i < N; i++) {
    sizes[i] = (size_t)((i * 2647) % (7 * (int)chunk)) + (size_t)i; /* 0 .. ~7 chunks */
    bufs[i] = make_buffer(ctx, sizes[i]);
    if (g_rank == 0 && sizes[i]) {
      fill_host(host, sizes[i], 100u + (unsigned)i);
      OK(kiln_buffer_write(bufs[i], 0, sizes[i], host));
    }
  }
  side_thread st = {m, make_buffer(ctx, 3 * chunk + 5), 3 * chunk + 5, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, blocking_side, &st) == 0, "pthread_create");
  kiln_future fs[N];
  /* transfer i uses tag i % 4; rank 1 posts tag by tag, rank 0 round robin */
  int order[N], k = 0;
  if (g_rank == 0) {
    for (int i = 0; i < N; i++)
      order[k++] = i;
  } else {
    for (int tag = 3; tag >= 0; tag--)
      for (int i = tag; i < N; i += 4)
        order[k++] = i;
  }
  for (int j = 0; j < N; j++) {
    int i = order[j];
    if (g_rank == 0)
      OK(kiln_mpi_send_async(m, s, bufs[i], 0, sizes[i], 1, i % 4, &fs[j]));
    else
      OK(kiln_mpi_recv_async(m, s, bufs[i], 0, sizes[i], 0, i % 4, &fs[j]));
  }
  kiln_future all;
  OK(kiln_future_when_all(fs, N, &all));
  OK(kiln_future_wait(&all));
  pthread_join(th, NULL);
  CHECK(st.failures == 0, "%d blocking transfers failed beside the async ones", st.failures);
  if (g_rank == 1)
    for (int i = 0; i < N; i++) {
      if (!sizes[i])
        continue;
      OK(kiln_buffer_read(bufs[i], 0, sizes[i], host));
      check_host(host, sizes[i], 100u + (unsigned)i, "one of many async receives");
    }
  for (int i = 0; i < N; i++)
    OK(kiln_buffer_destroy(bufs[i]));
  OK(kiln_buffer_destroy(st.b));
  free(host);
  OK(kiln_stream_destroy(s));
  OK(kiln_mpi_finalize(m));
}

/* ---------------------------------------------------------------- collectives */
static void test_collectives(void) {
  const size_t chunk = 4096;
  kiln_mpi m = init_with(chunk, 0);
  kiln_context ctx = ctx_of(m);
  const size_t count = 3001; /* 24008 bytes of doubles: 6 chunks and a tail */
  kiln_buffer b = make_buffer(ctx, count * 8 + 8);
  double *d = malloc(count * 8);
  int64_t *l = malloc(count * 8);
  float *f = malloc(count * 4);
  int32_t *n = malloc(count * 4);
  CHECK(d && l && f && n, "malloc");
  static const kiln_mpi_op ops[] = {KILN_MPI_SUM, KILN_MPI_MIN, KILN_MPI_MAX};
  for (size_t o = 0; o < 3; o++) {
    kiln_mpi_op op = ops[o];
    for (size_t i = 0; i < count; i++) {
      double v = (double)i * (g_rank ? -0.5 : 2.0) + g_rank;
      d[i] = v;
      l[i] = (int64_t)i * (g_rank ? -3 : 5) + ((int64_t)1 << 40) * g_rank;
      f[i] = (float)v;
      n[i] = (int32_t)i * (g_rank ? -7 : 3);
    }
    /* doubles at offset 8 (3001 elements span chunks); the others at 0 */
    OK(kiln_buffer_write(b, 8, count * 8, d));
    OK(kiln_mpi_allreduce(m, b, 8, count, KILN_MPI_DOUBLE, op));
    OK(kiln_buffer_read(b, 8, count * 8, d));
    for (size_t i = 0; i < count; i++) {
      double a = (double)i * 2.0, c = (double)i * -0.5 + 1;
      double want = op == KILN_MPI_SUM   ? a + c
                    : op == KILN_MPI_MIN ? (a < c ? a : c)
                                         : (a > c ? a : c);
      CHECK(d[i] == want, "double op %d element %zu: %g, expected %g", (int)op, i, d[i], want);
    }
    OK(kiln_buffer_write(b, 0, count * 8, l));
    OK(kiln_mpi_allreduce(m, b, 0, count, KILN_MPI_INT64, op));
    OK(kiln_buffer_read(b, 0, count * 8, l));
    for (size_t i = 0; i < count; i++) {
      int64_t a = (int64_t)i * 5, c = (int64_t)i * -3 + ((int64_t)1 << 40);
      int64_t want = op == KILN_MPI_SUM   ? a + c
                     : op == KILN_MPI_MIN ? (a < c ? a : c)
                                          : (a > c ? a : c);
      CHECK(l[i] == want, "int64 op %d element %zu", (int)op, i);
    }
    OK(kiln_buffer_write(b, 0, count * 4, f));
    OK(kiln_mpi_allreduce(m, b, 0, count, KILN_MPI_FLOAT, op));
    OK(kiln_buffer_read(b, 0, count * 4, f));
    for (size_t i = 0; i < count; i++) {
      float a = (float)((double)i * 2.0), c = (float)((double)i * -0.5 + 1);
      float want = op == KILN_MPI_SUM   ? a + c
                   : op == KILN_MPI_MIN ? (a < c ? a : c)
                                        : (a > c ? a : c);
      CHECK(f[i] == want, "float op %d element %zu: %g, expected %g", (int)op, i, (double)f[i],
            (double)want);
    }
    OK(kiln_buffer_write(b, 0, count * 4, n));
    OK(kiln_mpi_allreduce(m, b, 0, count, KILN_MPI_INT32, op));
    OK(kiln_buffer_read(b, 0, count * 4, n));
    for (size_t i = 0; i < count; i++) {
      int32_t a = (int32_t)i * 3, c = (int32_t)i * -7;
      int32_t want = op == KILN_MPI_SUM   ? a + c
                     : op == KILN_MPI_MIN ? (a < c ? a : c)
                                          : (a > c ? a : c);
      CHECK(n[i] == want, "int32 op %d element %zu", (int)op, i);
    }
  }
  OK(kiln_mpi_allreduce(m, b, 0, 0, KILN_MPI_FLOAT, KILN_MPI_SUM)); /* nothing to do */
  /* broadcast from rank 1: several chunks, then one small one from rank 0 */
  unsigned char *h = (unsigned char *)d;
  for (int root = 1; root >= 0; root--) {
    size_t bytes = root ? count * 8 : 5;
    if (g_rank == root)
      fill_host(h, bytes, 40u + (unsigned)root);
    else
      memset(h, 0, bytes);
    OK(kiln_buffer_write(b, 0, bytes, h));
    OK(kiln_mpi_bcast(m, b, 0, bytes, root));
    memset(h, 0, bytes);
    OK(kiln_buffer_read(b, 0, bytes, h));
    check_host(h, bytes, 40u + (unsigned)root, "broadcast");
  }
  free(d);
  free(l);
  free(f);
  free(n);
  OK(kiln_buffer_destroy(b));
  OK(kiln_mpi_finalize(m));
}

/* ---------------------------------------------------------------- bad input */
static void test_bad_args(void) {
  const size_t chunk = 4096;
  kiln_mpi m = init_with(chunk, 0);
  kiln_context ctx = ctx_of(m);
  kiln_buffer b = make_buffer(ctx, 3 * chunk);
  kiln_stream s = NULL;
  OK(kiln_stream_create(ctx, NULL, &s));
  char want[96];
  EXPECT(kiln_mpi_send(NULL, b, 0, 1, 1, 0), KILN_ERROR_INVALID_HANDLE, "mpi is NULL");
  EXPECT(kiln_mpi_send(m, NULL, 0, 1, 1, 0), KILN_ERROR_INVALID_HANDLE, "buffer");
  {
    kiln_device dev = NULL;
    OK(kiln_device_find(g_backend, 0, &dev));
    kiln_context other = NULL;
    OK(kiln_context_create(dev, NULL, &other));
    kiln_buffer foreign = make_buffer(other, 64);
    snprintf(want, sizeof want, "rank %d: the buffer belongs to another context", g_rank);
    EXPECT(kiln_mpi_send(m, foreign, 0, 8, 1, 0), KILN_ERROR_DEVICE_MISMATCH, want);
    EXPECT(kiln_mpi_allreduce(m, foreign, 0, 2, KILN_MPI_FLOAT, KILN_MPI_SUM),
           KILN_ERROR_DEVICE_MISMATCH, "another context");
    OK(kiln_buffer_destroy(foreign));
    OK(kiln_context_destroy(other));
  }
  snprintf(want, sizeof want, "rank %d: offset 10 + bytes %zu", g_rank, 3 * chunk);
  EXPECT(kiln_mpi_send(m, b, 10, 3 * chunk, 1, 0), KILN_ERROR_OUT_OF_RANGE, want);
  EXPECT(kiln_mpi_recv(m, b, SIZE_MAX, 2, 1, 0), KILN_ERROR_OUT_OF_RANGE, "reaches past");
  EXPECT(kiln_mpi_send(m, b, 0, 1, 2, 0), KILN_ERROR_INVALID_ARGUMENT, "dest 2 is not a rank");
  EXPECT(kiln_mpi_recv(m, b, 0, 1, MPI_ANY_SOURCE, 0), KILN_ERROR_INVALID_ARGUMENT,
         "MPI_ANY_SOURCE is not supported");
  EXPECT(kiln_mpi_recv(m, b, 0, 1, 0, MPI_ANY_TAG), KILN_ERROR_INVALID_ARGUMENT,
         "MPI_ANY_TAG is not supported");
  EXPECT(kiln_mpi_send(m, b, 0, 1, 1, -3), KILN_ERROR_INVALID_ARGUMENT, "tag -3");
  EXPECT(kiln_mpi_bcast(m, b, 0, 1, 5), KILN_ERROR_INVALID_ARGUMENT, "root 5");
  EXPECT(kiln_mpi_allreduce(m, b, 0, 1, (kiln_mpi_type)9, KILN_MPI_SUM),
         KILN_ERROR_INVALID_ARGUMENT, "type 9");
  EXPECT(kiln_mpi_allreduce(m, b, 0, 1, KILN_MPI_FLOAT, (kiln_mpi_op)0),
         KILN_ERROR_INVALID_ARGUMENT, "op 0");
  EXPECT(kiln_mpi_allreduce(m, b, 0, 3 * chunk, KILN_MPI_FLOAT, KILN_MPI_SUM),
         KILN_ERROR_OUT_OF_RANGE, "reaches past");
  kiln_future f = {123};
  EXPECT(kiln_mpi_send_async(m, s, b, 0, 1, 1, 0, NULL), KILN_ERROR_INVALID_ARGUMENT, "future");
  EXPECT(kiln_mpi_send_async(m, NULL, b, 0, 1, 1, 0, &f), KILN_ERROR_INVALID_HANDLE, "stream");
  CHECK(f.id == 0, "the future is emptied on failure");
  EXPECT(kiln_mpi_recv_async(m, s, b, 0, 1, 0, MPI_ANY_TAG, &f), KILN_ERROR_INVALID_ARGUMENT,
         "MPI_ANY_TAG");
  kiln_mpi_info info = KILN_MPI_INFO_INIT;
  info.struct_size = 4;
  EXPECT(kiln_mpi_get_info(m, &info), KILN_ERROR_INVALID_ARGUMENT, "KILN_MPI_INFO_INIT");
  EXPECT(kiln_mpi_get_info(NULL, &info), KILN_ERROR_INVALID_HANDLE, "mpi is NULL");

  /* sizes that do not match: a shorter message (over several chunks: the receiver
   * cancels what it posted), a longer one (MPI_ERR_TRUNCATE), and an empty one */
  if (g_rank == 0) {
    OK(kiln_mpi_send(m, b, 0, chunk + 100, 1, 1));
    OK(kiln_mpi_send(m, b, 0, 300, 1, 2));
    OK(kiln_mpi_send(m, b, 0, 0, 1, 3));
  } else {
    EXPECT(kiln_mpi_recv(m, b, 0, 3 * chunk, 0, 1), KILN_ERROR_INVALID_ARGUMENT,
           "rank 1: kiln_mpi_recv expected 12288 bytes from rank 0 tag 1, but the message has "
           "4196");
    EXPECT(kiln_mpi_recv(m, b, 0, 200, 0, 2), KILN_ERROR_INVALID_ARGUMENT, "MPI_ERR_TRUNCATE");
    CHECK(strcmp(kiln_last_error()->native_name, "MPI_ERR_TRUNCATE") == 0, "native name %s",
          kiln_last_error()->native_name);
    EXPECT(kiln_mpi_recv(m, b, 0, 2 * chunk, 0, 3), KILN_ERROR_INVALID_ARGUMENT,
           "but the message has 0");
    CHECK(strcmp(kiln_last_error()->function, "kiln_mpi_recv") == 0, "function %s",
          kiln_last_error()->function);
  }
  /* the same through a future: its wait carries the message */
  if (g_rank == 0) {
    OK(kiln_mpi_send(m, b, 0, 10, 1, 4));
  } else {
    OK(kiln_mpi_recv_async(m, s, b, 0, 20, 0, 4, &f));
    EXPECT(kiln_future_wait(&f), KILN_ERROR_INVALID_ARGUMENT,
           "kiln_mpi_recv_async expected 20 bytes from rank 0 tag 4, but the message has 10");
  }
  /* the channel is clean afterwards */
  exchange(m, 2 * chunk + 1, 3, 1);
  OK(kiln_stream_destroy(s));
  OK(kiln_buffer_destroy(b));
  OK(kiln_mpi_finalize(m));
}

/* MPI initialised below MPI_THREAD_MULTIPLE: async transfers are refused, blocking
 * ones work. */
static void test_funneled(void) {
  kiln_mpi m = init_with(4096, 0);
  kiln_context ctx = ctx_of(m);
  kiln_buffer b = make_buffer(ctx, 64);
  kiln_stream s = NULL;
  OK(kiln_stream_create(ctx, NULL, &s));
  kiln_future f;
  EXPECT(kiln_mpi_send_async(m, s, b, 0, 8, 1 - g_rank, 0, &f), KILN_ERROR_UNSUPPORTED,
         "below MPI_THREAD_MULTIPLE");
  exchange(m, 33, 4, 2);
  OK(kiln_stream_destroy(s));
  OK(kiln_buffer_destroy(b));
  OK(kiln_mpi_finalize(m));
}

/* ---------------------------------------------------------------- fault injection */
/* One transfer of 5 staged chunks; `injector` fails its Nth host allocation. The
 * injecting rank must see OUT_OF_HOST_MEMORY or success, the other rank success with the
 * data, or a failure that names the peer; nothing leaks (the test allocator's count
 * after each finalize). */
static int sweep_once(int injector, size_t nth, size_t *calls) {
  const size_t chunk = 4096, bytes = 5 * chunk - 7;
  kiln_mpi m = init_with(chunk, KILN_MPI_STAGE_ALWAYS);
  kiln_context ctx = ctx_of(m);
  kiln_buffer b = make_buffer(ctx, bytes);
  unsigned char *host = malloc(bytes);
  CHECK(host, "malloc");
  fill_host(host, bytes, g_rank == 0 ? 50 : 0);
  OK(kiln_buffer_write(b, 0, bytes, host));
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == injector)
    kt_alloc_fail_nth(nth ? nth : SIZE_MAX);
  kiln_status st =
      g_rank == 0 ? kiln_mpi_send(m, b, 0, bytes, 1, 9) : kiln_mpi_recv(m, b, 0, bytes, 0, 9);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", kiln_last_error()->message);
  if (g_rank == injector) {
    *calls = kt_alloc_calls();
    kt_alloc_fail_none();
  }
  int mine = st == KILN_SUCCESS ? 0 : 1, theirs = 0;
  MPI_Sendrecv(&mine, 1, MPI_INT, 1 - g_rank, 99, &theirs, 1, MPI_INT, 1 - g_rank, 99,
               MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (g_rank == injector) {
    CHECK(st == KILN_SUCCESS || st == KILN_ERROR_OUT_OF_HOST_MEMORY,
          "injected allocation failure %zu: %s: %s", nth, kiln_status_name(st), msg);
  } else if (theirs == 0) {
    CHECK(st == KILN_SUCCESS, "the peer succeeded, this rank: %s: %s", kiln_status_name(st), msg);
  } else {
    /* the peer failed: a receiver is told by empty chunks; a sender finishes */
    CHECK(st == KILN_SUCCESS || st == KILN_ERROR_DEPENDENCY_FAILED ||
              st == KILN_ERROR_INVALID_ARGUMENT,
          "peer failed, this rank: %s: %s", kiln_status_name(st), msg);
    if (st != KILN_SUCCESS)
      CHECK(strstr(msg, "rank 0") != NULL, "the message names the sender: %s", msg);
  }
  if (g_rank == 1 && st == KILN_SUCCESS && theirs == 0) {
    OK(kiln_buffer_read(b, 0, bytes, host));
    check_host(host, bytes, 50, "received under fault injection");
  }
  free(host);
  OK(kiln_buffer_destroy(b));
  OK(kiln_mpi_finalize(m));
  CHECK(kt_alloc_check_clean("after kiln_mpi_finalize") == 1, "leak after failure %zu", nth);
  return mine;
}

static void test_alloc_sweep(void) {
  OK(kt_alloc_install());
  for (int injector = 0; injector < 2; injector++) {
    size_t calls = 0;
    sweep_once(injector, 0, &calls); /* a clean run counts the calls */
    MPI_Bcast(&calls, sizeof calls, MPI_BYTE, injector, MPI_COMM_WORLD);
    CHECK(calls >= 2, "the staging path made only %zu host allocations", calls);
    int failed = 0;
    for (size_t n = 1; n <= calls; n++) {
      size_t ignored = 0;
      failed += sweep_once(injector, n, &ignored);
    }
    MPI_Bcast(&failed, 1, MPI_INT, injector, MPI_COMM_WORLD);
    CHECK(failed >= 1, "no injected failure reached the transfer (%zu calls)", calls);
  }
  OK(kt_alloc_uninstall());
}

/* The mock's device is lost during rank 0's send (at each of the staging reads): rank
 * 0 reports DEVICE_LOST, rank 1 learns that the sender failed; nothing hangs or leaks. */
static void test_mock_device_loss(void) {
  OK(kt_alloc_install());
  const size_t chunk = 4096, bytes = 6 * chunk;
  for (uint64_t at = 1; at <= 4; at++) {
    kiln_mpi m = init_with(chunk, KILN_MPI_STAGE_ALWAYS);
    kiln_context ctx = ctx_of(m);
    kiln_buffer b = make_buffer(ctx, bytes);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
      kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
      mc.lose_device_call = at;
      OK(kiln_mock_configure(&mc));
      kiln_status st = kiln_mpi_send(m, b, 0, bytes, 1, 3);
      CHECK(st == KILN_ERROR_DEVICE_LOST, "lost at call %llu: %s: %s", (unsigned long long)at,
            kiln_status_name(st), kiln_last_error()->message);
      CHECK(strstr(kiln_last_error()->message, "rank 0"), "names the rank: %s",
            kiln_last_error()->message);
      OK(kiln_mock_configure(NULL));
    } else {
      kiln_status st = kiln_mpi_recv(m, b, 0, bytes, 0, 3);
      CHECK(st == KILN_ERROR_DEPENDENCY_FAILED || st == KILN_ERROR_INVALID_ARGUMENT,
            "the sender lost its device: %s: %s", kiln_status_name(st), kiln_last_error()->message);
    }
    (void)kiln_buffer_destroy(b);
    kiln_device dev = NULL;
    kiln_mpi_info info = KILN_MPI_INFO_INIT;
    OK(kiln_mpi_get_info(m, &info));
    dev = info.device;
    OK(kiln_mpi_finalize(m));
    if (g_rank == 0)
      OK(kiln_device_reset(dev));
    CHECK(kt_alloc_check_clean("after a device loss") == 1, "leak");
  }
  OK(kt_alloc_uninstall());
}

/* ---------------------------------------------------------------- main */
typedef struct test_entry {
  const char *name;
  void (*fn)(void);
} test_entry;

static const test_entry tests[] = {
    {"init_info", test_init_info},
    {"sendrecv", test_sendrecv},
    {"sendrecv_staged", test_sendrecv_staged},
    {"async_chain", test_async_chain},
    {"async_many", test_async_many},
    {"collectives", test_collectives},
    {"bad_args", test_bad_args},
    {"funneled", test_funneled},
    {"alloc_sweep", test_alloc_sweep},
    {"mock_device_loss", test_mock_device_loss},
};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mpirun -np 2 %s TEST cpu|opencl|mock\n", argv[0]);
    return 2;
  }
  const test_entry *t = NULL;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (strcmp(tests[i].name, argv[1]) == 0)
      t = &tests[i];
  if (!t) {
    fprintf(stderr, "no test '%s'\n", argv[1]);
    return 2;
  }
  int want = strcmp(argv[1], "funneled") == 0 ? MPI_THREAD_FUNNELED : MPI_THREAD_MULTIPLE;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, want, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  CHECK(g_size == 2, "run with mpirun -np 2 (size %d)", g_size);
  CHECK(provided >= want, "MPI gives thread level %d, the test needs %d", provided, want);
  g_backend = kiln_backend_from_name(argv[2]);
  kiln_backend_info bi = KILN_BACKEND_INFO_INIT;
  int present = 0;
  for (unsigned i = 0; i < kiln_backend_count(); i++)
    if (kiln_backend_get_info(i, &bi) == KILN_SUCCESS && bi.kind == g_backend && bi.available)
      present = 1;
  if (!present) {
    if (g_rank == 0)
      printf("skipped: backend %s is not available\n", argv[2]);
    MPI_Finalize();
    return 77;
  }
  t->fn();
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0)
    printf("%s on %s: passed\n", t->name, argv[2]);
  MPI_Finalize();
  return 0;
}

/* SPDX-License-Identifier: MIT */
/* The host-range guard under async integration (AddressSanitizer builds only;
 * tests/async_guard.cmake runs it once per variant and backend): ops queued with
 * KILN_NO_TOKEN stay poisoned until a covering stream, event or context wait; a
 * token's callback may touch its op's range (released just before it runs); a
 * future's wait, and a continuation after it, release its op's range; when_any
 * releases only the ops that had completed. Positive variants touch a range kiln
 * still owns at the line marked `async-guard-touch: <variant>` (ASan must report
 * use-after-poison there); negative ones must finish without a report. Ranges are
 * 8-byte aligned (ASan poisons 8-byte granules). */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

#define WORDS 16

static volatile uint64_t sink;

static void check(kiln_status st, const char *what, int line) {
  if (st == KILN_SUCCESS)
    return;
  fprintf(stderr, "async_guard_helper line %d: %s returned %s: %s\n", line, what,
          kiln_status_name(st), kiln_last_error()->message);
  exit(3);
}
#define CHECK(call) check((call), #call, __LINE__)

typedef struct env {
  kiln_context ctx;
  kiln_stream stream;
  kiln_buffer buf;
  uint64_t *host;
} env;

static void env_open(env *e) {
  const char *backend = getenv("KILN_TEST_BACKEND");
  kiln_backend_kind kind = backend && *backend ? kiln_backend_from_name(backend) : KILN_BACKEND_CPU;
  kiln_device dev = NULL;
  CHECK(kiln_device_find(kind, 0, &dev));
  CHECK(kiln_context_create(dev, NULL, &e->ctx));
  CHECK(kiln_stream_create(e->ctx, NULL, &e->stream));
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = WORDS * sizeof(uint64_t);
  CHECK(kiln_buffer_create(e->ctx, &d, &e->buf));
  e->host = aligned_alloc(64, WORDS * sizeof(uint64_t));
  if (!e->host)
    exit(3);
  for (unsigned i = 0; i < WORDS; i++)
    e->host[i] = 0x2000u + i;
  CHECK(kiln_buffer_write(e->buf, 0, WORDS * sizeof(uint64_t), e->host));
}

static void env_close(env *e) {
  CHECK(kiln_context_destroy(e->ctx));
  free(e->host);
}

static void touch_all(const uint64_t *p) {
  for (unsigned i = 0; i < WORDS; i++)
    sink = p[i];
}

/* ---------------------------------------------------------------- positive */
static int notoken_read_early(void) {
  env e;
  env_open(&e);
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, KILN_NO_TOKEN));
  sink = e.host[3]; /* async-guard-touch: notoken_read_early */
  CHECK(kiln_stream_synchronize(e.stream));
  env_close(&e);
  return 0;
}

static int notoken_write_src_early(void) {
  env e;
  env_open(&e);
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 0, 64, e.host, KILN_NO_TOKEN));
  e.host[1] = 7; /* async-guard-touch: notoken_write_src_early */
  CHECK(kiln_stream_synchronize(e.stream));
  env_close(&e);
  return 0;
}

/* A host "gate" kernel (cpu and mock run native C): spins until released. */
static atomic_int gate_open;
static void gate_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)args;
  (void)user;
  struct timespec ts = {0, 50000};
  for (int i = 0; i < 600000 && !atomic_load(&gate_open); i++)
    nanosleep(&ts, NULL);
}

static int when_any_pending_still_guarded(void) {
  env e;
  env_open(&e);
  kiln_stream held;
  CHECK(kiln_stream_create(e.ctx, NULL, &held));
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "gate";
  kd.fn = gate_fn;
  kiln_kernel k;
  CHECK(kiln_kernel_create_native(e.ctx, &kd, &k));
  kiln_range r = kiln_range_1d(1);
  CHECK(kiln_launch_async(held, k, &r, NULL, 0, KILN_NO_TOKEN));
  kiln_buffer other;
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 64;
  CHECK(kiln_buffer_create(e.ctx, &d, &other));
  kiln_pending done_t, held_t;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &done_t));
  CHECK(kiln_buffer_read_async(held, other, 0, 64, e.host + 8, &held_t));
  kiln_future in[2], any;
  CHECK(kiln_future_from_pending(&done_t, &in[0]));
  CHECK(kiln_future_from_pending(&held_t, &in[1]));
  CHECK(kiln_future_when_any(in, 2, &any));
  CHECK(kiln_future_wait(&any));
  for (unsigned i = 0; i < 8; i++) /* the completed op's range: released */
    sink = e.host[i];
  sink = e.host[9]; /* async-guard-touch: when_any_pending_still_guarded */
  atomic_store(&gate_open, 1);
  CHECK(kiln_stream_synchronize(held));
  CHECK(kiln_kernel_destroy(k));
  env_close(&e);
  return 0;
}

/* ---------------------------------------------------------------- negative */
static int notoken_after_stream_synchronize(void) {
  env e;
  env_open(&e);
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, KILN_NO_TOKEN));
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 64, 64, e.host + 8, KILN_NO_TOKEN));
  CHECK(kiln_stream_synchronize(e.stream));
  touch_all(e.host);
  env_close(&e);
  return 0;
}

static int notoken_after_event_synchronize(void) {
  env e;
  env_open(&e);
  kiln_event ev;
  CHECK(kiln_event_create(e.ctx, NULL, &ev));
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 128, e.host, KILN_NO_TOKEN));
  CHECK(kiln_event_record(ev, e.stream));
  CHECK(kiln_event_synchronize(ev));
  touch_all(e.host);
  CHECK(kiln_event_destroy(ev));
  env_close(&e);
  return 0;
}

static int notoken_after_context_synchronize(void) {
  env e;
  env_open(&e);
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 128, e.host, KILN_NO_TOKEN));
  CHECK(kiln_context_synchronize(e.ctx));
  touch_all(e.host);
  env_close(&e);
  return 0;
}

typedef struct touch_in_cb {
  uint64_t *host;
  unsigned words;
  atomic_int done;
} touch_in_cb;

static void touching_cb(kiln_status status, void *user) {
  (void)status;
  touch_in_cb *t = user;
  for (unsigned i = 0; i < t->words; i++) /* released just before the callback */
    sink = t->host[i];
  atomic_store(&t->done, 1);
}

static void wait_flag(atomic_int *flag) {
  struct timespec ts = {0, 100000};
  for (int i = 0; i < 300000 && !atomic_load(flag); i++)
    nanosleep(&ts, NULL);
  if (!atomic_load(flag)) {
    fprintf(stderr, "async_guard_helper: the callback never ran\n");
    exit(3);
  }
}

static int token_callback_touches(void) {
  env e;
  env_open(&e);
  kiln_pending t;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 128, e.host, &t));
  touch_in_cb c = {e.host, WORDS, 0};
  CHECK(kiln_pending_add_callback(&t, touching_cb, &c));
  wait_flag(&c.done);
  touch_all(e.host);
  env_close(&e);
  return 0;
}

static int event_callback_touches(void) {
  env e;
  env_open(&e);
  kiln_event ev;
  CHECK(kiln_event_create(e.ctx, NULL, &ev));
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 128, e.host, KILN_NO_TOKEN));
  CHECK(kiln_event_record(ev, e.stream));
  touch_in_cb c = {e.host, WORDS, 0};
  CHECK(kiln_event_add_callback(ev, touching_cb, &c));
  wait_flag(&c.done);
  CHECK(kiln_event_destroy(ev));
  env_close(&e);
  return 0;
}

static kiln_status touching_link(kiln_status status, void *user) {
  touching_cb(status, user);
  return KILN_SUCCESS;
}

static int future_wait_and_then_touch(void) {
  env e;
  env_open(&e);
  kiln_pending t1, t2;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &t1));
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 64, 64, e.host + 8, &t2));
  kiln_future f1, f2, n2;
  CHECK(kiln_future_from_pending(&t1, &f1));
  CHECK(kiln_future_from_pending(&t2, &f2));
  CHECK(kiln_future_wait(&f1));
  touch_in_cb c = {e.host + 8, 8, 0};
  for (unsigned i = 0; i < 8; i++) /* f1's half */
    sink = e.host[i];
  CHECK(kiln_future_then(&f2, touching_link, &c, &n2)); /* f2's half, in the continuation */
  CHECK(kiln_future_wait(&n2));
  env_close(&e);
  return 0;
}

typedef struct variant {
  const char *name;
  int (*fn)(void);
} variant;

static const variant variants[] = {
    {"notoken_read_early", notoken_read_early},
    {"notoken_write_src_early", notoken_write_src_early},
    {"when_any_pending_still_guarded", when_any_pending_still_guarded},
    {"notoken_after_stream_synchronize", notoken_after_stream_synchronize},
    {"notoken_after_event_synchronize", notoken_after_event_synchronize},
    {"notoken_after_context_synchronize", notoken_after_context_synchronize},
    {"token_callback_touches", token_callback_touches},
    {"event_callback_touches", event_callback_touches},
    {"future_wait_and_then_touch", future_wait_and_then_touch},
};

int main(int argc, char **argv) {
#if !defined(__SANITIZE_ADDRESS__)
  (void)argc;
  (void)argv;
  fprintf(stderr, "async_guard_helper: built without AddressSanitizer: nothing to check\n");
  return 77;
#else
  if (argc != 2) {
    fprintf(stderr, "usage: async_guard_helper <variant>\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
    if (strcmp(argv[1], variants[i].name) == 0) {
      int rc = variants[i].fn();
      if (rc == 0)
        fprintf(stderr, "async_guard_helper: %s finished\n", argv[1]);
      return rc;
    }
  fprintf(stderr, "async_guard_helper: unknown variant '%s'\n", argv[1]);
  return 2;
#endif
}

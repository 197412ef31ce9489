/* SPDX-License-Identifier: MIT */
/* The host-range guard's helper (AddressSanitizer builds only; tests/guard.cmake runs it
 * once per variant): `guard_helper <variant>` drives kiln on the CPU device so that it
 * touches the host memory of an _async read or write either before a wait observed its
 * completion (ASan must report use-after-poison at the touching line, marked
 * `guard-touch: <variant>`, which guard.cmake finds and puts in the test's
 * PASS_REGULAR_EXPRESSION) or after one (no report, exit 0). Ranges are 8-byte aligned:
 * ASan poisons whole 8-byte granules. The helper prints nothing that the expected
 * regexes could match, so only ASan's own report can make a positive variant pass. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define WORDS 16 /* 128 bytes of host memory per range */

static volatile uint64_t sink;

static void check(kiln_status st, const char *what, int line) {
  if (st == KILN_SUCCESS)
    return;
  const kiln_error_info *e = kiln_last_error();
  fprintf(stderr, "guard_helper line %d: %s returned %s: %s\n", line, what, kiln_status_name(st),
          e->message);
  exit(3);
}
#define CHECK(call) check((call), #call, __LINE__)

typedef struct env {
  kiln_context ctx;
  kiln_stream stream;
  kiln_buffer buf;
  uint64_t *host; /* WORDS words, 64-byte aligned */
} env;

static void env_open(env *e) {
  kiln_device dev = NULL;
  /* KILN_TEST_BACKEND=opencl (guard.cmake's guard.opencl.* tests): the same variants on
   * the first OpenCL device (PoCL), whose own memcpy into the poisoned range is
   * suppressed by tests/asan.supp (interceptor_via_lib:libpocl.so). */
  const char *backend = getenv("KILN_TEST_BACKEND");
  kiln_backend_kind kind = backend && *backend ? kiln_backend_from_name(backend) : KILN_BACKEND_CPU;
  CHECK(kiln_device_find(kind, 0, &dev));
  CHECK(kiln_context_create(dev, NULL, &e->ctx));
  CHECK(kiln_stream_create(e->ctx, NULL, &e->stream));
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = WORDS * sizeof(uint64_t);
  d.label = "guarded";
  CHECK(kiln_buffer_create(e->ctx, &d, &e->buf));
  e->host = aligned_alloc(64, WORDS * sizeof(uint64_t));
  if (!e->host)
    exit(3);
  for (unsigned i = 0; i < WORDS; i++)
    e->host[i] = 0x1000u + i;
  CHECK(kiln_buffer_write(e->buf, 0, WORDS * sizeof(uint64_t), e->host));
}

static void env_close(env *e) {
  if (e->ctx)
    CHECK(kiln_context_destroy(e->ctx));
  free(e->host);
}

/* Every word of the range is touchable and (for reads) holds what the buffer held. */
static void touch_all(const uint64_t *p, unsigned from, unsigned to) {
  for (unsigned i = from; i < to; i++)
    sink = p[i];
}

/* ---------------------------------------------------------------- positive variants */
/* The destination of a non-blocking read, read before its wait (seed 000's review). */
static int read_early(void) {
  env e = {0};
  env_open(&e);
  kiln_pending t;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &t));
  sink = e.host[2]; /* guard-touch: read_early */
  CHECK(kiln_wait(&t));
  env_close(&e);
  return 0;
}

/* The source of a non-blocking write (upload sources are guarded too), read early. */
static int write_src_early(void) {
  env e = {0};
  env_open(&e);
  kiln_pending t;
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 0, 64, e.host, &t));
  sink = e.host[3]; /* guard-touch: write_src_early */
  CHECK(kiln_wait(&t));
  env_close(&e);
  return 0;
}

/* The source of a non-blocking write, overwritten early (the common reuse bug). */
static int write_src_modified_early(void) {
  env e = {0};
  env_open(&e);
  kiln_pending t;
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 64, 64, e.host + 8, &t));
  e.host[8] = 42; /* guard-touch: write_src_modified_early */
  CHECK(kiln_wait(&t));
  env_close(&e);
  return 0;
}

/* A released token leaves the range poisoned until a covering wait. */
static int released_early(void) {
  env e = {0};
  env_open(&e);
  kiln_pending t;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &t));
  CHECK(kiln_pending_release(&t));
  /* Let the copy finish: completion alone must not unpoison, only a wait. */
  kiln_pending t2;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 64, 64, e.host + 8, &t2));
  CHECK(kiln_wait(&t2));
  sink = e.host[1]; /* guard-touch: released_early */
  CHECK(kiln_stream_synchronize(e.stream));
  env_close(&e);
  return 0;
}

/* Two reads into overlapping ranges: words [0, 8) and [4, 12). Waiting the first makes
 * words [0, 4) touchable (no report there); words [4, 8) stay poisoned by the second. */
static int overlap_touch_overlap(void) {
  env e = {0};
  env_open(&e);
  kiln_pending a, b;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &a));
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 64, 64, e.host + 4, &b));
  CHECK(kiln_wait(&a));
  touch_all(e.host, 0, 4); /* only the first covered these: no report */
  sink = e.host[5];        /* guard-touch: overlap_touch_overlap */
  CHECK(kiln_wait(&b));
  env_close(&e);
  return 0;
}

/* A covering wait after the program freed the range must not unpoison it: the read's
 * buffer is destroyed (a covering wait) and the host block freed before the stream is
 * synchronised, so touching the block is a use after free that ASan must still see. */
static int freed_after_buffer_destroy(void) {
  env e = {0};
  env_open(&e);
  /* volatile: the compiler must not see (and refuse) the deliberate use after free. */
  uint64_t *volatile x = aligned_alloc(64, WORDS * sizeof(uint64_t));
  if (!x)
    exit(3);
  kiln_pending t;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, x, &t));
  CHECK(kiln_pending_release(&t));
  CHECK(kiln_buffer_destroy(e.buf));
  free(x);
  CHECK(kiln_stream_synchronize(e.stream));
  sink = x[2]; /* guard-touch: freed_after_buffer_destroy */
  env_close(&e);
  return 0;
}

/* ---------------------------------------------------------------- negative variants */
/* kiln_buffer_destroy waits for the buffer's work: the range is the program's again. */
static int after_buffer_destroy(void) {
  env e = {0};
  env_open(&e);
  kiln_pending r, w;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &r));
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 64, 64, e.host + 8, &w));
  CHECK(kiln_pending_release(&r));
  CHECK(kiln_pending_release(&w));
  CHECK(kiln_buffer_destroy(e.buf));
  touch_all(e.host, 0, WORDS);
  env_close(&e);
  return 0;
}

static int after_wait(void) {
  env e = {0};
  env_open(&e);
  kiln_pending r, w;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &r));
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 64, 64, e.host + 8, &w));
  CHECK(kiln_wait(&r));
  CHECK(kiln_wait(&w));
  touch_all(e.host, 0, WORDS);
  e.host[8] = 7; /* the upload source may be reused now */
  env_close(&e);
  return 0;
}

static int after_stream_synchronize(void) {
  env e = {0};
  env_open(&e);
  kiln_pending r, w;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &r));
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 64, 64, e.host + 8, &w));
  CHECK(kiln_pending_release(&r));
  CHECK(kiln_pending_release(&w));
  CHECK(kiln_stream_synchronize(e.stream));
  touch_all(e.host, 0, WORDS);
  env_close(&e);
  return 0;
}

static int after_event_synchronize(void) {
  env e = {0};
  env_open(&e);
  kiln_event ev = NULL;
  CHECK(kiln_event_create(e.ctx, NULL, &ev));
  kiln_pending r, w;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &r));
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 64, 64, e.host + 8, &w));
  CHECK(kiln_pending_release(&r));
  CHECK(kiln_pending_release(&w));
  CHECK(kiln_event_record(ev, e.stream));
  CHECK(kiln_event_synchronize(ev));
  touch_all(e.host, 0, WORDS);
  CHECK(kiln_event_destroy(ev));
  env_close(&e);
  return 0;
}

static int after_context_synchronize(void) {
  env e = {0};
  env_open(&e);
  kiln_pending r;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &r));
  CHECK(kiln_pending_release(&r));
  CHECK(kiln_context_synchronize(e.ctx));
  touch_all(e.host, 0, WORDS);
  env_close(&e);
  return 0;
}

static int after_context_destroy(void) {
  env e = {0};
  env_open(&e);
  kiln_pending r, w;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &r));
  CHECK(kiln_buffer_write_async(e.stream, e.buf, 64, 64, e.host + 8, &w));
  CHECK(kiln_pending_release(&r));
  CHECK(kiln_pending_release(&w));
  CHECK(kiln_context_destroy(e.ctx));
  e.ctx = NULL;
  touch_all(e.host, 0, WORDS);
  env_close(&e);
  return 0;
}

static int after_stream_destroy(void) {
  env e = {0};
  env_open(&e);
  kiln_pending r;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &r));
  CHECK(kiln_pending_release(&r));
  CHECK(kiln_stream_destroy(e.stream));
  touch_all(e.host, 0, WORDS);
  env_close(&e);
  return 0;
}

/* Overlapping ranges: once both are waited everything is touchable; while only the
 * first is, the part only it covered is. */
static int overlap_first_only_part(void) {
  env e = {0};
  env_open(&e);
  kiln_pending a, b;
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 0, 64, e.host, &a));
  CHECK(kiln_buffer_read_async(e.stream, e.buf, 64, 64, e.host + 4, &b));
  CHECK(kiln_wait(&a));
  touch_all(e.host, 0, 4);
  CHECK(kiln_wait(&b));
  touch_all(e.host, 0, WORDS);
  /* the second read landed on top of the first where they overlap */
  for (unsigned i = 0; i < 4; i++)
    if (e.host[i] != 0x1000u + i || e.host[4 + i] != 0x1000u + 8 + i) {
      fprintf(stderr, "guard_helper: overlapping reads left word %u wrong\n", i);
      return 1;
    }
  env_close(&e);
  return 0;
}

typedef struct variant {
  const char *name;
  int (*fn)(void);
} variant;

static const variant variants[] = {
    {"read_early", read_early},
    {"write_src_early", write_src_early},
    {"write_src_modified_early", write_src_modified_early},
    {"released_early", released_early},
    {"overlap_touch_overlap", overlap_touch_overlap},
    {"freed_after_buffer_destroy", freed_after_buffer_destroy},
    {"after_wait", after_wait},
    {"after_buffer_destroy", after_buffer_destroy},
    {"after_stream_synchronize", after_stream_synchronize},
    {"after_event_synchronize", after_event_synchronize},
    {"after_context_synchronize", after_context_synchronize},
    {"after_context_destroy", after_context_destroy},
    {"after_stream_destroy", after_stream_destroy},
    {"overlap_first_only_part", overlap_first_only_part},
};

int main(int argc, char **argv) {
#if !defined(__SANITIZE_ADDRESS__)
  (void)argc;
  (void)argv;
  fprintf(stderr, "guard_helper: built without AddressSanitizer: nothing to check\n");
  return 77;
#else
  if (argc != 2) {
    fprintf(stderr, "usage: guard_helper <variant>\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
    if (strcmp(argv[1], variants[i].name) == 0) {
      int rc = variants[i].fn();
      if (rc == 0)
        fprintf(stderr, "guard_helper: %s finished\n", argv[1]);
      return rc;
    }
  fprintf(stderr, "guard_helper: unknown variant '%s'\n", argv[1]);
  return 2;
#endif
}

/* SPDX-License-Identifier: MIT */
/* Device completions in a libuv loop (include/kiln/async.h): a chain of kernels on a
 * stream, then an event; libuv watches the event's descriptor with uv_poll_t, beside
 * a uv_timer that keeps the loop's other work going, and a kiln future whose
 * continuation (on kiln's callback thread) wakes the loop through uv_async_send. The
 * poll callback runs on the loop's thread once the device work is done; it observes
 * the result with a wait that returns at once, then stops watching.
 *   examples/libuv_loop [--device B:I] [--n N]
 * On a backend without native C kernels (OpenCL, CUDA) the kernel is the dialect's.
 * Exit 0 when the result is right and both wake-ups came. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "kiln.h"

static void check(kiln_status st, const char *what, int line) {
  if (st == KILN_SUCCESS)
    return;
  fprintf(stderr, "libuv_loop.c:%d: %s: %s: %s\n", line, what, kiln_status_name(st),
          kiln_last_error()->message);
  exit(1);
}
#define CHECK(call) check((call), #call, __LINE__)

#define ROUNDS 8

/* data[i] += add, for i < n */
static void add_native(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint32_t *data = args[0];
  uint32_t add = *(const uint32_t *)args[1];
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    data[i] += add;
}

static const char add_source[] =
    "KILN_KERNEL void add_u32(KILN_GLOBAL kiln_u32 *data, kiln_u32 add) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < kiln_global_size(0)) data[i] += add;\n"
    "}\n";

typedef struct app {
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_timer_t timer;
  uv_async_t async;
  kiln_event done;
  kiln_stream stream;
  kiln_buffer buf;
  size_t n;
  int ticks, polled, continued, bad;
} app;

static void close_all(app *a) {
  uv_close((uv_handle_t *)&a->timer, NULL);
  uv_close((uv_handle_t *)&a->async, NULL);
}

static void on_tick(uv_timer_t *t) {
  app *a = t->data;
  a->ticks++;
  if (a->ticks > 300) { /* 30 s: the device never answered */
    fprintf(stderr, "libuv_loop: no completion within 30 s\n");
    a->bad = 1;
    uv_poll_stop(&a->poll);
    uv_close((uv_handle_t *)&a->poll, NULL);
    close_all(a);
  }
}

static void maybe_finish(app *a) {
  if (a->polled && a->continued)
    close_all(a);
}

/* On the loop's thread: the event's descriptor became readable. */
static void on_done(uv_poll_t *p, int status, int events) {
  app *a = p->data;
  if (status < 0 || !(events & UV_READABLE))
    return;
  CHECK(kiln_event_query(a->done)); /* complete: readable means done */
  uint32_t *out = malloc(a->n * sizeof *out);
  if (!out)
    exit(1);
  CHECK(kiln_buffer_read(a->buf, 0, a->n * sizeof *out, out));
  for (size_t i = 0; i < a->n; i++)
    if (out[i] != (uint32_t)i + ROUNDS * 3u) {
      a->bad = 1;
      break;
    }
  free(out);
  a->polled = 1;
  uv_poll_stop(p); /* level-triggered: stop watching once handled */
  uv_close((uv_handle_t *)p, NULL);
  maybe_finish(a);
}

/* On the loop's thread, woken by the continuation. */
static void on_async(uv_async_t *h) {
  app *a = h->data;
  a->continued = 1;
  maybe_finish(a);
}

/* On kiln's callback thread, once the event's work completed. */
static kiln_status continuation(kiln_status status, void *user) {
  app *a = user;
  uv_async_send(&a->async); /* the one libuv call that is safe from another thread */
  return status;
}

int main(int argc, char **argv) {
  const char *spec = NULL;
  size_t n = 1u << 16;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc)
      spec = argv[++i];
    else if (!strcmp(argv[i], "--n") && i + 1 < argc)
      n = (size_t)atol(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--device B:I] [--n N]\n", argv[0]);
      return 2;
    }
  }
  if (n == 0) {
    fprintf(stderr, "--n must be at least 1\n");
    return 2;
  }
  kiln_device dev = NULL;
  CHECK(spec ? kiln_device_parse(spec, &dev) : kiln_device_default(&dev));
  kiln_context ctx;
  CHECK(kiln_context_create(dev, NULL, &ctx));
  app a;
  memset(&a, 0, sizeof a);
  a.loop = uv_default_loop();
  a.n = n;
  CHECK(kiln_stream_create(ctx, NULL, &a.stream));
  CHECK(kiln_event_create(ctx, NULL, &a.done));
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = n * sizeof(uint32_t);
  CHECK(kiln_buffer_create(ctx, &d, &a.buf));

  kiln_kernel k = NULL;
  kiln_program prog = NULL;
  kiln_param params[2] = {{KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 4}};
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  kd.name = "add_u32";
  kd.fn = add_native;
  kd.params = params;
  kd.param_count = 2;
  kiln_status st = kiln_kernel_create_native(ctx, &kd, &k);
  if (st == KILN_ERROR_UNSUPPORTED) { /* OpenCL, CUDA: the dialect */
    kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
    pd.source = add_source;
    pd.name = "libuv_loop";
    CHECK(kiln_program_create(ctx, &pd, &prog));
    CHECK(kiln_kernel_create(prog, "add_u32", &k));
  } else {
    CHECK(st);
  }

  uint32_t *init = malloc(n * sizeof *init);
  if (!init)
    return 1;
  for (size_t i = 0; i < n; i++)
    init[i] = (uint32_t)i;
  CHECK(kiln_buffer_write(a.buf, 0, n * sizeof *init, init));
  free(init);
  static const uint32_t three = 3;
  kiln_arg args[2] = {kiln_arg_buffer(a.buf), kiln_arg_scalar(&three, sizeof three)};
  kiln_range r = kiln_range_1d(n);
  for (int i = 0; i < ROUNDS; i++) /* no tokens: the event covers them */
    CHECK(kiln_launch_async(a.stream, k, &r, args, 2, KILN_NO_TOKEN));
  CHECK(kiln_event_record(a.done, a.stream));

  int fd;
  CHECK(kiln_event_fd(a.done, &fd));
  uv_poll_init(a.loop, &a.poll, fd);
  a.poll.data = &a;
  uv_poll_start(&a.poll, UV_READABLE, on_done);
  uv_timer_init(a.loop, &a.timer);
  a.timer.data = &a;
  uv_timer_start(&a.timer, on_tick, 100, 100);
  uv_async_init(a.loop, &a.async, on_async);
  a.async.data = &a;
  kiln_future f, next;
  CHECK(kiln_future_from_event(a.done, &f));
  CHECK(kiln_future_then(&f, continuation, &a, &next));

  uv_run(a.loop, UV_RUN_DEFAULT);

  CHECK(kiln_future_wait(&next));
  CHECK(kiln_kernel_destroy(k));
  if (prog)
    CHECK(kiln_program_destroy(prog));
  CHECK(kiln_event_destroy(a.done)); /* closes the descriptor libuv watched */
  CHECK(kiln_buffer_destroy(a.buf));
  CHECK(kiln_stream_destroy(a.stream));
  CHECK(kiln_context_destroy(ctx));
  uv_loop_close(a.loop);
  int ok = !a.bad && a.polled && a.continued;
  printf("libuv_loop: %d kernels over %zu elements, completion seen by uv_poll %s and by a "
         "future's continuation %s; %d timer ticks meanwhile; %s\n",
         ROUNDS, n, a.polled ? "yes" : "no", a.continued ? "yes" : "no", a.ticks,
         ok ? "result ok" : "FAILED");
  return ok ? 0 : 1;
}

/* SPDX-License-Identifier: MIT */
/* Device completions in an ordinary epoll loop (include/kiln/async.h): several streams
 * each copy a buffer round trip with KILN_NO_TOKEN (no tokens to keep: the stream's
 * synchronize covers them), and an event marks the end of each; one thread waits for
 * all of them with epoll_wait on the events' descriptors, alongside whatever else the
 * loop watches (here, a timerfd that says the loop is still alive). No thread blocks
 * per wait. Each event's descriptor is readable from its completion (level-
 * triggered); the loop removes it from the epoll set once handled.
 *   examples/epoll_wait [--device B:I] [--streams N] [--kib K]
 * Exit 0 when every stream's data came back right. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "kiln.h"

#define MAX_STREAMS 16

static void check(kiln_status st, const char *what, int line) {
  if (st == KILN_SUCCESS)
    return;
  fprintf(stderr, "epoll_wait.c:%d: %s: %s: %s\n", line, what, kiln_status_name(st),
          kiln_last_error()->message);
  exit(1);
}
#define CHECK(call) check((call), #call, __LINE__)

typedef struct lane {
  kiln_stream stream;
  kiln_event done;
  kiln_buffer a, b;
  uint32_t *src, *dst;
  int fd;
  int finished;
} lane;

int main(int argc, char **argv) {
  const char *spec = NULL;
  int streams = 4;
  size_t kib = 256;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc)
      spec = argv[++i];
    else if (!strcmp(argv[i], "--streams") && i + 1 < argc)
      streams = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--kib") && i + 1 < argc)
      kib = (size_t)atol(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--device B:I] [--streams N] [--kib K]\n", argv[0]);
      return 2;
    }
  }
  if (streams < 1 || streams > MAX_STREAMS || kib < 1) {
    fprintf(stderr, "--streams must be 1..%d and --kib at least 1\n", MAX_STREAMS);
    return 2;
  }
  size_t bytes = kib * 1024, words = bytes / sizeof(uint32_t);
  kiln_device dev = NULL;
  CHECK(spec ? kiln_device_parse(spec, &dev) : kiln_device_default(&dev));
  kiln_context ctx;
  CHECK(kiln_context_create(dev, NULL, &ctx));

  int ep = epoll_create1(EPOLL_CLOEXEC);
  int tick = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (ep < 0 || tick < 0) {
    perror("epoll_create1/timerfd_create");
    return 1;
  }
  struct itimerspec every = {{0, 100000000}, {0, 100000000}}; /* 100 ms */
  timerfd_settime(tick, 0, &every, NULL);
  struct epoll_event te = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, tick, &te);

  lane lanes[MAX_STREAMS];
  memset(lanes, 0, sizeof lanes);
  for (int s = 0; s < streams; s++) {
    lane *l = &lanes[s];
    CHECK(kiln_stream_create(ctx, NULL, &l->stream));
    CHECK(kiln_event_create(ctx, NULL, &l->done));
    kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
    d.bytes = bytes;
    CHECK(kiln_buffer_create(ctx, &d, &l->a));
    CHECK(kiln_buffer_create(ctx, &d, &l->b));
    l->src = malloc(bytes);
    l->dst = malloc(bytes);
    if (!l->src || !l->dst)
      return 1;
    for (size_t i = 0; i < words; i++)
      l->src[i] = (uint32_t)((size_t)s * 1000003u + i);
    memset(l->dst, 0, bytes);
    /* Queue the round trip without tokens, then mark its end with the event. */
    CHECK(kiln_buffer_write_async(l->stream, l->a, 0, bytes, l->src, KILN_NO_TOKEN));
    CHECK(kiln_buffer_copy_async(l->stream, l->b, 0, l->a, 0, bytes, KILN_NO_TOKEN));
    CHECK(kiln_buffer_read_async(l->stream, l->b, 0, bytes, l->dst, KILN_NO_TOKEN));
    CHECK(kiln_event_record(l->done, l->stream));
    CHECK(kiln_event_fd(l->done, &l->fd));
    struct epoll_event ee = {.events = EPOLLIN, .data.u64 = (uint64_t)s};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ee) != 0) {
      perror("epoll_ctl");
      return 1;
    }
  }

  int remaining = streams, ticks = 0, bad = 0;
  while (remaining > 0) {
    struct epoll_event ready[MAX_STREAMS + 1];
    int n = epoll_wait(ep, ready, MAX_STREAMS + 1, 30000);
    if (n <= 0) {
      fprintf(stderr, "epoll_wait: nothing completed within 30 s\n");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (ready[i].data.u64 == UINT64_MAX) { /* the loop's other business */
        uint64_t expirations;
        if (read(tick, &expirations, sizeof expirations) > 0)
          ticks++;
        continue;
      }
      lane *l = &lanes[ready[i].data.u64];
      /* Readable: the stream's work is done. The synchronize returns at once and is
       * the wait that hands the host memory back (the no-token ops' guard). */
      CHECK(kiln_stream_synchronize(l->stream));
      for (size_t k = 0; k < words; k++)
        if (l->dst[k] != l->src[k]) {
          bad++;
          break;
        }
      epoll_ctl(ep, EPOLL_CTL_DEL, l->fd, NULL); /* level-triggered: stop watching */
      l->finished = 1;
      remaining--;
    }
  }
  for (int s = 0; s < streams; s++) {
    lane *l = &lanes[s];
    CHECK(kiln_event_destroy(l->done)); /* closes its descriptor */
    CHECK(kiln_buffer_destroy(l->a));
    CHECK(kiln_buffer_destroy(l->b));
    CHECK(kiln_stream_destroy(l->stream));
    free(l->src);
    free(l->dst);
  }
  CHECK(kiln_context_destroy(ctx));
  close(tick);
  close(ep);
  printf("epoll_wait: %d streams x %zu KiB round trips completed through epoll (%d ticks "
         "meanwhile), %s\n",
         streams, kib, ticks, bad ? "DATA MISMATCH" : "data ok");
  return bad ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/* Large host copies split over a small pool of helper threads: one core's memcpy is
 * well below what the memory system gives several cores (2 cores of the 2-core build
 * VM: 4.3 -> 5.7 GB/s for 64 MiB). The pool (kiln__cpu_count() - 1 threads, at most
 * 7) starts at the first large copy and lives as long as the process; its threads
 * sleep on a condition variable between copies. The caller copies its own part, then
 * takes queued parts (its own or another caller's) until its copy is done, so a copy
 * finishes even if no helper runs (after fork(), say). */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "platform/platform.h"

#define PART_MIN ((size_t)4 << 20) /* smaller parts are not worth waking a helper (~20-50 us) */
#define RING 64
#define MAX_HELPERS 7u

typedef struct pc_part {
  _Atomic size_t *left; /* parts of its copy not yet done */
  char *dst;
  const char *src;
  size_t n;
} pc_part;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER; /* parts were queued */
static pc_part ring[RING];
static unsigned head, count;
static unsigned helpers;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static bool pop_locked(pc_part *out) {
  if (!count)
    return false;
  *out = ring[head];
  head = (head + 1) % RING;
  count--;
  return true;
}

static void run_part(const pc_part *p) {
  kiln__copy_bytes(p->dst, p->src, p->n);
  atomic_fetch_sub_explicit(p->left, 1, memory_order_release); /* p's copy may be gone now */
}

static void *helper_main(void *arg) {
  (void)arg;
  for (;;) {
    pc_part p;
    pthread_mutex_lock(&lock);
    while (!pop_locked(&p))
      pthread_cond_wait(&more, &lock);
    pthread_mutex_unlock(&lock);
    run_part(&p);
  }
  return NULL;
}

/* KILN_COPY_THREADS=N sets the number of helpers (0: every copy on its caller). */
static void start_helpers(void) {
  unsigned want = kiln__cpu_count() - 1;
  uint64_t asked = kiln__env_uint("KILN_COPY_THREADS", 0, KILN__ENV_THREADS_MAX, want);
  want = asked > MAX_HELPERS ? MAX_HELPERS : (unsigned)asked;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0)
    return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64u << 10);
  for (unsigned i = 0; i < want; i++) {
    pthread_t t;
    if (pthread_create(&t, &attr, helper_main, NULL) != 0)
      break;
    helpers++;
  }
  pthread_attr_destroy(&attr);
}

void kiln__copy_large(void *dst, const void *src, size_t bytes) {
  if (bytes < 2 * PART_MIN) {
    kiln__copy_bytes(dst, src, bytes);
    return;
  }
  pthread_once(&once, start_helpers);
  size_t parts = helpers + 1u;
  if (parts > bytes / PART_MIN)
    parts = bytes / PART_MIN;
  if (parts < 2) {
    kiln__copy_bytes(dst, src, bytes);
    return;
  }
  size_t part = (bytes / parts + 4095) / 4096 * 4096;
  _Atomic size_t left;
  atomic_init(&left, 0);
  char *d = dst;
  const char *s = src;
  size_t off = part; /* part 0 is the caller's */
  pthread_mutex_lock(&lock);
  while (off < bytes && count < RING) {
    size_t n = bytes - off < part ? bytes - off : part;
    ring[(head + count) % RING] = (pc_part){&left, d + off, s + off, n};
    count++;
    atomic_fetch_add_explicit(&left, 1, memory_order_relaxed);
    off += n;
  }
  pthread_cond_broadcast(&more);
  pthread_mutex_unlock(&lock);
  kiln__copy_bytes(d, s, part < bytes ? part : bytes);
  if (off < bytes)
    kiln__copy_bytes(d + off, s + off, bytes - off); /* the ring was full */
  while (atomic_load_explicit(&left, memory_order_acquire) > 0) {
    pc_part p;
    pthread_mutex_lock(&lock);
    bool got = pop_locked(&p);
    pthread_mutex_unlock(&lock);
    if (got)
      run_part(&p);
    else
      kiln__cpu_relax();
  }
}

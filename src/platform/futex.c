/* SPDX-License-Identifier: MIT */
/* Futex waits and wakes on a 32-bit word, and the process-wide "heavy" barrier
 * (Linux membarrier, private expedited) that lets the other side of a Dekker-style
 * handshake get by with a compiler barrier only (the asymmetric fences liburcu uses).
 * src/ring's blocking calls are the callers. The futex calls are not the PRIVATE
 * variants, so a word in memory shared between processes works too. Any thread. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "platform/platform.h"

void kiln__futex_wait(const uint32_t *word, uint32_t expected, uint64_t timeout_ns) {
  struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
  /* EAGAIN (the word changed), EINTR, ETIMEDOUT: all mean "look again" to the caller */
  (void)syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

void kiln__futex_wake_all(const uint32_t *word) {
  (void)syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static int membarrier_ok; /* written once under membarrier_once */

static void membarrier_register(void) {
  long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (q < 0 || !(q & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
    return;
  membarrier_ok =
      syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : 0;
}

int kiln__heavy_barrier(void) {
  pthread_once(&membarrier_once, membarrier_register);
  if (membarrier_ok && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
    return 0;
  return -1;
}

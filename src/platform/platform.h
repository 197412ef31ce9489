/* SPDX-License-Identifier: MIT */
/* Platform primitives (POSIX only here): time, threads, spinning, machine facts.
 * Every caller in kiln uses these instead of the OS directly, so a port touches only
 * src/platform. All functions are thread-safe. */
#ifndef KILN_PLATFORM_H
#define KILN_PLATFORM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in nanoseconds. */
uint64_t kiln__now_ns(void);
/* Hint to the CPU inside a spin loop. */
void kiln__cpu_relax(void);
/* Give the core away for a moment. */
void kiln__yield(void);
/* Sleep for ns nanoseconds. */
void kiln__sleep_ns(uint64_t ns);
/* Online logical CPUs, at least 1. */
unsigned kiln__cpu_count(void);
/* Physical memory in bytes (0 if unknown) and currently available memory. */
uint64_t kiln__total_memory_bytes(void);
uint64_t kiln__available_memory_bytes(void);
/* CPU model name from /proc/cpuinfo, or "" */
void kiln__cpu_model(char *out, size_t out_bytes);
void kiln__cpu_vendor(char *out, size_t out_bytes);

/* kiln's environment variables (env.c). Each reads getenv(name) and gives `dflt` when
 * it is unset, empty or malformed; src/core/env.c reports malformed values once, with
 * the same parsers. kiln__parse_uint: a whole number (decimal, 0x hex) in [min, max],
 * 0 with *out set, else -1. kiln__parse_word: the index of text in NULL-terminated
 * `words`, else -1. kiln__env_flag: "0" is 0, "1" is 1. */
int kiln__parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);
int kiln__parse_word(const char *text, const char *const *words);
uint64_t kiln__env_uint(const char *name, uint64_t min, uint64_t max, uint64_t dflt);
int kiln__env_word(const char *name, const char *const *words, int dflt);
int kiln__env_flag(const char *name, int dflt);
extern const char *const kiln__env_flag_words[];       /* "0", "1" */
extern const char *const kiln__env_ocl_events_words[]; /* KILN_OPENCL_EVENTS: needed, all */
/* The ranges kiln reads its numeric variables in (src/core/env.c reports values
 * outside them); a thread count above what the machine or kiln uses is taken as "all". */
#define KILN__ENV_THREADS_MAX 4096u              /* KILN_CPU_THREADS, KILN_COPY_THREADS */
#define KILN__ENV_CALLBACK_WARN_MS_MAX 86400000u /* KILN_CALLBACK_WARN_MS: a day */
#define KILN__ENV_AUTOTUNE_SAMPLES_MAX 20u       /* KILN_AUTOTUNE_SAMPLES */

/* How long a waiter spins before it sleeps: waking an idle core costs ~20 us here. */
#define KILN__SPIN_NS 30000u

/* Spinning that shares the core: pauses doubling 1, 2, 4, ... up to
 * KILN__BACKOFF_PAUSES per step (~1-2 us in all), then a yield per step. A pure pause
 * loop holds its core for the whole spin, which costs nothing while every thread has a
 * core of its own, and everything when the thread it waits for needs that core (more
 * runnable threads than cores: another busy process, StarPU's polling workers): each
 * hand-over then waits out a scheduler slice. */
#ifndef KILN__BACKOFF_PAUSES
#define KILN__BACKOFF_PAUSES 16u
#endif
typedef struct kiln__backoff {
  unsigned pauses; /* this step's pauses; 0: start at 1 */
} kiln__backoff;
static inline void kiln__backoff_step(kiln__backoff *b) {
  if (b->pauses > KILN__BACKOFF_PAUSES) {
    kiln__yield();
    return;
  }
  unsigned n = b->pauses ? b->pauses : 1u;
  for (unsigned i = 0; i < n; i++)
    kiln__cpu_relax();
  b->pauses = 2u * n;
}

/* Condition helpers on CLOCK_MONOTONIC. */
int kiln__cond_init(pthread_cond_t *cond);
/* The name of the symbol at or before code address `addr` ("" when the dynamic
 * symbol tables do not say: static functions of an executable), for messages. */
void kiln__symbol_name(const void *addr, char *buf, size_t bytes);
/* Wait until the absolute monotonic deadline (ns); returns 0 or ETIMEDOUT. */
int kiln__cond_timedwait_ns(pthread_cond_t *cond, pthread_mutex_t *mutex, uint64_t deadline_ns);

/* Copy bytes with kiln's own loop in sanitizer builds (not intercepted as memcpy,
 * so poisoned host ranges are not reported against kiln's workers), memcpy otherwise. */
void kiln__copy_bytes(void *dst, const void *src, size_t bytes);
/* The same for large copies, split over a pool of helper threads (pcopy.c); small ones
 * are one kiln__copy_bytes. Returns when every byte is copied. */
void kiln__copy_large(void *dst, const void *src, size_t bytes);

/* Pollable descriptors (efd.c): an eventfd, EFD_NONBLOCK | EFD_CLOEXEC, readable
 * while set. open answers -1 (errno set) on failure. set and clear never block; the
 * caller keeps the state so that set is called only when clear, and clear only when
 * set. */
int kiln__efd_open(void);
void kiln__efd_set(int fd);
void kiln__efd_clear(int fd);
void kiln__efd_close(int fd);

/* Futexes (futex.c) on a 32-bit word, not process-private (shared memory works).
 * wait sleeps while *word == expected, at most timeout_ns; it may return early
 * (a wake, a signal, the word changed): the caller looks again. wake_all wakes every
 * sleeper of the word. */
void kiln__futex_wait(const uint32_t *word, uint32_t expected, uint64_t timeout_ns);
void kiln__futex_wake_all(const uint32_t *word);
/* A full memory barrier on every thread of this process that runs at the call (Linux
 * membarrier, private expedited): the other side of a handshake then needs only a
 * compiler barrier (atomic_signal_fence) between its store and its load. 0 when done,
 * -1 when the kernel does not offer it (the caller must not rely on it then). */
int kiln__heavy_barrier(void);

/* xorshift PRNG for stress modes. */
static inline uint64_t kiln__rand_next(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

#endif

/* SPDX-License-Identifier: MIT */
/* POSIX implementation of src/platform/platform.h. No state beyond what the OS keeps;
 * callable from any thread. */
#include "platform/platform.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t kiln__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void kiln__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

void kiln__yield(void) {
  sched_yield();
}

void kiln__sleep_ns(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000ull);
  ts.tv_nsec = (long)(ns % 1000000000ull);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

unsigned kiln__cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

uint64_t kiln__total_memory_bytes(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return (pages > 0 && page > 0) ? (uint64_t)pages * (uint64_t)page : 0;
}

/* MemAvailable of /proc/meminfo (free memory plus what the kernel can reclaim without
 * swapping), else the free pages. */
uint64_t kiln__available_memory_bytes(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[128];
    unsigned long long kib = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
      found = sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    fclose(f);
    if (found)
      return (uint64_t)kib * 1024u;
  }
  long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return (pages > 0 && page > 0) ? (uint64_t)pages * (uint64_t)page : 0;
}

static void cpuinfo_field(const char *key, char *out, size_t out_bytes) {
  out[0] = '\0';
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[512];
  size_t klen = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, klen) != 0)
      continue;
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    colon++;
    while (*colon == ' ' || *colon == '\t')
      colon++;
    size_t n = strcspn(colon, "\n");
    if (n >= out_bytes)
      n = out_bytes - 1;
    memcpy(out, colon, n);
    out[n] = '\0';
    break;
  }
  fclose(f);
}

void kiln__cpu_model(char *out, size_t out_bytes) {
  cpuinfo_field("model name", out, out_bytes);
}
void kiln__cpu_vendor(char *out, size_t out_bytes) {
  cpuinfo_field("vendor_id", out, out_bytes);
}

int kiln__cond_init(pthread_cond_t *cond) {
  pthread_condattr_t attr;
  int rc = pthread_condattr_init(&attr);
  if (rc)
    return rc;
  rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (!rc)
    rc = pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
  return rc;
}

int kiln__cond_timedwait_ns(pthread_cond_t *cond, pthread_mutex_t *mutex, uint64_t deadline_ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
  ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
  return pthread_cond_timedwait(cond, mutex, &ts);
}

#if defined(KILN_ASAN)
__attribute__((no_sanitize("address"))) void kiln__copy_bytes(void *dst, const void *src,
                                                              size_t bytes) {
  /* volatile keeps the compiler from turning this loop into a memcpy call. */
  volatile unsigned char *d = (volatile unsigned char *)dst;
  const volatile unsigned char *s = (const volatile unsigned char *)src;
  for (size_t i = 0; i < bytes; i++)
    d[i] = s[i];
}
#else
void kiln__copy_bytes(void *dst, const void *src, size_t bytes) {
  memcpy(dst, src, bytes);
}
#endif

void kiln__symbol_name(const void *addr, char *buf, size_t bytes) {
  Dl_info info;
  if (bytes)
    buf[0] = '\0';
  if (bytes && dladdr(addr, &info) && info.dli_sname && info.dli_saddr == addr)
    snprintf(buf, bytes, "%s", info.dli_sname);
}

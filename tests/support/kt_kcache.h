/* SPDX-License-Identifier: MIT */
/* Helpers of the compile cache's tests (unit/test_kcache.c, stress/test_kcache_race.c):
 * kernel sources numbered 0..N-1 that the mock's fake compiler turns into kernels
 * writing a code of their own, and one build: program, kernel, launch, read back. */
#ifndef KT_KCACHE_H
#define KT_KCACHE_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kiln.h>

#include "kcache/kcache.h" /* tests that include this link libkiln.a (kiln-test-link) */

/* Source number i: one kernel `k<i>` whose body differs with i (so its code does). */
static inline void kt_kc_source(unsigned i, char *out, size_t out_bytes) {
  snprintf(out, out_bytes,
           "/* kernel source %u of the cache tests */\n"
           "KILN_KERNEL void k%u(KILN_GLOBAL kiln_u32 *out) {\n"
           "  out[kiln_global_id(0)] = %uu;\n"
           "}\n",
           i, i, i * 7919u + 17u);
}

/* Build source i on ctx (through the cache), launch its kernel on `stream` over 4
 * items and read the code it wrote into *code (0 on failure; every item must agree,
 * else 1). Returns the first failing status. */
static inline kiln_status kt_kc_build_run(kiln_context ctx, kiln_stream stream, unsigned i,
                                          const char *options, uint32_t *code) {
  char src[512], name[16];
  kt_kc_source(i, src, sizeof src);
  snprintf(name, sizeof name, "k%u", i);
  *code = 0;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.options = options;
  d.name = "cache-test";
  kiln_program p = NULL;
  kiln_kernel k = NULL;
  kiln_buffer b = NULL;
  kiln_status st = kiln_program_create(ctx, &d, &p);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(p, name, &k);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 4 * sizeof(uint32_t);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(ctx, &bd, &b);
  uint32_t got[4] = {0, 0, 0, 0};
  if (st == KILN_SUCCESS) {
    kiln_arg a = kiln_arg_buffer(b);
    kiln_range r = kiln_range_1d(4);
    st = kiln_launch(stream, k, &r, &a, 1);
  }
  if (st == KILN_SUCCESS)
    st = kiln_buffer_read(b, 0, sizeof got, got);
  if (st == KILN_SUCCESS)
    *code = got[0] == got[1] && got[1] == got[2] && got[2] == got[3] ? got[0] : 1;
  kiln_buffer_destroy(b);
  kiln_kernel_destroy(k);
  kiln_program_destroy(p);
  return st;
}

/* ---- processes racing on one cache directory ---- */

typedef struct kt_kc_race {
  const char *dir;           /* the cache directory they share */
  kiln_backend_kind backend; /* device 0 of it */
  unsigned procs, builds, kernels;
  const uint32_t *expected; /* the code of each kernel (from a build without the cache) */
  unsigned clear_every;     /* process 0 clears the cache every so many builds (0: never) */
  const char *max_bytes;    /* the racers' KILN_CACHE_MAX_BYTES (NULL: the default) */
  /* Out: what the racers did in all, summed over them (kt_kc_race_run fills them). */
  uint64_t builds_done, disk_hits, misses, stores, evicted;
  /* In: the racers build sources first .. first + kernels - 1 (expected[] still counts
   * from 0), so that tests running beside them build other programs. */
  unsigned first;
} kt_kc_race;

/* Each racer's counts, in memory shared with the parent. */
typedef struct kt_kc_counts {
  uint64_t builds, disk_hits, misses, stores, evicted;
} kt_kc_counts;

/* One racer: its builds in a shuffled order, the in-process layer dropped before each
 * so every build reads the directory (or compiles and writes it). Exit status: 0, or 1
 * with the reason on stderr; 77 when the backend is absent. */
static inline int kt_kc_racer(const kt_kc_race *r, unsigned me, int go_fd, kt_kc_counts *out) {
  char byte;
  if (read(go_fd, &byte, 1) != 1) /* everyone starts together */
    return 1;
  if (r->max_bytes)
    setenv("KILN_CACHE_MAX_BYTES", r->max_bytes, 1);
  kiln__kcache_reset(r->dir);
  kiln_device dev = NULL;
  if (kiln_device_find(r->backend, 0, &dev) != KILN_SUCCESS)
    return 77;
  kiln_context ctx = NULL;
  kiln_stream stream = NULL;
  if (kiln_context_create(dev, NULL, &ctx) != KILN_SUCCESS ||
      kiln_stream_create(ctx, NULL, &stream) != KILN_SUCCESS) {
    fprintf(stderr, "racer %u: setup: %s\n", me, kiln_last_error()->message);
    return 1;
  }
  uint64_t rng = 0x9E3779B97F4A7C15ull * (me + 1);
  int wrong = 0;
  for (unsigned b = 0; b < r->builds && wrong < 5; b++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    unsigned k = (unsigned)(rng % r->kernels);
    if (me == 0 && r->clear_every && b && b % r->clear_every == 0)
      kiln_cache_clear(NULL);
    kiln__kcache_drop_memory();
    uint32_t code = 0;
    kiln_status st = kt_kc_build_run(ctx, stream, r->first + k, NULL, &code);
    out->builds++;
    if (st != KILN_SUCCESS || code != r->expected[k]) {
      fprintf(stderr, "racer %u build %u kernel %u: %s, code %u (expected %u): %s\n", me, b, k,
              kiln_status_name(st), code, r->expected[k], kiln_last_error()->message);
      wrong++;
    }
  }
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  if (kiln_cache_stats(&info) != KILN_SUCCESS || !info.enabled || info.healed) {
    fprintf(stderr, "racer %u: the cache %s (healed %llu entries: a reader saw a partial one)\n",
            me, info.enabled ? "was on" : "was off", (unsigned long long)info.healed);
    wrong++;
  }
  out->disk_hits = info.disk_hits;
  out->misses = info.misses;
  out->stores = info.stores;
  out->evicted = info.evicted;
  kiln_stream_destroy(stream);
  kiln_context_destroy(ctx);
  return wrong ? 1 : 0;
}

/* Run the race; returns the number of racers that failed (-1: a racer skipped, the
 * backend is absent). Then no temporary file may be left and every entry must verify:
 * *left_tmp and *bad_entries receive what was found. */
static inline int kt_kc_race_run(kt_kc_race *r, unsigned *left_tmp, unsigned *bad_entries) {
  int go[2];
  kt_kc_counts *counts = mmap(NULL, sizeof(kt_kc_counts) * 64, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (counts == MAP_FAILED || pipe(go) != 0)
    return (int)r->procs;
  memset(counts, 0, sizeof(kt_kc_counts) * 64);
  pid_t pids[64];
  for (unsigned i = 0; i < r->procs && i < 64; i++) {
    pids[i] = fork();
    if (pids[i] == 0) {
      close(go[1]);
      _exit(kt_kc_racer(r, i, go[0], &counts[i]));
    }
  }
  close(go[0]);
  char bytes[64] = {0};
  if (write(go[1], bytes, r->procs) != (ssize_t)r->procs)
    return (int)r->procs;
  close(go[1]);
  int failed = 0, skipped = 0;
  for (unsigned i = 0; i < r->procs; i++) {
    int status = 0;
    waitpid(pids[i], &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
      skipped++;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      failed++;
  }
  r->builds_done = r->disk_hits = r->misses = r->stores = r->evicted = 0;
  for (unsigned i = 0; i < r->procs; i++) {
    r->builds_done += counts[i].builds;
    r->disk_hits += counts[i].disk_hits;
    r->misses += counts[i].misses;
    r->stores += counts[i].stores;
    r->evicted += counts[i].evicted;
  }
  munmap(counts, sizeof(kt_kc_counts) * 64);
  if (skipped)
    return -1;
  /* what is left in the directory */
  *left_tmp = 0;
  char path[1024];
  snprintf(path, sizeof path, "%.900s/program", r->dir);
  DIR *d = opendir(path);
  struct dirent *f;
  while (d && (f = readdir(d)))
    if (!strncmp(f->d_name, ".tmp-", 5))
      (*left_tmp)++;
  if (d)
    closedir(d);
  kiln__kcache_reset(r->dir);
  uint64_t checked = 0, bad = 0;
  if (kiln_cache_verify(NULL, NULL, &checked, &bad) != KILN_SUCCESS)
    bad = 1000;
  *bad_entries = (unsigned)bad;
  kiln__kcache_reset(NULL);
  return failed;
}

#endif

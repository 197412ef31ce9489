/* SPDX-License-Identifier: MIT */
/* The store's parts that the public cache calls (cache.c) and tests use besides
 * kcache.h: reading one file, walking the directory, eviction, the counters. */
#ifndef KILN_KCACHE_STORE_H
#define KILN_KCACHE_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kcache/kcache.h"

typedef enum kiln__kcache_file_result {
  KILN__KCACHE_FILE_OK,      /* *buf holds the whole entry */
  KILN__KCACHE_FILE_MISSING, /* no such entry */
  KILN__KCACHE_FILE_BAD,     /* it was bad (*why) and has been deleted (one warning) */
  KILN__KCACHE_FILE_ERROR    /* out of host memory (*st) */
} kiln__kcache_file_result;

/* Read and verify the entry `name` of namespace folder nsfd (key NULL: any key, as the
 * file's name says is not checked). touch: mark it used now (mtime, the LRU order).
 * On OK, *buf (kiln__alloc'd, *buf_bytes) holds it, the payload at
 * KILN__KCACHE_HEADER_BYTES. */
kiln__kcache_file_result kiln__kcache_read_file(int nsfd, const char *ns, const char *name,
                                                const kiln__kcache_key *key, bool touch,
                                                unsigned char **buf, size_t *buf_bytes,
                                                size_t *payload_bytes, const char **why,
                                                kiln_status *st);

typedef struct kiln__kcache_scan_item {
  const char *ns, *name;
  int nsfd;       /* the namespace folder, open during the call */
  bool temporary; /* a writer's temporary file */
  bool regular;   /* a regular file (not a link, folder, fifo) */
  uint64_t file_bytes, mtime_ns;
} kiln__kcache_scan_item;
typedef void (*kiln__kcache_scan_fn)(const kiln__kcache_scan_item *item, void *user);

/* Call fn on every entry and temporary file of every namespace. admin: also when the
 * cache is off by KILN_CACHE=off (the directory passed its checks). Failure: why. */
kiln_status kiln__kcache_scan(bool admin, kiln__kcache_scan_fn fn, void *user, char *why,
                              size_t why_bytes);
/* When the entries take more than limit_bytes, delete the least recently used until
 * they take at most target_bytes; also temporary files abandoned over an hour ago.
 * Returns the entries deleted. */
uint64_t kiln__kcache_evict(uint64_t limit_bytes, uint64_t target_bytes);

/* Empty the runtimes' folders (PoCL's cache); returns the files deleted. */
uint64_t kiln__kcache_clear_runtime_dirs(void);

typedef struct kiln__kcache_counts {
  uint64_t mem_hits, disk_hits, misses, stores, healed, evicted, store_failures, lock_waits;
  bool on, dir_ok;
  uint64_t max_bytes;
  char dir[PATH_MAX];
  char why[320];
} kiln__kcache_counts;
void kiln__kcache_counters(kiln__kcache_counts *c);

#endif

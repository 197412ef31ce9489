/* SPDX-License-Identifier: MIT */
/* The compile cache (docs/cache.md): compiled programs are kept, keyed by SHA-256 of
 * everything they depend on, in a directory shared by every process of the user —
 * $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln — so a program built
 * once is loaded, not compiled, by the next process. KILN_CACHE=off turns it off;
 * KILN_CACHE_MAX_BYTES caps it (default 1 GiB; the least recently used go first).
 * The same store keeps small blobs for the program's own use, by key under a
 * namespace. All calls are thread-safe; processes share the directory safely. */
#ifndef KILN_CACHE_H
#define KILN_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"

/* The cache as this process sees it, and what its directory holds now. */
typedef struct kiln_cache_info {
  size_t struct_size;
  int enabled;        /* builds and blobs use the cache */
  char dir[4096];     /* the directory ("" when none could be chosen) */
  char reason[320];   /* why not enabled ("KILN_CACHE=off", a refused directory) */
  uint64_t max_bytes; /* the size cap */
  uint64_t entries;   /* entries in the directory, and their bytes (headers included) */
  uint64_t bytes;
  uint64_t temporary_files; /* writers' temporary files (in flight, or abandoned) */
  /* This process since it started: */
  uint64_t memory_hits, disk_hits, misses, stores, healed, evicted;
  /* Builds that waited for another build (in any process) holding their key's lock:
   * processes building one program take turns, and the later ones load its entry. */
  uint64_t lock_waits;
} kiln_cache_info;
#define KILN_CACHE_INFO_INIT \
  { sizeof(kiln_cache_info), 0, "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/* One entry, as kiln_cache_list and kiln_cache_verify report it. */
typedef struct kiln_cache_entry {
  const char *ns;             /* its namespace ("program": compiled programs) */
  const char *key_hex;        /* its key: 64 hexadecimal digits (SHA-256) */
  uint64_t bytes;             /* the file's size */
  uint64_t last_used_unix_ns; /* its last use (the LRU order) */
  const char *problem;        /* kiln_cache_verify: why it was bad and deleted; else NULL */
} kiln_cache_entry;
/* Called once per entry; a nonzero return stops the walk. */
typedef int (*kiln_cache_entry_fn)(const kiln_cache_entry *entry, void *user);

KILN_BEGIN_DECLS

/* Fill info (initialise it with KILN_CACHE_INFO_INIT). Succeeds with enabled = 0 and
 * the reason when the cache is off. */
KILN_API kiln_status kiln_cache_stats(kiln_cache_info *info);
/* Every entry, in no particular order. KILN_ERROR_INVALID_STATE (with the reason)
 * when the directory was refused or none could be chosen. */
KILN_API kiln_status kiln_cache_list(kiln_cache_entry_fn fn, void *user);
/* Read every entry and check its length and checksum; a bad one is deleted (it is
 * rebuilt when next needed). fn (may be NULL) sees every entry, with `problem` set for
 * the bad ones. checked and bad (may be NULL) receive the counts. */
KILN_API kiln_status kiln_cache_verify(kiln_cache_entry_fn fn, void *user, uint64_t *checked,
                                       uint64_t *bad);
/* Delete every entry (and every temporary file) of the directory, and empty the
 * folders runtimes keep their own caches in there (PoCL's: docs/cache.md); removed
 * (may be NULL) receives how many entries. Other processes may keep using the cache. */
KILN_API kiln_status kiln_cache_clear(uint64_t *removed);
/* Free this process's in-memory copies of cache entries (the directory keeps them):
 * the next build reads the directory, as a new process would. For long-running
 * programs that want the memory back, and for benchmarks. */
KILN_API void kiln_cache_drop_memory(void);

/* Blobs: `bytes` bytes under (ns, key). ns: 1 to 31 of a-z 0-9 _ -; kiln's own is
 * "program". key: any bytes (hashed). With the cache off, put does nothing and get
 * finds nothing; both succeed. An I/O failure of put is KILN_ERROR_IO (not stored). */
KILN_API kiln_status kiln_cache_put(const char *ns, const void *key, size_t key_bytes,
                                    const void *data, size_t bytes);
/* A hit: *data (free it with kiln_cache_free(*data, *bytes)) and *bytes. A miss:
 * KILN_SUCCESS with *data = NULL and *bytes = 0. */
KILN_API kiln_status kiln_cache_get(const char *ns, const void *key, size_t key_bytes, void **data,
                                    size_t *bytes);
KILN_API void kiln_cache_free(void *data, size_t bytes);

KILN_END_DECLS
#endif

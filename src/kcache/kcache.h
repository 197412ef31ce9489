/* SPDX-License-Identifier: MIT */
/* The compile cache (a service of the core; docs/cache.md): SHA-256 keys, the entry
 * format, and the store — a directory shared by every process of the user, written
 * through unique temporary files renamed into place, read under a checked directory
 * descriptor, every entry's length and checksum verified (a bad one is deleted, with
 * one warning, and the caller rebuilds), an LRU size cap, and an in-process layer.
 * Only the core (src/core) and the public cache calls use it; it knows no backend:
 * what a backend compiles reaches it as bytes, through the program_* ops. */
#ifndef KILN_KCACHE_H
#define KILN_KCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

/* Bumped whenever the entry layout or what a key covers changes: part of every key and
 * every entry's header, so older entries are never read as newer ones. */
#define KILN__KCACHE_FORMAT 1u
#define KILN__KCACHE_KEY_BYTES 32u
#define KILN__KCACHE_HEADER_BYTES 128u
#define KILN__KCACHE_NS_BYTES 32u /* a namespace: 1-31 of [a-z0-9_-], NUL-padded */
/* The namespace of compiled programs. */
#define KILN__KCACHE_NS_PROGRAM "program"

typedef struct kiln__kcache_key {
  unsigned char b[KILN__KCACHE_KEY_BYTES];
} kiln__kcache_key;

/* ---- SHA-256 (OpenSSL's EVP; entry.c). begin fails only when OpenSSL cannot allocate
 * its context; end frees it. A field is its label, its length (8 bytes) and its
 * bytes, so no two lists of fields hash alike by shifting bytes between them. */
typedef struct kiln__sha256 {
  void *ctx;
} kiln__sha256;
bool kiln__sha256_begin(kiln__sha256 *h);
void kiln__sha256_add(kiln__sha256 *h, const void *data, size_t bytes);
void kiln__sha256_field(kiln__sha256 *h, const char *label, const void *data, size_t bytes);
void kiln__sha256_end(kiln__sha256 *h, unsigned char out[32]);
/* One call; false when OpenSSL failed. */
bool kiln__sha256_of(const void *data, size_t bytes, unsigned char out[32]);
void kiln__kcache_hex(const kiln__kcache_key *key, char out[2 * KILN__KCACHE_KEY_BYTES + 1]);

/* ---- the entry format (entry.c): a 128-byte header, then the payload.
 *   0  magic "KILNKCE\n"      8  u32 format     12 u32 header bytes (128)
 *   16 u64 payload bytes      24 key[32]        56 namespace[32] (NUL-padded)
 *   88 u64 created (ns since the epoch)         96 SHA-256 of bytes 0-95 and the payload
 * Integers little-endian. */
bool kiln__kcache_ns_valid(const char *ns);
void kiln__kcache_entry_header(unsigned char hdr[KILN__KCACHE_HEADER_BYTES], const char *ns,
                               const kiln__kcache_key *key, const void *payload, size_t bytes,
                               uint64_t created_ns);
/* NULL when buf[0, len) is a whole, intact entry of namespace ns and key `key` (either
 * NULL: any), its payload at buf + KILN__KCACHE_HEADER_BYTES, *payload_bytes long;
 * otherwise why not (a static string). Reads only buf[0, len). */
const char *kiln__kcache_entry_check(const unsigned char *buf, size_t len, const char *ns,
                                     const kiln__kcache_key *key, size_t *payload_bytes);

/* ---- the store (store.c). Any thread. The first call reads the environment:
 * KILN_CACHE=off, KILN_CACHE_DIR, XDG_CACHE_HOME, HOME, KILN_CACHE_MAX_BYTES. */
/* Whether get/put go to the store (KILN_CACHE is not off and the directory passed its
 * checks); when not, why into why (may be NULL). */
bool kiln__kcache_enabled(char *why, size_t why_bytes);
/* A hit: *data (kiln__alloc'd, freed with kiln__free(*data, *bytes)) and *bytes. A miss
 * (also with the cache off, and after deleting a bad entry): SUCCESS with *data NULL.
 * Fails only with OUT_OF_HOST_MEMORY. */
kiln_status kiln__kcache_get(const char *ns, const kiln__kcache_key *key, void **data,
                             size_t *bytes);
/* As kiln__kcache_get, counting no hit or miss (kiln_cache_info's counters stay those of
 * programs and the program's blobs): kiln's own lookups at launches (tune.c's launch
 * configurations), which would otherwise add a miss per kernel and range class. */
kiln_status kiln__kcache_lookup(const char *ns, const kiln__kcache_key *key, void **data,
                                size_t *bytes);
/* Store (memory and disk). SUCCESS also with the cache off; an I/O failure is
 * ERROR_IO with the reason (and the entry is not stored). */
kiln_status kiln__kcache_put(const char *ns, const kiln__kcache_key *key, const void *data,
                             size_t bytes);
/* Delete an entry whose contents its user found unusable (a binary the runtime
 * refused); one warning with why. */
void kiln__kcache_forget(const char *ns, const kiln__kcache_key *key, const char *why);
/* Take the build lock of `key` (one of 256 lock files under the directory, flock'ed):
 * processes and threads building programs of one key take turns, so that one compiles
 * and stores while the others wait and then load its entry (and a runtime's own cache
 * in the directory is not written for one program by two processes at once). Waits
 * at most 300 s (then a warning). Returns the descriptor to pass to
 * kiln__kcache_flight_end, or -1 when the cache is off or the lock unusable (build
 * anyway). */
int kiln__kcache_flight_begin(const kiln__kcache_key *key);
void kiln__kcache_flight_end(int fd);
/* Tests and the benchmark: start over as if the process had just begun, with the
 * environment (dir NULL) or with `dir` (cache on); drops the in-process layer and the
 * counters. No get/put may run at the same time. */
void kiln__kcache_reset(const char *dir);
/* Drop the in-process layer only (the next get reads the disk). */
void kiln__kcache_drop_memory(void);

/* ---- keys of compiled programs (kcache.c): SHA-256 over the cache format, the
 * backend's name and its cache id (program_cache_id), the host CPU's model and
 * features when the device is the host CPU, kiln's sanitizer build, the options and
 * the rewritten source. */
kiln_status kiln__kcache_program_key(const char *backend, const char *cache_id, bool host_cpu,
                                     const char *options, const char *text, size_t text_bytes,
                                     kiln__kcache_key *key);

#endif

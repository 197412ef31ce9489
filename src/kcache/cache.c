/* SPDX-License-Identifier: MIT */
/* The public cache calls (include/kiln/cache.h) over the store, and the keys of
 * compiled programs, which the core's program.c asks for. Thread-safe. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "kcache/kcache.h"
#include "kcache/store.h"

/* ------------------------------------------------------------------ program keys */

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static char cpu_features[4096]; /* model name and flags of /proc/cpuinfo's first CPU */

static void read_cpu_features(void) {
  FILE *f = fopen("/proc/cpuinfo", "re");
  size_t at = 0;
  char line[8192];
  bool model = false, flags = false;
  while (f && fgets(line, sizeof line, f) && !(model && flags)) {
    bool m = !model && !strncmp(line, "model name", 10);
    bool fl = !flags && (!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8));
    if (!m && !fl)
      continue;
    model |= m;
    flags |= fl;
    size_t n = strlen(line);
    if (at + n >= sizeof cpu_features) /* flags beyond the buffer: hashed below */
      n = sizeof cpu_features - 1 - at;
    memcpy(cpu_features + at, line, n);
    at += n;
  }
  cpu_features[at] = '\0';
  if (f)
    fclose(f);
  if (!at)
    kiln__cpu_model(cpu_features, sizeof cpu_features);
}

kiln_status kiln__kcache_program_key(const char *backend, const char *cache_id, bool host_cpu,
                                     const char *options, const char *text, size_t text_bytes,
                                     kiln__kcache_key *key) {
  kiln__sha256 h;
  if (!kiln__sha256_begin(&h))
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "OpenSSL could not allocate a SHA-256 context for the compile cache");
  unsigned char fmt[4] = {KILN__KCACHE_FORMAT & 0xff, (KILN__KCACHE_FORMAT >> 8) & 0xff, 0, 0};
  kiln__sha256_field(&h, "kiln program cache format", fmt, sizeof fmt);
  kiln__sha256_field(&h, "kiln version", KILN_VERSION_STRING, strlen(KILN_VERSION_STRING));
  kiln__sha256_field(&h, "backend", backend, strlen(backend));
  kiln__sha256_field(&h, "device and compiler", cache_id, strlen(cache_id));
  if (host_cpu) {
    pthread_once(&cpu_once, read_cpu_features);
    kiln__sha256_field(&h, "host cpu", cpu_features, strlen(cpu_features));
  }
#if defined(KILN_ASAN)
  static const char sanitizer[] = "asan";
#elif defined(KILN_TSAN)
  static const char sanitizer[] = "tsan";
#else
  static const char sanitizer[] = "";
#endif
  kiln__sha256_field(&h, "kiln sanitizer build", sanitizer, strlen(sanitizer));
  kiln__sha256_field(&h, "options", options, strlen(options));
  kiln__sha256_field(&h, "source", text, text_bytes);
  kiln__sha256_end(&h, key->b);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------------ public calls */

static kiln_status check_ns(const char *ns) {
  if (!ns)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ns (the namespace) is NULL");
  if (!kiln__kcache_ns_valid(ns)) {
    char q[KILN__QUOTE_BYTES];
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "namespace %s is not 1 to %u of a-z 0-9 _ -",
                kiln__quote(q, ns, strlen(ns)), KILN__KCACHE_NS_BYTES - 1);
    kiln__error_suggest("name the namespace after your feature, e.g. \"launch-config\"");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  return KILN_SUCCESS;
}

/* A caller's key: SHA-256 of the namespace and its bytes. */
static kiln_status blob_key(const char *ns, const void *key, size_t key_bytes,
                            kiln__kcache_key *out) {
  kiln_status st = check_ns(ns);
  if (st != KILN_SUCCESS)
    return st;
  if (!key && key_bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "key is NULL with key_bytes %zu", key_bytes);
  kiln__sha256 h;
  if (!kiln__sha256_begin(&h))
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "OpenSSL could not allocate for SHA-256");
  kiln__sha256_field(&h, "kiln blob namespace", ns, strlen(ns));
  kiln__sha256_field(&h, "key", key, key_bytes);
  kiln__sha256_end(&h, out->b);
  return KILN_SUCCESS;
}

kiln_status kiln_cache_put(const char *ns, const void *key, size_t key_bytes, const void *data,
                           size_t bytes) {
  KILN__API_ENTER();
  kiln__kcache_key k;
  kiln_status st = blob_key(ns, key, key_bytes, &k);
  if (st != KILN_SUCCESS)
    return st;
  if (!data && bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "data is NULL with bytes %zu", bytes);
  return kiln__kcache_put(ns, &k, data ? data : "", bytes);
}

kiln_status kiln_cache_get(const char *ns, const void *key, size_t key_bytes, void **data,
                           size_t *bytes) {
  KILN__API_ENTER();
  if (!data || !bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "%s (an out-parameter) is NULL",
                       !data ? "data" : "bytes");
  *data = NULL;
  *bytes = 0;
  kiln__kcache_key k;
  kiln_status st = blob_key(ns, key, key_bytes, &k);
  if (st != KILN_SUCCESS)
    return st;
  return kiln__kcache_get(ns, &k, data, bytes);
}

void kiln_cache_drop_memory(void) {
  KILN__API_ENTER();
  kiln__kcache_drop_memory();
}

void kiln_cache_free(void *data, size_t bytes) {
  if (data)
    kiln__free(data, bytes ? bytes : 1);
}

typedef struct walk {
  kiln_cache_entry_fn fn;
  void *user;
  bool stop, verify;
  uint64_t entries, bytes, temporary, checked, bad;
  kiln_status st; /* out of memory while verifying */
} walk;

static void walk_item(const kiln__kcache_scan_item *it, void *user) {
  walk *w = user;
  if (w->stop)
    return;
  if (it->temporary) {
    w->temporary++;
    return;
  }
  kiln_cache_entry e = {it->ns, it->name, it->file_bytes, it->mtime_ns, NULL};
  if (w->verify) {
    unsigned char *buf;
    size_t buf_bytes, payload;
    const char *why;
    kiln_status st;
    kiln__kcache_key key;
    for (unsigned i = 0; i < KILN__KCACHE_KEY_BYTES; i++) {
      unsigned v = 0;
      sscanf(it->name + 2 * i, "%2x", &v);
      key.b[i] = (unsigned char)v;
    }
    kiln__kcache_file_result r = kiln__kcache_read_file(it->nsfd, it->ns, it->name, &key, false,
                                                        &buf, &buf_bytes, &payload, &why, &st);
    if (r == KILN__KCACHE_FILE_ERROR) {
      w->st = st;
      w->stop = true;
      return;
    }
    if (r == KILN__KCACHE_FILE_MISSING) /* deleted since the listing */
      return;
    w->checked++;
    if (r == KILN__KCACHE_FILE_OK)
      kiln__free(buf, buf_bytes);
    else {
      w->bad++;
      e.problem = why;
    }
  }
  w->entries++;
  w->bytes += it->file_bytes;
  if (w->fn && w->fn(&e, w->user))
    w->stop = true;
}

static kiln_status scan_or_report(walk *w) {
  char why[400];
  kiln_status st = kiln__kcache_scan(true, walk_item, w, why, sizeof why);
  if (st != KILN_SUCCESS) {
    kiln__error(st, "the compile cache cannot be read: %s", why);
    kiln__error_suggest("point KILN_CACHE_DIR at a directory of yours that only you can write "
                        "(kiln creates it 0700)");
    return st;
  }
  return w->st;
}

kiln_status kiln_cache_stats(kiln_cache_info *info) {
  KILN__API_ENTER();
  if (!info)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "info is NULL");
  if (info->struct_size < sizeof *info)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "info->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_CACHE_INFO_INIT",
                       info->struct_size, sizeof *info);
  kiln__kcache_counts c;
  kiln__kcache_counters(&c);
  info->enabled = c.on;
  kiln__strlcpy(info->dir, c.dir, sizeof info->dir);
  kiln__strlcpy(info->reason, c.on ? "" : c.why, sizeof info->reason);
  info->max_bytes = c.max_bytes;
  info->memory_hits = c.mem_hits;
  info->disk_hits = c.disk_hits;
  info->misses = c.misses;
  info->stores = c.stores;
  info->healed = c.healed;
  info->evicted = c.evicted;
  info->lock_waits = c.lock_waits;
  info->entries = info->bytes = info->temporary_files = 0;
  if (!c.dir_ok)
    return KILN_SUCCESS;
  walk w = {0};
  kiln_status st = scan_or_report(&w);
  info->entries = w.entries;
  info->bytes = w.bytes;
  info->temporary_files = w.temporary;
  return st;
}

kiln_status kiln_cache_list(kiln_cache_entry_fn fn, void *user) {
  KILN__API_ENTER();
  if (!fn)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "fn is NULL");
  walk w = {.fn = fn, .user = user};
  return scan_or_report(&w);
}

kiln_status kiln_cache_verify(kiln_cache_entry_fn fn, void *user, uint64_t *checked,
                              uint64_t *bad) {
  KILN__API_ENTER();
  if (checked)
    *checked = 0;
  if (bad)
    *bad = 0;
  walk w = {.fn = fn, .user = user, .verify = true};
  kiln_status st = scan_or_report(&w);
  if (checked)
    *checked = w.checked;
  if (bad)
    *bad = w.bad;
  return st;
}

static void clear_item(const kiln__kcache_scan_item *it, void *user) {
  uint64_t *removed = user;
  if (unlinkat(it->nsfd, it->name, 0) == 0 && !it->temporary)
    (*removed)++;
}

kiln_status kiln_cache_clear(uint64_t *removed) {
  KILN__API_ENTER();
  uint64_t n = 0;
  char why[400];
  kiln_status st = kiln__kcache_scan(true, clear_item, &n, why, sizeof why);
  if (removed)
    *removed = n;
  if (st != KILN_SUCCESS) {
    kiln__error(st, "the compile cache cannot be cleared: %s", why);
    kiln__error_suggest("point KILN_CACHE_DIR at a directory of yours that only you can write");
    return st;
  }
  kiln__kcache_clear_runtime_dirs();
  kiln__kcache_drop_memory();
  return KILN_SUCCESS;
}

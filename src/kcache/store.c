/* SPDX-License-Identifier: MIT */
/* The compile cache's store: one directory per user ($KILN_CACHE_DIR, else
 * $XDG_CACHE_HOME/kiln, else ~/.cache/kiln), created 0700 and refused (the cache then
 * off, with the reason) when it is a symbolic link, not a directory, owned by another
 * user or writable by others. It holds a folder per namespace, checked the same way,
 * each entry a file named by its key in hex. Every file is reached with openat under
 * the checked directory descriptor and O_NOFOLLOW. Writers write a unique temporary
 * file, fsync it and rename it into place, so a reader sees a whole entry or none;
 * readers verify the length and checksum and delete what fails (one warning each). An
 * entry's mtime is its last use; past the size cap the least recently used go. The
 * in-process layer keeps recent payloads in memory. Any thread; processes share the
 * directory with no lock on reads and writes (rename is atomic). Building a program is
 * another matter: kiln__kcache_flight_begin takes one of 256 lock files (flock, by the
 * key's first byte) so that processes building the same key take turns — one compiles
 * and stores, the others then load its entry — and a runtime's own cache that kiln
 * points into this directory (PoCL's, which creates and reads its files without
 * locking) is never written by two processes for the same program at once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "kcache/kcache.h"
#include "kcache/store.h"
#include "trace/trace.h"

#define DEFAULT_MAX_BYTES (1ull << 30)
#define MEMORY_MAX_BYTES ((size_t)64 << 20) /* the in-process layer's bound */
#define MEMORY_BUCKETS 256u
#define ENTRY_MAX_BYTES ((uint64_t)1 << 31) /* a file larger than this is not read */
#define TMP_PREFIX ".tmp-"
#define TMP_STALE_NS (3600ull * 1000000000ull) /* a temporary file this old was abandoned */
#define LOCK_DIR ".locks" /* no namespace can be named so (kiln__kcache_ns_valid) */
#define LOCK_WAIT_NS (300ull * 1000000000ull) /* then build without the lock, warned */

/* An entry of the in-process layer. */
typedef struct mem_entry {
  struct mem_entry *next;  /* bucket chain */
  struct mem_entry *older; /* FIFO of insertion, for the memory bound */
  struct mem_entry *newer;
  char ns[KILN__KCACHE_NS_BYTES];
  kiln__kcache_key key;
  size_t bytes;
  unsigned char *data;
} mem_entry;

static struct {
  pthread_mutex_t lock; /* the fields below, but counters */
  bool ready;
  bool on;     /* get/put use the store */
  bool dir_ok; /* the directory passed its checks (admin calls work) */
  int root_fd;
  char dir[PATH_MAX];
  char why[320]; /* why off */
  uint64_t max_bytes;
  uint64_t approx_bytes; /* the directory's size as last scanned plus what we wrote */
  bool approx_known;
  mem_entry *buckets[MEMORY_BUCKETS];
  mem_entry *oldest, *newest;
  size_t mem_bytes;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .root_fd = -1};

static _Atomic uint64_t n_mem_hits, n_disk_hits, n_misses, n_stores, n_healed, n_evicted,
    n_store_failures;
static _Atomic uint64_t tmp_counter;
static _Atomic uint64_t n_lock_waits;

/* ------------------------------------------------------------------ the directory */

static void set_off(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_off(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(S.why, sizeof S.why, fmt, ap);
  va_end(ap);
  S.on = false;
}

/* dir_fd's checks: a directory of ours that no one else may write. NULL when fine. */
static const char *check_dir_fd(int fd, char *why, size_t why_bytes) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(why, why_bytes, "fstat failed: %s", strerror(errno));
    return why;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(why, why_bytes, "it is not a directory");
    return why;
  }
  if (st.st_uid != geteuid()) {
    snprintf(why, why_bytes, "it is owned by uid %u, not by this process's user (uid %u)",
             (unsigned)st.st_uid, (unsigned)geteuid());
    return why;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(why, why_bytes, "it is writable by %s (mode %04o): another user could plant entries",
             st.st_mode & S_IWOTH ? "every user" : "its group", (unsigned)(st.st_mode & 07777));
    return why;
  }
  return NULL;
}

/* mkdir -p, the folders it creates 0700. 0 or an errno. */
static int make_dirs(const char *path) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof buf)
    return ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
      return errno;
    buf[i] = c;
  }
  return 0;
}

static uint64_t parse_bytes(const char *v, bool *ok) {
  char *end = NULL;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  *ok = errno == 0 && end != v && v[0] != '-';
  uint64_t mul = 1;
  if (*ok && *end) {
    switch (*end) {
    case 'K':
    case 'k':
      mul = 1ull << 10;
      break;
    case 'M':
    case 'm':
      mul = 1ull << 20;
      break;
    case 'G':
    case 'g':
      mul = 1ull << 30;
      break;
    default:
      *ok = false;
    }
    if (*ok && end[1] != '\0')
      *ok = false;
  }
  if (*ok && n > UINT64_MAX / mul)
    *ok = false;
  return *ok ? n * mul : 0;
}

/* The directory from the environment into S.dir; false (S.why set) when none. */
static bool pick_dir(void) {
  const char *d = getenv("KILN_CACHE_DIR");
  if (d && *d) {
    if (d[0] != '/') {
      char q[KILN__QUOTE_BYTES];
      set_off("KILN_CACHE_DIR=%s is a relative path; it must be absolute",
              kiln__quote(q, d, strlen(d)));
      return false;
    }
    if (strlen(d) >= sizeof S.dir - 1) {
      set_off("KILN_CACHE_DIR is longer than %zu bytes", sizeof S.dir - 2);
      return false;
    }
    kiln__strlcpy(S.dir, d, sizeof S.dir);
    return true;
  }
  const char *x = getenv("XDG_CACHE_HOME");
  int n;
  if (x && x[0] == '/') { /* the XDG spec: a relative value is ignored */
    n = snprintf(S.dir, sizeof S.dir, "%s/kiln", x);
  } else {
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
      struct passwd pw, *res = NULL;
      char buf[1024];
      if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_dir &&
          res->pw_dir[0] == '/')
        home = res->pw_dir;
      else
        home = NULL;
    }
    if (!home) {
      set_off("no cache directory: KILN_CACHE_DIR, XDG_CACHE_HOME and HOME are unset");
      return false;
    }
    n = snprintf(S.dir, sizeof S.dir, "%s/.cache/kiln", home);
  }
  if (n < 0 || (size_t)n >= sizeof S.dir) {
    set_off("the cache directory's path is too long");
    return false;
  }
  return true;
}

/* Open and check S.dir (S.lock held); create: make it (and missing parents) first. */
static void open_dir_locked(bool create) {
  char q[KILN__QUOTE_BYTES];
  int err = create ? make_dirs(S.dir) : 0;
  if (err) {
    set_off("cannot create the cache directory %s: %s", kiln__quote(q, S.dir, strlen(S.dir)),
            strerror(err));
    return;
  }
  int fd = open(S.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    set_off("cannot open the cache directory %s: %s", kiln__quote(q, S.dir, strlen(S.dir)),
            e == ELOOP || e == ENOTDIR ? "it is a symbolic link or not a directory" : strerror(e));
    return;
  }
  char why[200];
  if (check_dir_fd(fd, why, sizeof why)) {
    close(fd);
    set_off("the cache directory %s is refused: %s", kiln__quote(q, S.dir, strlen(S.dir)), why);
    return;
  }
  S.root_fd = fd;
  S.dir_ok = true;
}

static void mem_clear_locked(void);

/* Warnings of init_locked, logged once S.lock is released (a log callback may call
 * kiln, the cache too). */
static char pending_warn[3][480];
static int pending_warns;

static void defer_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void defer_warn(const char *fmt, ...) {
  if (pending_warns == 3)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pending_warn[pending_warns++], sizeof pending_warn[0], fmt, ap);
  va_end(ap);
}

/* Unlock S.lock and log what init_locked deferred. */
static void unlock_and_warn(void) {
  char warn[3][480];
  int n = pending_warns;
  memcpy(warn, pending_warn, sizeof warn);
  pending_warns = 0;
  pthread_mutex_unlock(&S.lock);
  for (int i = 0; i < n; i++)
    kiln__log(KILN_LOG_WARN, "%s", warn[i]);
}

static void init_locked(const char *dir) {
  if (S.root_fd >= 0)
    close(S.root_fd);
  S.root_fd = -1;
  S.on = true;
  S.dir_ok = false;
  S.why[0] = '\0';
  S.approx_known = false;
  S.max_bytes = DEFAULT_MAX_BYTES;
  const char *cap = getenv("KILN_CACHE_MAX_BYTES");
  if (cap && *cap) {
    bool ok;
    uint64_t v = parse_bytes(cap, &ok);
    if (ok && v > 0)
      S.max_bytes = v;
    else
      defer_warn("kiln cache: KILN_CACHE_MAX_BYTES=%.200s is not a size (bytes, or with K, M, "
                 "G): the cap stays at 1 GiB",
                 cap);
  }
  bool picked;
  if (dir) {
    kiln__strlcpy(S.dir, dir, sizeof S.dir);
    picked = true;
  } else {
    picked = pick_dir();
  }
  const char *env = dir ? NULL : getenv("KILN_CACHE");
  bool off_by_request = env && (!strcmp(env, "off") || !strcmp(env, "0"));
  if (picked) /* off by request: no directory is made, an existing one is still shown */
    open_dir_locked(!off_by_request);
  if (!S.on && !off_by_request) /* the directory was refused: say why, once */
    defer_warn("kiln cache: off: %s", S.why);
  if (off_by_request) /* the directory, if it passed, stays there for kiln cache's admin calls */
    set_off("KILN_CACHE=%s", env);
  else if (env && *env && strcmp(env, "on") && strcmp(env, "1"))
    defer_warn("kiln cache: KILN_CACHE=%.200s is neither on nor off: the cache stays on", env);
  S.ready = true;
}

static void ensure_ready(void) {
  pthread_mutex_lock(&S.lock);
  if (!S.ready)
    init_locked(NULL);
  unlock_and_warn();
}

void kiln__kcache_reset(const char *dir) {
  pthread_mutex_lock(&S.lock);
  mem_clear_locked();
  init_locked(dir);
  unlock_and_warn();
  atomic_store(&n_mem_hits, 0);
  atomic_store(&n_disk_hits, 0);
  atomic_store(&n_misses, 0);
  atomic_store(&n_stores, 0);
  atomic_store(&n_healed, 0);
  atomic_store(&n_evicted, 0);
  atomic_store(&n_store_failures, 0);
  atomic_store(&n_lock_waits, 0);
}

bool kiln__kcache_enabled(char *why, size_t why_bytes) {
  ensure_ready();
  pthread_mutex_lock(&S.lock);
  bool on = S.on;
  if (!on && why)
    kiln__strlcpy(why, S.why, why_bytes);
  pthread_mutex_unlock(&S.lock);
  return on;
}

/* A duplicate of the root descriptor for this call (closed by the caller), or -1 when
 * the store is off (or, admin, the directory unusable). */
static int root_dup(bool admin) {
  ensure_ready();
  pthread_mutex_lock(&S.lock);
  int fd = (admin ? S.dir_ok : S.on) && S.root_fd >= 0 ? fcntl(S.root_fd, F_DUPFD_CLOEXEC, 0) : -1;
  pthread_mutex_unlock(&S.lock);
  return fd;
}

/* The namespace's folder under root (created when `create`), checked; -1 when it is
 * missing (errno ENOENT) or refused (a warning). */
static int ns_open(int root, const char *ns, bool create) {
  int fd = openat(root, ns, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    if (mkdirat(root, ns, 0700) != 0 && errno != EEXIST)
      return -1;
    fd = openat(root, ns, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) {
    int err = errno;
    struct stat st;
    if (err != ENOENT)
      kiln__log(KILN_LOG_WARN, "kiln cache: cannot open the namespace folder '%s' of %s: %s", ns,
                S.dir,
                fstatat(root, ns, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)
                    ? "it is a symbolic link"
                : err == ENOTDIR ? "it is not a directory"
                                 : strerror(err));
    errno = err;
    return -1;
  }
  char why[200];
  if (check_dir_fd(fd, why, sizeof why)) {
    kiln__log(KILN_LOG_WARN, "kiln cache: the namespace folder '%s' of %s is refused: %s", ns,
              S.dir, why);
    close(fd);
    errno = EPERM;
    return -1;
  }
  return fd;
}

/* ------------------------------------------------------------------ in-process layer */

static unsigned bucket_of(const kiln__kcache_key *key) {
  return key->b[0] % MEMORY_BUCKETS;
}

static mem_entry *mem_find_locked(const char *ns, const kiln__kcache_key *key) {
  for (mem_entry *e = S.buckets[bucket_of(key)]; e; e = e->next)
    if (!memcmp(e->key.b, key->b, sizeof key->b) && !strcmp(e->ns, ns))
      return e;
  return NULL;
}

static void mem_unlink_locked(mem_entry *e) {
  mem_entry **pp = &S.buckets[bucket_of(&e->key)];
  while (*pp != e)
    pp = &(*pp)->next;
  *pp = e->next;
  if (e->older)
    e->older->newer = e->newer;
  else
    S.oldest = e->newer;
  if (e->newer)
    e->newer->older = e->older;
  else
    S.newest = e->older;
  S.mem_bytes -= e->bytes;
  kiln__free(e->data, e->bytes);
  kiln__free(e, sizeof *e);
}

static void mem_clear_locked(void) {
  while (S.oldest)
    mem_unlink_locked(S.oldest);
}

void kiln__kcache_drop_memory(void) {
  pthread_mutex_lock(&S.lock);
  mem_clear_locked();
  pthread_mutex_unlock(&S.lock);
}

/* Keep a copy (best effort: nothing when out of memory or too large). */
static void mem_put(const char *ns, const kiln__kcache_key *key, const void *data, size_t bytes) {
  if (bytes > MEMORY_MAX_BYTES / 4)
    return;
  mem_entry *e = kiln__calloc(1, sizeof *e);
  unsigned char *copy = e ? kiln__alloc(bytes ? bytes : 1) : NULL;
  if (!copy) {
    kiln__free(e, sizeof *e);
    return;
  }
  memcpy(copy, data, bytes);
  kiln__strlcpy(e->ns, ns, sizeof e->ns);
  e->key = *key;
  e->bytes = bytes;
  e->data = copy;
  pthread_mutex_lock(&S.lock);
  mem_entry *old = mem_find_locked(ns, key);
  if (old)
    mem_unlink_locked(old);
  while (S.oldest && S.mem_bytes + bytes > MEMORY_MAX_BYTES)
    mem_unlink_locked(S.oldest);
  unsigned b = bucket_of(key);
  e->next = S.buckets[b];
  S.buckets[b] = e;
  e->older = S.newest;
  if (S.newest)
    S.newest->newer = e;
  else
    S.oldest = e;
  S.newest = e;
  S.mem_bytes += bytes;
  pthread_mutex_unlock(&S.lock);
}

static void mem_forget(const char *ns, const kiln__kcache_key *key) {
  pthread_mutex_lock(&S.lock);
  mem_entry *e = mem_find_locked(ns, key);
  if (e)
    mem_unlink_locked(e);
  pthread_mutex_unlock(&S.lock);
}

/* ------------------------------------------------------------------ entries on disk */

/* Delete a bad entry, but only the file that was read (fd): a writer may have renamed
 * a good one over it since. */
static void heal(int nsfd, int fd, const char *ns, const char *name, const char *why) {
  struct stat a, b;
  bool same = fd < 0 || (fstat(fd, &a) == 0 && fstatat(nsfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
                         a.st_dev == b.st_dev && a.st_ino == b.st_ino);
  if (same && unlinkat(nsfd, name, 0) != 0 && errno != ENOENT)
    kiln__log(KILN_LOG_WARN, "kiln cache: cannot delete the bad entry %s/%s/%s: %s", S.dir, ns,
              name, strerror(errno));
  atomic_fetch_add(&n_healed, 1);
  if (KILN__TRACE_ON())
    kiln__trace_instant_str("cache", "heal", "why", why);
  kiln__log(KILN_LOG_WARN, "kiln cache: entry %s/%s/%s is bad (%s): deleted; it is rebuilt", S.dir,
            ns, name, why);
}

/* Read all of fd (st_size bytes) into a kiln__alloc'd buffer. */
static kiln_status read_all(int fd, size_t size, unsigned char **out, bool *short_read) {
  *out = NULL;
  *short_read = false;
  unsigned char *buf = kiln__alloc(size ? size : 1);
  if (!buf)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory reading a %zu-byte cache entry", size);
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got != size)
    *short_read = true;
  *out = buf;
  return KILN_SUCCESS;
}

kiln__kcache_file_result kiln__kcache_read_file(int nsfd, const char *ns, const char *name,
                                                const kiln__kcache_key *key, bool touch,
                                                unsigned char **buf, size_t *buf_bytes,
                                                size_t *payload_bytes, const char **why,
                                                kiln_status *st) {
  *buf = NULL;
  *buf_bytes = *payload_bytes = 0;
  *why = NULL;
  *st = KILN_SUCCESS;
  int fd = openat(nsfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return KILN__KCACHE_FILE_MISSING;
    *why = errno == ELOOP ? "it is a symbolic link" : "it cannot be opened";
    heal(nsfd, -1, ns, name, *why);
    return KILN__KCACHE_FILE_BAD;
  }
  struct stat st_;
  if (fstat(fd, &st_) != 0 || !S_ISREG(st_.st_mode) || st_.st_uid != geteuid() ||
      (uint64_t)st_.st_size > ENTRY_MAX_BYTES) {
    *why = !S_ISREG(st_.st_mode)     ? "it is not a regular file"
           : st_.st_uid != geteuid() ? "it is owned by another user"
                                     : "it is larger than any entry kiln writes";
    heal(nsfd, fd, ns, name, *why);
    close(fd);
    return KILN__KCACHE_FILE_BAD;
  }
  size_t size = (size_t)st_.st_size;
  bool short_read;
  *st = read_all(fd, size, buf, &short_read);
  if (*st != KILN_SUCCESS) {
    close(fd);
    return KILN__KCACHE_FILE_ERROR;
  }
  *buf_bytes = size ? size : 1;
  *why = short_read ? "it could not be read whole"
                    : kiln__kcache_entry_check(*buf, size, ns, key, payload_bytes);
  if (*why) {
    heal(nsfd, fd, ns, name, *why);
    close(fd);
    kiln__free(*buf, *buf_bytes);
    *buf = NULL;
    *buf_bytes = 0;
    return KILN__KCACHE_FILE_BAD;
  }
  if (touch) { /* its last use, for the LRU order */
    struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    futimens(fd, ts);
  }
  close(fd);
  return KILN__KCACHE_FILE_OK;
}

/* kiln__kcache_get, and kiln__kcache_lookup when !counted: no hit/miss counters. */
static kiln_status get(const char *ns, const kiln__kcache_key *key, void **data, size_t *bytes,
                       bool counted) {
  *data = NULL;
  *bytes = 0;
  int root = root_dup(false);
  if (root < 0)
    return KILN_SUCCESS;
  pthread_mutex_lock(&S.lock);
  mem_entry *e = mem_find_locked(ns, key);
  if (e) {
    void *copy = kiln__alloc(e->bytes ? e->bytes : 1);
    if (copy) {
      memcpy(copy, e->data, e->bytes);
      *data = copy;
      *bytes = e->bytes;
    }
    pthread_mutex_unlock(&S.lock);
    close(root);
    if (!copy)
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading the cache");
    if (counted)
      atomic_fetch_add(&n_mem_hits, 1);
    if (KILN__TRACE_ON())
      kiln__trace_instant("cache", "hit", 2, "memory", (int64_t)1, "bytes", (int64_t)*bytes);
    return KILN_SUCCESS;
  }
  pthread_mutex_unlock(&S.lock);
  int nsfd = ns_open(root, ns, false);
  close(root);
  if (nsfd < 0) {
    if (counted)
      atomic_fetch_add(&n_misses, 1);
    if (KILN__TRACE_ON())
      kiln__trace_instant("cache", "miss", 0);
    return KILN_SUCCESS;
  }
  char name[2 * KILN__KCACHE_KEY_BYTES + 1];
  kiln__kcache_hex(key, name);
  unsigned char *buf;
  size_t buf_bytes, payload;
  const char *why;
  kiln_status st;
  kiln__kcache_file_result r =
      kiln__kcache_read_file(nsfd, ns, name, key, true, &buf, &buf_bytes, &payload, &why, &st);
  close(nsfd);
  if (r == KILN__KCACHE_FILE_ERROR)
    return st;
  if (r != KILN__KCACHE_FILE_OK) {
    if (counted)
      atomic_fetch_add(&n_misses, 1);
    if (KILN__TRACE_ON())
      kiln__trace_instant("cache", "miss", 0);
    return KILN_SUCCESS;
  }
  void *out = kiln__alloc(payload ? payload : 1);
  if (!out) {
    kiln__free(buf, buf_bytes);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading the cache");
  }
  memcpy(out, buf + KILN__KCACHE_HEADER_BYTES, payload);
  kiln__free(buf, buf_bytes);
  mem_put(ns, key, out, payload);
  if (counted)
    atomic_fetch_add(&n_disk_hits, 1);
  if (KILN__TRACE_ON())
    kiln__trace_instant_str("cache", "hit", "entry", name);
  *data = out;
  *bytes = payload;
  return KILN_SUCCESS;
}

kiln_status kiln__kcache_get(const char *ns, const kiln__kcache_key *key, void **data,
                             size_t *bytes) {
  return get(ns, key, data, bytes, true);
}

kiln_status kiln__kcache_lookup(const char *ns, const kiln__kcache_key *key, void **data,
                                size_t *bytes) {
  return get(ns, key, data, bytes, false);
}

static bool write_all(int fd, const void *p, size_t n) {
  const unsigned char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    c += w;
    n -= (size_t)w;
  }
  return true;
}

static uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void maybe_evict(uint64_t added);

kiln_status kiln__kcache_put(const char *ns, const kiln__kcache_key *key, const void *data,
                             size_t bytes) {
  int root = root_dup(false);
  if (root < 0)
    return KILN_SUCCESS;
  pthread_mutex_lock(&S.lock);
  uint64_t cap = S.max_bytes;
  pthread_mutex_unlock(&S.lock);
  if ((uint64_t)bytes + KILN__KCACHE_HEADER_BYTES > cap) {
    close(root);
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "a %zu-byte cache entry is larger than the cache's cap of %llu bytes", bytes,
                       (unsigned long long)cap);
  }
  mem_put(ns, key, data, bytes);
  int nsfd = ns_open(root, ns, true);
  int err = nsfd < 0 ? errno : 0;
  close(root);
  if (nsfd < 0) {
    atomic_fetch_add(&n_store_failures, 1);
    return kiln__error(KILN_ERROR_IO, "cannot open the cache's namespace folder %s/%s: %s", S.dir,
                       ns, strerror(err));
  }
  unsigned char hdr[KILN__KCACHE_HEADER_BYTES];
  kiln__kcache_entry_header(hdr, ns, key, data, bytes, wall_ns());
  char name[2 * KILN__KCACHE_KEY_BYTES + 1], tmp[128];
  kiln__kcache_hex(key, name);
  uint64_t rnd = kiln__now_ns() ^ ((uint64_t)(uintptr_t)&rnd << 16);
  snprintf(tmp, sizeof tmp, TMP_PREFIX "%ld-%llu-%016llx", (long)getpid(),
           (unsigned long long)atomic_fetch_add(&tmp_counter, 1), (unsigned long long)rnd);
  const char *what = "create";
  int fd = openat(nsfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  if (ok && !(what = "write", write_all(fd, hdr, sizeof hdr) && write_all(fd, data, bytes)))
    ok = false;
  if (ok && (what = "fsync", fsync(fd) != 0))
    ok = false;
  err = errno;
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = false;
    what = "close";
    err = errno;
  }
  if (ok && (what = "rename", renameat(nsfd, tmp, nsfd, name) != 0)) {
    ok = false;
    err = errno;
  }
  if (!ok && fd >= 0)
    unlinkat(nsfd, tmp, 0);
  close(nsfd);
  if (!ok) {
    atomic_fetch_add(&n_store_failures, 1);
    return kiln__error(KILN_ERROR_IO, "cannot %s the cache entry %s/%s/%s: %s", what, S.dir, ns,
                       name, strerror(err));
  }
  atomic_fetch_add(&n_stores, 1);
  maybe_evict(bytes + KILN__KCACHE_HEADER_BYTES);
  return KILN_SUCCESS;
}

void kiln__kcache_forget(const char *ns, const kiln__kcache_key *key, const char *why) {
  mem_forget(ns, key);
  int root = root_dup(false);
  if (root < 0)
    return;
  int nsfd = ns_open(root, ns, false);
  close(root);
  if (nsfd < 0)
    return;
  char name[2 * KILN__KCACHE_KEY_BYTES + 1];
  kiln__kcache_hex(key, name);
  heal(nsfd, -1, ns, name, why);
  close(nsfd);
}

/* ------------------------------------------------------------------ build lock */

int kiln__kcache_flight_begin(const kiln__kcache_key *key) {
  int root = root_dup(false);
  if (root < 0)
    return -1;
  int dir = ns_open(root, LOCK_DIR, true);
  close(root);
  if (dir < 0)
    return -1;
  char name[16];
  snprintf(name, sizeof name, "lock-%02x", key->b[0]);
  int fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  close(dir);
  if (fd < 0) {
    kiln__log(KILN_LOG_DEBUG, "kiln cache: no build lock %s/%s/%s (%s): building unlocked", S.dir,
              LOCK_DIR, name, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) == 0)
    return fd;
  int err = errno;
  /* Another process (or thread) builds a program of this lock: wait, polling so that a
   * holder stopped in a debugger cannot hold us forever (a dead one's lock is gone). */
  atomic_fetch_add(&n_lock_waits, 1);
  uint64_t t0 = kiln__now_ns(), pause_ns = 200000;
  if (KILN__TRACE_ON())
    kiln__trace_instant_str("cache", "wait", "lock", name);
  for (;;) {
    if (err != EWOULDBLOCK && err != EINTR)
      break;
    uint64_t waited = kiln__now_ns() - t0;
    if (waited > LOCK_WAIT_NS) {
      kiln__log(KILN_LOG_WARN,
                "kiln cache: waited %.0f s for another process's build (lock %s/%s/%s): "
                "building without it",
                (double)waited / 1e9, S.dir, LOCK_DIR, name);
      break;
    }
    struct timespec ts = {0, (long)pause_ns};
    nanosleep(&ts, NULL);
    if (pause_ns < 20000000)
      pause_ns *= 2;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      kiln__log(KILN_LOG_DEBUG, "kiln cache: waited %.3f ms for another build (lock %s)",
                (double)(kiln__now_ns() - t0) / 1e6, name);
      return fd;
    }
    err = errno;
  }
  if (err != EWOULDBLOCK && err != EINTR)
    kiln__log(KILN_LOG_DEBUG, "kiln cache: flock of %s failed (%s): building unlocked", name,
              strerror(err));
  close(fd);
  return -1;
}

void kiln__kcache_flight_end(int fd) {
  if (fd >= 0)
    close(fd); /* releases the flock */
}

/* ------------------------------------------------------------------ runtimes' folders */

/* The folders runtimes keep their own caches in (kiln__kcache_runtime_dir). */
static const char *const runtime_dirs[] = {"pocl"};

bool kiln__kcache_runtime_dir(const char *name, char *out, size_t out_bytes) {
  int root = root_dup(false);
  if (root < 0)
    return false;
  int fd = ns_open(root, name, true);
  close(root);
  if (fd < 0)
    return false;
  close(fd);
  int n = snprintf(out, out_bytes, "%s/%s", S.dir, name);
  return n > 0 && (size_t)n < out_bytes;
}

/* Delete everything under the folder fd (not the folder), never following a link;
 * returns the files deleted. depth bounds the recursion. */
static uint64_t empty_tree(int fd, int depth) {
  int ld = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = ld >= 0 ? fdopendir(ld) : NULL;
  if (!d) {
    if (ld >= 0)
      close(ld);
    return 0;
  }
  uint64_t n = 0;
  struct dirent *f;
  while ((f = readdir(d))) {
    if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, ".."))
      continue;
    struct stat st;
    if (fstatat(fd, f->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (S_ISDIR(st.st_mode) && depth < 16) {
      int sub = openat(fd, f->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        n += empty_tree(sub, depth + 1);
        close(sub);
      }
      unlinkat(fd, f->d_name, AT_REMOVEDIR);
    } else if (unlinkat(fd, f->d_name, 0) == 0) {
      n++;
    }
  }
  closedir(d);
  return n;
}

uint64_t kiln__kcache_clear_runtime_dirs(void) {
  int root = root_dup(true);
  if (root < 0)
    return 0;
  uint64_t n = 0;
  for (size_t i = 0; i < sizeof runtime_dirs / sizeof runtime_dirs[0]; i++) {
    int fd = ns_open(root, runtime_dirs[i], false);
    if (fd >= 0) {
      n += empty_tree(fd, 0);
      close(fd);
    }
  }
  close(root);
  return n;
}

/* ------------------------------------------------------------------ scans, eviction */

static bool is_entry_name(const char *n) {
  size_t i = 0;
  for (; n[i]; i++)
    if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
      return false;
  return i == 2 * KILN__KCACHE_KEY_BYTES;
}

kiln_status kiln__kcache_scan(bool admin, kiln__kcache_scan_fn fn, void *user, char *why,
                              size_t why_bytes) {
  int root = root_dup(admin);
  if (root < 0) {
    pthread_mutex_lock(&S.lock);
    kiln__strlcpy(why, S.why[0] ? S.why : "the cache directory is unusable", why_bytes);
    pthread_mutex_unlock(&S.lock);
    return KILN_ERROR_INVALID_STATE;
  }
  int rd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* its own position */
  DIR *top = rd >= 0 ? fdopendir(rd) : NULL;
  if (!top) {
    if (rd >= 0)
      close(rd);
    snprintf(why, why_bytes, "cannot list %.300s: %s", S.dir, strerror(errno));
    close(root);
    return KILN_ERROR_IO;
  }
  struct dirent *d;
  while ((d = readdir(top))) {
    if (d->d_name[0] == '.' || !kiln__kcache_ns_valid(d->d_name))
      continue;
    int nsfd = ns_open(root, d->d_name, false);
    if (nsfd < 0)
      continue;
    int ld = openat(nsfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *sub = ld >= 0 ? fdopendir(ld) : NULL;
    if (!sub) {
      if (ld >= 0)
        close(ld);
      close(nsfd);
      continue;
    }
    struct dirent *f;
    while ((f = readdir(sub))) {
      bool tmp = !strncmp(f->d_name, TMP_PREFIX, strlen(TMP_PREFIX));
      if (!tmp && !is_entry_name(f->d_name))
        continue;
      struct stat st;
      if (fstatat(nsfd, f->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        continue;
      kiln__kcache_scan_item it = {
          .ns = d->d_name,
          .name = f->d_name,
          .nsfd = nsfd,
          .temporary = tmp,
          .regular = S_ISREG(st.st_mode),
          .file_bytes = (uint64_t)st.st_size,
          .mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec,
      };
      fn(&it, user);
    }
    closedir(sub);
    close(nsfd);
  }
  closedir(top);
  close(root);
  return KILN_SUCCESS;
}

typedef struct evict_item {
  char ns[KILN__KCACHE_NS_BYTES];
  char name[2 * KILN__KCACHE_KEY_BYTES + 1];
  uint64_t bytes, mtime_ns;
} evict_item;

typedef struct evict_scan {
  evict_item *items;
  size_t count, cap;
  uint64_t total;
  bool oom;
  uint64_t now_ns;
} evict_scan;

static void evict_collect(const kiln__kcache_scan_item *it, void *user) {
  evict_scan *s = user;
  if (it->temporary) { /* abandoned by a process that died between create and rename */
    if (s->now_ns > it->mtime_ns + TMP_STALE_NS)
      unlinkat(it->nsfd, it->name, 0);
    return;
  }
  s->total += it->file_bytes;
  if (s->count == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    evict_item *n = kiln__alloc(cap * sizeof *n);
    if (!n) {
      s->oom = true;
      return;
    }
    if (s->count)
      memcpy(n, s->items, s->count * sizeof *n);
    kiln__free(s->items, s->cap * sizeof *n);
    s->items = n;
    s->cap = cap;
  }
  evict_item *e = &s->items[s->count++];
  kiln__strlcpy(e->ns, it->ns, sizeof e->ns);
  kiln__strlcpy(e->name, it->name, sizeof e->name);
  e->bytes = it->file_bytes;
  e->mtime_ns = it->mtime_ns;
}

static int by_mtime(const void *a, const void *b) {
  const evict_item *x = a, *y = b;
  return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

static pthread_mutex_t evict_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t kiln__kcache_evict(uint64_t limit_bytes, uint64_t target_bytes) {
  pthread_mutex_lock(&evict_lock);
  evict_scan s = {.now_ns = wall_ns()};
  char why[400];
  uint64_t removed = 0;
  if (kiln__kcache_scan(false, evict_collect, &s, why, sizeof why) == KILN_SUCCESS && !s.oom) {
    uint64_t total = s.total;
    if (total > limit_bytes) {
      qsort(s.items, s.count, sizeof *s.items, by_mtime);
      int root = root_dup(false);
      for (size_t i = 0; root >= 0 && i < s.count && total > target_bytes; i++) {
        int nsfd = ns_open(root, s.items[i].ns, false);
        if (nsfd < 0)
          continue;
        if (unlinkat(nsfd, s.items[i].name, 0) == 0) {
          total -= s.items[i].bytes;
          removed++;
          atomic_fetch_add(&n_evicted, 1);
          if (KILN__TRACE_ON())
            kiln__trace_instant("cache", "evict", 1, "bytes", (int64_t)s.items[i].bytes);
          kiln__log(KILN_LOG_DEBUG, "kiln cache: evicted %s/%s (%llu bytes, least recently used)",
                    s.items[i].ns, s.items[i].name, (unsigned long long)s.items[i].bytes);
        }
        close(nsfd);
      }
      if (root >= 0)
        close(root);
    }
    pthread_mutex_lock(&S.lock);
    S.approx_bytes = total;
    S.approx_known = true;
    pthread_mutex_unlock(&S.lock);
  }
  kiln__free(s.items, s.cap * sizeof *s.items);
  pthread_mutex_unlock(&evict_lock);
  return removed;
}

/* After a store: scan the directory the first time and whenever our estimate passes
 * the cap; evict down to 90% of it, the least recently used first. */
static void maybe_evict(uint64_t added) {
  pthread_mutex_lock(&S.lock);
  bool scan = !S.approx_known || S.approx_bytes + added > S.max_bytes;
  S.approx_bytes += added;
  uint64_t cap = S.max_bytes;
  pthread_mutex_unlock(&S.lock);
  if (scan)
    kiln__kcache_evict(cap, cap - cap / 10);
}

void kiln__kcache_counters(kiln__kcache_counts *c) {
  ensure_ready();
  c->mem_hits = atomic_load(&n_mem_hits);
  c->disk_hits = atomic_load(&n_disk_hits);
  c->misses = atomic_load(&n_misses);
  c->stores = atomic_load(&n_stores);
  c->healed = atomic_load(&n_healed);
  c->evicted = atomic_load(&n_evicted);
  c->store_failures = atomic_load(&n_store_failures);
  c->lock_waits = atomic_load(&n_lock_waits);
  pthread_mutex_lock(&S.lock);
  c->on = S.on;
  c->dir_ok = S.dir_ok;
  c->max_bytes = S.max_bytes;
  kiln__strlcpy(c->dir, S.dir, sizeof c->dir);
  kiln__strlcpy(c->why, S.why, sizeof c->why);
  pthread_mutex_unlock(&S.lock);
}

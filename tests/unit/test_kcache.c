/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* kiln-test-link: static */
/* The compile cache (src/kcache, docs/cache.md) on the mock backend's fake compiler:
 * hits skip the compiler and run the same kernel; truncated, bit-flipped, zero-length,
 * torn and symlinked entries and binaries the runtime refuses are deleted with one
 * warning and rebuilt; refused directories (a symbolic link, another user's,
 * writable by others) turn the cache off with the reason; the size cap evicts the
 * least recently used; the key changes with every input; the in-process layer; the
 * blob API; KILN_CACHE=off; fault injection over the cached build. Each test has its
 * own directory (kiln__kcache_reset). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kcache/kcache.h"
#include "kcache/store.h"
#include "kiln_test.h"
#include "kt_kcache.h"
#include "test_alloc.h"

typedef struct env {
  char dir[256];  /* the test's temporary folder */
  char root[300]; /* the cache directory in it */
  kiln_context ctx;
  kiln_stream stream;
} env;

static void rm_rf(const char *path) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%.500s' 2>/dev/null; rm -rf '%.500s'", path, path);
  assert_int_equal(system(cmd), 0);
}

static int setup(void **state) {
  env *e = calloc(1, sizeof *e);
  snprintf(e->dir, sizeof e->dir, "/tmp/kiln-kcache-test-XXXXXX");
  if (!mkdtemp(e->dir))
    return -1;
  snprintf(e->root, sizeof e->root, "%s/cache", e->dir);
  kiln__kcache_reset(e->root);
  if (kiln_context_create(kt_mock_device(), NULL, &e->ctx) != KILN_SUCCESS ||
      kiln_stream_create(e->ctx, NULL, &e->stream) != KILN_SUCCESS)
    return -1;
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  kiln_mock_configure(NULL);
  kiln_stream_destroy(e->stream);
  kiln_context_destroy(e->ctx);
  kiln__kcache_reset(NULL);
  rm_rf(e->dir);
  free(e);
  return 0;
}

/* The path of the one entry of namespace `program` (there must be exactly one). */
static void only_entry(const env *e, char *path, size_t bytes) {
  char dir[400];
  snprintf(dir, sizeof dir, "%.300s/program", e->root);
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *f;
  while ((f = readdir(d)))
    if (f->d_name[0] != '.') {
      snprintf(path, bytes, "%.400s/%.100s", dir, f->d_name);
      n++;
    }
  closedir(d);
  assert_int_equal(n, 1);
}

static uint64_t stat_of(size_t field) {
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  uint64_t v;
  memcpy(&v, (const char *)&info + field, sizeof v);
  return v;
}
#define STAT(f) stat_of(offsetof(kiln_cache_info, f))

/* ---- hits */

typedef struct waiter {
  env *e;
  _Atomic int done;
  kiln_status st;
  uint32_t code;
} waiter;

static void *build_in_thread(void *arg) {
  waiter *w = arg;
  w->st = kt_kc_build_run(w->e->ctx, w->e->stream, 5, NULL, &w->code);
  atomic_store(&w->done, 1);
  return NULL;
}

/* The build lock (kiln__kcache_flight_begin): while another holder (a process; here
 * this thread, through other descriptors, which flock treats alike) has the lock of a
 * key, a build of that key waits, and goes on once it is released. */
static void a_build_waits_while_another_holds_its_lock(void **state) {
  env *e = *state;
  int held[256];
  for (unsigned i = 0; i < 256; i++) {
    kiln__kcache_key k = {{0}};
    k.b[0] = (unsigned char)i;
    held[i] = kiln__kcache_flight_begin(&k);
    assert_true(held[i] >= 0);
  }
  assert_int_equal(STAT(lock_waits), 0);
  waiter w = {.e = e};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, build_in_thread, &w), 0);
  struct timespec pause = {0, 300 * 1000000L};
  nanosleep(&pause, NULL);
  assert_int_equal(atomic_load(&w.done), 0); /* still waiting */
  assert_int_equal(STAT(lock_waits), 1);
  for (unsigned i = 0; i < 256; i++)
    kiln__kcache_flight_end(held[i]);
  assert_int_equal(pthread_join(t, NULL), 0);
  KT_OK(w.st);
  assert_true(w.code > 1);
  assert_int_equal(STAT(stores), 1);
  /* the lock files live in a hidden folder that no namespace can name */
  char locks[400];
  snprintf(locks, sizeof locks, "%s/.locks", e->root);
  struct stat st;
  assert_int_equal(stat(locks, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.entries, 1);
}

static void second_build_is_a_hit_with_the_same_kernel(void **state) {
  env *e = *state;
  uint32_t first, second, third;
  uint64_t c0 = kiln_mock_compiles();
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 3, NULL, &first));
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  assert_true(first > 1);
  assert_int_equal(STAT(stores), 1);
  /* the in-process layer */
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 3, NULL, &second));
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  assert_int_equal(second, first);
  assert_int_equal(STAT(memory_hits), 1);
  /* the disk (a new process sees only that) */
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 3, NULL, &third));
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  assert_int_equal(third, first);
  assert_int_equal(STAT(disk_hits), 1);
  /* another source, other options: other kernels */
  uint32_t other, opt;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 4, NULL, &other));
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 3, "-DX=1", &opt));
  assert_int_equal(kiln_mock_compiles(), c0 + 3);
  assert_int_not_equal(other, first);
  assert_int_not_equal(opt, first);
  struct stat st;
  assert_int_equal(stat(e->root, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
}

/* A second build of the same key while the first program lives shares its native
 * program: no compile, no import; each works after the other is destroyed. */
static void live_program_is_shared(void **state) {
  env *e = *state;
  char src[512];
  kt_kc_source(8, src, sizeof src);
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  kiln_program p1 = NULL, p2 = NULL, p3 = NULL;
  uint64_t c0 = kiln_mock_compiles();
  KT_OK(kiln_program_create(e->ctx, &d, &p1));
  KT_OK(kiln_mock_configure(NULL)); /* count the backend calls of the second build */
  KT_OK(kiln_program_create(e->ctx, &d, &p2));
  assert_int_equal(kiln_mock_calls(), 0); /* neither program_build nor program_import */
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  assert_ptr_not_equal(p1, p2);
  kiln_kernel k2 = NULL;
  KT_OK(kiln_kernel_create(p2, "k8", &k2));
  KT_OK(kiln_program_destroy(p1));
  KT_OK(kiln_program_create(e->ctx, &d, &p3)); /* shares p2's */
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  KT_OK(kiln_program_destroy(p2));
  kiln_buffer b = kt_buffer(e->ctx, 16);
  kiln_arg a = kiln_arg_buffer(b);
  kiln_range r = kiln_range_1d(4);
  KT_OK(kiln_launch(e->stream, k2, &r, &a, 1));
  uint32_t got[4], want;
  KT_OK(kiln_buffer_read(b, 0, sizeof got, got));
  KT_OK(kiln_program_destroy(p3));
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 8, NULL, &want)); /* from the directory */
  assert_int_equal(got[0], want);
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  KT_OK(kiln_kernel_destroy(k2));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- self-healing */

/* Build source 5 once, spoil its entry with `spoil`, build again from disk: the entry
 * is deleted with one warning naming `why`, the program compiled again and right, and
 * the entry rewritten whole. */
static void heal_case(env *e, void (*spoil)(const char *path), const char *why) {
  uint32_t good, again;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 5, NULL, &good));
  char path[1024];
  only_entry(e, path, sizeof path);
  spoil(path);
  kiln__kcache_drop_memory();
  uint64_t c0 = kiln_mock_compiles();
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 5, NULL, &again));
  kt_log_capture_stop(&cap);
  assert_int_equal(again, good);
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  assert_int_equal(cap.warn_lines, 1);
  if (!kt_log_capture_has(&cap, why))
    fail_msg("the warning does not say '%s': %s", why, cap.text);
  assert_true(kt_log_capture_has(&cap, "deleted"));
  assert_int_equal(STAT(healed), 1);
  uint64_t checked = 0, bad = 9;
  KT_OK(kiln_cache_verify(NULL, NULL, &checked, &bad));
  assert_int_equal(checked, 1);
  assert_int_equal(bad, 0);
  /* and the next build is a hit again */
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 5, NULL, &again));
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
}

static void truncate_tail(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size - 2), 0);
}
static void truncate_header(const char *path) {
  assert_int_equal(truncate(path, 100), 0);
}
static void truncate_zero(const char *path) {
  assert_int_equal(truncate(path, 0), 0);
}
static void flip_payload_bit(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char c;
  off_t at = st.st_size - 3;
  assert_int_equal(pread(fd, &c, 1, at), 1);
  c ^= 0x10;
  assert_int_equal(pwrite(fd, &c, 1, at), 1);
  close(fd);
}
static void flip_header_bit(const char *path) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char c;
  assert_int_equal(pread(fd, &c, 1, 90), 1); /* the creation time: only the checksum sees it */
  c ^= 0x01;
  assert_int_equal(pwrite(fd, &c, 1, 90), 1);
  close(fd);
}
static void append_garbage(const char *path) {
  FILE *f = fopen(path, "ab");
  assert_non_null(f);
  fputs("torn tail", f);
  fclose(f);
}
static char planted_target[1200]; /* outside the cache directory */
static void plant_symlink(const char *path) {
  /* a link to a whole, valid entry the test keeps elsewhere: following it would read
   * (and deleting it would remove) a file that is not the cache's */
  assert_int_equal(rename(path, planted_target), 0);
  assert_int_equal(symlink(planted_target, path), 0);
}

static void truncated_entry_heals(void **state) {
  heal_case(*state, truncate_tail, "shorter than its header says");
}
static void truncated_header_heals(void **state) {
  heal_case(*state, truncate_header, "shorter than an entry's header");
}
static void zero_length_entry_heals(void **state) {
  heal_case(*state, truncate_zero, "empty");
}
static void bit_flipped_payload_heals(void **state) {
  heal_case(*state, flip_payload_bit, "checksum");
}
static void bit_flipped_header_heals(void **state) {
  heal_case(*state, flip_header_bit, "checksum");
}
static void longer_entry_heals(void **state) {
  heal_case(*state, append_garbage, "longer than its header says");
}
static void planted_symlink_entry_is_not_followed(void **state) {
  env *e = *state;
  snprintf(planted_target, sizeof planted_target, "%.300s/planted", e->dir);
  heal_case(e, plant_symlink, "symbolic link");
  /* the link is gone (replaced by a real entry), its target untouched */
  char path[1024];
  only_entry(e, path, sizeof path);
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(lstat(planted_target, &st), 0);
  assert_true(S_ISREG(st.st_mode));
}

static void refused_binary_is_deleted_and_rebuilt(void **state) {
  env *e = *state;
  uint32_t good, again;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 6, NULL, &good));
  char path[1024];
  only_entry(e, path, sizeof path);
  /* a whole, checksummed entry whose binary the mock runtime refuses */
  kiln__kcache_key key;
  const char *hex = strrchr(path, '/') + 1;
  for (unsigned i = 0; i < 32; i++) {
    unsigned v;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
    key.b[i] = (unsigned char)v;
  }
  KT_OK(kiln__kcache_put(KILN__KCACHE_NS_PROGRAM, &key, "not a mock binary", 17));
  kiln__kcache_drop_memory();
  uint64_t c0 = kiln_mock_compiles();
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 6, NULL, &again));
  kt_log_capture_stop(&cap);
  assert_int_equal(again, good);
  assert_int_equal(kiln_mock_compiles(), c0 + 1);
  assert_int_equal(cap.warn_lines, 1);
  assert_true(kt_log_capture_has(&cap, "refused its binary"));
  uint64_t checked, bad;
  KT_OK(kiln_cache_verify(NULL, NULL, &checked, &bad));
  assert_int_equal(checked, 1);
  assert_int_equal(bad, 0);
}

/* ---- refused directories */

static void expect_refused(env *e, const char *dir, const char *why) {
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kiln__kcache_reset(dir);
  kt_log_capture_stop(&cap);
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.enabled, 0);
  if (!kt_strcasestr(info.reason, why))
    fail_msg("the reason does not say '%s': %s", why, info.reason);
  assert_true(kt_log_capture_has(&cap, why));
  /* builds still work, without the cache: compiled every time, nothing written */
  uint64_t c0 = kiln_mock_compiles();
  uint32_t a, b;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 1, NULL, &a));
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 1, NULL, &b));
  assert_int_equal(a, b);
  assert_int_equal(kiln_mock_compiles(), c0 + 2);
  KT_EXPECT_MSG(kiln_cache_list((kiln_cache_entry_fn)abort, NULL), KILN_ERROR_INVALID_STATE, why);
  char prog[400];
  snprintf(prog, sizeof prog, "%s/program", dir);
  struct stat st;
  assert_int_not_equal(lstat(prog, &st), 0);
}

static void symlinked_directory_is_refused(void **state) {
  env *e = *state;
  char real[300], link[300];
  snprintf(real, sizeof real, "%s/real", e->dir);
  snprintf(link, sizeof link, "%s/link", e->dir);
  assert_int_equal(mkdir(real, 0700), 0);
  assert_int_equal(symlink(real, link), 0);
  expect_refused(e, link, "symbolic link");
}

static void world_writable_directory_is_refused(void **state) {
  env *e = *state;
  char dir[300];
  snprintf(dir, sizeof dir, "%s/open", e->dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  expect_refused(e, dir, "writable by every user");
  assert_int_equal(chmod(dir, 0770), 0);
  expect_refused(e, dir, "writable by its group");
}

static void another_users_directory_is_refused(void **state) {
  env *e = *state;
  if (geteuid() != 0)
    skip(); /* a directory of a second uid needs root to make (make check runs as root) */
  char dir[300];
  snprintf(dir, sizeof dir, "%s/theirs", e->dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(chown(dir, 65534, 65534), 0);
  expect_refused(e, dir, "owned by uid 65534");
  /* also a namespace folder of another user inside our own directory */
  char root[300], ns[340];
  snprintf(root, sizeof root, "%s/mine", e->dir);
  snprintf(ns, sizeof ns, "%s/program", root);
  assert_int_equal(mkdir(root, 0700), 0);
  assert_int_equal(mkdir(ns, 0700), 0);
  assert_int_equal(chown(ns, 65534, 65534), 0);
  kiln__kcache_reset(root);
  uint64_t c0 = kiln_mock_compiles();
  uint32_t a, b;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 2, NULL, &a));
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 2, NULL, &b));
  kt_log_capture_stop(&cap);
  assert_int_equal(a, b);
  assert_int_equal(kiln_mock_compiles(), c0 + 2);
  assert_true(kt_log_capture_has(&cap, "owned by uid 65534"));
}

static void relative_directory_is_refused(void **state) {
  env *e = *state;
  setenv("KILN_CACHE_DIR", "relative/kiln-cache", 1);
  kiln__kcache_reset(NULL);
  unsetenv("KILN_CACHE_DIR");
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.enabled, 0);
  assert_non_null(kt_strcasestr(info.reason, "relative"));
  (void)e;
}

static void cache_off_compiles_every_time(void **state) {
  env *e = *state;
  setenv("KILN_CACHE_DIR", e->root, 1);
  setenv("KILN_CACHE", "off", 1);
  kiln__kcache_reset(NULL);
  unsetenv("KILN_CACHE");
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.enabled, 0);
  assert_string_equal(info.reason, "KILN_CACHE=off");
  uint64_t c0 = kiln_mock_compiles();
  uint32_t a, b;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 1, NULL, &a));
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 1, NULL, &b));
  assert_int_equal(kiln_mock_compiles(), c0 + 2);
  assert_int_equal(info.entries, 0);
  /* the blob API finds nothing and stores nothing, and says so by succeeding */
  KT_OK(kiln_cache_put("notes", "k", 1, "v", 1));
  void *data = (void *)1;
  size_t n = 9;
  KT_OK(kiln_cache_get("notes", "k", 1, &data, &n));
  assert_null(data);
  assert_int_equal(n, 0);
  /* the directory is still there for kiln cache's admin calls */
  uint64_t removed = 1;
  KT_OK(kiln_cache_clear(&removed));
  assert_int_equal(removed, 0);
  unsetenv("KILN_CACHE_DIR");
}

/* ---- the size cap and LRU */

static void set_mtime(const char *root, const char *ns, const void *key, size_t key_bytes,
                      time_t when) {
  kiln__kcache_key k;
  kiln__sha256 h;
  assert_true(kiln__sha256_begin(&h));
  kiln__sha256_field(&h, "kiln blob namespace", ns, strlen(ns));
  kiln__sha256_field(&h, "key", key, key_bytes);
  kiln__sha256_end(&h, k.b);
  char hex[65], path[500];
  kiln__kcache_hex(&k, hex);
  snprintf(path, sizeof path, "%s/%s/%s", root, ns, hex);
  struct timeval tv[2] = {{when, 0}, {when, 0}};
  assert_int_equal(utimes(path, tv), 0);
}

static int present(const char *ns, const char *key) {
  void *data = NULL;
  size_t n = 0;
  KT_OK(kiln_cache_get(ns, key, strlen(key), &data, &n));
  kiln_cache_free(data, n);
  return data != NULL;
}

static void size_cap_evicts_least_recently_used(void **state) {
  env *e = *state;
  /* 8 entries of 1024 + 128 bytes fit in 9500; the 9th passes the cap and the
   * entries are cut to 90% of it (8550): the two least recently used go. */
  setenv("KILN_CACHE_MAX_BYTES", "9500", 1);
  kiln__kcache_reset(e->root);
  unsetenv("KILN_CACHE_MAX_BYTES");
  char blob[1024];
  memset(blob, 'x', sizeof blob);
  const char *keys[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  for (int i = 0; i < 8; i++) {
    KT_OK(kiln_cache_put("lru", keys[i], 1, blob, sizeof blob));
    set_mtime(e->root, "lru", keys[i], 1, 1000000 + i * 10); /* a oldest ... h newest */
  }
  kiln__kcache_drop_memory();
  assert_true(present("lru", "a")); /* a is now the most recently used */
  KT_OK(kiln_cache_put("lru", "i", 1, blob, sizeof blob));
  kiln__kcache_drop_memory();
  assert_int_equal(STAT(evicted), 2);
  assert_true(present("lru", "a"));
  assert_false(present("lru", "b"));
  assert_false(present("lru", "c"));
  for (int i = 3; i < 9; i++)
    assert_true(present("lru", keys[i]));
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.entries, 7);
  assert_true(info.bytes <= 9500);
  assert_int_equal(info.max_bytes, 9500);
  /* an entry larger than the cap is refused, naming both sizes */
  char big[10000] = {0};
  KT_EXPECT_MSG(kiln_cache_put("lru", "big", 3, big, sizeof big), KILN_ERROR_LIMIT_EXCEEDED,
                "9500");
}

/* ---- keys */

static void key_changes_with_every_input(void **state) {
  (void)state;
  const char *backend[2] = {"opencl", "cuda"};
  const char *id[2] = {"device A driver 1", "device A driver 2"};
  const char *opts[2] = {"", "-cl-fast-relaxed-math"};
  const char *text[2] = {"KILN_KERNEL void k(void) {}", "KILN_KERNEL void k(void) { }"};
  kiln__kcache_key keys[32];
  int n = 0;
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < 2; i++)
      for (int c = 0; c < 2; c++)
        for (int o = 0; o < 2; o++)
          for (int t = 0; t < 2; t++)
            KT_OK(kiln__kcache_program_key(backend[b], id[i], c, opts[o], text[t], strlen(text[t]),
                                           &keys[n++]));
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      assert_memory_not_equal(keys[i].b, keys[j].b, 32);
  /* the same inputs: the same key; fields cannot trade bytes */
  kiln__kcache_key x, y;
  KT_OK(kiln__kcache_program_key("opencl", "ab", 0, "c", "d", 1, &x));
  KT_OK(kiln__kcache_program_key("opencl", "ab", 0, "c", "d", 1, &y));
  assert_memory_equal(x.b, y.b, 32);
  KT_OK(kiln__kcache_program_key("opencl", "a", 0, "bc", "d", 1, &y));
  assert_memory_not_equal(x.b, y.b, 32);
  /* the device id the backend gives changes the key of a real build too */
  env *e = *state;
  (void)e;
}

static void entry_format_checks_every_field(void **state) {
  (void)state;
  kiln__kcache_key key = {{1, 2, 3}}, other = {{9}};
  unsigned char buf[KILN__KCACHE_HEADER_BYTES + 5];
  kiln__kcache_entry_header(buf, "program", &key, "hello", 5, 42);
  memcpy(buf + KILN__KCACHE_HEADER_BYTES, "hello", 5);
  size_t n;
  assert_null(kiln__kcache_entry_check(buf, sizeof buf, "program", &key, &n));
  assert_int_equal(n, 5);
  assert_non_null(kiln__kcache_entry_check(buf, sizeof buf, "program", &other, &n));
  assert_non_null(kiln__kcache_entry_check(buf, sizeof buf, "blobs", &key, &n));
  assert_non_null(kiln__kcache_entry_check(buf, sizeof buf - 1, "program", &key, &n));
  for (size_t i = 0; i < sizeof buf; i++) { /* every single bit flip is caught */
    for (int bit = 0; bit < 8; bit++) {
      buf[i] ^= (unsigned char)(1u << bit);
      if (!kiln__kcache_entry_check(buf, sizeof buf, "program", &key, &n))
        fail_msg("a flip of bit %d of byte %zu went unnoticed", bit, i);
      buf[i] ^= (unsigned char)(1u << bit);
    }
  }
}

/* ---- the blob API */

static void blobs_round_trip_by_namespace_and_key(void **state) {
  (void)state;
  KT_OK(kiln_cache_put("launch-config", "vadd/1024", 9, "256", 4));
  KT_OK(kiln_cache_put("launch-config", "vadd/2048", 9, "512", 4));
  KT_OK(kiln_cache_put("other", "vadd/1024", 9, "xyz", 4));
  KT_OK(kiln_cache_put("empty", "k", 1, NULL, 0));
  for (int pass = 0; pass < 2; pass++) { /* memory, then disk */
    void *d = NULL;
    size_t n = 0;
    KT_OK(kiln_cache_get("launch-config", "vadd/1024", 9, &d, &n));
    assert_int_equal(n, 4);
    assert_string_equal(d, "256");
    kiln_cache_free(d, n);
    KT_OK(kiln_cache_get("other", "vadd/1024", 9, &d, &n));
    assert_string_equal(d, "xyz");
    kiln_cache_free(d, n);
    KT_OK(kiln_cache_get("empty", "k", 1, &d, &n));
    assert_non_null(d);
    assert_int_equal(n, 0);
    kiln_cache_free(d, n);
    KT_OK(kiln_cache_get("launch-config", "vadd/4096", 9, &d, &n));
    assert_null(d);
    kiln__kcache_drop_memory();
  }
  void *d;
  size_t n;
  KT_EXPECT_MSG(kiln_cache_put("Bad/NS", "k", 1, "v", 1), KILN_ERROR_INVALID_ARGUMENT, "'Bad/NS'");
  KT_EXPECT_MSG(kiln_cache_get("", "k", 1, &d, &n), KILN_ERROR_INVALID_ARGUMENT, "namespace");
  KT_EXPECT_MSG(kiln_cache_get("ok", "k", 1, NULL, &n), KILN_ERROR_INVALID_ARGUMENT, "data");
  KT_EXPECT_MSG(kiln_cache_put("ok", NULL, 3, "v", 1), KILN_ERROR_INVALID_ARGUMENT, "key");
  KT_EXPECT_MSG(kiln_cache_put("ok", "k", 1, NULL, 1), KILN_ERROR_INVALID_ARGUMENT, "data");
  kiln_cache_info bad = KILN_CACHE_INFO_INIT;
  bad.struct_size = 8;
  KT_EXPECT_MSG(kiln_cache_stats(&bad), KILN_ERROR_INVALID_ARGUMENT, "KILN_CACHE_INFO_INIT");
}

static int count_entry(const kiln_cache_entry *entry, void *user) {
  int *n = user;
  assert_int_equal(strlen(entry->key_hex), 64);
  assert_null(entry->problem);
  (*n)++;
  return 0;
}

static void list_verify_and_clear(void **state) {
  env *e = *state;
  uint32_t c;
  for (unsigned i = 0; i < 3; i++)
    KT_OK(kt_kc_build_run(e->ctx, e->stream, i, NULL, &c));
  KT_OK(kiln_cache_put("notes", "k", 1, "v", 1));
  int n = 0;
  KT_OK(kiln_cache_list(count_entry, &n));
  assert_int_equal(n, 4);
  uint64_t checked, bad, removed;
  KT_OK(kiln_cache_verify(NULL, NULL, &checked, &bad));
  assert_int_equal(checked, 4);
  assert_int_equal(bad, 0);
  KT_OK(kiln_cache_clear(&removed));
  assert_int_equal(removed, 4);
  n = 0;
  KT_OK(kiln_cache_list(count_entry, &n));
  assert_int_equal(n, 0);
  uint64_t c0 = kiln_mock_compiles();
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 0, NULL, &c));
  assert_int_equal(kiln_mock_compiles(), c0 + 1); /* clear drops the in-process layer too */
}

/* ---- failures */

/* A store that fails (the namespace's folder is a file here, as a full disk or a
 * read-only directory would fail it) fails no build: one warning says why, and the
 * next build compiles again. */
static void failed_store_fails_no_build(void **state) {
  env *e = *state;
  uint32_t a, b;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 0, NULL, &a)); /* creates the directory */
  char ns[400];
  snprintf(ns, sizeof ns, "%.300s/program", e->root);
  rm_rf(ns);
  FILE *f = fopen(ns, "w");
  assert_non_null(f);
  fclose(f);
  kiln__kcache_drop_memory();
  uint64_t c0 = kiln_mock_compiles();
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 1, NULL, &b));
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 1, NULL, &b));
  kt_log_capture_stop(&cap);
  assert_int_equal(kiln_mock_compiles(), c0 + 2);
  if (!kt_log_capture_has(&cap, "not stored in the compile cache"))
    fail_msg("no warning of the failed store: %s", cap.text);
  assert_true(kt_log_capture_has(&cap, "program"));
  /* the blob API reports it as an I/O error naming the folder */
  KT_EXPECT_MSG(kiln_cache_put("program", "k", 1, "v", 1), KILN_ERROR_IO, "program");
}

static void compile_errors_are_not_cached(void **state) {
  env *e = *state;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = "KILN_KERNEL void k(KILN_GLOBAL kiln_u32 *o) {\n  KILN_MOCK_COMPILE_ERROR;\n}\n";
  kiln_program p = NULL;
  for (int i = 0; i < 2; i++) {
    uint64_t c0 = kiln_mock_compiles();
    KT_EXPECT(kiln_program_create(e->ctx, &d, &p), KILN_ERROR_COMPILE_FAILED);
    assert_non_null(strstr(kiln_last_build_log(), "KILN_MOCK_COMPILE_ERROR"));
    assert_int_equal(kiln_mock_compiles(), c0 + 1);
  }
  assert_int_equal(STAT(stores), 0);
}

/* The backend calls of a build from the cache (import, kernel, buffer, launch, ...):
 * failing each one once ends in the injected failure — except the import's, after
 * which the program is compiled instead (the entry deleted): then it succeeds. */
static void fault_injection_over_a_cached_build(void **state) {
  env *e = *state;
  uint32_t good, c;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 7, NULL, &good));
  kiln__kcache_drop_memory();
  kiln_mock_configure(NULL);
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 7, NULL, &c));
  uint64_t calls = kiln_mock_calls();
  assert_true(calls >= 4); /* import, kernel, buffer, launch, read */
  int recovered = 0;
  for (uint64_t n = 1; n <= calls; n++) {
    KT_OK(kiln_cache_put("scratch", "k", 1, "v", 1)); /* unrelated to the mock's count */
    kiln__kcache_drop_memory();
    kiln_mock_config cfg = KILN_MOCK_CONFIG_INIT;
    cfg.fail_call = n;
    KT_OK(kiln_mock_configure(&cfg));
    uint64_t c0 = kiln_mock_compiles();
    kt_log_capture cap;
    kt_log_capture_start(&cap, KILN_LOG_WARN);
    kiln_status st = kt_kc_build_run(e->ctx, e->stream, 7, NULL, &c);
    kt_log_capture_stop(&cap);
    assert_int_equal(kiln_mock_failures(), 1);
    if (st == KILN_SUCCESS) {
      recovered++;
      assert_int_equal(n, 1); /* the import is the first call */
      assert_int_equal(c, good);
      assert_int_equal(kiln_mock_compiles(), c0 + 1);
      assert_true(kt_log_capture_has(&cap, "refused its binary"));
    } else {
      assert_int_equal(st, KILN_ERROR_BACKEND);
    }
  }
  assert_int_equal(recovered, 1);
  kiln_mock_configure(NULL);
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 7, NULL, &c));
  assert_int_equal(c, good);
}

/* Host allocations failed one at a time (and from N on) over a build from the
 * directory: each run fails with OUT_OF_HOST_MEMORY or — only where the failed
 * allocation was the in-process layer's copy, which is best effort — succeeds with
 * the right kernel; nothing leaks. */
static kiln_status one_cached_build(kiln_device dev, uint32_t *code, size_t fail_nth,
                                    size_t fail_from) {
  kiln_context ctx = NULL;
  kiln_stream s = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln__kcache_drop_memory();
  if (fail_nth)
    kt_alloc_fail_nth(fail_nth);
  else if (fail_from)
    kt_alloc_fail_from(fail_from);
  else
    kt_alloc_fail_none();
  kiln_status st = kt_kc_build_run(ctx, s, 9, NULL, code);
  kt_alloc_fail_none();
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  return st;
}

static void host_allocation_failures_over_a_cached_build(void **state) {
  env *e = *state;
  uint32_t good, code;
  KT_OK(kt_kc_build_run(e->ctx, e->stream, 9, NULL, &good)); /* stored */
  kiln_device dev = kt_mock_device();
  KT_OK(kiln_stream_destroy(e->stream));
  KT_OK(kiln_context_destroy(e->ctx));
  e->stream = NULL;
  e->ctx = NULL;
  KT_OK(kt_alloc_install());
  KT_OK(one_cached_build(dev, &code, 0, 0));
  assert_int_equal(code, good);
  assert_true(kt_alloc_check_clean("clean cached build"));
  /* the allocations of the build alone: count them with the mode set at the same point */
  kiln_context ctx = NULL;
  kiln_stream s = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln__kcache_drop_memory();
  kt_alloc_fail_none();
  KT_OK(kt_kc_build_run(ctx, s, 9, NULL, &code));
  size_t calls = kt_alloc_calls();
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  assert_true(calls >= 8); /* parse, rewrite, entry read, payload, binary, kernel, ... */
  int succeeded = 0;
  for (size_t n = 1; n <= calls; n++) {
    kiln_status st = one_cached_build(dev, &code, n, 0);
    if (st == KILN_SUCCESS) {
      succeeded++;
      assert_int_equal(code, good);
    } else if (st != KILN_ERROR_OUT_OF_HOST_MEMORY &&
               st != KILN_ERROR_OUT_OF_DEVICE_MEMORY) { /* the test's buffer (cpu memory) */
      fail_msg("allocation %zu of %zu failed: %s, expected out of memory", n, calls,
               kiln_status_name(st));
    }
    if (!kt_alloc_check_clean("cached build, one allocation failed"))
      fail_msg("leak after failing allocation %zu", n);
    st = one_cached_build(dev, &code, 0, n);
    assert_true(st == KILN_ERROR_OUT_OF_HOST_MEMORY || st == KILN_ERROR_OUT_OF_DEVICE_MEMORY);
    if (!kt_alloc_check_clean("cached build, allocations failed from N"))
      fail_msg("leak after failing allocations from %zu", n);
  }
  assert_true(succeeded <= 2); /* the in-process layer's entry and its copy */
  KT_OK(kt_alloc_uninstall());
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(second_build_is_a_hit_with_the_same_kernel, setup, teardown),
      cmocka_unit_test_setup_teardown(live_program_is_shared, setup, teardown),
      cmocka_unit_test_setup_teardown(a_build_waits_while_another_holds_its_lock, setup, teardown),
      cmocka_unit_test_setup_teardown(truncated_entry_heals, setup, teardown),
      cmocka_unit_test_setup_teardown(truncated_header_heals, setup, teardown),
      cmocka_unit_test_setup_teardown(zero_length_entry_heals, setup, teardown),
      cmocka_unit_test_setup_teardown(bit_flipped_payload_heals, setup, teardown),
      cmocka_unit_test_setup_teardown(bit_flipped_header_heals, setup, teardown),
      cmocka_unit_test_setup_teardown(longer_entry_heals, setup, teardown),
      cmocka_unit_test_setup_teardown(planted_symlink_entry_is_not_followed, setup, teardown),
      cmocka_unit_test_setup_teardown(refused_binary_is_deleted_and_rebuilt, setup, teardown),
      cmocka_unit_test_setup_teardown(symlinked_directory_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(world_writable_directory_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(another_users_directory_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(relative_directory_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(cache_off_compiles_every_time, setup, teardown),
      cmocka_unit_test_setup_teardown(size_cap_evicts_least_recently_used, setup, teardown),
      cmocka_unit_test_setup_teardown(key_changes_with_every_input, setup, teardown),
      cmocka_unit_test(entry_format_checks_every_field),
      cmocka_unit_test_setup_teardown(blobs_round_trip_by_namespace_and_key, setup, teardown),
      cmocka_unit_test_setup_teardown(list_verify_and_clear, setup, teardown),
      cmocka_unit_test_setup_teardown(compile_errors_are_not_cached, setup, teardown),
      cmocka_unit_test_setup_teardown(failed_store_fails_no_build, setup, teardown),
      cmocka_unit_test_setup_teardown(fault_injection_over_a_cached_build, setup, teardown),
      cmocka_unit_test_setup_teardown(host_allocation_failures_over_a_cached_build, setup,
                                      teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

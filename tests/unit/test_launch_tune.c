/* SPDX-License-Identifier: MIT */
/* Launch configurations remembered and autotuned (src/core/tune.c; docs/kernels.md
 * "Launch configuration"), on cpu and PoCL: with KILN_AUTOTUNE=1 successive real
 * launches of a kernel that accumulates (so it could never be rerun) try the candidate
 * local sizes in turn, every launch still runs every work-item once, the tuning
 * converges and stores its choice in the compile cache, and a later process (the
 * store's in-process layer dropped, a new kernel object) takes the stored choice;
 * kiln_kernel_get_launch_config and KILN_LOG=debug say where a size came from; the
 * caller's size always wins; a stored blob that is not a usable configuration is
 * ignored with a warning; with the cache off tuning works in the process and stores
 * nothing; kernels with local-memory arguments are not tuned.
 * kiln-test-labels: unit cpu opencl
 * kiln-test-link: static */
#include <dirent.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kcache/kcache.h"
#include "kiln_test.h"

static const char count_src[] =
    "KILN_KERNEL void count(KILN_GLOBAL uint *c, KILN_GLOBAL uint *out, uint n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < n) { kiln_atomic_inc(c); out[i] += 1u; }\n"
    "}\n"
    "KILN_KERNEL void with_local(KILN_GLOBAL uint *out, KILN_LOCAL uint *tmp, uint n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  tmp[kiln_local_id(0)] = (uint)i;\n"
    "  if (i < n) out[i] = tmp[kiln_local_id(0)];\n"
    "}\n";

#define N 100000u /* the class of 2^16.. work-items */

typedef struct rig {
  kiln_context ctx;
  kiln_stream s;
  kiln_program p;
  kiln_kernel k;
  kiln_buffer c, out;
  unsigned launches;
} rig;

static char dir[64];

static void fresh_cache(void) {
  snprintf(dir, sizeof dir, "/tmp/kiln-tune-XXXXXX");
  assert_non_null(mkdtemp(dir));
  kiln__kcache_reset(dir);
}

static void drop_cache(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  kiln__kcache_reset(NULL);
}

static void rig_open(rig *g, kiln_backend_kind kind) {
  memset(g, 0, sizeof *g);
  kiln_device dev;
  KT_OK(kiln_device_find(kind, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &g->ctx));
  KT_OK(kiln_stream_create(g->ctx, NULL, &g->s));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = count_src;
  pd.name = "tune";
  KT_OK(kiln_program_create(g->ctx, &pd, &g->p));
  KT_OK(kiln_kernel_create(g->p, "count", &g->k));
  g->c = kt_buffer(g->ctx, 4);
  g->out = kt_buffer(g->ctx, N * 4);
  unsigned char zero = 0;
  KT_OK(kiln_buffer_fill(g->c, 0, 4, &zero, 1));
  KT_OK(kiln_buffer_fill(g->out, 0, N * 4, &zero, 1));
}

/* One launch leaving the local size to kiln (local: the caller's, or NULL). */
static void rig_launch(rig *g, const size_t *local) {
  kiln_range r = kiln_range_1d(N);
  if (local)
    r.local[0] = *local;
  unsigned n = N;
  kiln_arg a[3] = {kiln_arg_buffer(g->c), kiln_arg_buffer(g->out), kiln_arg_scalar(&n, 4)};
  KT_OK(kiln_launch(g->s, g->k, &r, a, 3));
  g->launches++;
}

/* Every launch ran every work-item exactly once, whatever its local size. */
static void rig_check(rig *g) {
  unsigned c = 0;
  KT_OK(kiln_buffer_read(g->c, 0, 4, &c));
  assert_int_equal(c, g->launches * N);
  unsigned *out = malloc(N * 4);
  assert_non_null(out);
  KT_OK(kiln_buffer_read(g->out, 0, N * 4, out));
  for (unsigned i = 0; i < N; i++)
    if (out[i] != g->launches)
      fail_msg("work-item %u ran %u times in %u launches", i, out[i], g->launches);
  free(out);
}

static void rig_close(rig *g) {
  KT_OK(kiln_buffer_destroy(g->c));
  KT_OK(kiln_buffer_destroy(g->out));
  KT_OK(kiln_kernel_destroy(g->k));
  KT_OK(kiln_program_destroy(g->p));
  KT_OK(kiln_stream_destroy(g->s));
  KT_OK(kiln_context_destroy(g->ctx));
}

static kiln_launch_config config_of(rig *g) {
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_kernel_get_launch_config(g->k, &r, &c));
  return c;
}

/* Entries of the store's namespace "launch-config". */
static int count_ns(const kiln_cache_entry *e, void *user) {
  if (!strcmp(e->ns, "launch-config"))
    ++*(int *)user;
  return 0;
}
static int launch_config_entries(void) {
  int n = 0;
  KT_OK(kiln_cache_list(count_ns, &n));
  return n;
}

/* Tune `count` to convergence (at most 6 candidates x 2 samples); returns its size. */
static size_t tune(rig *g) {
  kiln_launch_config c = config_of(g);
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_TUNING);
  assert_non_null(strstr(c.why, "autotuning (KILN_AUTOTUNE)"));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_DEBUG);
  while (g->launches < 12 && config_of(g).origin == KILN_LAUNCH_ORIGIN_TUNING)
    rig_launch(g, NULL);
  rig_launch(g, NULL); /* runs the tuned size, and logs the result */
  kt_log_capture_stop(&cap);
  c = config_of(g);
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_AUTOTUNED);
  assert_true(c.chosen);
  assert_non_null(strstr(c.why, "was fastest of"));
  print_message("after %u launches: %s\n", g->launches, c.why);
  if (!kt_log_capture_has(&cap, "autotuned the local size for 1-D ranges of 2^16.."))
    fail_msg("no autotune line in the debug log:\n%s", cap.text);
  assert_true(kt_log_capture_has(&cap, "(autotuning candidate 2) for a 1-D range of 100000"));
  assert_true(kt_log_capture_has(&cap, "(autotuned), "));
  rig_check(g);
  return c.local[0];
}

static void converges_persists_and_is_reused(kiln_backend_kind kind) {
  if (!kt_backend_available(kind))
    skip();
  fresh_cache();
  setenv("KILN_AUTOTUNE", "1", 1);
  setenv("KILN_AUTOTUNE_SAMPLES", "2", 1);
  rig g;
  rig_open(&g, kind);
  size_t tuned = tune(&g);
  assert_int_equal(launch_config_entries(), 1); /* stored when it converged */
  /* the caller's local size always wins */
  size_t mine = 32;
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  kiln_range r = kiln_range_1d(N);
  r.local[0] = mine;
  KT_OK(kiln_kernel_get_launch_config(g.k, &r, &c));
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_CALLER);
  assert_int_equal(c.local[0], mine);
  rig_launch(&g, &mine);
  rig_check(&g);
  rig_close(&g);

  /* a later process: no autotuning asked, the store's choice is taken */
  unsetenv("KILN_AUTOTUNE");
  kiln__kcache_reset(dir);
  rig_open(&g, kind);
  c = config_of(&g);
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_STORED);
  assert_int_equal(c.local[0], tuned);
  assert_non_null(strstr(c.why, "by an earlier process that autotuned it"));
  rig_launch(&g, NULL);
  rig_launch(&g, NULL);
  rig_check(&g);
  /* another range class is its own: the heuristic there */
  kiln_range small = kiln_range_1d(1000);
  KT_OK(kiln_kernel_get_launch_config(g.k, &small, &c));
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_HEURISTIC);
  rig_close(&g);
  unsetenv("KILN_AUTOTUNE_SAMPLES");
  drop_cache();
}

static void autotune_converges_persists_and_is_reused_on_cpu(void **state) {
  (void)state;
  converges_persists_and_is_reused(KILN_BACKEND_CPU);
}

static void autotune_converges_persists_and_is_reused_on_pocl(void **state) {
  (void)state;
  converges_persists_and_is_reused(KILN_BACKEND_OPENCL);
}

/* The entry tuning stored, rewritten with `payload` (a well-formed store entry whose
 * contents are not a launch configuration). */
static void rewrite_stored(const void *payload, size_t bytes) {
  char sub[128];
  snprintf(sub, sizeof sub, "%s/launch-config", dir);
  DIR *d = opendir(sub);
  assert_non_null(d);
  struct dirent *de;
  char path[512] = "";
  while ((de = readdir(d)))
    if (de->d_name[0] != '.')
      snprintf(path, sizeof path, "%s/%s", sub, de->d_name);
  closedir(d);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char hdr[128];
  assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
  fclose(f);
  kiln__kcache_key key;
  memcpy(key.b, hdr + 24, sizeof key.b); /* the entry format: key at 24 */
  KT_OK(kiln__kcache_put("launch-config", &key, payload, bytes));
  kiln__kcache_drop_memory();
}

static void bad_stored_blobs_are_ignored_with_a_warning(void **state) {
  (void)state;
  fresh_cache();
  setenv("KILN_AUTOTUNE", "1", 1);
  setenv("KILN_AUTOTUNE_SAMPLES", "1", 1);
  rig g;
  rig_open(&g, KILN_BACKEND_CPU);
  tune(&g);
  rig_close(&g);
  unsetenv("KILN_AUTOTUNE");
  unsetenv("KILN_AUTOTUNE_SAMPLES");
  /* the layout tune.c stores: magic, origin, dims, local[3], best_ns, counts */
  struct {
    char magic[8];
    uint32_t origin, dims;
    uint64_t local[3];
    uint64_t best_ns;
    uint32_t candidates, samples;
  } good = {{'K', 'I', 'L', 'N', 'L', 'C', '0', '1'}, 2, 1, {256, 1, 1}, 1000, 5, 1}, bad;
  static const char *const why[] = {"5 bytes, expected",    "bad magic",
                                    "unknown origin 9",     "2 dimensions for a 1-D range",
                                    "exceeds the device's", "local size 0 in dimension 0"};
  for (int v = 0; v < 6; v++) {
    bad = good;
    size_t bytes = sizeof bad;
    if (v == 0)
      bytes = 5;
    else if (v == 1)
      bad.magic[0] = 'X';
    else if (v == 2)
      bad.origin = 9;
    else if (v == 3)
      bad.dims = 2;
    else if (v == 4)
      bad.local[0] = 1u << 19;
    else
      bad.local[0] = 0;
    rewrite_stored(&bad, bytes);
    kt_log_capture cap;
    kt_log_capture_start(&cap, KILN_LOG_WARN);
    rig_open(&g, KILN_BACKEND_CPU);
    kiln_launch_config c = config_of(&g);
    rig_launch(&g, NULL);
    rig_check(&g);
    rig_close(&g);
    kt_log_capture_stop(&cap);
    assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_HEURISTIC);
    if (!kt_log_capture_has(&cap, "ignoring the launch configuration stored in the compile "
                                  "cache (namespace launch-config)") ||
        !kt_log_capture_has(&cap, why[v]))
      fail_msg("variant %d: no warning with '%s':\n%s", v, why[v], cap.text);
    assert_int_equal(cap.warn_lines, 1); /* once per kernel and class, not per launch */
  }
  /* a good one is taken */
  rewrite_stored(&good, sizeof good);
  rig_open(&g, KILN_BACKEND_CPU);
  kiln_launch_config c = config_of(&g);
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_STORED);
  assert_int_equal(c.local[0], 256);
  rig_close(&g);
  drop_cache();
}

static void cache_off_tunes_in_the_process_only(void **state) {
  (void)state;
  setenv("KILN_CACHE", "off", 1);
  kiln__kcache_reset(NULL);
  setenv("KILN_AUTOTUNE", "1", 1);
  setenv("KILN_AUTOTUNE_SAMPLES", "1", 1);
  rig g;
  rig_open(&g, KILN_BACKEND_CPU);
  size_t tuned = tune(&g);
  assert_true(tuned >= 1);
  rig_close(&g);
  rig_open(&g, KILN_BACKEND_CPU); /* nothing stored: tuning starts over */
  assert_int_equal(config_of(&g).origin, KILN_LAUNCH_ORIGIN_TUNING);
  rig_close(&g);
  unsetenv("KILN_AUTOTUNE");
  unsetenv("KILN_AUTOTUNE_SAMPLES");
  unsetenv("KILN_CACHE");
  kiln__kcache_reset(NULL);
}

/* Their local-memory bytes may follow the size the caller read: never changed. */
static void kernels_with_local_arguments_are_not_tuned(void **state) {
  (void)state;
  setenv("KILN_AUTOTUNE", "1", 1);
  rig g;
  rig_open(&g, KILN_BACKEND_CPU);
  kiln_kernel k;
  KT_OK(kiln_kernel_create(g.p, "with_local", &k));
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_kernel_get_launch_config(k, &r, &c));
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_HEURISTIC);
  KT_OK(kiln_kernel_destroy(k));
  rig_close(&g);
  unsetenv("KILN_AUTOTUNE");
}

/* A caller built before `origin` was appended passes the smaller struct_size. */
static void older_config_struct_is_accepted(void **state) {
  (void)state;
  rig g;
  rig_open(&g, KILN_BACKEND_CPU);
  struct {
    kiln_launch_config c;
    unsigned char guard[16];
  } old;
  memset(&old, 0xa5, sizeof old);
  old.c.struct_size = offsetof(kiln_launch_config, origin);
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_kernel_get_launch_config(g.k, &r, &old.c));
  assert_int_equal(old.c.chosen, 1);
  const unsigned char *tail = (const unsigned char *)&old.c + offsetof(kiln_launch_config, origin);
  for (size_t i = 0; i < sizeof old - offsetof(kiln_launch_config, origin); i++)
    assert_int_equal(tail[i], 0xa5);
  old.c.struct_size = offsetof(kiln_launch_config, origin) - 1;
  KT_EXPECT_MSG(kiln_kernel_get_launch_config(g.k, &r, &old.c), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_LAUNCH_CONFIG_INIT");
  rig_close(&g);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(autotune_converges_persists_and_is_reused_on_cpu),
      cmocka_unit_test(autotune_converges_persists_and_is_reused_on_pocl),
      cmocka_unit_test(bad_stored_blobs_are_ignored_with_a_warning),
      cmocka_unit_test(cache_off_tunes_in_the_process_only),
      cmocka_unit_test(kernels_with_local_arguments_are_not_tuned),
      cmocka_unit_test(older_config_struct_is_accepted),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock stress */
/* kiln-test-env: KILN_MOCK=1 */
/* kiln-test-link: static */
/* Eight processes race on one compile-cache directory: 200 builds each over 20
 * kernels of the mock's fake compiler, starting together on an empty directory (so
 * many compile and write the same entries at once), every build reading the directory
 * afresh, process 0 clearing it every 50 builds. Zero failed or wrong builds (each
 * kernel's code is checked against a build made without the cache), no reader ever
 * sees a partial entry (nothing healed), no temporary file left, every entry whole.
 * The parent touches no kiln state before forking. Then four threads of one process
 * build on one context (in-process layer, disk, live programs shared and destroyed
 * meanwhile), checked the same way; under TSan in make check. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kiln_test.h"
#include "kt_kcache.h"

#define PROCS 8
#define BUILDS 200
#define KERNELS 20

/* The code of every kernel, built in a child with the cache off. 0: skipped. */
static int reference_codes(uint32_t codes[KERNELS]) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    setenv("KILN_CACHE", "off", 1);
    kiln__kcache_reset(NULL);
    kiln_device dev = NULL;
    if (kiln_device_find(KILN_BACKEND_MOCK, 0, &dev) != KILN_SUCCESS)
      _exit(77);
    kiln_context ctx = NULL;
    kiln_stream s = NULL;
    if (kiln_context_create(dev, NULL, &ctx) || kiln_stream_create(ctx, NULL, &s))
      _exit(1);
    uint32_t out[KERNELS];
    for (unsigned i = 0; i < KERNELS; i++)
      if (kt_kc_build_run(ctx, s, i, NULL, &out[i]) != KILN_SUCCESS)
        _exit(1);
    if (kiln_mock_compiles() != KERNELS) /* the cache was off: every build compiled */
      _exit(1);
    if (write(fds[1], out, sizeof out) != (ssize_t)sizeof out)
      _exit(1);
    kiln_context_destroy(ctx);
    _exit(0);
  }
  close(fds[1]);
  ssize_t got = read(fds[0], codes, sizeof(uint32_t) * KERNELS);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
    return 0;
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(got, (ssize_t)(sizeof(uint32_t) * KERNELS));
  for (unsigned i = 0; i < KERNELS; i++)
    for (unsigned j = i + 1; j < KERNELS; j++)
      assert_int_not_equal(codes[i], codes[j]);
  return 1;
}

/* The same race with a cap that holds about half the entries: every store past it
 * evicts, so entries are deleted under readers and writers all the time. */
static void eight_processes_race_with_eviction(void **state) {
  (void)state;
  uint32_t codes[KERNELS];
  if (!reference_codes(codes))
    skip();
  /* Each process estimates the directory's size from its own stores (a scan only when
   * its estimate passes the cap), so when one process happens to build nearly every
   * entry first the others store too few to evict (seen once in 12 runs under load:
   * 23 stores, 0 evicted). Such a run proves nothing about eviction: run the race
   * again, at most three times in all. */
  kt_kc_race r;
  unsigned left_tmp = 99, bad = 99;
  int failed = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    char dir[] = "/tmp/kiln-kcache-evict-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char root[64];
    snprintf(root, sizeof root, "%s/cache", dir);
    kt_kc_race one = {
        root, KILN_BACKEND_MOCK, PROCS, BUILDS / 2, KERNELS, codes, 0, "1500", 0, 0, 0, 0, 0, 0};
    r = one;
    left_tmp = 99, bad = 99;
    failed = kt_kc_race_run(&r, &left_tmp, &bad);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    if (failed || r.evicted > 0)
      break;
  }
  print_message("%llu builds: %llu from the directory, %llu misses, %llu stores, %llu evicted\n",
                (unsigned long long)r.builds_done, (unsigned long long)r.disk_hits,
                (unsigned long long)r.misses, (unsigned long long)r.stores,
                (unsigned long long)r.evicted);
  assert_int_equal(failed, 0);
  assert_int_equal(r.builds_done, PROCS * BUILDS / 2);
  assert_true(r.evicted > 0);
  assert_true(r.disk_hits > 0);
  assert_int_equal(left_tmp, 0);
  assert_int_equal(bad, 0);
}

static void eight_processes_race_on_one_directory(void **state) {
  (void)state;
  uint32_t codes[KERNELS];
  if (!reference_codes(codes))
    skip();
  char dir[] = "/tmp/kiln-kcache-race-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char root[64];
  snprintf(root, sizeof root, "%s/cache", dir);
  kt_kc_race r = {root, KILN_BACKEND_MOCK, PROCS, BUILDS, KERNELS, codes, 50, NULL, 0, 0, 0, 0, 0,
                  0};
  unsigned left_tmp = 99, bad = 99;
  int failed = kt_kc_race_run(&r, &left_tmp, &bad);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  print_message("%llu builds: %llu from the directory, %llu misses, %llu stores\n",
                (unsigned long long)r.builds_done, (unsigned long long)r.disk_hits,
                (unsigned long long)r.misses, (unsigned long long)r.stores);
  assert_int_equal(failed, 0);
  assert_int_equal(r.builds_done, PROCS * BUILDS);
  assert_int_equal(r.disk_hits + r.misses, PROCS * BUILDS);
  assert_true(r.disk_hits > PROCS * BUILDS / 2); /* the cache served most */
  assert_true(r.stores >= KERNELS);              /* and was written at least once per kernel */
  assert_int_equal(left_tmp, 0);
  assert_int_equal(bad, 0);
}

/* ---- threads of one process */

#define THREADS 4
#define THREAD_BUILDS 150

typedef struct thread_arg {
  kiln_context ctx;
  const uint32_t *codes;
  unsigned me;
  atomic_int wrong;
} thread_arg;

/* Builds in a shuffled order on a stream of its own; thread 0 drops the in-process
 * layer now and then, thread 1 keeps a program alive for a while (others share it). */
static void *builder(void *p) {
  thread_arg *a = p;
  kiln_stream s = NULL;
  if (kiln_stream_create(a->ctx, NULL, &s) != KILN_SUCCESS) {
    atomic_fetch_add(&a->wrong, 1);
    return NULL;
  }
  uint64_t rng = 0x2545F4914F6CDD1Dull * (a->me + 1);
  kiln_program held = NULL;
  for (unsigned b = 0; b < THREAD_BUILDS; b++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    unsigned k = (unsigned)(rng % KERNELS);
    if (a->me == 0 && b % 10 == 0)
      kiln_cache_drop_memory();
    if (a->me == 1 && b % 25 == 0) {
      kiln_program_destroy(held);
      held = NULL;
      char src[512];
      kt_kc_source(k, src, sizeof src);
      kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
      d.source = src;
      if (kiln_program_create(a->ctx, &d, &held) != KILN_SUCCESS)
        atomic_fetch_add(&a->wrong, 1);
    }
    uint32_t code = 0;
    if (kt_kc_build_run(a->ctx, s, k, NULL, &code) != KILN_SUCCESS || code != a->codes[k]) {
      fprintf(stderr, "thread %u build %u kernel %u: code %u, expected %u: %s\n", a->me, b, k, code,
              a->codes[k], kiln_last_error()->message);
      atomic_fetch_add(&a->wrong, 1);
    }
  }
  kiln_program_destroy(held);
  kiln_stream_destroy(s);
  return NULL;
}

static void threads_race_in_one_process(void **state) {
  (void)state;
  uint32_t codes[KERNELS];
  if (!reference_codes(codes))
    skip();
  char dir[] = "/tmp/kiln-kcache-threads-XXXXXX";
  assert_non_null(mkdtemp(dir));
  kiln__kcache_reset(dir);
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_MOCK, 0, &dev));
  kiln_context ctx;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  thread_arg args[THREADS];
  pthread_t t[THREADS];
  for (unsigned i = 0; i < THREADS; i++) {
    args[i].ctx = ctx;
    args[i].codes = codes;
    args[i].me = i;
    atomic_init(&args[i].wrong, 0);
    assert_int_equal(pthread_create(&t[i], NULL, builder, &args[i]), 0);
  }
  int wrong = 0;
  for (unsigned i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    wrong += atomic_load(&args[i].wrong);
  }
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  KT_OK(kiln_context_destroy(ctx));
  uint64_t checked = 0, bad = 9;
  KT_OK(kiln_cache_verify(NULL, NULL, &checked, &bad));
  kiln__kcache_reset(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(wrong, 0);
  assert_int_equal(info.healed, 0);
  assert_int_equal(bad, 0);
  assert_true(checked >= 1 && checked <= KERNELS);
  assert_true(info.memory_hits > 0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(eight_processes_race_on_one_directory),
      cmocka_unit_test(eight_processes_race_with_eviction),
      cmocka_unit_test(threads_race_in_one_process),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* Group-local arrays and helpers' work-item ids on the CPU backend without a
 * thread-local in the kernel objects (docs/kernels.md, "The CPU backend"): the C of
 * every path has no _Thread_local and the compiled object no TLS segment; local arrays
 * of several types, alignments and dimensions are one per group — groups running at
 * once on the helper threads and on two streams never share them — with loop fission,
 * fibers and the plain loop; sizeof keeps the declared size; helpers read the ids of
 * the work-item that calls them on every path, after barriers too; misplaced or
 * initialised declarations and reused names are refused with the reason; the core
 * counts the arrays against the device's local memory; the launch's local block
 * failing to allocate fails the launch cleanly.
 * kiln-test-labels: unit cpu
 * kiln-test-link: static */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_internal.h"
#include "core/kparse.h"
#include "core/prelude.h"
#include "kiln_test.h"

enum { GROUP = 64, GROUPS = 640, ITEMS = GROUP * GROUPS, INFO = 8, ROUNDS = 12 };

/* Two arrays of different types and alignments (one 2-D), a 1-byte local placed
 * between them, two declarators in one declaration and a struct type: every
 * work-item fills its part with its group's values, and after a barrier checks the
 * whole of every array, round after round. A group that saw another's writes
 * counts them in `bad`. Work-item 0 also reports sizes and alignments. */
static const char arrays_src[] =
    "typedef struct pair { int a; double b; } pair;\n"
    "KILN_KERNEL void owned(KILN_GLOBAL int *out, int rounds) {\n"
    "  KILN_LOCAL_ARRAY float tile[8][33];\n"
    "  KILN_LOCAL_ARRAY kiln_u8 tag;\n"
    "  KILN_LOCAL_ARRAY double sums[64], spare[3][5];\n"
    "  KILN_LOCAL_ARRAY pair pairs[2];\n"
    "  size_t l = kiln_local_id(0), g = kiln_group_id(0), n = kiln_local_size(0);\n"
    "  int bad = 0;\n"
    "  for (int r = 0; r < rounds; r++) {\n"
    "    tile[l % 8][l / 8] = (float)(g * 100 + (size_t)r);\n"
    "    sums[l] = (double)(g * 1000 + (size_t)r);\n"
    "    if (l == 0) { tag = (kiln_u8)(g + (size_t)r); pairs[1].a = (int)g;\n"
    "                  pairs[1].b = (double)r; spare[2][4] = 0.5 * (double)g; }\n"
    "    kiln_barrier();\n"
    "    for (size_t i = 0; i < n; i++)\n"
    "      if (tile[i % 8][i / 8] != (float)(g * 100 + (size_t)r) ||\n"
    "          sums[i] != (double)(g * 1000 + (size_t)r)) bad++;\n"
    "    if (tag != (kiln_u8)(g + (size_t)r) || pairs[1].a != (int)g ||\n"
    "        pairs[1].b != (double)r || spare[2][4] != 0.5 * (double)g) bad++;\n"
    "    kiln_barrier();\n"
    "  }\n"
    "  size_t i = kiln_global_id(0);\n"
    "  out[i] = bad;\n"
    "  if (i == 0) {\n"
    "    size_t s = kiln_global_size(0);\n"
    "    out[s] = (int)sizeof tile; out[s + 1] = (int)sizeof sums;\n"
    "    out[s + 2] = (int)sizeof spare; out[s + 3] = (int)sizeof(tag);\n"
    "    out[s + 4] = (int)((size_t)&sums[0] % _Alignof(double));\n"
    "    out[s + 5] = (int)((size_t)&pairs[0] % _Alignof(pair));\n"
    "    out[s + 6] = (int)(sizeof tile / sizeof tile[0]);\n"
    "  }\n"
    "}\n"
    /* no barrier: the group loop; each work-item its own element */
    "KILN_KERNEL void owned_loop(KILN_GLOBAL int *out, int rounds) {\n"
    "  KILN_LOCAL_ARRAY long slot[64][2];\n"
    "  size_t l = kiln_local_id(0);\n"
    "  slot[l][1] = (long)kiln_global_id(0) * rounds;\n"
    "  out[kiln_global_id(0)] = (int)(slot[l][1] / rounds - (long)kiln_global_id(0));\n"
    "}\n";

/* Helpers reading the ids of the calling work-item: from a kernel without barriers
 * (the group loop) and one with barriers (loop fission, or fibers), before and after
 * the barriers. */
static const char helpers_src[] =
    "KILN_INLINE int where(void) {\n"
    "  return (int)(kiln_group_id(0) * 1000 + kiln_local_id(0) * 3 + kiln_local_size(0) % 7 +\n"
    "               kiln_global_size(0) % 11 + kiln_num_groups(0) % 5);\n"
    "}\n"
    "KILN_INLINE int gid(void) { return (int)kiln_global_id(0); }\n"
    "KILN_KERNEL void ids_loop(KILN_GLOBAL int *out) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  out[i] = where() + 7 * (gid() - (int)i);\n"
    "}\n"
    "KILN_KERNEL void ids_barrier(KILN_GLOBAL int *out, KILN_GLOBAL int *after) {\n"
    "  KILN_LOCAL_ARRAY int seen[64];\n"
    "  size_t i = kiln_global_id(0), l = kiln_local_id(0);\n"
    "  seen[l] = where();\n"
    "  kiln_barrier();\n"
    "  out[i] = seen[(l + 1) % kiln_local_size(0)] + 7 * (gid() - (int)i);\n"
    "  kiln_barrier();\n"
    "  after[i] = where();\n"
    "}\n";

/* A barrier inside a helper: always fibers; ids read on both sides of it. */
static const char sync_src[] =
    "KILN_INLINE int where(void) {\n"
    "  return (int)(kiln_group_id(0) * 1000 + kiln_local_id(0) * 3);\n"
    "}\n"
    "KILN_INLINE int sync_where(void) { int w = where(); kiln_barrier(); return w + where(); }\n"
    "KILN_KERNEL void ids_sync(KILN_GLOBAL int *out, KILN_GLOBAL int *after) {\n"
    "  KILN_LOCAL_ARRAY int seen[64];\n"
    "  size_t i = kiln_global_id(0);\n"
    "  seen[kiln_local_id(0)] = sync_where();\n"
    "  kiln_barrier();\n"
    "  out[i] = seen[(kiln_local_id(0) + 1) % kiln_local_size(0)];\n"
    "  after[i] = where();\n"
    "}\n";

static int expect_where(size_t i, size_t local, size_t global) {
  size_t g = i / local, l = i % local;
  return (int)(g * 1000 + l * 3 + local % 7 + global % 11 + (global / local) % 5);
}

/* ---- the C text and the object */
static char *rewrite(const char *source, size_t *len) {
  kiln__kfunc funcs[8];
  size_t count = 0, need = 0;
  assert_int_equal(kiln__kparse(source, strlen(source), funcs, 8, &count), KILN_SUCCESS);
  assert_int_equal(
      kiln__dialect_rewrite(source, strlen(source), funcs, count, KILN__TARGET_C, NULL, 0, &need),
      KILN_SUCCESS);
  char *text = malloc(need + 1);
  assert_non_null(text);
  assert_int_equal(kiln__dialect_rewrite(source, strlen(source), funcs, count, KILN__TARGET_C, text,
                                         need + 1, len),
                   KILN_SUCCESS);
  return text;
}

/* Whether the ELF object has a PT_TLS segment (thread-local storage). */
static bool has_tls_segment(const unsigned char *so, size_t bytes) {
  Elf64_Ehdr eh;
  assert_true(bytes >= sizeof eh && !memcmp(so, ELFMAG, SELFMAG));
  memcpy(&eh, so, sizeof eh);
  assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
  for (size_t i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    size_t at = (size_t)eh.e_phoff + i * eh.e_phentsize;
    assert_true(at + sizeof ph <= bytes);
    memcpy(&ph, so + at, sizeof ph);
    if (ph.p_type == PT_TLS)
      return true;
  }
  return false;
}

static void generated_c_has_no_thread_local(void **state) {
  (void)state;
  const char *sources[] = {arrays_src, helpers_src, sync_src};
  for (size_t k = 0; k < sizeof sources / sizeof *sources; k++) {
    size_t len = 0;
    char *text = rewrite(sources[k], &len);
    /* every path's entries are there: fission (#ifndef KILN__NO_FISSION), fibers, loop */
    assert_non_null(strstr(text, "kiln__item_"));
    assert_non_null(strstr(text, "kiln__group_"));
    if (strstr(text, "_Thread_local") || strstr(text, "__thread"))
      fail_msg("source %zu: the C for the CPU backend has a thread-local:\n%s", k, text);
    for (int nofission = 0; nofission < 2; nofission++) {
      void *so = NULL;
      size_t bytes = 0;
      if (kiln__cpu_compile(text, len, nofission ? "-DKILN__NO_FISSION" : "", "tls", &so, &bytes) !=
          KILN_SUCCESS)
        fail_msg("source %zu: %s\n%s", k, kiln_last_error()->message, kiln_last_build_log());
      if (has_tls_segment(so, bytes))
        fail_msg("source %zu%s: the kernel object has a TLS segment", k,
                 nofission ? " (-DKILN__NO_FISSION)" : "");
      kiln__free(so, bytes);
    }
    free(text);
  }
  size_t len = 0;
  char *text = rewrite(arrays_src, &len);
  assert_non_null(strstr(text, "kiln__fission_owned")); /* the arrays' kernel takes fission */
  free(text);
}

/* ---- running */
typedef struct kside {
  kiln_context ctx;
  kiln_stream s[2];
  kiln_program p;
} kside;

static void open_side(kside *k, const char *source, const char *name) {
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &k->ctx));
  KT_OK(kiln_stream_create(k->ctx, NULL, &k->s[0]));
  KT_OK(kiln_stream_create(k->ctx, NULL, &k->s[1]));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = name;
  if (kiln_program_create(k->ctx, &pd, &k->p) != KILN_SUCCESS)
    fail_msg("%s: %s\n%s", name, kiln_last_error()->message, kiln_last_build_log());
}

static void close_side(kside *k) {
  KT_OK(kiln_program_destroy(k->p));
  KT_OK(kiln_stream_destroy(k->s[0]));
  KT_OK(kiln_stream_destroy(k->s[1]));
  KT_OK(kiln_context_destroy(k->ctx));
}

static kiln_kernel make_kernel(kside *k, const char *name, bool fibers) {
  if (fibers)
    setenv("KILN_CPU_FISSION", "0", 1);
  kiln_kernel kern;
  KT_OK(kiln_kernel_create(k->p, name, &kern));
  unsetenv("KILN_CPU_FISSION");
  return kern;
}

static kt_log_capture logged;

/* The path kernel `name` took, as logged at kernel creation, must contain `needle`. */
static void expect_path(const char *name, const char *needle) {
  char key[96];
  snprintf(key, sizeof key, "kernel '%s' on cpu: ", name);
  for (const char *at = strstr(logged.text, key); at; at = strstr(at + 1, key)) {
    const char *found = strstr(at, needle), *eol = strchr(at, '\n');
    if (found && (!eol || found < eol))
      return;
  }
  fail_msg("kernel '%s': no path with \"%s\" logged:\n%s", name, needle, logged.text);
}

/* The arrays' kernel on both streams at once (two workers and the helper threads
 * running groups together), each launch checked. */
static void run_owned(kside *k, kiln_kernel kern, const char *what) {
  size_t n = ITEMS + INFO;
  kiln_buffer out[2];
  kiln_pending t[2];
  int rounds = ROUNDS;
  kiln_range r = kiln_range_1d(ITEMS);
  r.local[0] = GROUP;
  for (int s = 0; s < 2; s++) {
    out[s] = kt_buffer(k->ctx, n * sizeof(int));
    int fill = -1;
    KT_OK(kiln_buffer_fill(out[s], 0, n * sizeof(int), &fill, sizeof fill));
  }
  for (int s = 0; s < 2; s++) {
    kiln_arg a[2] = {kiln_arg_buffer(out[s]), kiln_arg_scalar(&rounds, sizeof rounds)};
    KT_OK(kiln_launch_async(k->s[s], kern, &r, a, 2, &t[s]));
  }
  int *got = malloc(n * sizeof *got);
  assert_non_null(got);
  for (int s = 0; s < 2; s++) {
    KT_OK(kiln_wait(&t[s]));
    KT_OK(kiln_buffer_read(out[s], 0, n * sizeof(int), got));
    for (size_t i = 0; i < ITEMS; i++)
      if (got[i])
        fail_msg("%s, stream %d: work-item %zu (group %zu) saw %d writes of another group "
                 "(or -1: did not run)",
                 what, s, i, i / GROUP, got[i]);
    assert_int_equal(got[ITEMS], 8 * 33 * 4);    /* sizeof tile */
    assert_int_equal(got[ITEMS + 1], 64 * 8);    /* sizeof sums */
    assert_int_equal(got[ITEMS + 2], 3 * 5 * 8); /* sizeof spare */
    assert_int_equal(got[ITEMS + 3], 1);         /* sizeof(tag) */
    assert_int_equal(got[ITEMS + 4], 0);         /* sums aligned for double */
    assert_int_equal(got[ITEMS + 5], 0);         /* pairs aligned for pair */
    assert_int_equal(got[ITEMS + 6], 8);         /* rows of tile */
    KT_OK(kiln_buffer_destroy(out[s]));
  }
  free(got);
}

static void local_arrays_are_per_group(void **state) {
  (void)state;
  kside k;
  kt_log_capture_start(&logged, KILN_LOG_DEBUG);
  open_side(&k, arrays_src, "arrays");
  kiln_kernel fission = make_kernel(&k, "owned", false);
  kiln_kernel fibers = make_kernel(&k, "owned", true);
  kiln_kernel loop = make_kernel(&k, "owned_loop", false);
  kt_log_capture_stop(&logged);
  expect_path("owned", "loop fission");
  expect_path("owned", "fibers: KILN_CPU_FISSION=0");
  expect_path("owned_loop", "no barrier");
  run_owned(&k, fission, "loop fission");
  run_owned(&k, fibers, "fibers");
  /* the group loop: each work-item its own row */
  kiln_buffer out = kt_buffer(k.ctx, ITEMS * sizeof(int));
  int fill = -1, rounds = 3;
  KT_OK(kiln_buffer_fill(out, 0, ITEMS * sizeof(int), &fill, sizeof fill));
  kiln_range r = kiln_range_1d(ITEMS);
  r.local[0] = GROUP;
  kiln_arg a[2] = {kiln_arg_buffer(out), kiln_arg_scalar(&rounds, sizeof rounds)};
  KT_OK(kiln_launch(k.s[0], loop, &r, a, 2));
  int *got = malloc(ITEMS * sizeof *got);
  assert_non_null(got);
  KT_OK(kiln_buffer_read(out, 0, ITEMS * sizeof(int), got));
  for (size_t i = 0; i < ITEMS; i++)
    if (got[i])
      fail_msg("the group loop: work-item %zu got %d", i, got[i]);
  free(got);
  KT_OK(kiln_buffer_destroy(out));
  KT_OK(kiln_kernel_destroy(fission));
  KT_OK(kiln_kernel_destroy(fibers));
  KT_OK(kiln_kernel_destroy(loop));
  close_side(&k);
}

/* Runs `name` (one or two int buffers of ITEMS) and checks out[i] == where(i) and,
 * with two, after[i] == the expected value after the barriers. */
static void check_ids(kside *k, const char *name, bool fibers, int nbuf, int shift, bool full) {
  kiln_kernel kern = make_kernel(k, name, fibers);
  kiln_buffer b[2];
  kiln_arg a[2];
  for (int i = 0; i < nbuf; i++) {
    b[i] = kt_buffer(k->ctx, ITEMS * sizeof(int));
    int fill = -1;
    KT_OK(kiln_buffer_fill(b[i], 0, ITEMS * sizeof(int), &fill, sizeof fill));
    a[i] = kiln_arg_buffer(b[i]);
  }
  kiln_range r = kiln_range_1d(ITEMS);
  r.local[0] = GROUP;
  KT_OK(kiln_launch(k->s[0], kern, &r, a, (size_t)nbuf));
  int *got = malloc(ITEMS * sizeof *got);
  assert_non_null(got);
  for (int j = 0; j < nbuf; j++) {
    KT_OK(kiln_buffer_read(b[j], 0, ITEMS * sizeof(int), got));
    for (size_t i = 0; i < ITEMS; i++) {
      /* out: the neighbour's value where the kernel shares it (shift 1), else its own */
      size_t from = j == 0 ? i - i % GROUP + (i % GROUP + (size_t)shift) % GROUP : i;
      int want = full ? expect_where(from, GROUP, ITEMS)
                      : (int)((from / GROUP) * 1000 + (from % GROUP) * 3);
      if (j == 0 && !full && shift) /* sync_where: where() on both sides of its barrier */
        want *= 2;
      if (got[i] != want)
        fail_msg("kernel %s (%s), buffer %d, work-item %zu: %d, expected %d", name,
                 fibers ? "fibers" : "default path", j, i, got[i], want);
    }
    KT_OK(kiln_buffer_destroy(b[j]));
  }
  free(got);
  KT_OK(kiln_kernel_destroy(kern));
}

static void helpers_read_their_work_item(void **state) {
  (void)state;
  kside k;
  kt_log_capture_start(&logged, KILN_LOG_DEBUG);
  open_side(&k, helpers_src, "helpers");
  check_ids(&k, "ids_loop", false, 1, 0, true);
  check_ids(&k, "ids_barrier", false, 2, 1, true);
  check_ids(&k, "ids_barrier", true, 2, 1, true);
  close_side(&k);
  open_side(&k, sync_src, "sync");
  check_ids(&k, "ids_sync", false, 2, 1, false);
  kt_log_capture_stop(&logged);
  expect_path("ids_loop", "no barrier");
  expect_path("ids_barrier", "loop fission");
  expect_path("ids_barrier", "fibers: KILN_CPU_FISSION=0");
  expect_path("ids_sync", "fibers: kiln_barrier outside the kernel bodies");
  close_side(&k);
}

/* ---- refused */
static void refused(const char *source, const char *needle) {
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &ctx));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "bad";
  kiln_program p = (kiln_program)1;
  kiln_status st = kiln_program_create(ctx, &pd, &p);
  if (st != KILN_ERROR_COMPILE_FAILED)
    fail_msg("expected COMPILE_FAILED (%s) for:\n%s", needle, source);
  assert_null(p);
  if (!strstr(kiln_last_error()->message, needle) && !strstr(kiln_last_build_log(), needle))
    fail_msg("no \"%s\" in the message (%s) or the log:\n%s", needle, kiln_last_error()->message,
             kiln_last_build_log());
  KT_OK(kiln_context_destroy(ctx));
}

static void misplaced_local_arrays_are_refused(void **state) {
  (void)state;
  refused("KILN_KERNEL void k(KILN_GLOBAL int *o) {\n"
          "  if (o[0]) { KILN_LOCAL_ARRAY int t[4]; t[0] = 1; o[0] = t[0]; }\n"
          "}\n",
          "kernel k: the KILN_LOCAL_ARRAY declaration at line 2: it is inside a nested block");
  refused("KILN_INLINE int h(void) { KILN_LOCAL_ARRAY int t[4]; t[0] = 2; return t[0]; }\n"
          "KILN_KERNEL void k(KILN_GLOBAL int *o) { o[0] = h(); }\n",
          "outermost level of a kernel body");
  refused("KILN_KERNEL void k(KILN_GLOBAL int *o) {\n"
          "  KILN_LOCAL_ARRAY int t[4] = {1, 2, 3, 4};\n"
          "  o[0] = t[kiln_local_id(0)];\n"
          "}\n",
          "line 2: local memory cannot be initialized");
  refused("KILN_KERNEL void k(KILN_GLOBAL int *o) {\n"
          "#ifdef X\n"
          "  KILN_LOCAL_ARRAY int t[4];\n"
          "#else\n"
          "  KILN_LOCAL_ARRAY int t[8];\n"
          "#endif\n"
          "  o[0] = t[kiln_local_id(0)];\n"
          "}\n",
          "inside #if, #ifdef or #ifndef");
  /* a nested declaration of the same name does not compile (never a silent shadow) */
  refused("KILN_KERNEL void k(KILN_GLOBAL int *o) {\n"
          "  KILN_LOCAL_ARRAY int t[4];\n"
          "  t[0] = 1;\n"
          "  { int t = 2; o[1] = t; }\n"
          "  o[0] = t[0];\n"
          "}\n",
          "error");
}

/* More than the device's local memory: refused at the launch call by the core. */
static void local_arrays_count_against_local_memory(void **state) {
  (void)state;
  kside k;
  open_side(&k,
            "KILN_KERNEL void big(KILN_GLOBAL float *o) {\n"
            "  KILN_LOCAL_ARRAY float a[40000];\n"
            "  KILN_LOCAL_ARRAY float b[40000];\n"
            "  a[kiln_local_id(0)] = 1.0f; b[kiln_local_id(0)] = 2.0f;\n"
            "  o[kiln_global_id(0)] = a[kiln_local_id(0)] + b[kiln_local_id(0)];\n"
            "}\n",
            "big");
  kiln_kernel kern = make_kernel(&k, "big", false);
  kiln_buffer o = kt_buffer(k.ctx, 64 * sizeof(float));
  kiln_arg a = kiln_arg_buffer(o);
  kiln_range r = kiln_range_1d(64);
  KT_EXPECT_MSG(kiln_launch(k.s[0], kern, &r, &a, 1), KILN_ERROR_LIMIT_EXCEEDED,
                "plus 320000 it declares itself");
  KT_OK(kiln_buffer_destroy(o));
  KT_OK(kiln_kernel_destroy(kern));
  close_side(&k);
}

/* Each host allocation of launches of kernels with local arrays failing in turn (the
 * launch's, the local block with the arrays, fission's storage): OUT_OF_HOST_MEMORY or
 * success, then a right result; kt_teardown finds nothing leaked. */
static void local_block_allocation_failures(void **state) {
  kt_env *env = *state;
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = arrays_src;
  pd.name = "arrays";
  kiln_program p;
  KT_OK(kiln_program_create(env->ctx, &pd, &p));
  const char *names[] = {"owned", "owned_loop"};
  for (int kn = 0; kn < 2; kn++) {
    kiln_kernel k;
    KT_OK(kiln_kernel_create(p, names[kn], &k));
    size_t n = 4 * GROUP + INFO;
    kiln_buffer out = kt_buffer(env->ctx, n * sizeof(int));
    int rounds = 2;
    kiln_arg args[2] = {kiln_arg_buffer(out), kiln_arg_scalar(&rounds, sizeof rounds)};
    kiln_range r = kiln_range_1d(4 * GROUP);
    r.local[0] = GROUP;
    int failures = 0, named = 0;
    size_t nth = 1;
    for (; nth < 64; nth++) {
      kt_log_capture cap;
      kt_log_capture_start(&cap, KILN_LOG_ERROR);
      kt_alloc_fail_nth(nth);
      kiln_pending t = KILN_PENDING_INIT;
      kiln_status st = kiln_launch_async(env->stream, k, &r, args, 2, &t);
      if (st == KILN_SUCCESS)
        st = kiln_wait(&t);
      size_t injected = kt_alloc_failures();
      kt_alloc_fail_none();
      kt_log_capture_stop(&cap);
      named += kt_log_capture_has(&cap, "of KILN_LOCAL_ARRAYs");
      if (!injected) {
        KT_OK(st);
        break;
      }
      if (st != KILN_SUCCESS) {
        assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
        failures++;
        int zero = 0; /* clears the failed mark */
        KT_OK(kiln_buffer_fill(out, 0, n * sizeof(int), &zero, sizeof zero));
      }
    }
    assert_true(nth < 64);
    assert_true(failures >= 2); /* the launch record, the local block */
    assert_true(named >= 1);    /* the local block's failure names the arrays' bytes */
    int *got = malloc(n * sizeof *got);
    assert_non_null(got);
    KT_OK(kiln_launch(env->stream, k, &r, args, 2));
    KT_OK(kiln_buffer_read(out, 0, n * sizeof(int), got));
    for (size_t i = 0; i < 4 * GROUP; i++)
      assert_int_equal(got[i], 0);
    free(got);
    KT_OK(kiln_buffer_destroy(out));
    KT_OK(kiln_kernel_destroy(k));
  }
  KT_OK(kiln_program_destroy(p));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(generated_c_has_no_thread_local),
      cmocka_unit_test(local_arrays_are_per_group),
      cmocka_unit_test(helpers_read_their_work_item),
      cmocka_unit_test(misplaced_local_arrays_are_refused),
      cmocka_unit_test(local_arrays_count_against_local_memory),
      cmocka_unit_test_setup_teardown(local_block_allocation_failures, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

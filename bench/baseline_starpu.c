/* SPDX-License-Identifier: MIT */
/* StarPU baselines of op_burst_10000_starpu and op_roundtrip_starpu (the same empty ops
 * as the kiln side) and of the graph suite's DAGs (tasks with declared dependencies), as StarPU
 * tasks of an empty CPU codelet on one CPU worker (no CUDA, OpenCL, MIC or MPI workers).
 * libstarpu-1.3.so.9 (or the absolute $KILN_STARPU_LIBRARY) is loaded with dlopen, never linked,
 * entry points resolved through `void **`; <starpu.h> supplies only types and constants (built
 * without it, when libstarpu-dev was absent, every entry answers "unavailable"). StarPU is
 * initialised once per process, at the first set-up, and shut down at exit; its worker
 * polls in a tight loop while StarPU runs, so it is paused between batches (each run
 * resumes it first and pauses it last) and never competes with the kiln side.
 * $STARPU_HOME, where StarPU keeps its calibration files, is left as the caller set it,
 * else pointed at $TMPDIR/kiln-bench-starpu-<uid> (never $HOME). Includes no kiln
 * header and references no kiln_ symbol (checked with nm). Not thread-safe: the harness
 * runs one case at a time. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "host_work.h"

#define BURST 10000u
#define STARPU_LIBRARY "libstarpu-1.3.so.9"

#ifdef KILN_BENCH_HAVE_STARPU_H
#include <dlfcn.h>
#include <starpu.h>
#include <sys/stat.h>
#include <unistd.h>

#define STARPU_ENTRIES(X)     \
  X(starpu_conf_init)         \
  X(starpu_init)              \
  X(starpu_shutdown)          \
  X(starpu_pause)             \
  X(starpu_resume)            \
  X(starpu_task_create)       \
  X(starpu_task_submit)       \
  X(starpu_task_wait_for_all) \
  X(starpu_task_init)         \
  X(starpu_task_clean)        \
  X(starpu_task_declare_deps_array)

static struct starpu_api {
#define SP_MEMBER(name) __typeof__(&name) name;
  STARPU_ENTRIES(SP_MEMBER)
#undef SP_MEMBER
} sp;

/* 0: not tried; 1: loaded; 2: initialised (paused between runs); -1: failed, why in
 * `reason`, status in `failure`. The library stays loaded for the process. */
static int sp_state;
static int sp_failure;
static char reason[512];

static void empty_task(void *buffers[], void *arg) {
  (void)buffers;
  (void)arg;
}

static struct starpu_codelet empty_codelet;

__attribute__((format(printf, 2, 3))) static int fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  sp_failure = status;
  sp_state = -1;
  return status;
}

static int load(void) {
  if (sp_state != 0)
    return sp_state < 0 ? sp_failure : 0;
  const char *path = getenv("KILN_STARPU_LIBRARY");
  if (path != NULL && path[0] != '\0' && path[0] != '/')
    return fail(EINVAL, "KILN_STARPU_LIBRARY='%s' is not an absolute path", path);
  const char *name = path != NULL && path[0] != '\0' ? path : STARPU_LIBRARY;
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *why = dlerror();
    return fail(ENOENT, "%s could not be loaded: %s", name, why ? why : "?");
  }
#define SP_RESOLVE(fn)                                                \
  *(void **)&sp.fn = dlsym(lib, #fn);                                 \
  if (sp.fn == NULL) {                                                \
    dlclose(lib);                                                     \
    memset(&sp, 0, sizeof sp);                                        \
    return fail(ENOENT, "%s has no %s (not StarPU 1.3?)", name, #fn); \
  }
  STARPU_ENTRIES(SP_RESOLVE)
#undef SP_RESOLVE
  sp_state = 1;
  return 0;
}

static void shutdown_at_exit(void) {
  if (sp_state != 2)
    return;
  sp.starpu_resume(); /* the shutdown's workers must not stay paused */
  sp.starpu_shutdown();
  sp_state = 1;
}

/* $STARPU_HOME as the caller set it, else a private directory under $TMPDIR (StarPU
 * writes its calibration files into $STARPU_HOME/.starpu, by default under $HOME). */
static int point_home(void) {
  const char *home = getenv("STARPU_HOME");
  if (home != NULL && home[0] != '\0')
    return 0;
  const char *tmp = getenv("TMPDIR");
  char dir[512];
  int n = snprintf(dir, sizeof dir, "%s/kiln-bench-starpu-%lu",
                   tmp != NULL && tmp[0] == '/' ? tmp : "/tmp", (unsigned long)getuid());
  if (n < 0 || (size_t)n >= sizeof dir)
    return fail(ENAMETOOLONG, "the StarPU home under TMPDIR is too long: %s", dir);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return fail(errno, "cannot create the StarPU home %s: %s", dir, strerror(errno));
  if (setenv("STARPU_HOME", dir, 1) != 0)
    return fail(errno, "cannot set STARPU_HOME: %s", strerror(errno));
  return 0;
}

/* CPU workers of the running StarPU (while sp_state is 2). */
static int sp_ncpus;

/* Load, point STARPU_HOME, initialise with `ncpus` CPU workers, pause; kept for the
 * process, re-initialised only when a case asks for another number of workers (in
 * set-up, never while timing). */
static int start_ncpus(int ncpus) {
  int rc = load();
  if (rc != 0 || (sp_state == 2 && sp_ncpus == ncpus))
    return rc;
  if (sp_state == 2) {
    sp.starpu_resume();
    sp.starpu_shutdown();
    sp_state = 1;
  }
  if ((rc = point_home()) != 0)
    return rc;
  struct starpu_conf conf;
  if ((rc = sp.starpu_conf_init(&conf)) != 0)
    return fail(-rc, "starpu_conf_init failed: %s", strerror(-rc));
  conf.ncpus = ncpus;
  conf.ncuda = 0;
  conf.nopencl = 0;
  conf.nmic = 0;
  conf.nmpi_ms = 0;
  conf.precedence_over_environment_variables = 1; /* STARPU_NCPU & co. cannot add workers */
  conf.catch_signals = 0;                         /* leave the process's signal handlers */
  conf.bus_calibrate = 0;
  conf.calibrate = 0;
  empty_codelet.where = STARPU_CPU;
  empty_codelet.cpu_funcs[0] = empty_task;
  empty_codelet.nbuffers = 0;
  empty_codelet.name = "empty";
  if ((rc = sp.starpu_init(&conf)) != 0)
    return fail(rc < 0 ? -rc : rc, "starpu_init failed: %s", strerror(rc < 0 ? -rc : rc));
  static int registered;
  sp_state = 2;
  sp_ncpus = ncpus;
  sp.starpu_pause();
  if (!registered++)
    atexit(shutdown_at_exit);
  return 0;
}

static int start(void) {
  return start_ncpus(1);
}

/* Online cores, as the kiln side's graph gets them (kiln_graph_desc.workers = 0). */
static int online_cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int bench_baseline_starpu_available(char *why, size_t why_bytes) {
  int rc = load();
  if (rc != 0 && why != NULL && why_bytes > 0)
    snprintf(why, why_bytes, "%s", reason);
  return rc == 0;
}

int bench_baseline_starpu_setup(void *arg, void **state) {
  (void)arg;
  *state = NULL;
  int rc = start();
  if (rc != 0) {
    fprintf(stderr, "starpu baseline: %s\n", reason);
    return rc;
  }
  *state = &empty_codelet;
  return 0;
}

void bench_baseline_starpu_teardown(void *state) {
  (void)state; /* StarPU stays initialised, paused, until exit */
}

/* Create and submit one task of the empty codelet; synchronous: submit waits for it. */
static int submit(int synchronous) {
  struct starpu_task *task = sp.starpu_task_create();
  if (task == NULL)
    return ENOMEM;
  task->cl = &empty_codelet;
  task->synchronous = synchronous ? 1u : 0u; /* destroy = 1: StarPU frees it when done */
  int rc = sp.starpu_task_submit(task);
  return rc < 0 ? -rc : rc;
}

int bench_baseline_starpu_burst_10000(void *state, uint64_t iters) {
  (void)state;
  int rc = 0;
  sp.starpu_resume();
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    for (unsigned k = 0; k < BURST && rc == 0; k++)
      rc = submit(0);
    int w = sp.starpu_task_wait_for_all();
    if (rc == 0 && w != 0)
      rc = w < 0 ? -w : w;
  }
  sp.starpu_pause();
  return rc;
}

int bench_baseline_starpu_roundtrip(void *state, uint64_t iters) {
  (void)state;
  int rc = 0;
  sp.starpu_resume();
  for (uint64_t i = 0; i < iters && rc == 0; i++)
    rc = submit(1);
  sp.starpu_pause();
  return rc;
}

/* The graph suite's DAGs (bench/graph_suite.c): layers x width tasks of a tiny codelet
 * (one counter increment), each task depending on every task of the layer before
 * (starpu_task_declare_deps_array), submitted and waited for as a whole each
 * iteration. The task structures are allocated once and initialised and cleaned each
 * iteration (StarPU's cheapest way to run the same tasks again). */
static volatile uint64_t dag_counter;

static void tiny_task(void *buffers[], void *arg) {
  (void)buffers;
  (void)arg;
  dag_counter = dag_counter + 1;
}

static struct starpu_codelet tiny_codelet;

static void work_task(void *buffers[], void *arg) {
  (void)buffers;
  (void)arg;
  volatile uint64_t sink = 42; /* the work's result is stored here: kept */
  bench_host_work(&sink);
}

static struct starpu_codelet work_codelet;

typedef struct sp_dag {
  bench_dag_shape shape;
  struct starpu_task *tasks;
  struct starpu_task **prev; /* width pointers: the layer before */
} sp_dag;

int bench_baseline_starpu_dag_setup(void *arg, void **state) {
  *state = NULL;
  const bench_dag_shape *shape = arg;
  int rc = shape->work ? start_ncpus(online_cores()) : start();
  if (rc != 0) {
    fprintf(stderr, "starpu baseline: %s\n", reason);
    return rc;
  }
  tiny_codelet.where = STARPU_CPU;
  tiny_codelet.cpu_funcs[0] = tiny_task;
  tiny_codelet.nbuffers = 0;
  tiny_codelet.name = "tiny";
  work_codelet.where = STARPU_CPU;
  work_codelet.cpu_funcs[0] = work_task;
  work_codelet.nbuffers = 0;
  work_codelet.name = "work";
  sp_dag *d = calloc(1, sizeof *d);
  size_t n = (size_t)shape->layers * shape->width;
  if (d == NULL || (d->tasks = calloc(n, sizeof *d->tasks)) == NULL ||
      (d->prev = calloc(shape->width, sizeof *d->prev)) == NULL) {
    if (d != NULL)
      free(d->tasks);
    free(d);
    return ENOMEM;
  }
  d->shape = *shape;
  *state = d;
  return 0;
}

void bench_baseline_starpu_dag_teardown(void *state) {
  sp_dag *d = state;
  if (d == NULL)
    return;
  free(d->prev);
  free(d->tasks);
  free(d);
}

int bench_baseline_starpu_dag_run(void *state, uint64_t iters) {
  sp_dag *d = state;
  unsigned L = d->shape.layers, W = d->shape.width;
  int rc = 0;
  sp.starpu_resume();
  for (uint64_t it = 0; it < iters && rc == 0; it++) {
    size_t submitted = 0;
    for (unsigned l = 0; l < L && rc == 0; l++)
      for (unsigned i = 0; i < W && rc == 0; i++) {
        struct starpu_task *t = &d->tasks[(size_t)l * W + i];
        sp.starpu_task_init(t);
        t->cl = d->shape.work ? &work_codelet : &tiny_codelet;
        t->destroy = 0;
        if (l > 0) {
          for (unsigned k = 0; k < W; k++)
            d->prev[k] = &d->tasks[(size_t)(l - 1) * W + k];
          sp.starpu_task_declare_deps_array(t, W, d->prev);
        }
        int s = sp.starpu_task_submit(t);
        if (s != 0)
          rc = s < 0 ? -s : s;
        else
          submitted++;
      }
    int w = sp.starpu_task_wait_for_all();
    if (rc == 0 && w != 0)
      rc = w < 0 ? -w : w;
    for (size_t k = 0; k < submitted; k++)
      sp.starpu_task_clean(&d->tasks[k]);
  }
  sp.starpu_pause();
  return rc;
}

#else /* built without <starpu.h> */

int bench_baseline_starpu_available(char *why, size_t why_bytes) {
  if (why != NULL && why_bytes > 0)
    snprintf(why, why_bytes,
             "kiln was built without StarPU's headers (Debian: libstarpu-dev), so the "
             "StarPU baseline cannot use " STARPU_LIBRARY);
  return 0;
}

int bench_baseline_starpu_setup(void *arg, void **state) {
  (void)arg;
  *state = NULL;
  fprintf(stderr, "starpu baseline: built without StarPU's headers (libstarpu-dev)\n");
  return ENOSYS;
}

void bench_baseline_starpu_teardown(void *state) {
  (void)state;
}

int bench_baseline_starpu_burst_10000(void *state, uint64_t iters) {
  (void)state;
  (void)iters;
  return ENOSYS;
}

int bench_baseline_starpu_roundtrip(void *state, uint64_t iters) {
  (void)state;
  (void)iters;
  return ENOSYS;
}

int bench_baseline_starpu_dag_setup(void *arg, void **state) {
  (void)arg;
  *state = NULL;
  return ENOSYS;
}

void bench_baseline_starpu_dag_teardown(void *state) {
  (void)state;
}

int bench_baseline_starpu_dag_run(void *state, uint64_t iters) {
  (void)state;
  (void)iters;
  return ENOSYS;
}

#endif

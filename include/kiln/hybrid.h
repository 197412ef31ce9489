/* SPDX-License-Identifier: MIT */
/* Hybrid dispatch (docs/hybrid.md): one piece of work that can run on several targets
 * (a kiln context each: the CPU backend's, a GPU's), sent each time to the target that
 * is expected to finish it first. Per task class and per target kiln learns a cost
 * model of time against size from the runs it times (history in log2-size buckets,
 * piecewise linear between them, as StarPU's history models), explores targets it
 * knows little about at a bounded, seeded rate, and keeps the models in a file across
 * runs. All calls are thread-safe: many threads may run tasks at once. */
#ifndef KILN_HYBRID_H
#define KILN_HYBRID_H
#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_hybrid_s *kiln_hybrid;
typedef struct kiln_hybrid_task_s *kiln_hybrid_task;

#define KILN_HYBRID_MAX_TARGETS 8
/* Longest task name (bytes, without the terminator). */
#define KILN_HYBRID_NAME_MAX 63

/* How kiln_hybrid_decide chooses. */
typedef enum kiln_hybrid_mode {
  /* The target with the least expected finish for the size: its learned time plus
   * that of the dispatcher's runs in flight there; targets without enough samples at a
   * size are calibrated first; explore_rate of the decisions try another target
   * (docs/hybrid.md "Decisions"). */
  KILN_HYBRID_ADAPTIVE = 0,
  /* Always targets[fixed_target] ("CPU only" / "GPU only"); still timed and learned. */
  KILN_HYBRID_FIXED = 1,
  /* By size: n < thresholds[0] -> target 0, n < thresholds[1] -> target 1, ...,
   * else the last target (target_count - 1 ascending thresholds). */
  KILN_HYBRID_THRESHOLD = 2
} kiln_hybrid_mode;

/* kiln_hybrid_desc.flags */
enum {
  KILN_HYBRID_NO_EXPLORATION = 1u << 0, /* ADAPTIVE never explores (explore_rate unused) */
  KILN_HYBRID_NO_AUTOSAVE = 1u << 1     /* destroy does not save to model_path */
};

typedef struct kiln_hybrid_target {
  kiln_context context; /* required; the dispatcher does not own it */
  const char *label;    /* for stats and messages; NULL: the device, e.g. "opencl:0" */
} kiln_hybrid_target;

typedef struct kiln_hybrid_desc {
  size_t struct_size;
  const kiln_hybrid_target *targets; /* required */
  size_t target_count;               /* 1..KILN_HYBRID_MAX_TARGETS */
  kiln_hybrid_mode mode;
  unsigned fixed_target;    /* KILN_HYBRID_FIXED: the index into targets */
  const size_t *thresholds; /* KILN_HYBRID_THRESHOLD: target_count - 1, ascending */
  unsigned flags;           /* KILN_HYBRID_* */
  double explore_rate;      /* ADAPTIVE: fraction of decisions that explore, (0, 1];
                               0: the default 0.05 */
  uint64_t seed;            /* exploration's pseudo-random sequence (per task, from the
                               seed and the task's name); 0: a fixed default */
  unsigned min_samples;     /* ADAPTIVE: samples a (target, size bucket) needs before
                               the model is trusted there; 0: 2 */
  unsigned window;          /* samples a bucket averages over (older ones fade); 0: 16 */
  const char *model_path;   /* absolute path of the model file: loaded at create, written
                               by kiln_hybrid_save and by destroy; NULL: none */
} kiln_hybrid_desc;
#define KILN_HYBRID_DESC_INIT \
  { sizeof(kiln_hybrid_desc), NULL, 0, KILN_HYBRID_ADAPTIVE, 0, NULL, 0, 0.0, 0, 0, 0, NULL }

/* A user function for one target: do the work of size n with `context`, return when
 * it is done (kiln times the call). */
typedef kiln_status (*kiln_hybrid_fn)(kiln_context context, size_t n, void *user);

/* A task class ("codelet"): either user functions per target, or one kiln dialect
 * kernel compiled for every target and launched over host arrays (the time then
 * includes the transfers, as the data must move to run there). */
typedef struct kiln_hybrid_task_desc {
  size_t struct_size;
  const char *name;          /* required, 1..KILN_HYBRID_NAME_MAX bytes; names the model
                                in the model file */
  const kiln_hybrid_fn *fns; /* target_count entries (NULL: the target cannot run it) */
  const char *source;        /* or: kiln dialect source (exactly one of fns, source) */
  const char *kernel;        /* the kernel of source to launch; required with source */
  const char *options;       /* compiler options; may be NULL */
} kiln_hybrid_task_desc;
#define KILN_HYBRID_TASK_DESC_INIT \
  { sizeof(kiln_hybrid_task_desc), NULL, NULL, NULL, NULL, NULL }

/* Arguments of a kernel task's run, one per kernel parameter. Arrays hold n elements
 * of `bytes` bytes each (the launch is 1-D over n work-items). */
typedef enum kiln_hybrid_arg_kind {
  KILN_HYBRID_ARG_IN = 1,    /* copied to the target before the launch (const pointer) */
  KILN_HYBRID_ARG_OUT = 2,   /* copied back after it */
  KILN_HYBRID_ARG_INOUT = 3, /* both */
  KILN_HYBRID_ARG_SCALAR = 4 /* by value: `bytes` bytes at `host` */
} kiln_hybrid_arg_kind;
typedef struct kiln_hybrid_arg {
  kiln_hybrid_arg_kind kind;
  void *host;   /* the array (n * bytes) or the scalar's bytes */
  size_t bytes; /* element size of an array; size of a scalar */
} kiln_hybrid_arg;

/* Why a decision went where it did. */
typedef enum kiln_hybrid_reason {
  KILN_HYBRID_REASON_MODEL = 0,     /* least expected time */
  KILN_HYBRID_REASON_CALIBRATE = 1, /* the target lacks samples at this size */
  KILN_HYBRID_REASON_EXPLORE = 2,   /* the seeded exploration picked it */
  KILN_HYBRID_REASON_FIXED = 3,     /* FIXED mode */
  KILN_HYBRID_REASON_THRESHOLD = 4, /* THRESHOLD mode */
  KILN_HYBRID_REASON_ONLY = 5       /* the only target able to run it (others lost or
                                       without a function) */
} kiln_hybrid_reason;

/* One target's counters for a task. */
typedef struct kiln_hybrid_target_stats {
  size_t struct_size;
  uint64_t runs;     /* runs recorded (kiln_hybrid_run's and kiln_hybrid_record's) */
  uint64_t total_ns; /* their time */
  uint64_t explored; /* decisions that explored it */
  uint64_t failures; /* runs that failed (not recorded in the model) */
  int lost;          /* 1: its device was lost; decisions avoid it */
  char label[64];    /* the target's label */
} kiln_hybrid_target_stats;
#define KILN_HYBRID_TARGET_STATS_INIT                  \
  {                                                    \
    sizeof(kiln_hybrid_target_stats), 0, 0, 0, 0, 0, { \
      0                                                \
    }                                                  \
  }

KILN_BEGIN_DECLS

/* Validate desc, load desc->model_path when it exists (a damaged or foreign file is
 * ignored with a warning). */
KILN_API kiln_status kiln_hybrid_create(const kiln_hybrid_desc *desc, kiln_hybrid *hybrid);
/* Saves to model_path (unless KILN_HYBRID_NO_AUTOSAVE; a failure is logged as a
 * warning), destroys every task. No call of the dispatcher may be running. NULL is a
 * no-op. */
KILN_API kiln_status kiln_hybrid_destroy(kiln_hybrid hybrid);
/* Write every task's model (and those of the file's other tasks) to model_path:
 * a temporary file in the same folder, then rename, so readers in other processes
 * see the old or the new file whole. KILN_ERROR_INVALID_STATE without a model_path. */
KILN_API kiln_status kiln_hybrid_save(kiln_hybrid hybrid);

/* Create a task class; a kernel task compiles its program on every target (a failure
 * is KILN_ERROR_COMPILE_FAILED naming the target). Stored models of the same name and
 * targets are loaded into it. Destroyed with the dispatcher. */
KILN_API kiln_status kiln_hybrid_task_create(kiln_hybrid hybrid, const kiln_hybrid_task_desc *desc,
                                             kiln_hybrid_task *task);

/* The target the mode picks for size n (ADAPTIVE: may explore, which advances the
 * task's seeded sequence). why may be NULL. */
KILN_API kiln_status kiln_hybrid_decide(kiln_hybrid_task task, size_t n, unsigned *target,
                                        kiln_hybrid_reason *why);
/* Add one timing: the task of size n took elapsed_ns on target. */
KILN_API kiln_status kiln_hybrid_record(kiln_hybrid_task task, unsigned target, size_t n,
                                        uint64_t elapsed_ns);
/* The model's expected time of size n on target; KILN_ERROR_INVALID_STATE while the
 * target has no sample. */
KILN_API kiln_status kiln_hybrid_predict(kiln_hybrid_task task, unsigned target, size_t n,
                                         uint64_t *expected_ns);
/* Decide, run the target's function, time it, record it. ran_on (may be NULL) gets
 * the target. A function task only (user is passed to the function). A failure is
 * returned as the function returned it and counted, not learned; a DEVICE_LOST marks
 * the target lost, and later decisions avoid it. */
KILN_API kiln_status kiln_hybrid_run(kiln_hybrid_task task, size_t n, void *user, unsigned *ran_on);
/* The same for a kernel task: copy the inputs to the chosen target, launch over n
 * work-items, copy the outputs back (all timed). */
KILN_API kiln_status kiln_hybrid_run_kernel(kiln_hybrid_task task, size_t n,
                                            const kiln_hybrid_arg *args, size_t count,
                                            unsigned *ran_on);
/* The learned crossover between two targets: the smallest size from which `large`
 * is expected to be faster than `small` up to the largest size either has seen.
 * SIZE_MAX when `large` is never expected faster there. KILN_ERROR_INVALID_STATE
 * while either has no sample. */
KILN_API kiln_status kiln_hybrid_crossover(kiln_hybrid_task task, unsigned small, unsigned large,
                                           size_t *n);
KILN_API kiln_status kiln_hybrid_get_stats(kiln_hybrid_task task, unsigned target,
                                           kiln_hybrid_target_stats *stats);
/* The task's statistics and model as one JSON object (schemas/hybrid_stats.json) into
 * buf (bytes, always terminated); *needed (may be NULL) receives the length it needs
 * without the terminator; a short buf is KILN_ERROR_INVALID_ARGUMENT saying so. */
KILN_API kiln_status kiln_hybrid_stats_json(kiln_hybrid_task task, char *buf, size_t bytes,
                                            size_t *needed);

KILN_END_DECLS
#endif

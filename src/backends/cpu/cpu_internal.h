/* SPDX-License-Identifier: MIT */
/* The CPU backend's parts that run kiln-dialect kernels (docs/kernels.md, "The CPU
 * backend"): compile.c (the host compiler, C text -> shared object bytes -> loaded
 * object), fiber.c (one fiber per work-item for kernels with barriers, a hand-written
 * context switch), workers.c (helper threads that share a launch's work-groups),
 * kexec.c (programs, kernels and launches of source kernels). cpu.c holds the ops
 * table and the stream workers. */
#ifndef KILN_CPU_INTERNAL_H
#define KILN_CPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/backend.h"

/* ---- compile.c. The compile cache (src/kcache) hooks in here: the key's backend
 * facts are kiln__cpu_cache_id's line, the cached value is kiln__cpu_compile's shared
 * object, and kiln__cpu_load turns cached bytes back into a loaded object. */

/* The compiler's identity and every flag kiln adds for `options` (one line, for a
 * cache key): the compiler's absolute path, its `--version` first line, the flags.
 * Runs `cc --version` once per compiler path (cached in the process). */
kiln_status kiln__cpu_cache_id(const char *options, char *out, size_t out_bytes);
/* Compile C text (kiln__dialect_rewrite's output for KILN__TARGET_C) with the host
 * compiler (KILN_CC, an absolute path, else `cc` from PATH) into a shared object.
 * The compiler runs through posix_spawn with an argument array (no shell), in a
 * private 0700 directory made by mkdtemp and removed afterwards; `options` must pass
 * the allow-list (KILN_ERROR_INVALID_ARGUMENT naming the option otherwise). Success:
 * *so (kiln__alloc'd, *so_bytes). A compile error: KILN_ERROR_COMPILE_FAILED, the whole
 * log in kiln_last_build_log(), its first error line in the message; no compiler:
 * KILN_ERROR_COMPILE_FAILED saying where kiln looked. `name` is for messages. */
kiln_status kiln__cpu_compile(const char *text, size_t len, const char *options, const char *name,
                              void **so, size_t *so_bytes);
/* Load shared-object bytes (from kiln__cpu_compile or the cache): written to a private
 * directory, dlopen'ed (RTLD_NOW | RTLD_LOCAL), the file removed (in ASan builds at
 * unload, so reports name the kernel's lines). *object for kiln__cpu_symbol and
 * kiln__cpu_unload. */
kiln_status kiln__cpu_load(const void *so, size_t so_bytes, const char *name, void **object);
void *kiln__cpu_symbol(void *object, const char *name);
void kiln__cpu_unload(void *object);

/* ---- the work-item record: the same layout as `kiln__wi` in the C prelude
 * (rewrite_c.c). local: the group's storage of the kernel's KILN_LOCAL_ARRAYs (one
 * block per participating thread, reused by the groups it runs). */
typedef struct kiln__cpu_wi {
  size_t lid[3], grp[3], lsz[3], ngr[3], gsz[3];
  void (*barrier)(void *ctx);
  void *barrier_ctx;
  unsigned char *local;
} kiln__cpu_wi;
/* What a kernel object gets from libkiln at load (`kiln__rt` in the prelude, through
 * its kiln__bind): where the record of the work-item running on the calling thread
 * is, for helper functions, which have no record parameter — libkiln's initial-exec
 * thread-local, at current_offset bytes from __builtin_thread_pointer() (static TLS:
 * the same offset in every thread). Kernel objects hold no thread-local of their
 * own: dynamic TLS in dlopen'ed objects crashes LeakSanitizer's tracer at exit
 * (google/sanitizers#1353). */
typedef struct kiln__cpu_rt {
  ptrdiff_t current_offset;
} kiln__cpu_rt;
/* libkiln's thread-local current record (kexec.c): set by run_groups for each thread's
 * groups (loop fission keeps that record's lid current), by the fibers at each switch
 * to a work-item, and by the kernel objects' group entries (their copy) where helpers
 * read it. */
void kiln__cpu_set_current(const kiln__cpu_wi *wi);
typedef void (*kiln__cpu_item_fn)(const kiln__cpu_wi *wi, void *const *args);
typedef void (*kiln__cpu_group_fn)(kiln__cpu_wi *wi, void *const *args);
/* A whole group by loop fission (rewrite: kiln__fission_NAME): storage holds
 * kiln__fbytes_NAME(items) bytes; returns nonzero for a barrier in divergent control. */
typedef int (*kiln__cpu_fission_fn)(kiln__cpu_wi *wi, void *const *args, unsigned char *storage);

/* ---- fiber.c: the work-items of one work-group as fibers on the calling thread. */
typedef struct kiln__cpu_fibers kiln__cpu_fibers;
/* Room for groups of up to `items` work-items (stacks of KILN__CPU_FIBER_STACK bytes
 * each). NULL when out of memory. */
kiln__cpu_fibers *kiln__cpu_fibers_create(size_t items);
void kiln__cpu_fibers_destroy(kiln__cpu_fibers *f);
/* Run every work-item of the group `group` (its grp/lsz/ngr/gsz set; lid ignored) as
 * one fiber each, fn(wi, args) with each one's own lid; kiln_barrier() switches to the
 * next work-item. Returns false when the work-items did not all pass the same number
 * of barriers (a barrier in divergent control flow): the group ran to its end anyway. */
bool kiln__cpu_fibers_run(kiln__cpu_fibers *f, const kiln__cpu_wi *group, kiln__cpu_item_fn fn,
                          void *const *args);

/* ---- workers.c: helper threads (kiln__cpu_count() - 1, at most 15, started at the
 * first parallel launch) that join a job. run(job, participant) takes work until none
 * is left; participant 0 is the caller. Returns once every participant has left. */
typedef struct kiln__cpu_job {
  void (*run)(struct kiln__cpu_job *job, unsigned participant);
  unsigned max_participants; /* including the caller */
  unsigned joined;           /* workers.c (under its lock) */
  unsigned active;
} kiln__cpu_job;
void kiln__cpu_parallel(kiln__cpu_job *job);
unsigned kiln__cpu_helpers(void);

/* ---- kexec.c: the ops of source kernels. */
kiln_status kiln__cpu_program_build(kiln__program *program, const char *source, size_t bytes,
                                    const char *options);
void kiln__cpu_program_destroy(kiln__program *program);
/* The compile cache's ops (backend.h): the key's facts, the shared object out and back
 * in, and a second reference to a live program of the same key. */
kiln_status kiln__cpu_program_cache_id(kiln__program *program, const char *options, char *out,
                                       size_t out_bytes);
kiln_status kiln__cpu_program_export(kiln__program *program, void **binary, size_t *bytes);
kiln_status kiln__cpu_program_import(kiln__program *program, const void *binary, size_t bytes,
                                     const char *options);
kiln_status kiln__cpu_program_share(kiln__program *program, kiln__program *from);
kiln_status kiln__cpu_kernel_create(kiln__kernel *kernel, kiln__program *program);
void kiln__cpu_kernel_destroy(kiln__kernel *kernel);
/* Run a launch of a source kernel (kernel->source) on the calling stream worker and
 * the helpers; the op's cause is set on failure. */
kiln_status kiln__cpu_run_source(kiln__op *op);
/* The launch_config op (native kernels too). */
void kiln__cpu_launch_config(const kiln__kernel *kernel, const kiln_range *range, size_t local[3],
                             char *why, size_t why_bytes);

#endif

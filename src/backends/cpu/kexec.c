/* SPDX-License-Identifier: MIT */
/* Source kernels on the CPU backend: a program is the shared object the host compiler
 * made of the rewritten dialect (compile.c); a kernel is its entry points (the C
 * rewrite's kiln__group_NAME / kiln__item_NAME); a launch runs the work-groups on the
 * stream's worker and, for large launches, the helper threads (workers.c). A kernel
 * without barriers runs each group as one loop over its work-items; a kernel with
 * barriers runs each group through its loop-fission entry (kiln__fission_NAME, with
 * per-thread storage for its private variables) where the rewrite wrote one, else each
 * work-item as a fiber (fiber.c). Each participating thread allocates one block per
 * launch for the group's local memory (parameters and KILN_LOCAL_ARRAYs) which its
 * groups reuse. A loaded object is bound to libkiln (kiln__bind) before any kernel of
 * it runs. Ops are called as the contract says (program_build/kernel_create on the
 * caller's thread, launches on the worker). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

/* Launches with fewer work-items than this run on the worker alone (waking a helper
 * costs tens of microseconds). */
#define PARALLEL_MIN_ITEMS ((size_t)32768)
/* The local size kiln picks in dimension 0 when the caller gives none: a loop of 1024
 * iterations per call for kernels without barriers (the call costs nothing next to
 * it), 64 fibers for kernels with barriers (fiber stacks are per work-item). */
#define AUTO_LOCAL_LOOP 1024u
#define AUTO_LOCAL_FIBERS 64u
/* ... and 256 for kernels with barriers run by loop fission (each region a loop over
 * the group: longer loops, fewer region set-ups; what PoCL and GPUs favour too). */
#define AUTO_LOCAL_FISSION 256u
/* Work-items per group for kernels with barriers: each is a fiber with its own stack. */
#define MAX_FIBER_GROUP 1024u
/* Loop fission's per-work-item storage of one group, per thread, at most this much
 * (a larger need runs the launch on fibers). */
#define MAX_FISSION_PRIVATE ((size_t)64 << 20)

/* The record of the work-item running on this thread, for kernel objects' helper
 * functions (kiln__cpu_rt). initial-exec: libkiln's TLS is static (loaded with the
 * program), at one offset from the thread pointer in every thread, which the kernel
 * objects read directly. */
static _Thread_local const kiln__cpu_wi *current_wi __attribute__((tls_model("initial-exec")));

void kiln__cpu_set_current(const kiln__cpu_wi *wi) {
  current_wi = wi;
}

/* Shared by the program and its kernels (a kernel may outlive its program handle): the
 * last of them unloads the object. */
typedef struct cpu_program {
  _Atomic unsigned refs;
  void *dl;
  void *so; /* the shared object's bytes (for the compile cache's export) */
  size_t so_bytes;
} cpu_program;

typedef struct cpu_kernel {
  cpu_program *program; /* a reference */
  kiln__cpu_item_fn item;
  kiln__cpu_group_fn group;
  kiln__cpu_fission_fn fission; /* NULL: fibers for a kernel with barriers */
  size_t (*fission_bytes)(size_t items);
  size_t array_bytes; /* its KILN_LOCAL_ARRAYs: the group's storage (kiln__lbytes_NAME) */
  bool barrier;
} cpu_kernel;

/* Load the object and hand it libkiln's side (kiln__bind); on failure nothing is left
 * loaded. */
static kiln_status load_bound(cpu_program *p, const char *name) {
  kiln_status st = kiln__cpu_load(p->so, p->so_bytes, name, &p->dl);
  if (st != KILN_SUCCESS)
    return st;
  void (*bind)(const kiln__cpu_rt *rt) = NULL;
  void *sym = kiln__cpu_symbol(p->dl, "kiln__bind");
  if (!sym) {
    kiln__cpu_unload(p->dl);
    p->dl = NULL;
    return kiln__error_native(KILN_ERROR_COMPILE_FAILED, KILN_BACKEND_CPU, 0,
                              "CPU_KERNEL_NOT_FOUND",
                              "the shared object of program '%s' has no kiln__bind: it was not "
                              "made from the C prelude of this kiln",
                              name);
  }
  /* ISO C has no cast from void * to a function pointer: copy through void ** */
  *(void **)(void *)&bind = sym;
  kiln__cpu_rt rt;
  rt.current_offset = (char *)(void *)&current_wi - (char *)__builtin_thread_pointer();
  bind(&rt);
  return KILN_SUCCESS;
}

kiln_status kiln__cpu_program_build(kiln__program *program, const char *source, size_t bytes,
                                    const char *options) {
  cpu_program *p = kiln__calloc(1, sizeof *p);
  if (!p)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory building %s",
                       program->name);
  /* A compile cache hit does not come here: the core calls program_import with the
   * shared object that program_export gave it after an earlier build. */
  kiln_status st = kiln__cpu_compile(source, bytes, options, program->name, &p->so, &p->so_bytes);
  char retry[1024];
  if (st == KILN_ERROR_COMPILE_FAILED && strstr(source, "#ifndef KILN__NO_FISSION") &&
      (size_t)snprintf(retry, sizeof retry, "%s -DKILN__NO_FISSION", options ? options : "") <
          sizeof retry) {
    /* The C that loop fission wrote should compile whenever the kernel does: if not,
     * the kernels run on fibers (and a user's own error fails the second try too). */
    char first[160];
    kiln__strlcpy(first, kiln_last_error()->message, sizeof first);
    st = kiln__cpu_compile(source, bytes, retry, program->name, &p->so, &p->so_bytes);
    if (st == KILN_SUCCESS)
      kiln__log(KILN_LOG_WARN,
                "program %s: the C of its kernels' loop fission did not compile (%s): they run "
                "on fibers; this is a kiln bug, please report it with the source",
                program->name, first);
  }
  if (st == KILN_SUCCESS)
    st = load_bound(p, program->name);
  if (st != KILN_SUCCESS) {
    if (p->so)
      kiln__free(p->so, p->so_bytes ? p->so_bytes : 1);
    kiln__free(p, sizeof *p);
    return st;
  }
  atomic_init(&p->refs, 1);
  program->native = p;
  return KILN_SUCCESS;
}

/* ---- the compile cache's ops (src/kcache): the key's backend facts are the compiler's
 * identity and flags (kiln__cpu_cache_id; the core adds the host CPU's model and
 * features for a CPU device), the cached value the shared object's bytes. */
kiln_status kiln__cpu_program_cache_id(kiln__program *program, const char *options, char *out,
                                       size_t out_bytes) {
  (void)program;
  return kiln__cpu_cache_id(options, out, out_bytes);
}

kiln_status kiln__cpu_program_export(kiln__program *program, void **binary, size_t *bytes) {
  const cpu_program *p = program->native;
  *binary = NULL;
  *bytes = 0;
  if (!p->so || !p->so_bytes)
    return kiln__error(KILN_ERROR_UNSUPPORTED, "program %s kept no shared object to cache",
                       program->name);
  void *copy = kiln__alloc(p->so_bytes);
  if (!copy)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory caching %s",
                       program->name);
  memcpy(copy, p->so, p->so_bytes);
  *binary = copy;
  *bytes = p->so_bytes;
  return KILN_SUCCESS;
}

kiln_status kiln__cpu_program_import(kiln__program *program, const void *binary, size_t bytes,
                                     const char *options) {
  (void)options;
  if (!bytes)
    return kiln__error(KILN_ERROR_BACKEND, "a cached CPU program of 0 bytes");
  cpu_program *p = kiln__calloc(1, sizeof *p);
  void *so = p ? kiln__alloc(bytes) : NULL;
  if (!so) {
    if (p)
      kiln__free(p, sizeof *p);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory loading %s",
                       program->name);
  }
  memcpy(so, binary, bytes);
  p->so = so;
  p->so_bytes = bytes;
  kiln_status st = load_bound(p, program->name);
  if (st != KILN_SUCCESS) {
    kiln__free(so, bytes);
    kiln__free(p, sizeof *p);
    return st;
  }
  atomic_init(&p->refs, 1);
  program->native = p;
  return KILN_SUCCESS;
}

kiln_status kiln__cpu_program_share(kiln__program *program, kiln__program *from) {
  cpu_program *p = from->native;
  atomic_fetch_add(&p->refs, 1);
  program->native = p;
  return KILN_SUCCESS;
}

static void program_unref(cpu_program *p) {
  if (atomic_fetch_sub(&p->refs, 1) != 1)
    return;
  kiln__cpu_unload(p->dl);
  kiln__free(p->so, p->so_bytes ? p->so_bytes : 1);
  kiln__free(p, sizeof *p);
}

void kiln__cpu_program_destroy(kiln__program *program) {
  if (program->native)
    program_unref(program->native);
  program->native = NULL;
}

static void *lookup(void *dl, const char *prefix, const char *name) {
  char sym[96];
  snprintf(sym, sizeof sym, "%s%s", prefix, name);
  return kiln__cpu_symbol(dl, sym);
}

kiln_status kiln__cpu_kernel_create(kiln__kernel *kernel, kiln__program *program) {
  cpu_program *p = program->native;
  const unsigned *flags = lookup(p->dl, "kiln__flags_", kernel->name);
  void *item = lookup(p->dl, "kiln__item_", kernel->name);
  void *group = lookup(p->dl, "kiln__group_", kernel->name);
  void *fission = flags && (*flags & 2u) ? lookup(p->dl, "kiln__fission_", kernel->name) : NULL;
  void *fission_bytes =
      flags && (*flags & 2u) ? lookup(p->dl, "kiln__fbytes_", kernel->name) : NULL;
  void *lbytes = flags && (*flags & 4u) ? lookup(p->dl, "kiln__lbytes_", kernel->name) : NULL;
  const char *why = lookup(p->dl, "kiln__why_", kernel->name);
  if (!flags || !item || !group || ((*flags & 2u) && (!fission || !fission_bytes)) ||
      ((*flags & 4u) && !lbytes))
    return kiln__error_native(KILN_ERROR_INVALID_ARGUMENT, KILN_BACKEND_CPU, 0,
                              "CPU_KERNEL_NOT_FOUND",
                              "the shared object of program '%s' has no entry for kernel '%s'",
                              program->name, kernel->name);
  cpu_kernel *k = kiln__calloc(1, sizeof *k);
  if (!k)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating kernel '%s'",
                       kernel->name);
  /* ISO C has no cast from void * to a function pointer: copy through void ** */
  *(void **)(void *)&k->item = item;
  *(void **)(void *)&k->group = group;
  k->barrier = (*flags & 1u) != 0;
  if (lbytes) {
    size_t (*array_bytes)(void) = NULL;
    *(void **)(void *)&array_bytes = lbytes;
    k->array_bytes = array_bytes();
  }
  /* KILN_CPU_FISSION=0 keeps every kernel with barriers on fibers (to compare) */
  if (fission && kiln__env_flag("KILN_CPU_FISSION", 1)) {
    *(void **)(void *)&k->fission = fission;
    *(void **)(void *)&k->fission_bytes = fission_bytes;
  }
  kiln__log(KILN_LOG_DEBUG, "kernel '%s' on cpu: %s", kernel->name,
            fission && !k->fission ? "fibers: KILN_CPU_FISSION=0"
            : why                  ? why
                                   : "(the program names no path)");
  k->program = p;
  atomic_fetch_add(&p->refs, 1);
  kernel->native = k;
  kernel->max_group_size = k->barrier ? MAX_FIBER_GROUP : 0;
  kernel->local_align_bytes = 64;
  /* the core checks it, with the launch's local parameters, against local_mem_bytes */
  kernel->static_local_bytes = k->array_bytes;
  return KILN_SUCCESS;
}

void kiln__cpu_kernel_destroy(kiln__kernel *kernel) {
  if (kernel->source && kernel->native) {
    cpu_kernel *k = kernel->native;
    program_unref(k->program);
    kiln__free(k, sizeof *k);
  }
  kernel->native = NULL;
}

/* ------------------------------------------------------------- launches */
typedef struct launch_job {
  kiln__cpu_job job;
  const cpu_kernel *k;
  kiln__cpu_wi group; /* grp and lid unset */
  size_t groups, chunk, items_per_group;
  size_t private_bytes; /* loop fission: per-work-item storage of a group */
  bool fission;
  _Atomic size_t next, done;
  _Atomic int divergent;
  uint32_t arg_count;
  void *args[KILN_MAX_KERNEL_ARGS]; /* local-memory entries hold their offset */
  bool is_local[KILN_MAX_KERNEL_ARGS];
  size_t local_bytes;  /* the block: local parameters (each part 64-byte aligned), */
  size_t array_offset; /* then, from here, the kernel's local arrays */
} launch_job;

static void run_groups(kiln__cpu_job *job, unsigned participant) {
  launch_job *L = (launch_job *)(void *)job;
  (void)participant;
  void *args[KILN_MAX_KERNEL_ARGS];
  unsigned char *local = NULL, *priv = NULL;
  kiln__cpu_fibers *fibers = NULL;
  if (L->local_bytes && !(local = kiln__alloc_aligned(L->local_bytes, 64)))
    return;
  if (L->private_bytes && !(priv = kiln__alloc_aligned(L->private_bytes, 64))) {
    if (local)
      kiln__free_aligned(local, L->local_bytes, 64);
    return;
  }
  if (L->k->barrier && !L->fission && !(fibers = kiln__cpu_fibers_create(L->items_per_group))) {
    if (local)
      kiln__free_aligned(local, L->local_bytes, 64);
    return;
  }
  for (uint32_t i = 0; i < L->arg_count; i++)
    args[i] = L->is_local[i] ? local + (size_t)(uintptr_t)L->args[i] : L->args[i];
  kiln__cpu_wi wi = L->group;
  wi.local = local ? local + L->array_offset : NULL;
  /* what helpers read: loop fission updates this record's lid where helpers use it;
   * kiln__group_NAME publishes its own copy instead, fibers each work-item's */
  kiln__cpu_set_current(&wi);
  for (;;) {
    /* relaxed: the counter only hands out distinct ranges; the job's fields were
     * published by the lock that opened it */
    size_t g = atomic_fetch_add_explicit(&L->next, L->chunk, memory_order_relaxed);
    if (g >= L->groups)
      break;
    size_t end = g + L->chunk < L->groups ? g + L->chunk : L->groups;
    for (size_t i = g; i < end; i++) {
      wi.grp[0] = i % wi.ngr[0];
      wi.grp[1] = (i / wi.ngr[0]) % wi.ngr[1];
      wi.grp[2] = i / (wi.ngr[0] * wi.ngr[1]);
      if (L->fission) {
        if (L->k->fission(&wi, args, priv))
          atomic_store_explicit(&L->divergent, 1, memory_order_relaxed);
      } else if (fibers) {
        if (!kiln__cpu_fibers_run(fibers, &wi, L->k->item, args))
          atomic_store_explicit(&L->divergent, 1, memory_order_relaxed);
      } else {
        L->k->group(&wi, args);
      }
    }
    /* relaxed: read after kiln__cpu_parallel has joined every participant */
    atomic_fetch_add_explicit(&L->done, end - g, memory_order_relaxed);
  }
  kiln__cpu_set_current(NULL);
  if (fibers)
    kiln__cpu_fibers_destroy(fibers);
  if (priv)
    kiln__free_aligned(priv, L->private_bytes, 64);
  if (local)
    kiln__free_aligned(local, L->local_bytes, 64);
}

/* The local size of dimension d (global g, the caller's l or 0) for kernel k. */
static size_t pick_local(const cpu_kernel *k, unsigned d, size_t g, size_t l) {
  if (l)
    return l;
  l = d ? 1 : k->fission ? AUTO_LOCAL_FISSION : k->barrier ? AUTO_LOCAL_FIBERS : AUTO_LOCAL_LOOP;
  return l > g ? (g ? g : 1) : l;
}

void kiln__cpu_launch_config(const kiln__kernel *kernel, const kiln_range *r, size_t local[3],
                             char *why, size_t why_bytes) {
  bool given = false;
  for (unsigned d = 0; d < r->dims; d++)
    given = given || r->local[d];
  if (!kernel->source) { /* native: the whole range in one call */
    for (unsigned d = 0; d < 3; d++)
      local[d] = d < r->dims ? r->global[d] : 1;
    snprintf(why, why_bytes,
             "a native C kernel gets its whole range in one call (no "
             "work-groups)");
    return;
  }
  const cpu_kernel *k = kernel->native;
  for (unsigned d = 0; d < 3; d++)
    local[d] = d < r->dims ? pick_local(k, d, r->global[d], r->local[d]) : 1;
  if (given)
    snprintf(why, why_bytes, "the caller's local size");
  else if (k->fission)
    snprintf(why, why_bytes,
             "%u work-items per group in dimension 0 (at most the range): the kernel has "
             "barriers, run by loop fission (one loop over the group between barriers)",
             AUTO_LOCAL_FISSION);
  else if (k->barrier)
    snprintf(why, why_bytes,
             "%u work-items per group in dimension 0 (at most the range): the kernel has "
             "barriers, so each work-item is a fiber with its own stack",
             AUTO_LOCAL_FIBERS);
  else
    snprintf(why, why_bytes,
             "%u work-items per group in dimension 0 (at most the range): the kernel has no "
             "barrier, so a group is one loop and larger groups cost fewer calls",
             AUTO_LOCAL_LOOP);
}

kiln_status kiln__cpu_run_source(kiln__op *op) {
  kiln__kernel *kernel = op->u.launch.kernel;
  const cpu_kernel *k = kernel->native;
  const kiln_range *r = &op->u.launch.range;
  launch_job *L = kiln__calloc(1, sizeof *L);
  if (!L)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  L->k = k;
  size_t items = 1;
  for (unsigned d = 0; d < 3; d++) {
    size_t g = d < r->dims ? r->global[d] : 1;
    size_t l = d < r->dims ? pick_local(k, d, g, r->local[d]) : 1;
    L->group.gsz[d] = g;
    L->group.lsz[d] = l;
    L->group.ngr[d] = (g + l - 1) / l;
    items *= L->group.ngr[d] * l;
  }
  L->items_per_group = L->group.lsz[0] * L->group.lsz[1] * L->group.lsz[2];
  L->groups = L->group.ngr[0] * L->group.ngr[1] * L->group.ngr[2];
  if (k->fission) {
    /* per-work-item copies of the private variables live across barriers; beyond the
     * cap (huge private arrays) the launch runs on fibers */
    L->private_bytes = k->fission_bytes(L->items_per_group);
    L->fission = L->private_bytes <= MAX_FISSION_PRIVATE;
    if (!L->fission) {
      kiln__log(KILN_LOG_DEBUG,
                "kernel '%s': loop fission would keep %zu bytes of private variables per "
                "group of %zu work-items (over %zu): this launch runs on fibers",
                kernel->name, L->private_bytes, L->items_per_group, MAX_FISSION_PRIVATE);
      L->private_bytes = 0;
    }
  }
  L->arg_count = op->u.launch.arg_count;
  for (uint32_t i = 0; i < L->arg_count; i++) {
    kiln__launch_arg *a = &op->u.launch.args[i];
    if (a->kind == KILN_ARG_BUFFER) {
      L->args[i] = a->buffer->native;
    } else if (a->kind == KILN_ARG_SCALAR) {
      L->args[i] = op->u.launch.storage + a->offset;
    } else {
      L->is_local[i] = true;
      L->args[i] = (void *)(uintptr_t)L->local_bytes;
      L->local_bytes += (a->bytes + 63u) & ~(size_t)63u;
    }
  }
  /* the core has checked parameters + arrays against local_mem_bytes: no overflow */
  L->array_offset = L->local_bytes;
  L->local_bytes += (k->array_bytes + 63u) & ~(size_t)63u;
  unsigned participants = 1;
  if (items >= PARALLEL_MIN_ITEMS && L->groups > 1) {
    participants = 1 + kiln__cpu_helpers();
    if (participants > L->groups)
      participants = (unsigned)L->groups;
  }
  L->chunk = L->groups / ((size_t)participants * 16u);
  if (!L->chunk)
    L->chunk = 1;
  L->job.run = run_groups;
  L->job.max_participants = participants;
  kiln__cpu_parallel(&L->job);
  kiln_status st = KILN_SUCCESS;
  if (atomic_load(&L->done) < L->groups) {
    st = KILN_ERROR_OUT_OF_HOST_MEMORY; /* no participant could get its memory */
    kiln__log(KILN_LOG_ERROR,
              "kernel '%s': out of host memory for its local memory (%zu bytes per thread: "
              "%zu of local parameters, %zu of KILN_LOCAL_ARRAYs) or fiber stacks",
              kernel->name, L->local_bytes, L->array_offset, k->array_bytes);
  } else if (atomic_load(&L->divergent)) {
    st = KILN_ERROR_BACKEND;
    op->cause.backend = KILN_BACKEND_CPU;
    op->cause.native_name = "CPU_DIVERGENT_BARRIER";
    op->cause.native_call = "kiln_barrier";
    kiln__log(KILN_LOG_ERROR,
              "kernel '%s': the work-items of a group did not all reach the same barriers (a "
              "kiln_barrier() in divergent control flow, or after a return some took): the "
              "results are undefined, as on every device",
              kernel->name);
  }
  kiln__free(L, sizeof *L);
  return st;
}

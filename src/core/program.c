/* SPDX-License-Identifier: MIT */
/* Programs from kiln-dialect source: kiln parses every kernel signature itself
 * (kparse.c), rewrites the source for the backend (prelude, hidden global-size
 * parameters, CUDA local memory; prelude.c), and hands it to the backend's compiler.
 * Kernels take their parameter kinds from the parsed signature, so launches are checked
 * identically on every backend. The parser and the compiler must read the same text:
 * a NUL within source_bytes is refused, and a parsed kernel the compiled program lacks
 * is reported as such. Compiled programs go through the compile cache (src/kcache)
 * where the backend can export and import binaries. Thread-safe. */
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/kparse.h"
#include "core/levels.h"
#include "core/prelude.h"
#include "kcache/kcache.h"

/* Kernels one program holds (docs/kernels.md); a source with more is refused. */
#define MAX_KERNELS_PER_PROGRAM 64

/* ---- live programs by cache key: a second build of the same key in the same context
 * shares the first's native program (program_share) while the first is alive, so it
 * costs the key's hash and a lookup. Chains under one lock. */
#define LIVE_BUCKETS 256u
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static kiln__program_obj *live[LIVE_BUCKETS];

static unsigned live_bucket(const unsigned char *key) {
  return ((unsigned)key[0] | (unsigned)key[1] << 8) % LIVE_BUCKETS;
}

static void live_remove_locked(kiln__program_obj *p) {
  kiln__program_obj **pp = &live[live_bucket(p->cache_key)];
  while (*pp && *pp != p)
    pp = &(*pp)->cache_next;
  if (*pp)
    *pp = p->cache_next;
  p->cache_listed = false;
  p->cache_next = NULL;
}

/* List p (alive, its key set) as the program of its key in its context. */
static void live_add(kiln__program_obj *p) {
  pthread_mutex_lock(&live_lock);
  unsigned b = live_bucket(p->cache_key);
  p->cache_next = live[b];
  live[b] = p;
  p->cache_listed = true;
  pthread_mutex_unlock(&live_lock);
}

/* Share a live program of (ctx, key) into p: SUCCESS, or an error when there is none
 * (or the backend refused). */
static kiln_status live_share(kiln__program_obj *p, const unsigned char *key) {
  kiln_status st = KILN_ERROR_INVALID_STATE;
  unsigned gen = atomic_load(&p->h.ctx->device->generation);
  pthread_mutex_lock(&live_lock);
  for (kiln__program_obj *q = live[live_bucket(key)]; q; q = q->cache_next)
    if (q->h.ctx == p->h.ctx && q->h.generation == gen && !memcmp(q->cache_key, key, 32) &&
        atomic_load(&q->h.tag) == KILN__TAG_PROGRAM) {
      st = p->h.ops->program_share(&p->view, &q->view);
      break;
    }
  pthread_mutex_unlock(&live_lock);
  return st;
}

void kiln__program_free(kiln__program_obj *p) {
  if (p->cache_listed) {
    pthread_mutex_lock(&live_lock);
    live_remove_locked(p);
    pthread_mutex_unlock(&live_lock);
  }
  if (p->h.ops->program_destroy)
    p->h.ops->program_destroy(&p->view);
  kiln__free(p->funcs, sizeof(kiln__kfunc) * p->func_count);
  p->funcs = NULL;
  kiln__slab_release(&p->h.ctx->programs, p);
}

void kiln__first_error_line(const char *log, const char *compiler, const char *renumber_prefix,
                            kiln__dialect_target target, char *out, size_t n) {
  const char *pick = NULL, *line = log;
  while (line && *line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (!pick && len)
      pick = line;
    for (size_t i = 0; i + 5 <= len; i++)
      if (strncmp(line + i, "error", 5) == 0) {
        pick = line;
        goto found;
      }
    line = end ? end + 1 : NULL;
  }
found:
  if (!pick) {
    snprintf(out, n, "(%s gave no log)", compiler);
    return;
  }
  size_t len = strcspn(pick, "\n");
  size_t plen = renumber_prefix ? strlen(renumber_prefix) : 0;
  char *end = NULL;
  unsigned long line_no =
      plen && strncmp(pick, renumber_prefix, plen) == 0 ? strtoul(pick + plen, &end, 10) : 0;
  unsigned long skip = 1; /* the #line directive */
  for (const char *c = kiln__prelude_of(target); c && *c; c++)
    skip += *c == '\n';
  if (line_no > skip && end && *end == ':') {
    int k = snprintf(out, n, "<source>:%lu%.*s", line_no - skip, (int)(len - (size_t)(end - pick)),
                     end);
    if (k < 0)
      out[0] = '\0';
    return;
  }
  if (len >= n)
    len = n - 1;
  memcpy(out, pick, len);
  out[len] = '\0';
}

/* A NUL byte within source_bytes: kiln's parser reads all `len` bytes while the device
 * compilers (OpenCL's, NVRTC) stop at the first NUL, so the two would see different
 * programs (a kernel after the NUL that kiln knows and the compiler never built).
 * Refused here, before any backend sees the source. */
static kiln_status check_no_nul(const char *source, size_t len) {
  const char *nul = memchr(source, '\0', len);
  if (!nul)
    return KILN_SUCCESS;
  size_t at = (size_t)(nul - source);
  if (at == len - 1) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                "desc->source_bytes is %zu and counts the terminating NUL (offset %zu): the "
                "source's length does not include its terminator",
                len, at);
    kiln__error_suggest("pass desc->source_bytes = %zu (the length without the terminator), or 0 "
                        "for a NUL-terminated source",
                        at);
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  unsigned line, column;
  kiln__kparse_position(source, at, &line, &column);
  kiln__error(KILN_ERROR_INVALID_ARGUMENT,
              "desc->source has a NUL byte at offset %zu (line %u, column %u), within its "
              "%zu desc->source_bytes: the device compiler would stop there while kiln's "
              "parser reads on",
              at, line, column, len);
  kiln__error_suggest("remove the NUL from the source, or pass desc->source_bytes = %zu to "
                      "compile only what comes before it",
                      at);
  return KILN_ERROR_INVALID_ARGUMENT;
}

/* The native codes with which a backend's compiler says a program has no kernel of that
 * name (clCreateKernel, cuModuleGetFunction). The core knows them by the name the
 * backend left in kiln_last_error(), so no backend header reaches in here. */
static bool names_a_missing_kernel(const kiln_error_info *e) {
  static const char *const codes[] = {"CL_INVALID_KERNEL_NAME", "CUDA_ERROR_NOT_FOUND",
                                      "CPU_KERNEL_NOT_FOUND"};
  if (e->backend == KILN_BACKEND_NONE)
    return false;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (!strcmp(e->native_name, codes[i]))
      return true;
  return false;
}

/* kernel_create failed on a kernel kiln's parser found: when the backend's code says
 * the compiled program lacks it, say that in kiln's words, keeping the backend, its
 * native code and name, and its message after ours. */
static void explain_missing_kernel(const kiln__program_obj *program, const kiln__kfunc *f,
                                   kiln_status st) {
  const kiln_error_info *e = kiln_last_error();
  if (e->status != st || !names_a_missing_kernel(e))
    return;
  char native_msg[sizeof e->message];
  char native_name[sizeof e->native_name];
  kiln__strlcpy(native_msg, e->message, sizeof native_msg);
  kiln__strlcpy(native_name, e->native_name, sizeof native_name);
  kiln__error_native(st, e->backend, e->native_code, native_name,
                     "kernel '%s' was found in the source by kiln's parser (program '%s', line "
                     "%u) but is not in the program the %s compiler built: %s",
                     f->name, program->name, f->line, program->h.ops->name, native_msg);
  kiln__error_suggest("kiln reads kernel signatures before the preprocessor runs: a kernel "
                      "inside '#if 0' (or another excluded #if/#ifdef block) is seen by kiln "
                      "but not compiled; move it out of the conditional, or do not create it");
}

/* The cache's part of build() for a program of key `key`: import a hit, else compile
 * and store the binary. */
static kiln_status build_keyed(kiln__program_obj *p, const char *text, size_t len,
                               const char *options, const kiln__kcache_key *key) {
  const kiln__backend_ops *ops = p->h.ops;
  void *bin = NULL;
  size_t bin_bytes = 0;
  kiln_status st = kiln__kcache_get(KILN__KCACHE_NS_PROGRAM, key, &bin, &bin_bytes);
  if (st != KILN_SUCCESS)
    return st;
  char hex[2 * KILN__KCACHE_KEY_BYTES + 1];
  kiln__kcache_hex(key, hex);
  if (bin) {
    uint64_t t0 = kiln__now_ns();
    st = ops->program_import(&p->view, bin, bin_bytes, options);
    kiln__free(bin, bin_bytes ? bin_bytes : 1);
    if (st == KILN_SUCCESS) {
      kiln__log(KILN_LOG_DEBUG, "program %s: loaded from the compile cache (%.12s...) in %.3f ms",
                p->name, hex, (double)(kiln__now_ns() - t0) / 1e6);
      return KILN_SUCCESS;
    }
    p->native = NULL;
    if (st == KILN_ERROR_OUT_OF_HOST_MEMORY || st == KILN_ERROR_DEVICE_LOST)
      return st;
    char why[sizeof kiln_last_error()->message + 64];
    snprintf(why, sizeof why, "the %s runtime refused its binary: %s", ops->name,
             kiln_last_error()->message);
    kiln__kcache_forget(KILN__KCACHE_NS_PROGRAM, key, why);
  }
  st = ops->program_build(&p->view, text, len, options);
  if (st != KILN_SUCCESS)
    return st;
  void *out = NULL;
  size_t out_bytes = 0;
  kiln_status es = ops->program_export(&p->view, &out, &out_bytes);
  if (es == KILN_SUCCESS) {
    es = kiln__kcache_put(KILN__KCACHE_NS_PROGRAM, key, out, out_bytes);
    kiln__free(out, out_bytes ? out_bytes : 1);
  }
  if (es != KILN_SUCCESS && es != KILN_ERROR_UNSUPPORTED)
    kiln__log(KILN_LOG_WARN, "program %s: not stored in the compile cache: %s", p->name,
              kiln_last_error()->message);
  else if (es == KILN_SUCCESS)
    kiln__log(KILN_LOG_DEBUG, "program %s: stored in the compile cache (%.12s..., %zu bytes)",
              p->name, hex, out_bytes);
  return KILN_SUCCESS;
}

/* Build through the compile cache: the key covers the rewritten source, the options,
 * the backend and what its program_cache_id says of device and compiler. A hit is
 * imported; a binary the runtime refuses is deleted and the source compiled; a miss is
 * compiled and its binary stored. Failures of the cache itself never fail the build
 * (but running out of host memory does). */
static kiln_status build(kiln__program_obj *p, const char *text, size_t len, const char *options,
                         bool *keyed) {
  const kiln__backend_ops *ops = p->h.ops;
  *keyed = false;
  if (!ops->program_cache_id || !ops->program_export || !ops->program_import ||
      !kiln__kcache_enabled(NULL, 0))
    return ops->program_build(&p->view, text, len, options);
  char id[1024] = "";
  if (ops->program_cache_id(&p->view, options, id, sizeof id) != KILN_SUCCESS) {
    kiln__log(KILN_LOG_DEBUG, "program %s: no cache id (%s): compiled without the cache", p->name,
              kiln_last_error()->message);
    return ops->program_build(&p->view, text, len, options);
  }
  kiln__kcache_key key;
  kiln_status st =
      kiln__kcache_program_key(ops->name, id, p->h.ctx->device->props.kind == KILN_DEVICE_KIND_CPU,
                               options, text, len, &key);
  if (st != KILN_SUCCESS)
    return st;
  memcpy(p->cache_key, key.b, sizeof key.b);
  *keyed = true;
  if (ops->program_share && live_share(p, key.b) == KILN_SUCCESS) {
    kiln__log(KILN_LOG_DEBUG, "program %s: shares a live program of the same key", p->name);
    return KILN_SUCCESS;
  }
  /* Under the key's build lock: a second process building the same program waits for
   * the first and loads its entry, and PoCL's own cache (which kiln points into its
   * directory, and which PoCL writes without locking) is never written for one program
   * by two processes at once — PoCL aborted on a binary serialised while another
   * process was still writing its program.bc. */
  int flight = kiln__kcache_flight_begin(&key);
  st = build_keyed(p, text, len, options, &key);
  kiln__kcache_flight_end(flight);
  return st;
}

/* A program that declares a feature level: refused where the context's device lacks it
 * (the backend's level_check; none: the base level only), or where the caller's options
 * pick a language standard of their own. *level_options: what the level adds. */
static kiln_status check_level(kiln__context_obj *ctx, const char *name, kiln__level level,
                               const char *user_options, const char **level_options) {
  *level_options = "";
  if (level == KILN__LEVEL_BASE)
    return KILN_SUCCESS;
  const kiln__backend_ops *ops = ctx->h.ops;
  const kiln_device_props *dp = &ctx->device->props;
  if (strstr(user_options, "-cl-std="))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "program %s declares the feature level '%s', and its options pick a "
                       "language standard ('%s'): kiln chooses it for the level (OpenCL C 3.0); "
                       "remove -cl-std= from the options",
                       name, kiln__level_name(level), user_options);
  if (!ops->level_check) {
    kiln__error(KILN_ERROR_UNSUPPORTED,
                "program %s declares the feature level '%s', which backend '%s' (device '%s') "
                "does not offer: it has the base level only",
                name, kiln__level_name(level), ops->name, dp->name);
    kiln__error_suggest("run it on a device that offers the level (cpu, an OpenCL 3.0 device "
                        "with device-scope atomics, CUDA), or keep to the base level");
    return KILN_ERROR_UNSUPPORTED;
  }
  kiln_status st = ops->level_check(&ctx->device->view, level, level_options);
  if (st != KILN_SUCCESS) {
    char msg[sizeof kiln_last_error()->message];
    kiln__strlcpy(msg, kiln_last_error()->message, sizeof msg);
    kiln__error(st, "program %s: %s", name, msg);
    kiln__error_suggest("run it on a device that offers the level, or keep to the base level "
                        "(docs/kernels.md, \"Feature levels\")");
    return st;
  }
  return KILN_SUCCESS;
}

kiln_status kiln_program_create(kiln_context context, const kiln_program_desc *desc,
                                kiln_program *program) {
  KILN__API_ENTER();
  if (!program)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "program (the out-parameter) is NULL");
  *program = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!desc)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc is NULL: a program needs its source");
  if (desc->struct_size < sizeof(kiln_program_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_PROGRAM_DESC_INIT",
                       desc->struct_size, sizeof(kiln_program_desc));
  if (!desc->source)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc->source is NULL");
  const char *name = desc->name && *desc->name ? desc->name : "<source>";
  size_t len = desc->source_bytes ? desc->source_bytes : strlen(desc->source);
  st = check_no_nul(desc->source, len);
  if (st != KILN_SUCCESS)
    return st;
  const kiln__backend_ops *ops = context->h.ops;
  if (!ops->program_build) {
    if (ops->no_source_why) {
      kiln__error(KILN_ERROR_UNSUPPORTED, "backend '%s' cannot compile kernel source (%s) %s",
                  ops->name, name, ops->no_source_why);
      if (ops->no_source_suggestion)
        kiln__error_suggest("%s", ops->no_source_suggestion);
    } else {
      kiln__error(KILN_ERROR_UNSUPPORTED, "backend '%s' cannot compile kernel source (%s)",
                  ops->name, name);
    }
    return KILN_ERROR_UNSUPPORTED;
  }

  kiln__kfunc *funcs = kiln__alloc(sizeof *funcs * MAX_KERNELS_PER_PROGRAM);
  if (!funcs)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory parsing %s", name);
  size_t count = 0;
  st = kiln__kparse(desc->source, len, funcs, MAX_KERNELS_PER_PROGRAM, &count);
  if (st == KILN_SUCCESS && count == 0)
    st = kiln__error(KILN_ERROR_PARSE, "no KILN_KERNEL function found");
  kiln__level level = KILN__LEVEL_BASE;
  if (st == KILN_SUCCESS)
    st = kiln__dialect_level(desc->source, len, &level);
  if (st == KILN_ERROR_LIMIT_EXCEEDED) { /* kparse counted them all */
    kiln__error(st,
                "the source defines %zu kernels; a kiln program holds at most %d "
                "(kernel '%s', line %u, is the last that fits)",
                count, MAX_KERNELS_PER_PROGRAM, funcs[MAX_KERNELS_PER_PROGRAM - 1].name,
                funcs[MAX_KERNELS_PER_PROGRAM - 1].line);
  }
  if (st != KILN_SUCCESS) {
    kiln__free(funcs, sizeof *funcs * MAX_KERNELS_PER_PROGRAM);
    char msg[sizeof kiln_last_error()->message];
    kiln__strlcpy(msg, kiln_last_error()->message, sizeof msg);
    char log[sizeof msg + 96];
    int n = snprintf(log, sizeof log, "%s: %s\n", name, msg);
    kiln__set_build_log(log, n > 0 ? (size_t)n : 0);
    kiln__error(st == KILN_ERROR_PARSE ? KILN_ERROR_COMPILE_FAILED : st, "%s: %s", name, msg);
    if (st == KILN_ERROR_PARSE)
      kiln__error_suggest(
          "keep to the kiln dialect (docs/kernels.md); the log is in kiln_last_build_log()");
    else if (st == KILN_ERROR_LIMIT_EXCEEDED)
      kiln__error_suggest("split the source into several programs of at most %d kernels each",
                          MAX_KERNELS_PER_PROGRAM);
    return st == KILN_ERROR_PARSE ? KILN_ERROR_COMPILE_FAILED : st;
  }
  const char *user_options = desc->options ? desc->options : "";
  const char *level_options = "";
  if ((st = check_level(context, name, level, user_options, &level_options)) != KILN_SUCCESS) {
    kiln__free(funcs, sizeof *funcs * MAX_KERNELS_PER_PROGRAM);
    return st;
  }
  /* Shrink the signature table to what the source has. */
  kiln__kfunc *exact = kiln__alloc(sizeof *funcs * count);
  if (exact)
    memcpy(exact, funcs, sizeof *funcs * count);
  kiln__free(funcs, sizeof *funcs * MAX_KERNELS_PER_PROGRAM);
  if (!exact)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory parsing %s", name);

  kiln__dialect_target target = ops->dialect;
  kiln__dialect_mark_sizes(desc->source, len, exact, count, target);
  size_t need = 0;
  st = kiln__dialect_rewrite(desc->source, len, exact, count, target, NULL, 0, &need);
  char *text = st == KILN_SUCCESS ? kiln__alloc(need + 1) : NULL;
  if (st == KILN_SUCCESS && !text)
    st = kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  size_t text_len = 0;
  if (st == KILN_SUCCESS)
    st = kiln__dialect_rewrite(desc->source, len, exact, count, target, text, need + 1, &text_len);
  void *e = NULL;
  if (st == KILN_SUCCESS)
    st = kiln__slab_alloc(&context->programs, &e);
  if (st != KILN_SUCCESS) {
    kiln__free(text, need + 1);
    kiln__free(exact, sizeof *exact * count);
    return st;
  }
  kiln__program_obj *p = e;
  p->h.ops = ops;
  p->h.generation = context->h.generation;
  p->h.ctx = context;
  kiln__strlcpy(p->name, name, sizeof p->name);
  p->funcs = exact;
  p->func_count = count;
  kiln__log(KILN_LOG_DEBUG, "program %s: %zu kernel(s), %zu bytes after rewriting", name, count,
            text_len);
  uint64_t t0 = kiln__now_ns();
  bool keyed = false;
  p->cache_listed = false;
  p->cache_next = NULL;
  /* the caller's options, then the level's (OpenCL: -cl-std=CL3.0) */
  size_t opt_bytes = strlen(user_options) + 1 + strlen(level_options) + 1;
  char *options = *level_options ? kiln__alloc(opt_bytes) : NULL;
  if (*level_options && !options)
    st = kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  else if (options)
    snprintf(options, opt_bytes, "%s%s%s", user_options, *user_options ? " " : "", level_options);
  if (st == KILN_SUCCESS)
    st = build(p, text, text_len, options ? options : user_options, &keyed);
  if (options)
    kiln__free(options, opt_bytes);
  kiln__free(text, need + 1);
  if (st != KILN_SUCCESS) {
    p->native = NULL;
    kiln__free(exact, sizeof *exact * count);
    p->funcs = NULL;
    kiln__slab_release(&context->programs, p);
    return st;
  }
  kiln__log(KILN_LOG_DEBUG, "program %s built in %.3f ms", name,
            (double)(kiln__now_ns() - t0) / 1e6);
  atomic_store(&p->h.tag, KILN__TAG_PROGRAM);
  if (keyed && ops->program_share)
    live_add(p);
  *program = p;
  return KILN_SUCCESS;
}

kiln_status kiln_program_destroy(kiln_program program) {
  KILN__API_ENTER();
  if (!program)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(program, KILN__TAG_PROGRAM, "program");
  if (st == KILN_SUCCESS)
    st = kiln__claim_destroy(program, KILN__TAG_PROGRAM, "program");
  if (st != KILN_SUCCESS)
    return st;
  /* Dead for new calls now: wait out the kiln_kernel_create calls inside it. */
  for (unsigned i = 0; atomic_load(&program->users) != 0; i++)
    if (i < 64)
      kiln__cpu_relax();
    else
      kiln__yield();
  kiln__program_free(program);
  return KILN_SUCCESS;
}

static kiln_status kernel_create_entered(kiln__program_obj *program, const char *name,
                                         kiln_kernel *kernel);

kiln_status kiln_kernel_create(kiln_program program, const char *name, kiln_kernel *kernel) {
  KILN__API_ENTER();
  if (!kernel)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "kernel (the out-parameter) is NULL");
  *kernel = NULL;
  kiln_status st = kiln__check_handle(program, KILN__TAG_PROGRAM, "program");
  if (st != KILN_SUCCESS)
    return st;
  if (!name)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "name is NULL");
  /* A claim on the program against a destroy on another thread (users, core.h). */
  atomic_fetch_add(&program->users, 1);
  if (atomic_load(&program->h.tag) != KILN__TAG_PROGRAM)
    st = kiln__error(KILN_ERROR_INVALID_HANDLE,
                     "program %p was destroyed by another thread while this call used it",
                     (void *)program);
  else
    st = kernel_create_entered(program, name, kernel);
  atomic_fetch_sub(&program->users, 1);
  return st;
}

static kiln_status kernel_create_entered(kiln__program_obj *program, const char *name,
                                         kiln_kernel *kernel) {
  kiln_status st;
  const kiln__kfunc *f = kiln__kfind(program->funcs, program->func_count, name);
  if (!f) {
    char list[256] = "";
    size_t at = 0;
    for (size_t i = 0; i < program->func_count && at < sizeof list - 1; i++) {
      int n = snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", program->funcs[i].name);
      if (n < 0)
        break;
      at += (size_t)n;
    }
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "program '%s' has no kernel '%s'; it has: %s",
                       program->name, name, list);
  }
  kiln__context_obj *ctx = program->h.ctx;
  void *e;
  st = kiln__slab_alloc(&ctx->kernels, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__kernel_obj *k = e;
  k->h.ops = program->h.ops;
  k->h.generation = program->h.generation;
  k->h.ctx = ctx;
  kiln__strlcpy(k->name, name, sizeof k->name);
  k->program = program;
  k->source = true;
  k->hidden_sizes = !f->no_sizes;
  k->param_count = f->param_count;
  for (uint32_t i = 0; i < f->param_count; i++) {
    k->params[i].kind = f->params[i].kind;
    k->params[i].bytes = f->params[i].bytes;
  }
  st = program->h.ops->kernel_create(&k->view, &program->view);
  if (st != KILN_SUCCESS) {
    explain_missing_kernel(program, f, st);
    kiln__slab_release(&ctx->kernels, k);
    return st;
  }
  atomic_store(&k->h.tag, KILN__TAG_KERNEL);
  *kernel = k;
  return KILN_SUCCESS;
}

/* SPDX-License-Identifier: MIT */
/* The mock backend's fake compiler, so the compile cache and the program paths run
 * without a device compiler: deterministic, with binary export and import. "Compiling"
 * finds each `KILN_KERNEL void <name>(` of the rewritten source and gives the kernel a
 * 32-bit code, FNV-1a of (source, options, name); the binary lists the names and
 * codes, with a checksum of its own, and importing checks it all, so a torn or mixed
 * binary is refused, never loaded. A kernel of a mock program fills its first
 * argument (a buffer of 32-bit words) with its code over the launch's global range,
 * so a test sees which build it runs. A source containing KILN_MOCK_COMPILE_ERROR
 * fails to compile with a log. Called through the ops table only. */
#include <stdio.h>
#include <string.h>

#include "backends/mock/mock_internal.h"

#define MAX_KERNELS 64
#define NAME_BYTES 64
static const char bin_magic[8] = {'K', 'M', 'O', 'C', 'K', 'B', 'N', '1'};

typedef struct mock_program {
  _Atomic int refs; /* kiln programs sharing it (program_share) */
  uint32_t count;
  char names[MAX_KERNELS][NAME_BYTES];
  uint32_t codes[MAX_KERNELS];
  unsigned char *binary; /* what program_export hands out */
  size_t binary_bytes;
} mock_program;

typedef struct mock_kernel {
  uint32_t code;
  bool fills; /* its first parameter is a buffer it writes */
} mock_kernel;

static _Atomic uint64_t compiles; /* fake compiles in this process (kiln_mock_compiles) */

uint64_t kiln_mock_compiles(void) {
  KILN__API_ENTER();
  return atomic_load(&compiles);
}

static uint32_t fnv1a(uint32_t h, const void *data, size_t bytes) {
  const unsigned char *p = data;
  for (size_t i = 0; i < bytes; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

static bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The binary: magic, u32 count, per kernel a u8 name length, the name, a u32 code;
 * then a u32 FNV-1a of everything before it. Native byte order (the same machine). */
static kiln_status encode(mock_program *mp) {
  size_t n = sizeof bin_magic + 4 + 4;
  for (uint32_t i = 0; i < mp->count; i++)
    n += 1 + strlen(mp->names[i]) + 4;
  unsigned char *b = kiln__alloc(n);
  if (!b)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "mock compiler: out of host memory");
  size_t at = 0;
  memcpy(b, bin_magic, sizeof bin_magic);
  at += sizeof bin_magic;
  memcpy(b + at, &mp->count, 4);
  at += 4;
  for (uint32_t i = 0; i < mp->count; i++) {
    unsigned char len = (unsigned char)strlen(mp->names[i]);
    b[at++] = len;
    memcpy(b + at, mp->names[i], len);
    at += len;
    memcpy(b + at, &mp->codes[i], 4);
    at += 4;
  }
  uint32_t sum = fnv1a(2166136261u, b, at);
  memcpy(b + at, &sum, 4);
  mp->binary = b;
  mp->binary_bytes = n;
  return KILN_SUCCESS;
}

static void free_program(mock_program *mp) {
  if (!mp || atomic_fetch_sub(&mp->refs, 1) != 1)
    return;
  kiln__free(mp->binary, mp->binary_bytes);
  kiln__free(mp, sizeof *mp);
}

kiln_status kiln__mock_program_build(kiln__program *p, const char *src, size_t bytes,
                                     const char *options) {
  kiln_status st = kiln__mock_count_call("program_build");
  if (st != KILN_SUCCESS)
    return st;
  atomic_fetch_add(&compiles, 1);
  const char *bad = memmem(src, bytes, "KILN_MOCK_COMPILE_ERROR", 23);
  if (bad) {
    unsigned line = 1;
    for (const char *c = src; c < bad; c++)
      line += *c == '\n';
    char log[160];
    int n =
        snprintf(log, sizeof log, "mock:%u: error: KILN_MOCK_COMPILE_ERROR asks to fail\n", line);
    kiln__set_build_log(log, n > 0 ? (size_t)n : 0);
    kiln__error_native(KILN_ERROR_COMPILE_FAILED, KILN_BACKEND_MOCK, 1, "MOCK_COMPILE_ERROR",
                       "program '%s': %.*s", p->name, n > 0 ? n - 1 : 0, log);
    kiln__error_suggest("read the whole log with kiln_last_build_log()");
    return KILN_ERROR_COMPILE_FAILED;
  }
  mock_program *mp = kiln__calloc(1, sizeof *mp);
  if (!mp)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "mock compiler: out of host memory");
  atomic_store(&mp->refs, 1);
  uint32_t base = fnv1a(2166136261u, src, bytes);
  base = fnv1a(base, "", 1);
  base = fnv1a(base, options, strlen(options) + 1);
  static const char kw[] = "KILN_KERNEL";
  for (const char *at = src, *end = src + bytes;
       (at = memmem(at, (size_t)(end - at), kw, sizeof kw - 1)) != NULL; at += sizeof kw - 1) {
    if (at > src && (ident_char(at[-1]) || at[-1] == ' ')) /* "#define KILN_KERNEL ..." */
      continue;
    const char *c = at + sizeof kw - 1;
    while (c < end && (*c == ' ' || *c == '\t' || *c == '\n'))
      c++;
    if (end - c < 4 || memcmp(c, "void", 4) != 0)
      continue;
    c += 4;
    while (c < end && (*c == ' ' || *c == '\t' || *c == '\n'))
      c++;
    const char *name = c;
    while (c < end && ident_char(*c))
      c++;
    size_t len = (size_t)(c - name);
    if (!len || len >= NAME_BYTES || mp->count == MAX_KERNELS)
      continue;
    memcpy(mp->names[mp->count], name, len);
    mp->codes[mp->count] = fnv1a(base, name, len);
    mp->count++;
  }
  st = encode(mp);
  if (st != KILN_SUCCESS) {
    free_program(mp);
    return st;
  }
  p->native = mp;
  return KILN_SUCCESS;
}

void kiln__mock_program_destroy(kiln__program *p) {
  free_program(p->native);
  p->native = NULL;
}

kiln_status kiln__mock_program_cache_id(kiln__program *p, const char *options, char *out,
                                        size_t out_bytes) {
  (void)p, (void)options;
  snprintf(out, out_bytes, "kiln mock compiler, binary format 1");
  return KILN_SUCCESS;
}

kiln_status kiln__mock_program_export(kiln__program *p, void **binary, size_t *bytes) {
  mock_program *mp = p->native;
  void *copy = kiln__alloc(mp->binary_bytes);
  if (!copy)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "mock compiler: out of host memory");
  memcpy(copy, mp->binary, mp->binary_bytes);
  *binary = copy;
  *bytes = mp->binary_bytes;
  return KILN_SUCCESS;
}

static kiln_status refuse(kiln__program *p, const char *why) {
  return kiln__error_native(KILN_ERROR_BACKEND, KILN_BACKEND_MOCK, 2, "MOCK_INVALID_BINARY",
                            "program '%s': the mock runtime refuses the binary: %s", p->name, why);
}

kiln_status kiln__mock_program_import(kiln__program *p, const void *binary, size_t bytes,
                                      const char *options) {
  (void)options;
  kiln_status st = kiln__mock_count_call("program_import");
  if (st != KILN_SUCCESS)
    return st;
  const unsigned char *b = binary;
  uint32_t count, sum;
  if (bytes < sizeof bin_magic + 8 || memcmp(b, bin_magic, sizeof bin_magic) != 0)
    return refuse(p, "no mock binary magic");
  memcpy(&sum, b + bytes - 4, 4);
  if (fnv1a(2166136261u, b, bytes - 4) != sum)
    return refuse(p, "its checksum does not match");
  memcpy(&count, b + sizeof bin_magic, 4);
  if (count > MAX_KERNELS)
    return refuse(p, "too many kernels");
  mock_program *mp = kiln__calloc(1, sizeof *mp);
  if (!mp)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "mock runtime: out of host memory");
  atomic_store(&mp->refs, 1);
  size_t at = sizeof bin_magic + 4;
  for (uint32_t i = 0; i < count; i++) {
    size_t len = at < bytes - 4 ? b[at] : NAME_BYTES;
    if (len == 0 || len >= NAME_BYTES || at + 1 + len + 4 > bytes - 4) {
      free_program(mp);
      return refuse(p, "a kernel entry runs past its end");
    }
    memcpy(mp->names[i], b + at + 1, len);
    memcpy(&mp->codes[i], b + at + 1 + len, 4);
    at += 1 + len + 4;
  }
  if (at != bytes - 4) {
    free_program(mp);
    return refuse(p, "bytes left after its kernels");
  }
  mp->count = count;
  mp->binary = kiln__alloc(bytes);
  if (!mp->binary) {
    free_program(mp);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "mock runtime: out of host memory");
  }
  memcpy(mp->binary, binary, bytes);
  mp->binary_bytes = bytes;
  p->native = mp;
  return KILN_SUCCESS;
}

static void run_compiled(const kiln_native_range *r, void *const *args, void *user) {
  const mock_kernel *mk = user;
  if (!mk->fills)
    return;
  uint32_t *out = args[0];
  size_t n = r->global[0] * r->global[1] * r->global[2];
  for (size_t i = 0; i < n; i++)
    out[i] = mk->code;
}

kiln_status kiln__mock_kernel_create(kiln__kernel *k, kiln__program *p) {
  kiln_status st = kiln__mock_count_call("kernel_create");
  if (st != KILN_SUCCESS)
    return st;
  const mock_program *mp = p->native;
  for (uint32_t i = 0; i < mp->count; i++) {
    if (strcmp(mp->names[i], k->name) != 0)
      continue;
    mock_kernel *mk = kiln__calloc(1, sizeof *mk);
    if (!mk)
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating kernel '%s'",
                         k->name);
    mk->code = mp->codes[i];
    mk->fills = k->param_count > 0 && (k->params[0].kind == KILN_PARAM_BUFFER_WRITE ||
                                       k->params[0].kind == KILN_PARAM_BUFFER_READ_WRITE);
    k->fn = run_compiled;
    k->user = mk;
    k->native = mk;
    return KILN_SUCCESS;
  }
  return kiln__error_native(KILN_ERROR_BACKEND, KILN_BACKEND_MOCK, 3, "MOCK_KERNEL_NOT_FOUND",
                            "the mock program '%s' has no kernel '%s'", p->name, k->name);
}

void kiln__mock_kernel_destroy(kiln__kernel *k) {
  if (k->native)
    kiln__free(k->native, sizeof(mock_kernel));
  k->native = NULL;
}

kiln_status kiln__mock_program_share(kiln__program *p, kiln__program *from) {
  mock_program *mp = from->native;
  atomic_fetch_add(&mp->refs, 1);
  p->native = mp;
  return KILN_SUCCESS;
}

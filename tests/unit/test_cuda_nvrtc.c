/* SPDX-License-Identifier: MIT */
/* The kiln dialect through NVRTC without a GPU (src/backends/cuda/program.c): every
 * test kernel of tests/kernels/ parsed, rewritten for CUDA (prelude.c) and compiled to
 * CUBIN for sm_80 and sm_90 and to PTX for compute_90; each kernel's symbol is in the
 * CUBIN's ELF symbol table (readelf -sW) and the PTX's .entry list, unmangled (the
 * prelude's extern "C"). broken.kiln fails with its log naming line 6 and the message
 * carrying the first error line; the architecture choice follows
 * nvrtcGetSupportedArchs. NVRTC comes from the toolkit (libnvrtc.so.13 here).
 * kiln-test-labels: cuda-nogpu unit
 * kiln-test-link: static */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/cuda/cuda_api.h"
#include "core/kparse.h"
#include "core/prelude.h"
#include "kiln.h"

static const char *const files[] = {"vecadd.kiln",    "saxpy.kiln", "reduce.kiln",
                                    "stencil2d.kiln", "guard.kiln", "empty.kiln",
                                    "atomics.kiln",   "math.kiln",  "scoped.kiln"};

static char *read_kernel(const char *file, size_t *len) {
  const char *here = __FILE__;
  const char *cut = strstr(here, "tests/unit/test_cuda_nvrtc.c");
  assert_non_null(cut);
  char path[1024];
  snprintf(path, sizeof path, "%.*stests/kernels/%s", (int)(cut - here), here, file);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  char *text = malloc(65536);
  assert_non_null(text);
  *len = fread(text, 1, 65535, f);
  fclose(f);
  text[*len] = '\0';
  return text;
}

/* Parse and rewrite a kernel file for CUDA; its kernels' names into funcs. */
static char *cuda_source(const char *file, kiln__kfunc *funcs, size_t max, size_t *count,
                         size_t *out_len) {
  size_t len;
  char *text = read_kernel(file, &len);
  if (kiln__kparse(text, len, funcs, max, count) != KILN_SUCCESS)
    fail_msg("%s: %s", file, kiln_last_error()->message);
  size_t need = 0;
  assert_int_equal(
      kiln__dialect_rewrite(text, len, funcs, *count, KILN__TARGET_CUDA, NULL, 0, &need),
      KILN_SUCCESS);
  char *out = malloc(need + 1);
  assert_non_null(out);
  assert_int_equal(
      kiln__dialect_rewrite(text, len, funcs, *count, KILN__TARGET_CUDA, out, need + 1, out_len),
      KILN_SUCCESS);
  free(text);
  return out;
}

static void require_nvrtc(void) {
  if (kiln__nvrtc_load() != KILN_SUCCESS)
    fail_msg("NVRTC: %s", kiln_last_error()->message);
}

/* The ELF symbol table of a CUBIN, as readelf prints it. */
static char *cubin_symbols(const void *image, size_t bytes) {
  char path[] = "/tmp/kiln-cubin-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, image, bytes), (ssize_t)bytes);
  close(fd);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "readelf -sW %s 2>&1", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char *out = calloc(1, 1 << 20);
  assert_non_null(out);
  size_t n = fread(out, 1, (1 << 20) - 1, p);
  out[n] = '\0';
  pclose(p);
  unlink(path);
  return out;
}

/* `name` is a symbol of its own (a whole word at the end of a readelf line). */
static int has_symbol(const char *syms, const char *name) {
  size_t n = strlen(name);
  for (const char *at = strstr(syms, name); at; at = strstr(at + 1, name))
    if (at[-1] == ' ' && (at[n] == '\n' || at[n] == '\0'))
      return 1;
  return 0;
}

static void compile_all(const char *arch, int ptx) {
  require_nvrtc();
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    kiln__kfunc funcs[8];
    size_t count = 0, len = 0;
    char *src = cuda_source(files[i], funcs, 8, &count, &len);
    void *image = NULL;
    size_t bytes = 0;
    kiln_status st = kiln__cuda_compile(src, len, files[i], arch, ptx, NULL, &image, &bytes);
    if (st != KILN_SUCCESS)
      fail_msg("%s for %s: %s\n%s", files[i], arch, kiln_last_error()->message,
               kiln_last_build_log());
    assert_true(bytes > 0);
    if (ptx) {
      const char *text = image;
      assert_int_equal(text[bytes - 1], '\0');
      assert_non_null(strstr(text, ".version"));
      for (size_t k = 0; k < count; k++) {
        const char *name = funcs[k].name;
        size_t n = strlen(name);
        int found = 0;
        for (const char *at = strstr(text, ".entry "); at && !found; at = strstr(at + 1, ".entry "))
          found = !strncmp(at + 7, name, n) && at[7 + n] == '(';
        if (!found)
          fail_msg("%s: no '.entry %s(' in the PTX for %s", files[i], name, arch);
      }
    } else {
      assert_memory_equal(image, "\177ELF", 4);
      char *syms = cubin_symbols(image, bytes);
      for (size_t k = 0; k < count; k++)
        if (!has_symbol(syms, funcs[k].name))
          fail_msg("%s: kernel '%s' is not an (unmangled) symbol of the %s CUBIN:\n%s", files[i],
                   funcs[k].name, arch, syms);
      /* no kernel mangled (the prelude's overloaded atomic helpers and CUDA's own
       * templates are) */
      for (size_t k = 0; k < count; k++) {
        char mangled[96];
        snprintf(mangled, sizeof mangled, "_Z%zu%s", strlen(funcs[k].name), funcs[k].name);
        if (strstr(syms, mangled))
          fail_msg("%s: kernel '%s' is mangled in the %s CUBIN", files[i], funcs[k].name, arch);
      }
      free(syms);
    }
    kiln__cuda_image_free(image, bytes);
    free(src);
  }
}

static void test_cubin_sm_80(void **state) {
  (void)state;
  compile_all("sm_80", 0);
}
static void test_cubin_sm_90(void **state) {
  (void)state;
  compile_all("sm_90", 0);
}
static void test_ptx_compute_90(void **state) {
  (void)state;
  compile_all("compute_90", 1);
}

static void test_broken_kernel_log(void **state) {
  (void)state;
  require_nvrtc();
  kiln__kfunc funcs[2];
  size_t count = 0, len = 0;
  char *src = cuda_source("broken.kiln", funcs, 2, &count, &len);
  void *image = (void *)1;
  size_t bytes = 1;
  assert_int_equal(kiln__cuda_compile(src, len, "broken.kiln", "sm_90", 0, NULL, &image, &bytes),
                   KILN_ERROR_COMPILE_FAILED);
  assert_null(image);
  assert_int_equal(bytes, 0);
  const char *log = kiln_last_build_log();
  if (!strstr(log, "broken.kiln(6)"))
    fail_msg("the log does not name line 6:\n%s", log);
  assert_non_null(strstr(log, "kiln_undeclared_value"));
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, KILN_ERROR_COMPILE_FAILED);
  assert_int_equal(e->backend, KILN_BACKEND_CUDA);
  if (!strstr(e->message, "broken.kiln(6)") || !strstr(e->message, "error"))
    fail_msg("the message '%s' does not carry the first error line", e->message);
  assert_non_null(strstr(e->suggestion, "kiln_last_build_log"));
  free(src);
}

static void test_options_passed(void **state) {
  (void)state;
  require_nvrtc();
  const char *src = "extern \"C\" __global__ void k(int *o) { o[0] = KILN_TEST_VALUE; }\n";
  void *image = NULL;
  size_t bytes = 0;
  assert_int_equal(kiln__cuda_compile(src, strlen(src), "opts.cu", "compute_80", 1,
                                      "-DKILN_TEST_VALUE=4242  -lineinfo", &image, &bytes),
                   KILN_SUCCESS);
  assert_non_null(strstr(image, "4242"));
  kiln__cuda_image_free(image, bytes);
  assert_int_equal(kiln__cuda_compile(src, strlen(src), "opts.cu", "sm_80", 0, "--no-such-option",
                                      &image, &bytes),
                   KILN_ERROR_COMPILE_FAILED);
}

static void test_architecture_choice(void **state) {
  (void)state;
  require_nvrtc();
  assert_true(kiln__nvrtc.arch_count > 0);
  int lo = kiln__nvrtc.archs[0], hi = kiln__nvrtc.archs[kiln__nvrtc.arch_count - 1];
  char arch[32];
  int ptx = -1;
  assert_int_equal(kiln__cuda_pick_arch(9, 0, arch, sizeof arch, &ptx), KILN_SUCCESS);
  assert_string_equal(arch, "sm_90");
  assert_int_equal(ptx, 0);
  /* newer than this NVRTC knows: PTX of its newest architecture, for the driver's JIT */
  assert_int_equal(kiln__cuda_pick_arch(99, 9, arch, sizeof arch, &ptx), KILN_SUCCESS);
  char want[32];
  snprintf(want, sizeof want, "compute_%d", hi);
  assert_string_equal(arch, want);
  assert_int_equal(ptx, 1);
  /* older than every architecture it knows */
  assert_true(lo > 30);
  assert_int_equal(kiln__cuda_pick_arch(3, 0, arch, sizeof arch, &ptx), KILN_ERROR_UNSUPPORTED);
  assert_non_null(strstr(kiln_last_error()->message, "compute capability 3.0"));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cubin_sm_80),    cmocka_unit_test(test_cubin_sm_90),
      cmocka_unit_test(test_ptx_compute_90), cmocka_unit_test(test_broken_kernel_log),
      cmocka_unit_test(test_options_passed), cmocka_unit_test(test_architecture_choice),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

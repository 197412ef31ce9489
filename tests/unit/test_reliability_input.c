/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu opencl unit */
/* Input that kiln used to take in silently or report badly (issue 12):
 * - a NUL inside a program's source_bytes (the parser and the device compiler would
 *   see different programs), and a kernel the parser found that the compiler did not
 *   build (hidden by the preprocessor);
 * - KILN_DEVICE specs with extra text, or of 100 000 characters (the reason must
 *   survive the quoting);
 * - KILN_LOG in any case, or unknown (reported once): these tests run this executable
 *   again as a child (CHILD_FLAG) with the variable set, as kiln reads it once;
 * - the kernels-per-program limit in user terms.
 * OpenCL tests skip (cmocka skip) without an OpenCL device; the CUDA side is in
 * test_reliability_input_cuda.c. */
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln_test.h"

extern char **environ;

/* argv[1] of this executable run as a child: CHILD_FLAG <mode> (see child_main). */
#define CHILD_FLAG "--reliability-child"

/* ---------------------------------------------------------------- helpers */

/* kt_teardown's environment on OpenCL device 0; *state stays NULL without one (the
 * test then skips). */
static int ocl_setup(void **state) {
  *state = NULL;
  if (!kt_backend_available(KILN_BACKEND_OPENCL))
    return 0;
  kt_env *env = calloc(1, sizeof *env);
  if (!env)
    return -1;
  *state = env;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &env->device));
  KT_OK(kt_alloc_install());
  env->alloc_installed = 1;
  KT_OK(kiln_context_create(env->device, NULL, &env->ctx));
  KT_OK(kiln_stream_create(env->ctx, NULL, &env->stream));
  return 0;
}

static kt_env *ocl_env(void **state) {
  if (!*state) {
    fprintf(stderr, "SKIP: no OpenCL device\n");
    skip();
  }
  return *state;
}

static kiln_status create_program(kiln_context ctx, const char *source, size_t bytes,
                                  kiln_program *p) {
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = source;
  d.source_bytes = bytes;
  d.name = "reliability.kiln";
  return kiln_program_create(ctx, &d, p);
}

/* A message that was not cut: it ends before the buffer's last byte. */
static void assert_message_whole(void) {
  size_t n = strlen(kiln_last_error()->message);
  if (n + 1 >= sizeof kiln_last_error()->message)
    fail_msg("the message fills its buffer (%zu bytes), so its end may be cut: %s", n,
             kiln_last_error()->message);
}

/* A string of `n` copies of `c` after `prefix` (malloc'd). */
static char *long_string(const char *prefix, char c, size_t n) {
  size_t p = strlen(prefix);
  char *s = malloc(p + n + 1);
  assert_non_null(s);
  memcpy(s, prefix, p);
  memset(s + p, c, n);
  s[p + n] = '\0';
  return s;
}

/* Run this executable as a child in `mode` (child_main) with the environment of this
 * process less KILN_DEVICE, KILN_BACKEND and KILN_LOG, plus `var` ("NAME=value", may
 * be NULL). Its stdout and stderr land in out; returns its exit status. */
static int run_child(const char *mode, const char *var, char *out, size_t out_bytes) {
  size_t n_env = 0;
  while (environ[n_env])
    n_env++;
  char **envp = calloc(n_env + 2, sizeof *envp);
  assert_non_null(envp);
  size_t k = 0;
  for (size_t i = 0; i < n_env; i++)
    if (strncmp(environ[i], "KILN_DEVICE=", 12) != 0 &&
        strncmp(environ[i], "KILN_BACKEND=", 13) != 0 && strncmp(environ[i], "KILN_LOG=", 9) != 0)
      envp[k++] = environ[i];
  char *var_copy = var ? strdup(var) : NULL;
  if (var) {
    assert_non_null(var_copy);
    envp[k++] = var_copy;
  }
  envp[k] = NULL;

  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char exe[] = "/proc/self/exe";
  char flag[] = CHILD_FLAG;
  char *mode_copy = strdup(mode);
  assert_non_null(mode_copy);
  char *argv[] = {exe, flag, mode_copy, NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, exe, &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  free(envp);
  free(var_copy);
  free(mode_copy);
  assert_int_equal(rc, 0);
  size_t used = 0;
  ssize_t got;
  while (used + 1 < out_bytes && (got = read(fds[0], out + used, out_bytes - 1 - used)) > 0)
    used += (size_t)got;
  out[used] = '\0';
  close(fds[0]);
  int wstatus = 0;
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  assert_true(WIFEXITED(wstatus));
  return WEXITSTATUS(wstatus);
}

/* How many times `needle` occurs in `hay`. */
static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *at = strstr(hay, needle); at; at = strstr(at + 1, needle))
    n++;
  return n;
}

/* ------------------------------------------------- item 1: parser and compiler agree */

/* The first kernel, then a NUL, then a second kernel: source_bytes covers both. */
static const char nul_source[] =
    "KILN_KERNEL void k(int a) { }\0KILN_KERNEL void after_nul(int a) { }";
#define NUL_OFFSET 29 /* strlen of the first kernel */

static void source_nul_refused_on_cpu(void **state) {
  kt_env *env = *state;
  assert_int_equal(strlen(nul_source), NUL_OFFSET);
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  /* Checked before the backend is asked (the CPU backend compiles no source). */
  KT_EXPECT_MSG(create_program(env->ctx, nul_source, sizeof nul_source - 1, &p),
                KILN_ERROR_INVALID_ARGUMENT, "NUL byte at offset 29");
  assert_null(p);
  KT_MSG_HAS("line 1, column 30");
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "remove the NUL"));
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "source_bytes = 29"));
}

static void source_bytes_counting_the_terminator_refused(void **state) {
  kt_env *env = *state;
  const char *src = "KILN_KERNEL void k(int a) { }";
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(create_program(env->ctx, src, strlen(src) + 1, &p), KILN_ERROR_INVALID_ARGUMENT,
                "terminating NUL");
  assert_null(p);
  KT_MSG_HAS("offset 29");
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "source_bytes = 29"));
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "without the terminator"));
}

/* On OpenCL the program used to build; kiln_kernel_create(p, "after_nul") then failed
 * with a raw CL_INVALID_KERNEL_NAME. */
static void source_nul_refused_on_opencl(void **state) {
  kt_env *env = ocl_env(state);
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(create_program(env->ctx, nul_source, sizeof nul_source - 1, &p),
                KILN_ERROR_INVALID_ARGUMENT, "NUL byte at offset 29");
  assert_null(p);
  assert_int_equal(kiln_last_error()->backend, KILN_BACKEND_NONE);
  /* Without the NUL's part it builds. */
  KT_OK(create_program(env->ctx, nul_source, NUL_OFFSET, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "k", &k));
  KT_EXPECT_MSG(kiln_kernel_create(p, "after_nul", &k), KILN_ERROR_INVALID_ARGUMENT, "after_nul");
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
}

/* kiln reads signatures before preprocessing, so a kernel inside `#if 0` is one it
 * knows and the compiler never built. */
static const char hidden_source[] = "KILN_KERNEL void k(int a) { }\n"
                                    "#if 0\n"
                                    "KILN_KERNEL void hidden_by_if0(int a) { }\n"
                                    "#endif\n";

static void kernel_hidden_by_the_preprocessor_named_on_opencl(void **state) {
  kt_env *env = ocl_env(state);
  kiln_program p = NULL;
  KT_OK(create_program(env->ctx, hidden_source, 0, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "k", &k));
  KT_OK(kiln_kernel_destroy(k));
  k = (kiln_kernel)(uintptr_t)0x1;
  kiln_status st = kiln_kernel_create(p, "hidden_by_if0", &k);
  assert_int_not_equal(st, KILN_SUCCESS);
  assert_null(k);
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, st);
  KT_MSG_HAS("kernel 'hidden_by_if0' was found in the source by kiln's parser");
  KT_MSG_HAS("line 3");
  KT_MSG_HAS("is not in the program the opencl compiler built");
  /* the native code stays */
  assert_int_equal(e->backend, KILN_BACKEND_OPENCL);
  assert_string_equal(e->native_name, "CL_INVALID_KERNEL_NAME");
  assert_int_equal(e->native_code, -46);
  KT_MSG_HAS("CL_INVALID_KERNEL_NAME");
  assert_non_null(kt_strcasestr(e->suggestion, "#if 0"));
  assert_string_equal(e->function, "kiln_kernel_create");
  KT_OK(kiln_program_destroy(p));
}

/* ------------------------------------------------- item 2: device specs */

static void device_spec_extra_text_after_the_index_named(void **state) {
  (void)state;
  kiln_device d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_device_parse("cpu:0:0", &d), KILN_ERROR_INVALID_ARGUMENT,
                "extra text ':0' after the index 0");
  assert_null(d);
  KT_MSG_HAS("'cpu:0:0'");
  assert_null(strstr(kiln_last_error()->message, "not a number"));
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "<backend>[:<index>]"));
  KT_EXPECT_MSG(kiln_device_parse("cpu:0x", &d), KILN_ERROR_INVALID_ARGUMENT,
                "extra text 'x' after the index 0");
  KT_EXPECT_MSG(kiln_device_parse("cpu:1 ", &d), KILN_ERROR_INVALID_ARGUMENT,
                "extra text ' ' after the index 1");
  KT_EXPECT_MSG(kiln_device_parse("cpu:", &d), KILN_ERROR_INVALID_ARGUMENT, "no index after ':'");
  KT_EXPECT_MSG(kiln_device_parse("cpu:70000", &d), KILN_ERROR_INVALID_ARGUMENT,
                "index '70000' is not below 65536");
}

/* A 100 000-character value is quoted to its first 64 characters, "..." and its
 * length, so the reason still fits in the message. */
static void device_spec_of_100000_characters_keeps_the_reason(void **state) {
  (void)state;
  kiln_device d = (kiln_device)(uintptr_t)0x1;
  char *digits = long_string("cpu:", '1', 100000);
  KT_EXPECT_MSG(kiln_device_parse(digits, &d), KILN_ERROR_INVALID_ARGUMENT, "not below 65536");
  assert_null(d);
  KT_MSG_HAS("'cpu:111111111111111111111111111111111111111111111111111111111111'... (100004 "
             "bytes)");
  assert_message_whole();

  char *extra = long_string("cpu:0", 'x', 100000);
  KT_EXPECT_MSG(kiln_device_parse(extra, &d), KILN_ERROR_INVALID_ARGUMENT, "extra text 'xxx");
  KT_MSG_HAS("(100000 bytes) after the index 0");
  assert_message_whole();

  char *word = long_string("", 'x', 100000);
  KT_EXPECT_MSG(kiln_device_parse(word, &d), KILN_ERROR_INVALID_ARGUMENT,
                "is not of the form <backend>[:<index>]");
  KT_MSG_HAS("(100000 bytes)");
  assert_message_whole();

  /* through KILN_DEVICE: named, and the reason and the suggestion kept */
  assert_int_equal(setenv("KILN_DEVICE", digits, 1), 0);
  KT_EXPECT_MSG(kiln_device_default(&d), KILN_ERROR_INVALID_ARGUMENT, "KILN_DEVICE");
  KT_MSG_HAS("not below 65536");
  assert_message_whole();
  assert_int_equal(setenv("KILN_DEVICE", "nosuch:0", 1), 0);
  KT_EXPECT_MSG(kiln_device_default(&d), KILN_ERROR_INVALID_ARGUMENT, "unknown backend 'nosuch'");
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "cpu, opencl, cuda"));
  assert_int_equal(unsetenv("KILN_DEVICE"), 0);

  /* KILN_BACKEND too */
  assert_int_equal(setenv("KILN_BACKEND", word, 1), 0);
  KT_EXPECT_MSG(kiln_device_default(&d), KILN_ERROR_INVALID_ARGUMENT, "is not a kiln backend");
  KT_MSG_HAS("KILN_BACKEND='xxxx");
  KT_MSG_HAS("(100000 bytes)");
  assert_message_whole();
  assert_int_equal(unsetenv("KILN_BACKEND"), 0);
  free(digits);
  free(extra);
  free(word);
}

/* ------------------------------------------------- item 4: kernels per program */

/* 70 kernels: the limit (64 per program) in user terms, not "the caller's table". */
static void program_over_the_kernel_limit_says_so(void **state) {
  kt_env *env = ocl_env(state);
  static char src[70 * 40];
  size_t at = 0;
  for (int i = 0; i < 70; i++)
    at += (size_t)snprintf(src + at, sizeof src - at, "KILN_KERNEL void k%02d(int a) { }\n", i);
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(create_program(env->ctx, src, 0, &p), KILN_ERROR_LIMIT_EXCEEDED,
                "the source defines 70 kernels; a kiln program holds at most 64");
  assert_null(p);
  KT_MSG_HAS("reliability.kiln");
  assert_null(strstr(kiln_last_error()->message, "caller"));
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "split the source"));
  /* 64 is fine */
  src[64 * strlen("KILN_KERNEL void k00(int a) { }\n")] = '\0';
  KT_OK(create_program(env->ctx, src, 0, &p));
  KT_OK(kiln_program_destroy(p));
}

/* ------------------------------------------------- item 3: KILN_LOG */

/* Child "log": an error (its detail is logged at debug level), the stderr level read
 * again twice (kiln_set_log_callback(NULL, ...)), another error, then an info line
 * (a reset of the CPU device). */
static int child_log(void) {
  kiln_device d = NULL;
  (void)kiln_device_parse(NULL, &d);
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
  (void)kiln_device_parse("nosuch", &d);
  if (kiln_device_find(KILN_BACKEND_CPU, 0, &d) != KILN_SUCCESS)
    return 3;
  if (kiln_device_reset(d) != KILN_SUCCESS)
    return 4;
  return 0;
}

static void child_log_line(kiln_log_level level, const char *message, void *user) {
  (void)user;
  printf("callback %d: %s\n", (int)level, message);
  fflush(stdout);
}

/* Child "log-callback": a log callback installed (twice) at warn level. */
static int child_log_callback(void) {
  kiln_set_log_callback(child_log_line, KILN_LOG_WARN, NULL);
  kiln_set_log_callback(child_log_line, KILN_LOG_WARN, NULL);
  kiln_device d = NULL;
  (void)kiln_device_parse("nosuch", &d);
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
  return 0;
}

static void log_env_any_case(void **state) {
  (void)state;
  static char out[16384];
  assert_int_equal(run_child("log", "KILN_LOG=DEBUG", out, sizeof out), 0);
  if (!strstr(out, "kiln debug: kiln_device_parse: KILN_ERROR_INVALID_ARGUMENT"))
    fail_msg("KILN_LOG=DEBUG shows no debug line: %s", out);
  if (strstr(out, "is not a log level"))
    fail_msg("KILN_LOG=DEBUG reported: %s", out);

  assert_int_equal(run_child("log", "KILN_LOG=Info", out, sizeof out), 0);
  if (!strstr(out, "kiln info: device cpu:0 reset"))
    fail_msg("KILN_LOG=Info shows no info line: %s", out);
  if (strstr(out, "kiln debug:"))
    fail_msg("KILN_LOG=Info shows debug lines: %s", out);

  assert_int_equal(run_child("log", "KILN_LOG=wARN", out, sizeof out), 0);
  if (strstr(out, "kiln info:") || strstr(out, "kiln debug:") || strstr(out, "is not a log level"))
    fail_msg("KILN_LOG=wARN: %s", out);

  assert_int_equal(run_child("log", "KILN_LOG=Off", out, sizeof out), 0);
  if (strstr(out, "kiln "))
    fail_msg("KILN_LOG=Off logged: %s", out);
}

static void log_env_unknown_reported_once(void **state) {
  (void)state;
  static char out[16384];
  assert_int_equal(run_child("log", "KILN_LOG=verbose", out, sizeof out), 0);
  if (count_of(out, "kiln error: KILN_LOG='verbose' is not a log level") != 1)
    fail_msg("KILN_LOG=verbose is not reported once at error level: %s", out);
  if (!strstr(out, "off, error, warn, info, debug"))
    fail_msg("the report does not list the accepted levels: %s", out);
  /* the level stays the default: error */
  if (strstr(out, "kiln debug:") || strstr(out, "kiln info:"))
    fail_msg("KILN_LOG=verbose: %s", out);
}

static void log_env_unknown_reaches_the_callback(void **state) {
  (void)state;
  static char out[16384];
  assert_int_equal(run_child("log-callback", "KILN_LOG=LOUD", out, sizeof out), 0);
  if (count_of(out, "callback 1: KILN_LOG='LOUD' is not a log level") != 1)
    fail_msg("KILN_LOG=LOUD is not reported once through the callback: %s", out);
  if (strstr(out, "kiln error:"))
    fail_msg("reported on stderr besides the callback: %s", out);
}

static void log_env_unknown_long_value_keeps_the_reason(void **state) {
  (void)state;
  static char out[16384];
  char *var = long_string("KILN_LOG=", 'v', 100000);
  assert_int_equal(run_child("log", var, out, sizeof out), 0);
  free(var);
  if (count_of(out, "(100000 bytes) is not a log level") != 1 ||
      !strstr(out, "off, error, warn, info, debug"))
    fail_msg("a 100000-character KILN_LOG: %s", out);
  if (strlen(out) > 1000)
    fail_msg("the value was not cut (%zu bytes of output)", strlen(out));
}

static int child_main(const char *mode) {
  if (!strcmp(mode, "log"))
    return child_log();
  if (!strcmp(mode, "log-callback"))
    return child_log_callback();
  return 2;
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], CHILD_FLAG) == 0)
    return child_main(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(device_spec_extra_text_after_the_index_named),
      cmocka_unit_test(device_spec_of_100000_characters_keeps_the_reason),
      cmocka_unit_test(log_env_any_case),
      cmocka_unit_test(log_env_unknown_reported_once),
      cmocka_unit_test(log_env_unknown_reaches_the_callback),
      cmocka_unit_test(log_env_unknown_long_value_keeps_the_reason),
      cmocka_unit_test_setup_teardown(source_nul_refused_on_cpu, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(source_bytes_counting_the_terminator_refused, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(source_nul_refused_on_opencl, ocl_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_hidden_by_the_preprocessor_named_on_opencl, ocl_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(program_over_the_kernel_limit_says_so, ocl_setup,
                                      kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

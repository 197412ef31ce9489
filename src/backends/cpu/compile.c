/* SPDX-License-Identifier: MIT */
/* The host compiler for the CPU backend: C text -> shared object bytes -> a loaded
 * object. The compiler is KILN_CC (an absolute path) or `cc` from PATH, started with
 * posix_spawn and an argument array (no shell, so nothing in the options or the
 * environment is ever interpreted by one), its output and log in a private 0700
 * directory (mkdtemp) that is removed before returning. Options pass an allow-list.
 * Any thread; the compiler-version cache is guarded by a mutex. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu_internal.h"

extern char **environ;

#define MAX_ARGS 64
/* Linked into every kernel object, after the source: the math builtins call libm, and
 * the process loading the object (libkiln.so does not need libm) may not have it. */
#define LINK_LIBS "-lm"
#define PATH_BYTES 4096

/* The flags kiln always passes. -fsigned-char: OpenCL's char is signed (aarch64's C
 * char is not). -ffp-contract=off: no fused multiply-add behind the kernel's back, so
 * a*b+c rounds as written (as PoCL does without -cl-mad-enable on most targets). */
static const char *const base_flags[] = {
    "-std=gnu11",
    "-O3",
    "-fPIC",
    "-shared",
    "-fsigned-char",
    "-ffp-contract=off",
    "-fno-plt",
    "-march=native",
    "-w",
#if defined(KILN_ASAN)
    "-O1", /* the sanitizers' advice, and a fraction of -O3's compile time */
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer",
#elif defined(KILN_TSAN)
    "-O1",
    "-g",
    "-fsanitize=thread",
#endif
};

/* ---- options: the allow-list. OpenCL's -cl-* options are accepted on every backend
 * (one options string serves them all): the ones with a C meaning are mapped, the
 * others have none here and are dropped. */
typedef struct optmap {
  const char *opt;
  const char *flag; /* NULL: accepted, no C flag */
} optmap;
static const optmap cl_options[] = {
    {"-cl-fast-relaxed-math", "-ffast-math"},
    {"-cl-finite-math-only", "-ffinite-math-only"},
    {"-cl-no-signed-zeros", "-fno-signed-zeros"},
    {"-cl-unsafe-math-optimizations", "-funsafe-math-optimizations"},
    {"-cl-mad-enable", "-ffp-contract=fast"},
    {"-cl-opt-disable", "-O0"},
    {"-cl-denorms-are-zero", NULL},
    {"-cl-single-precision-constant", NULL},
    {"-cl-std=CL1.2", NULL},
    {"-w", NULL},
};
static const char *const plain_options[] = {"-O0", "-O1", "-O2", "-O3", "-Os", "-ffast-math", "-g"};

static bool macro_name_ok(const char *s, size_t n) {
  if (!n || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return false;
  }
  return true;
}

/* Split `options` at blanks into flags for the compiler (pointers into `store`, which
 * holds the words). INVALID_ARGUMENT naming the first word outside the allow-list. */
static kiln_status parse_options(const char *options, char *store, size_t store_bytes,
                                 const char **flags, size_t *count, size_t max) {
  *count = 0;
  kiln__strlcpy(store, options ? options : "", store_bytes);
  if (options && strlen(options) >= store_bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "the build options are %zu bytes long; the CPU backend takes at most %zu",
                       strlen(options), store_bytes - 1);
  char *save = NULL;
  for (char *w = strtok_r(store, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
    const char *flag = w;
    bool ok = false, drop = false;
    if ((w[0] == '-' && (w[1] == 'D' || w[1] == 'U'))) {
      const char *eq = strchr(w + 2, '=');
      size_t n = eq ? (size_t)(eq - (w + 2)) : strlen(w + 2);
      ok = macro_name_ok(w + 2, n) && !(w[1] == 'U' && eq);
      if (ok && eq) /* the value: no characters the compiler's driver would read as more */
        for (const char *c = eq + 1; *c; c++)
          if (*c == '\'' || *c == '"' || *c == '\\' || *c == '`')
            ok = false;
    } else {
      for (size_t i = 0; !ok && i < sizeof plain_options / sizeof plain_options[0]; i++)
        ok = !strcmp(w, plain_options[i]);
      for (size_t i = 0; !ok && i < sizeof cl_options / sizeof cl_options[0]; i++)
        if (!strcmp(w, cl_options[i].opt)) {
          ok = true;
          flag = cl_options[i].flag;
          drop = !flag;
        }
    }
    if (!ok) {
      kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                  "build option '%s' is not one the CPU backend passes to its compiler", w);
      kiln__error_suggest("allowed: -DNAME[=VALUE] -UNAME -O0..-O3 -Os -g -ffast-math -w and "
                          "OpenCL's -cl-fast-relaxed-math -cl-mad-enable -cl-opt-disable "
                          "-cl-finite-math-only -cl-no-signed-zeros "
                          "-cl-unsafe-math-optimizations (mapped), -cl-denorms-are-zero "
                          "-cl-single-precision-constant -cl-std=CL1.2 (no effect)");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
    if (drop)
      continue;
    if (*count >= max)
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                         "more than %zu build options for the CPU backend", max);
    flags[(*count)++] = flag;
  }
  return KILN_SUCCESS;
}

/* ---- the compiler */
static kiln_status find_compiler(char *path, size_t bytes) {
  const char *cc = getenv("KILN_CC");
  if (cc && *cc) {
    if (cc[0] != '/') {
      kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                  "KILN_CC is '%s', a relative path: kiln runs only a compiler named by an "
                  "absolute path",
                  cc);
      kiln__error_suggest("set KILN_CC to an absolute path (e.g. /usr/bin/gcc), or unset it to "
                          "use cc from PATH");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
    if (access(cc, X_OK) != 0) {
      int e = errno;
      kiln__error(KILN_ERROR_COMPILE_FAILED, "the C compiler KILN_CC='%s' cannot be run: %s", cc,
                  strerror(e));
      kiln__error_suggest("point KILN_CC at an installed C compiler (gcc or clang), or unset it "
                          "to use cc from PATH");
      return KILN_ERROR_COMPILE_FAILED;
    }
    kiln__strlcpy(path, cc, bytes);
    return KILN_SUCCESS;
  }
  const char *env_path = getenv("PATH");
  const char *p = env_path ? env_path : "/usr/bin:/bin";
  while (*p) {
    size_t n = strcspn(p, ":");
    if (n && p[0] == '/' && n + 4 < bytes) {
      memcpy(path, p, n);
      memcpy(path + n, "/cc", 4);
      if (access(path, X_OK) == 0)
        return KILN_SUCCESS;
    }
    p += n + (p[n] == ':');
  }
  path[0] = '\0';
  kiln__error(KILN_ERROR_COMPILE_FAILED,
              "no C compiler: 'cc' is in no absolute directory of PATH ('%.200s'); the CPU "
              "backend compiles kernel source with the host compiler",
              env_path ? env_path : "(unset)");
  kiln__error_suggest("install a C compiler (Debian: apt-get install gcc), or set KILN_CC to "
                      "the absolute path of one; native C kernels need none");
  return KILN_ERROR_COMPILE_FAILED;
}

/* A private directory for one compile or load: mkdtemp makes it 0700. */
static kiln_status make_dir(char *dir, size_t bytes) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || tmp[0] != '/')
    tmp = "/tmp";
  int n = snprintf(dir, bytes, "%s/kiln-cc-XXXXXX", tmp);
  if (n < 0 || (size_t)n >= bytes)
    return kiln__error(KILN_ERROR_IO, "TMPDIR '%.200s' is too long", tmp);
  if (!mkdtemp(dir)) {
    int e = errno;
    kiln__error(KILN_ERROR_IO,
                "could not make a private directory under '%s' for the kernel "
                "compiler: %s",
                tmp, strerror(e));
    kiln__error_suggest("set TMPDIR to a writable directory");
    return KILN_ERROR_IO;
  }
  return KILN_SUCCESS;
}

/* out = dir + "/" + name (a truncated path fails to open, never names another file). */
static void join(char *out, size_t bytes, const char *dir, const char *name) {
  int n = snprintf(out, bytes, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= bytes)
    out[0] = '\0';
}

static void remove_dir(const char *dir) {
  static const char *const names[] = {"k.c", "k.so", "log"};
  char p[PATH_BYTES];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    join(p, sizeof p, dir, names[i]);
    unlink(p);
  }
  rmdir(dir);
}

static kiln_status write_file(const char *path, const void *data, size_t bytes) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    return kiln__error(KILN_ERROR_IO, "could not create '%s': %s", path, strerror(e));
  }
  const char *p = data;
  while (bytes) {
    ssize_t w = write(fd, p, bytes);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      return kiln__error(KILN_ERROR_IO, "could not write '%s': %s", path, strerror(e));
    }
    p += w;
    bytes -= (size_t)w;
  }
  close(fd);
  return KILN_SUCCESS;
}

/* The whole file into kiln memory (*data kiln__alloc'd with *bytes + 1, terminated). */
static kiln_status read_file(const char *path, char **data, size_t *bytes) {
  *data = NULL;
  *bytes = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return kiln__error(KILN_ERROR_IO, "could not open '%s': %s", path, strerror(e));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || sb.st_size < 0) {
    close(fd);
    return kiln__error(KILN_ERROR_IO, "could not stat '%s'", path);
  }
  size_t n = (size_t)sb.st_size;
  char *buf = kiln__alloc(n + 1);
  if (!buf) {
    close(fd);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory reading %zu bytes of "
                       "'%s'",
                       n, path);
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  close(fd);
  buf[got] = '\0';
  *data = buf;
  *bytes = got;
  if (got != n) {
    kiln__free(buf, n + 1);
    *data = NULL;
    return kiln__error(KILN_ERROR_IO, "short read of '%s' (%zu of %zu bytes)", path, got, n);
  }
  return KILN_SUCCESS;
}

/* Run argv (argv[0] an absolute path) with stdout and stderr into log_path; *exit_code
 * its exit status (or 128 + signal). */
static kiln_status run(const char *const *argv, const char *log_path, int *exit_code) {
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory starting the compiler");
  int rc = posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (rc == 0)
    rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (rc == 0)
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  if (rc == 0)
    rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    kiln__error(KILN_ERROR_COMPILE_FAILED, "could not start the C compiler '%s': %s", argv[0],
                strerror(rc));
    kiln__error_suggest("check that '%s' is an installed C compiler, or set KILN_CC", argv[0]);
    return KILN_ERROR_COMPILE_FAILED;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return kiln__error(KILN_ERROR_INTERNAL, "waitpid on the C compiler failed: %s",
                         strerror(errno));
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return KILN_SUCCESS;
}

/* argv: compiler, base flags, user flags, then the rest given. */
static size_t build_argv(const char **argv, const char *cc, const char *const *user,
                         size_t user_count) {
  size_t n = 0;
  argv[n++] = cc;
  for (size_t i = 0; i < sizeof base_flags / sizeof base_flags[0]; i++)
    argv[n++] = base_flags[i];
  for (size_t i = 0; i < user_count; i++)
    argv[n++] = user[i];
  return n;
}

/* ---- the compiler's version line, once per path */
static pthread_mutex_t version_lock = PTHREAD_MUTEX_INITIALIZER;
static char version_path[PATH_BYTES];
static char version_line[256];

static kiln_status compiler_version(const char *cc, char *out, size_t bytes) {
  pthread_mutex_lock(&version_lock);
  if (!strcmp(version_path, cc)) {
    kiln__strlcpy(out, version_line, bytes);
    pthread_mutex_unlock(&version_lock);
    return KILN_SUCCESS;
  }
  pthread_mutex_unlock(&version_lock);
  char dir[PATH_BYTES], log[PATH_BYTES];
  kiln_status st = make_dir(dir, sizeof dir);
  if (st != KILN_SUCCESS)
    return st;
  join(log, sizeof log, dir, "log");
  const char *argv[] = {cc, "--version", NULL};
  int code = 0;
  st = run(argv, log, &code);
  char *text = NULL;
  size_t len = 0;
  if (st == KILN_SUCCESS)
    st = read_file(log, &text, &len);
  remove_dir(dir);
  if (st != KILN_SUCCESS)
    return st;
  size_t line = strcspn(text, "\n");
  text[line] = '\0';
  kiln__strlcpy(out, text, bytes);
  pthread_mutex_lock(&version_lock);
  kiln__strlcpy(version_path, cc, sizeof version_path);
  kiln__strlcpy(version_line, text, sizeof version_line);
  pthread_mutex_unlock(&version_lock);
  kiln__free(text, len + 1);
  return KILN_SUCCESS;
}

kiln_status kiln__cpu_cache_id(const char *options, char *out, size_t out_bytes) {
  char cc[PATH_BYTES], version[256], store[1024];
  const char *user[MAX_ARGS];
  size_t user_count = 0;
  kiln_status st = find_compiler(cc, sizeof cc);
  if (st == KILN_SUCCESS)
    st = parse_options(options, store, sizeof store, user, &user_count, MAX_ARGS - 24);
  if (st == KILN_SUCCESS)
    st = compiler_version(cc, version, sizeof version);
  if (st != KILN_SUCCESS)
    return st;
  const char *argv[MAX_ARGS];
  size_t n = build_argv(argv, cc, user, user_count);
  size_t at = 0;
  int k = snprintf(out, out_bytes, "%s | %s |", cc, version);
  at = k > 0 ? (size_t)k : 0;
  for (size_t i = 1; i < n && at < out_bytes; i++) {
    k = snprintf(out + at, out_bytes - at, " %s", argv[i]);
    at += k > 0 ? (size_t)k : 0;
  }
  if (at < out_bytes) {
    k = snprintf(out + at, out_bytes - at, " SOURCE %s", LINK_LIBS);
    at += k > 0 ? (size_t)k : 0;
  }
  if (at >= out_bytes)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "the compiler's cache id needs more than %zu "
                       "bytes",
                       out_bytes);
  return KILN_SUCCESS;
}

kiln_status kiln__cpu_compile(const char *text, size_t len, const char *options, const char *name,
                              void **so, size_t *so_bytes) {
  *so = NULL;
  *so_bytes = 0;
  char cc[PATH_BYTES], store[1024];
  const char *user[MAX_ARGS];
  size_t user_count = 0;
  kiln_status st = parse_options(options, store, sizeof store, user, &user_count, MAX_ARGS - 24);
  if (st == KILN_SUCCESS)
    st = find_compiler(cc, sizeof cc);
  if (st != KILN_SUCCESS)
    return st;
  char dir[PATH_BYTES], src[PATH_BYTES], out[PATH_BYTES], log[PATH_BYTES];
  if ((st = make_dir(dir, sizeof dir)) != KILN_SUCCESS)
    return st;
  join(src, sizeof src, dir, "k.c");
  join(out, sizeof out, dir, "k.so");
  join(log, sizeof log, dir, "log");
  const char *argv[MAX_ARGS];
  size_t n = build_argv(argv, cc, user, user_count);
  argv[n++] = "-o";
  argv[n++] = out;
  argv[n++] = src;
  argv[n++] = LINK_LIBS;
  argv[n] = NULL;
  int code = 0;
  st = write_file(src, text, len);
  if (st == KILN_SUCCESS)
    st = run(argv, log, &code);
  char *log_text = NULL;
  size_t log_len = 0;
  if (st == KILN_SUCCESS && code != 0) {
    if (read_file(log, &log_text, &log_len) != KILN_SUCCESS) {
      log_text = NULL;
      log_len = 0;
    }
    kiln__set_build_log(log_text ? log_text : "", log_len);
    char first[512];
    kiln__first_error_line(log_text ? log_text : "", cc, NULL, KILN__TARGET_C, first, sizeof first);
    kiln__error(KILN_ERROR_COMPILE_FAILED, "%s: the C compiler (%s) failed (exit %d): %s", name, cc,
                code, first);
    kiln__error_suggest("the whole log is in kiln_last_build_log(); lines '<source>:N' are the "
                        "kernel source's");
    kiln__free(log_text, log_len + 1);
    st = KILN_ERROR_COMPILE_FAILED;
  }
  char *bytes = NULL;
  size_t nbytes = 0;
  if (st == KILN_SUCCESS)
    st = read_file(out, &bytes, &nbytes);
  remove_dir(dir);
  if (st != KILN_SUCCESS)
    return st;
  /* read_file allocated nbytes + 1: hand back exactly nbytes */
  char *exact = kiln__alloc(nbytes ? nbytes : 1);
  if (!exact) {
    kiln__free(bytes, nbytes + 1);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory keeping the %zu-byte shared object of %s", nbytes, name);
  }
  memcpy(exact, bytes, nbytes);
  kiln__free(bytes, nbytes + 1);
  *so = exact;
  *so_bytes = nbytes;
  return KILN_SUCCESS;
}

/* A loaded object. In ASan builds its file stays until unload, so a report from a
 * kernel names the dialect line (the symbolizer reads the file). */
typedef struct loaded {
  void *dl;
  char dir[PATH_BYTES];
} loaded;

kiln_status kiln__cpu_load(const void *so, size_t so_bytes, const char *name, void **out) {
  *out = NULL;
  loaded *l = kiln__calloc(1, sizeof *l);
  if (!l)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory loading %s", name);
  char path[PATH_BYTES];
  kiln_status st = make_dir(l->dir, sizeof l->dir);
  if (st != KILN_SUCCESS) {
    kiln__free(l, sizeof *l);
    return st;
  }
  join(path, sizeof path, l->dir, "k.so");
  st = write_file(path, so, so_bytes);
  if (st == KILN_SUCCESS) {
    l->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
      const char *why = dlerror();
      st = kiln__error(KILN_ERROR_COMPILE_FAILED,
                       "%s: the compiled kernels could not be loaded: "
                       "%s",
                       name, why ? why : "dlopen failed");
    }
  }
#if !defined(KILN_ASAN)
  remove_dir(l->dir);
  l->dir[0] = '\0';
#endif
  if (st != KILN_SUCCESS) {
    if (l->dir[0])
      remove_dir(l->dir);
    kiln__free(l, sizeof *l);
    return st;
  }
  *out = l;
  return KILN_SUCCESS;
}

void *kiln__cpu_symbol(void *object, const char *name) {
  return dlsym(((loaded *)object)->dl, name);
}

void kiln__cpu_unload(void *object) {
  loaded *l = object;
  if (!l)
    return;
  dlclose(l->dl);
  if (l->dir[0])
    remove_dir(l->dir);
  kiln__free(l, sizeof *l);
}

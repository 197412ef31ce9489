/* SPDX-License-Identifier: MIT */
/* The "host" object of the benchmark report: host name, CPU model, online cores and
 * operating system, read from POSIX calls and /proc, /etc/os-release (Linux). Missing
 * sources give "unknown", never a failure. */
#define _DEFAULT_SOURCE 1
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench_internal.h"

/* Copy the value of "key<spaces>:<value>" / "key=value" lines, trimmed and unquoted. */
static int read_field(const char *path, const char *key, char sep, char *dst, size_t size) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  char line[512];
  size_t key_len = strlen(key);
  int found = 0;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, key, key_len) != 0)
      continue;
    char *p = line + key_len;
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p != sep)
      continue;
    p++;
    while (*p == ' ' || *p == '"')
      p++;
    size_t n = strcspn(p, "\"\n");
    if (n >= size)
      n = size - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    found = n > 0;
  }
  fclose(f);
  return found;
}

void kiln__bench_host_get(kiln__bench_host *host) {
  memset(host, 0, sizeof *host);
  if (gethostname(host->hostname, sizeof host->hostname - 1) != 0 || host->hostname[0] == '\0')
    snprintf(host->hostname, sizeof host->hostname, "unknown");
  struct utsname u;
  int have_uname = uname(&u) == 0;
  if (!read_field("/proc/cpuinfo", "model name", ':', host->cpu, sizeof host->cpu))
    snprintf(host->cpu, sizeof host->cpu, "%s", have_uname ? u.machine : "unknown");
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  host->cores = cores > 0 ? (unsigned)cores : 1u;
  char pretty[128] = "";
  read_field("/etc/os-release", "PRETTY_NAME", '=', pretty, sizeof pretty);
  if (have_uname)
    snprintf(host->os, sizeof host->os, "%.100s%s%.32s %.64s %.32s", pretty, pretty[0] ? "; " : "",
             u.sysname, u.release, u.machine);
  else
    snprintf(host->os, sizeof host->os, "%s", pretty[0] ? pretty : "unknown");
}

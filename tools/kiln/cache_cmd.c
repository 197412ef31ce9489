/* SPDX-License-Identifier: MIT */
/* `kiln cache stats|list|verify|clear [--json]`: the compile cache's directory as this
 * user's processes share it (docs/cache.md), through the public calls of
 * include/kiln/cache.h. stats works with the cache off (it says why); the others need
 * a directory that passed its checks. JSON output: schemas/cache.json. */
#define _POSIX_C_SOURCE 200809L /* gmtime_r */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

enum { OPT_HELP = 1, OPT_JSON };

static const kiln_cli_option cache_options[] = {
    {OPT_JSON, "json", 0, NULL, "print JSON (schemas/cache.json) instead of text"},
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {0, NULL, 0, NULL, NULL},
};

static void print_help(void) {
  fputs("Usage: kiln cache stats|list|verify|clear [--json]\n"
        "\n"
        "The compile cache: programs kiln compiled, kept by a SHA-256 key of everything\n"
        "they depend on, in a directory every process of this user shares.\n"
        "\n"
        "  stats   the directory, whether the cache is on (and why not), its entries,\n"
        "          their size and the cap\n"
        "  list    every entry: namespace, key, size, last use\n"
        "  verify  read every entry and check its length and checksum; a bad one is\n"
        "          deleted (it is rebuilt when next needed)\n"
        "  clear   delete every entry\n"
        "\n"
        "Environment: KILN_CACHE_DIR (else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln),\n"
        "KILN_CACHE=off, KILN_CACHE_MAX_BYTES (default 1G).\n"
        "\n"
        "Options:\n",
        stdout);
  kiln_cli_print_options(stdout, cache_options);
}

typedef struct args {
  int json;
  const char *action;
} args;

static int apply_option(int id, const char *value, void *user) {
  args *a = user;
  switch (id) {
  case OPT_HELP:
    print_help();
    return KILN_CLI_EXIT_OK;
  case OPT_JSON:
    a->json = 1;
    return KILN_CLI_GO_ON;
  default: /* KILN_CLI_POSITIONAL */
    if (a->action)
      return kiln_cli_usage_error("cache", "unexpected argument '%s'", value);
    a->action = value;
    return KILN_CLI_GO_ON;
  }
}

static int finish(kiln__json *j) {
  if (kiln__json_finish(j) != 0) {
    fputs("kiln cache: error writing JSON to standard output\n", stderr);
    return KILN_CLI_EXIT_FAILED;
  }
  return KILN_CLI_EXIT_OK;
}

static void json_head(kiln__json *j, const char *command, const kiln_cache_info *info) {
  kiln__json_init(j, stdout, 1);
  kiln__json_begin_object(j, NULL);
  kiln__json_string(j, "kiln_version", kiln_version_string());
  kiln__json_string(j, "command", command);
  kiln__json_string(j, "dir", info->dir);
}

static void format_time(uint64_t unix_ns, char *buf, size_t n) {
  time_t t = (time_t)(unix_ns / 1000000000u);
  struct tm tm;
  if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(buf, n, "?");
}

static int stats(const args *a) {
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  kiln_status st = kiln_cache_stats(&info);
  if (st != KILN_SUCCESS) {
    kiln_cli_report_error("cache", "reading the cache directory", st);
    return KILN_CLI_EXIT_FAILED;
  }
  if (a->json) {
    kiln__json j;
    json_head(&j, "stats", &info);
    kiln__json_bool(&j, "enabled", info.enabled);
    kiln__json_string(&j, "reason", info.enabled ? NULL : info.reason);
    kiln__json_uint(&j, "max_bytes", info.max_bytes);
    kiln__json_uint(&j, "entries", info.entries);
    kiln__json_uint(&j, "bytes", info.bytes);
    kiln__json_uint(&j, "temporary_files", info.temporary_files);
    kiln__json_end_object(&j);
    return finish(&j);
  }
  char size[32], cap[32];
  kiln_cli_format_bytes(info.bytes, size, sizeof size);
  kiln_cli_format_bytes(info.max_bytes, cap, sizeof cap);
  printf("Compile cache: %s\n", info.dir[0] ? info.dir : "(no directory)");
  if (info.enabled)
    printf("  state        on\n");
  else
    printf("  state        off: %s\n", info.reason);
  printf("  entries      %llu (%s of a %s cap)\n", (unsigned long long)info.entries, size, cap);
  if (info.temporary_files)
    printf("  temporary    %llu file(s) being written, or left by a process that died\n",
           (unsigned long long)info.temporary_files);
  return KILN_CLI_EXIT_OK;
}

typedef struct walk {
  const args *a;
  kiln__json *j;
  uint64_t count;
} walk;

static int print_entry(const kiln_cache_entry *e, void *user) {
  walk *w = user;
  w->count++;
  if (w->a->json) {
    if (!strcmp(w->a->action, "verify") && !e->problem)
      return 0;
    kiln__json_begin_object(w->j, NULL);
    kiln__json_string(w->j, "ns", e->ns);
    kiln__json_string(w->j, "key", e->key_hex);
    kiln__json_uint(w->j, "bytes", e->bytes);
    if (!strcmp(w->a->action, "verify"))
      kiln__json_string(w->j, "problem", e->problem);
    else
      kiln__json_uint(w->j, "last_used_unix_ns", e->last_used_unix_ns);
    kiln__json_end_object(w->j);
    return 0;
  }
  if (!strcmp(w->a->action, "verify")) {
    if (e->problem)
      printf("bad  %s/%s: %s (deleted)\n", e->ns, e->key_hex, e->problem);
    return 0;
  }
  char size[32], when[32];
  if (w->count == 1) /* the heading, once there is something under it */
    printf("%-12s %-64s %10s  %s\n", "namespace", "key", "size", "last used (UTC)");
  kiln_cli_format_bytes(e->bytes, size, sizeof size);
  format_time(e->last_used_unix_ns, when, sizeof when);
  printf("%-12s %s %10s  %s\n", e->ns, e->key_hex, size, when);
  return 0;
}

static int no_entry(const kiln_cache_entry *e, void *user) {
  (void)e, (void)user;
  return 1; /* stop at the first */
}

static int list_or_verify(const args *a) {
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  kiln_cache_stats(&info);
  kiln__json j;
  walk w = {a, &j, 0};
  bool verify = !strcmp(a->action, "verify");
  kiln_status st = KILN_SUCCESS;
  if (a->json) {
    /* stdout carries one whole document or nothing: is the directory readable? */
    st = kiln_cache_list(no_entry, NULL);
    if (st == KILN_SUCCESS) {
      json_head(&j, a->action, &info);
      kiln__json_begin_array(&j, verify ? "problems" : "entries");
    }
  }
  uint64_t checked = 0, bad = 0;
  if (st == KILN_SUCCESS)
    st = verify ? kiln_cache_verify(print_entry, &w, &checked, &bad)
                : kiln_cache_list(print_entry, &w);
  if (st != KILN_SUCCESS) {
    kiln_cli_report_error("cache", verify ? "verifying the cache" : "listing the cache", st);
    return KILN_CLI_EXIT_FAILED;
  }
  if (a->json) {
    kiln__json_end_array(&j);
    if (verify) {
      kiln__json_uint(&j, "checked", checked);
      kiln__json_uint(&j, "bad", bad);
    }
    kiln__json_end_object(&j);
    return finish(&j);
  }
  if (verify)
    printf("%llu entr%s checked, %llu bad (deleted; each is rebuilt when next needed)\n",
           (unsigned long long)checked, checked == 1 ? "y" : "ies", (unsigned long long)bad);
  else
    printf("%llu entr%s in %s\n", (unsigned long long)w.count, w.count == 1 ? "y" : "ies",
           info.dir);
  return KILN_CLI_EXIT_OK;
}

static int clear(const args *a) {
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  kiln_cache_stats(&info);
  uint64_t removed = 0;
  kiln_status st = kiln_cache_clear(&removed);
  if (st != KILN_SUCCESS) {
    kiln_cli_report_error("cache", "clearing the cache", st);
    return KILN_CLI_EXIT_FAILED;
  }
  if (a->json) {
    kiln__json j;
    json_head(&j, "clear", &info);
    kiln__json_uint(&j, "removed", removed);
    kiln__json_end_object(&j);
    return finish(&j);
  }
  printf("removed %llu entr%s from %s\n", (unsigned long long)removed, removed == 1 ? "y" : "ies",
         info.dir);
  return KILN_CLI_EXIT_OK;
}

int kiln_cli_cache(int argc, char **argv) {
  args a = {0, NULL};
  int parsed = kiln_cli_parse("cache", cache_options, argc, argv, apply_option, &a);
  if (parsed != KILN_CLI_GO_ON)
    return parsed;
  if (!a.action)
    return kiln_cli_usage_error("cache", "which action: stats, list, verify or clear?");
  if (!strcmp(a.action, "stats"))
    return stats(&a);
  if (!strcmp(a.action, "list") || !strcmp(a.action, "verify"))
    return list_or_verify(&a);
  if (!strcmp(a.action, "clear"))
    return clear(&a);
  return kiln_cli_usage_error("cache", "unknown action '%s' (stats, list, verify, clear)",
                              a.action);
}

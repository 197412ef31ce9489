/* SPDX-License-Identifier: MIT */
/* `kiln pool demo`: a CLI cannot read another process's pool, so this runs a workload
 * in-process on one device (the default, or --device) through the public API — a pool
 * warmed with a few blocks per class, allocations over every path (size classes, best
 * fit, huge) on two streams, each filled and checked, freed on the other stream,
 * reissued, then a compaction — and prints the pool's statistics before and after the
 * compaction, as text or (--json) one object with kiln_pool_stats_json's output
 * (schemas/pool-demo.json). Exit 0 on success, 1 when a step or a check failed. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_HELP = 1, OPT_JSON, OPT_DEVICE, OPT_ROUNDS };

static const kiln_cli_option pool_options_table[] = {
    {OPT_DEVICE, "device", 'd', "B:I", "run on this device (cpu:0, opencl:0, cuda:0)"},
    {OPT_ROUNDS, "rounds", 'n', "N", "allocations in the workload (default 2000)"},
    {OPT_JSON, "json", 0, NULL, "print JSON (schemas/pool-demo.json) instead of text"},
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {0, NULL, 0, NULL, NULL},
};

static void print_help(void) {
  fputs("Usage: kiln pool demo [--device B:I] [--rounds N] [--json]\n"
        "\n"
        "Runs a workload on a device pool in this process (a pool lives in the process\n"
        "that made it: no tool can read another's) and prints its statistics: hits and\n"
        "misses, bytes in use, cached and reserved, high-water marks, fragmentation and\n"
        "the counters of every size class, before and after kiln_pool_compact.\n"
        "\n"
        "Options:\n",
        stdout);
  kiln_cli_print_options(stdout, pool_options_table);
  fputs("\nExit status: 0 on success, 1 when the workload failed, 2 on a usage error.\n", stdout);
}

typedef struct pool_args {
  const char *device;
  uint64_t rounds;
  int json;
  int demo;
} pool_args;

static int apply(int id, const char *value, void *user) {
  pool_args *a = user;
  switch (id) {
  case OPT_HELP:
    print_help();
    return KILN_CLI_EXIT_OK;
  case OPT_JSON:
    a->json = 1;
    return KILN_CLI_GO_ON;
  case OPT_DEVICE:
    a->device = value;
    return KILN_CLI_GO_ON;
  case OPT_ROUNDS:
    if (kiln_cli_parse_count(value, 1, 10000000, &a->rounds) != 0)
      return kiln_cli_usage_error("pool", "--rounds '%s' is not a count from 1 to 10M", value);
    return KILN_CLI_GO_ON;
  case KILN_CLI_POSITIONAL:
    if (!a->demo && strcmp(value, "demo") == 0) {
      a->demo = 1;
      return KILN_CLI_GO_ON;
    }
    return kiln_cli_usage_error("pool", "unexpected argument '%s' (the only subcommand is demo)",
                                value);
  default:
    return KILN_CLI_GO_ON;
  }
}

typedef struct live {
  kiln_buffer buf;
  size_t bytes;
  uint32_t tag;
} live;

/* The workload; returns KILN_SUCCESS or the first failure (reported). */
static kiln_status workload(kiln_context ctx, kiln_pool pool, uint64_t rounds, int *bad) {
  kiln_stream s[2] = {NULL, NULL};
  kiln_status st = kiln_stream_create(ctx, NULL, &s[0]);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(ctx, NULL, &s[1]);
  if (st == KILN_SUCCESS)
    st = kiln_pool_warm(pool, 0, 4);
  enum { SLOTS = 32 };
  live l[SLOTS];
  memset(l, 0, sizeof l);
  uint64_t rng = 0x853c49e6748fea9bull;
  uint32_t *back = malloc((size_t)(12 << 20) / 4 * 4);
  if (!back)
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (uint64_t r = 0; r < rounds && st == KILN_SUCCESS; r++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    unsigned k = (unsigned)(rng % SLOTS), side = (unsigned)(rng >> 8) & 1u;
    if (l[k].buf) { /* check the pattern on the other stream, free there */
      size_t words = l[k].bytes / 4;
      st = kiln_buffer_read(l[k].buf, 0, words * 4, back);
      for (size_t i = 0; i < words && st == KILN_SUCCESS; i++)
        if (back[i] != l[k].tag) {
          (*bad)++;
          break;
        }
      if (st == KILN_SUCCESS)
        st = kiln_pool_free(l[k].buf, s[side]);
      l[k].buf = NULL;
      continue;
    }
    /* mostly size classes, some best fit, a few huge */
    unsigned pick = (unsigned)(rng >> 16) % 100;
    size_t bytes = pick < 80   ? (size_t)64 << ((rng >> 24) % 12)
                   : pick < 97 ? ((size_t)300 << 10) + (size_t)((rng >> 24) % (4u << 20))
                               : (size_t)10 << 20;
    bytes = bytes / 4 * 4 + 4;
    l[k].bytes = bytes;
    l[k].tag = (uint32_t)rng;
    st = kiln_pool_alloc(pool, s[side], bytes, &l[k].buf);
    if (st != KILN_SUCCESS)
      break;
    kiln_pending t = KILN_PENDING_INIT;
    st = kiln_buffer_fill_async(s[side], l[k].buf, 0, bytes, &l[k].tag, 4, &t);
    if (st == KILN_SUCCESS)
      st = kiln_pending_release(&t);
  }
  for (unsigned k = 0; k < SLOTS; k++)
    if (l[k].buf) {
      kiln_status fs = kiln_pool_free(l[k].buf, s[0]);
      if (st == KILN_SUCCESS)
        st = fs;
    }
  free(back);
  kiln_status ss = kiln_context_synchronize(ctx);
  if (st == KILN_SUCCESS)
    st = ss;
  kiln_stream_destroy(s[1]);
  kiln_stream_destroy(s[0]);
  return st;
}

static void print_stats_text(const char *title, const kiln_pool_stats *s) {
  char used[32], peak[32], cached[32], reserved[32], rpeak[32], largest[32];
  kiln_cli_format_bytes(s->bytes_in_use, used, sizeof used);
  kiln_cli_format_bytes(s->bytes_in_use_peak, peak, sizeof peak);
  kiln_cli_format_bytes(s->bytes_cached, cached, sizeof cached);
  kiln_cli_format_bytes(s->bytes_reserved, reserved, sizeof reserved);
  kiln_cli_format_bytes(s->bytes_reserved_peak, rpeak, sizeof rpeak);
  kiln_cli_format_bytes(s->largest_free_bytes, largest, sizeof largest);
  uint64_t asks = s->hits + s->misses;
  printf("%s\n", title);
  printf("  allocations %llu, frees %llu, hits %llu, misses %llu (hit rate %.1f%%)\n",
         (unsigned long long)s->allocs, (unsigned long long)s->frees, (unsigned long long)s->hits,
         (unsigned long long)s->misses, asks ? 100.0 * (double)s->hits / (double)asks : 0.0);
  printf("  in use %s (peak %s), cached %s, reserved %s (peak %s) in %llu slabs\n", used, peak,
         cached, reserved, rpeak, (unsigned long long)s->slabs);
  printf("  largest free block %s, fragmentation %.3f; device allocations %llu, returned %llu\n",
         largest, s->fragmentation, (unsigned long long)s->device_allocs,
         (unsigned long long)s->device_frees);
  printf("  %-10s %8s %8s %6s %6s\n", "class", "hits", "misses", "live", "free");
  for (unsigned c = 0; c < s->class_count; c++) {
    char sz[32];
    kiln_cli_format_bytes(s->classes[c].block_bytes, sz, sizeof sz);
    printf("  %-10s %8llu %8llu %6llu %6llu\n", sz, (unsigned long long)s->classes[c].hits,
           (unsigned long long)s->classes[c].misses, (unsigned long long)s->classes[c].live,
           (unsigned long long)s->classes[c].free);
  }
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void print_json_string(const char *v) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

int kiln_cli_pool(int argc, char **argv) {
  pool_args a = {NULL, 2000, 0, 0};
  int rc = kiln_cli_parse("pool", pool_options_table, argc, argv, apply, &a);
  if (rc != KILN_CLI_GO_ON)
    return rc;
  if (!a.demo)
    return kiln_cli_usage_error("pool", "missing the subcommand: kiln pool demo");
  kiln_device dev = NULL;
  kiln_status st = a.device ? kiln_device_parse(a.device, &dev) : kiln_device_default(&dev);
  if (st != KILN_SUCCESS) {
    if (a.device)
      return kiln_cli_usage_error("pool", "--device '%s': %s", a.device,
                                  kiln_last_error()->message);
    kiln_cli_report_error("pool", "no device", st);
    return KILN_CLI_EXIT_FAILED;
  }
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  kiln_context ctx = NULL;
  kiln_pool pool = NULL;
  if ((st = kiln_device_get_props(dev, &props)) == KILN_SUCCESS &&
      (st = kiln_context_create(dev, NULL, &ctx)) == KILN_SUCCESS)
    st = kiln_pool_create(ctx, NULL, &pool);
  int bad = 0;
  kiln_pool_stats before = KILN_POOL_STATS_INIT, after = KILN_POOL_STATS_INIT;
  if (st == KILN_SUCCESS)
    st = workload(ctx, pool, a.rounds, &bad);
  if (st == KILN_SUCCESS)
    st = kiln_pool_get_stats(pool, &before);
  if (st == KILN_SUCCESS)
    st = kiln_pool_compact(pool);
  if (st == KILN_SUCCESS)
    st = kiln_pool_get_stats(pool, &after);
  if (st != KILN_SUCCESS) {
    kiln_cli_report_error("pool", "the workload failed", st);
    kiln_context_destroy(ctx);
    return KILN_CLI_EXIT_FAILED;
  }
  if (a.json) {
    char *j1 = NULL, *j2 = NULL;
    size_t n1 = 0, n2 = 0;
    kiln_pool_stats_json(&before, NULL, 0, &n1);
    kiln_pool_stats_json(&after, NULL, 0, &n2);
    j1 = malloc(n1 + 1);
    j2 = malloc(n2 + 1);
    if (!j1 || !j2 || kiln_pool_stats_json(&before, j1, n1 + 1, NULL) != KILN_SUCCESS ||
        kiln_pool_stats_json(&after, j2, n2 + 1, NULL) != KILN_SUCCESS) {
      free(j1);
      free(j2);
      kiln_context_destroy(ctx);
      fputs("kiln pool: out of memory formatting the JSON\n", stderr);
      return KILN_CLI_EXIT_FAILED;
    }
    printf("{\"kiln_version\": ");
    print_json_string(kiln_version_string());
    printf(", \"device\": {\"backend\": ");
    print_json_string(kiln_backend_name(props.backend));
    printf(", \"index\": %u, \"name\": ", props.index);
    print_json_string(props.name);
    printf("}, \"rounds\": %llu, \"bad_patterns\": %d, \"stats\": %s, \"after_compact\": %s}\n",
           (unsigned long long)a.rounds, bad, j1, j2);
    free(j1);
    free(j2);
  } else {
    printf("kiln pool demo on %s:%u (%s): %llu allocations over size classes, best fit and "
           "huge blocks on two streams, each freed on the other\n\n",
           kiln_backend_name(props.backend), props.index, props.name, (unsigned long long)a.rounds);
    print_stats_text("after the workload:", &before);
    printf("\n");
    print_stats_text("after kiln_pool_compact:", &after);
    printf("\npatterns checked before every free: %s\n", bad ? "MISMATCH" : "all intact");
  }
  kiln_pool_destroy(pool);
  kiln_context_destroy(ctx);
  return bad ? KILN_CLI_EXIT_FAILED : KILN_CLI_EXIT_OK;
}

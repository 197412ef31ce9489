/* SPDX-License-Identifier: MIT */
/* `kiln trace summary FILE [--json]`: figures from a trace kiln wrote (KILN_TRACE,
 * kiln_trace_flush; schemas/trace.json), read back with jansson. Per kernel and per
 * op kind: count, total, mean and nearest-rank p50/p95/p99 of the spans' durations,
 * bytes and bandwidth (bytes over the summed durations); per stream track: its ops,
 * busy time (the union of its spans) and utilisation over the trace's extent (first
 * op start to last op end); the longest gaps between dependent ops (a flow's target
 * start minus its source's end); the time two or more streams were busy at once. An op
 * a device backend timed on the device (a cat device span naming its op_tid and seq)
 * counts with its device span instead of its observed one. Exit 0, 1 when the
 * file cannot be read or is not a kiln trace, 2 on a usage error. --json:
 * schemas/trace-summary.json. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

enum { OPT_HELP = 1, OPT_JSON };

static const kiln_cli_option options[] = {
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {OPT_JSON, "json", 0, NULL, "print the summary as JSON (schemas/trace-summary.json)"},
    {0, NULL, 0, NULL, NULL},
};

#define MAX_GAPS 10

static void print_help(void) {
  fputs("Usage: kiln trace summary FILE [--json]\n"
        "\n"
        "Summarise a trace kiln wrote (KILN_TRACE=/abs/path.json, kiln_trace_flush):\n"
        "per kernel and per op kind the count, total, mean, p50/p95/p99 (nearest rank)\n"
        "of the ops' durations, bytes and bandwidth; per stream its busy time and\n"
        "utilisation over the trace's extent; the longest gaps between dependent ops\n"
        "(cross-stream hazards and event waits). Times in microseconds. An op timed\n"
        "on the device (OpenCL profiling, CUDA events) counts with its device span.\n"
        "\n"
        "Options:\n",
        stdout);
  kiln_cli_print_options(stdout, options);
}

typedef struct span {
  long long tid, seq;
  double ts, dur;
  const char *name, *kind;
  unsigned long long bytes;
} span;

typedef struct group {
  const char *name;
  size_t count, cap;
  double *durs;
  double total;
  unsigned long long bytes;
} group;

typedef struct track {
  long long tid;
  const char *name;
  size_t ops;
  double busy, first, last;
} track;

typedef struct gap {
  const span *from, *to;
  double us;
} gap;

typedef struct summary {
  span *spans;
  size_t nspans;
  size_t ndevice; /* spans replaced by their device-timed span */
  group *kernels, *kinds;
  size_t nkernels, nkinds;
  track *tracks;
  size_t ntracks;
  gap gaps[MAX_GAPS];
  size_t ngaps;
  double first, last;
  /* each track's busy intervals (its spans merged), then the time >= 2 tracks are busy */
  double (*busy)[2];
  size_t nbusy;
  double concurrent;
} summary;

typedef struct edge {
  double t;
  int delta;
} edge;

static int cmp_edge(const void *a, const void *b) {
  const edge *x = a, *y = b;
  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  return x->delta - y->delta; /* an end before a start at the same time: no overlap */
}

/* The time during which at least two tracks are busy (a sweep over their intervals). */
static int concurrency(summary *s) {
  edge *e = malloc((2 * s->nbusy + 1) * sizeof *e);
  if (!e)
    return -1;
  for (size_t i = 0; i < s->nbusy; i++) {
    e[2 * i] = (edge){s->busy[i][0], 1};
    e[2 * i + 1] = (edge){s->busy[i][1], -1};
  }
  qsort(e, 2 * s->nbusy, sizeof *e, cmp_edge);
  int depth = 0;
  for (size_t i = 0; i < 2 * s->nbusy; i++) {
    if (depth >= 2 && i > 0)
      s->concurrent += e[i].t - e[i - 1].t;
    depth += e[i].delta;
  }
  free(e);
  return 0;
}

static int add_to(group **g, size_t *n, const char *name, const span *s) {
  size_t i = 0;
  while (i < *n && strcmp((*g)[i].name, name) != 0)
    i++;
  if (i == *n) {
    group *ng = realloc(*g, (*n + 1) * sizeof *ng);
    if (!ng)
      return -1;
    *g = ng;
    memset(&ng[i], 0, sizeof ng[i]);
    ng[i].name = name;
    (*n)++;
  }
  group *x = &(*g)[i];
  if (x->count == x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 16;
    double *d = realloc(x->durs, cap * sizeof *d);
    if (!d)
      return -1;
    x->durs = d;
    x->cap = cap;
  }
  x->durs[x->count++] = s->dur;
  x->total += s->dur;
  x->bytes += s->bytes;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p% of the values at or below it. */
static double pct(const group *g, double p) {
  size_t rank = (size_t)ceil(p / 100.0 * (double)g->count);
  if (rank < 1)
    rank = 1;
  return g->durs[rank - 1];
}

static int cmp_span_key(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->tid != y->tid)
    return x->tid < y->tid ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_span_time(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->tid != y->tid)
    return x->tid < y->tid ? -1 : 1;
  return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static const span *find(const summary *s, long long tid, long long seq) {
  span key = {tid, seq, 0, 0, NULL, NULL, 0};
  return bsearch(&key, s->spans, s->nspans, sizeof *s->spans, cmp_span_key);
}

static int integer_arg(json_t *args, const char *key, long long *out) {
  json_t *v = json_object_get(args, key);
  if (!json_is_integer(v))
    return -1;
  *out = (long long)json_integer_value(v);
  return 0;
}

/* A flow's finish event: its id, the track it ends on, its place in the file. */
typedef struct flow_end {
  json_int_t id;
  long long tid;
  size_t index;
} flow_end;

static int cmp_flow_id(const void *a, const void *b) {
  const flow_end *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_flow_end(const void *a, const void *b) {
  const flow_end *x = a, *y = b;
  int c = cmp_flow_id(a, b);
  return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* The finish events ("ph":"f") sorted by id, then by place in the file: one pass and a
 * sort, so that a trace of n events with a flow per op is read in O(n log n). NULL only
 * when out of memory. */
static flow_end *flow_ends(json_t *evs, size_t *count) {
  size_t n = json_array_size(evs), k = 0;
  flow_end *fin = malloc((n ? n : 1) * sizeof *fin);
  if (!fin)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    json_t *f = json_array_get(evs, i);
    const char *ph = json_string_value(json_object_get(f, "ph"));
    if (ph && !strcmp(ph, "f"))
      fin[k++] = (flow_end){json_integer_value(json_object_get(f, "id")),
                            (long long)json_integer_value(json_object_get(f, "tid")), i};
  }
  qsort(fin, k, sizeof *fin, cmp_flow_end);
  *count = k;
  return fin;
}

static void add_gap(summary *s, const span *from, const span *to) {
  double us = to->ts - (from->ts + from->dur);
  size_t i;
  if (s->ngaps < MAX_GAPS)
    i = s->ngaps++;
  else if (us > s->gaps[MAX_GAPS - 1].us)
    i = MAX_GAPS - 1;
  else
    return;
  s->gaps[i] = (gap){from, to, us};
  for (; i > 0 && s->gaps[i - 1].us < s->gaps[i].us; i--) { /* keep them longest first */
    gap t = s->gaps[i - 1];
    s->gaps[i - 1] = s->gaps[i];
    s->gaps[i] = t;
  }
}

/* Ops a device backend timed on the device: their device span (cat device, naming the
 * op's track as op_tid and its seq) replaces the observed one. */
static int prefer_device(json_t *evs, summary *s) {
  qsort(s->spans, s->nspans, sizeof *s->spans, cmp_span_key);
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *ph = json_string_value(json_object_get(ev, "ph"));
    const char *cat = json_string_value(json_object_get(ev, "cat"));
    if (!ph || strcmp(ph, "X") || !cat || strcmp(cat, "device"))
      continue;
    json_t *args = json_object_get(ev, "args");
    long long op_tid, seq;
    double dur = json_number_value(json_object_get(ev, "dur"));
    if (integer_arg(args, "op_tid", &op_tid) || integer_arg(args, "seq", &seq) || dur < 0)
      continue;
    span *sp = (span *)find(s, op_tid, seq);
    if (!sp)
      continue; /* its op is not in the trace (a ring cut it off) */
    sp->ts = json_number_value(json_object_get(ev, "ts"));
    sp->dur = dur;
    s->ndevice++;
  }
  return 0;
}

static int build(json_t *evs, summary *s, const char *path) {
  size_t n = json_array_size(evs);
  s->spans = calloc(n ? n : 1, sizeof *s->spans);
  if (!s->spans)
    return -1;
  s->first = INFINITY;
  s->last = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    json_t *ev = json_array_get(evs, i);
    const char *ph = json_string_value(json_object_get(ev, "ph"));
    const char *cat = json_string_value(json_object_get(ev, "cat"));
    if (!ph || strcmp(ph, "X") || !cat || strcmp(cat, "op"))
      continue;
    json_t *args = json_object_get(ev, "args");
    span sp = {0};
    long long bytes = 0;
    sp.tid = (long long)json_integer_value(json_object_get(ev, "tid"));
    sp.ts = json_number_value(json_object_get(ev, "ts"));
    sp.dur = json_number_value(json_object_get(ev, "dur"));
    sp.name = json_string_value(json_object_get(ev, "name"));
    sp.kind = json_string_value(json_object_get(args, "kind"));
    if (!sp.name || !sp.kind || integer_arg(args, "seq", &sp.seq) ||
        integer_arg(args, "bytes", &bytes) || bytes < 0 || sp.dur < 0) {
      fprintf(stderr,
              "kiln trace summary: %s: traceEvents[%zu] is an op without its "
              "name, kind, seq, bytes or a duration >= 0: not a kiln trace?\n",
              path, i);
      return -2;
    }
    sp.bytes = (unsigned long long)bytes;
    s->spans[s->nspans++] = sp;
  }
  if (prefer_device(evs, s) != 0)
    return -1;
  for (size_t i = 0; i < s->nspans; i++) {
    const span *sp = &s->spans[i];
    if (sp->ts < s->first)
      s->first = sp->ts;
    if (sp->ts + sp->dur > s->last)
      s->last = sp->ts + sp->dur;
  }
  for (size_t i = 0; i < s->nspans; i++) {
    const span *sp = &s->spans[i];
    if ((!strcmp(sp->kind, "launch") && add_to(&s->kernels, &s->nkernels, sp->name, sp)) ||
        add_to(&s->kinds, &s->nkinds, sp->kind, sp))
      return -1;
  }
  for (size_t i = 0; i < s->nkernels; i++)
    qsort(s->kernels[i].durs, s->kernels[i].count, sizeof(double), cmp_double);
  for (size_t i = 0; i < s->nkinds; i++)
    qsort(s->kinds[i].durs, s->kinds[i].count, sizeof(double), cmp_double);
  /* Tracks: the union of each track's spans (in time order). */
  qsort(s->spans, s->nspans, sizeof *s->spans, cmp_span_time);
  for (size_t i = 0; i < s->nspans; i++) {
    const span *sp = &s->spans[i];
    if (!s->ntracks || s->tracks[s->ntracks - 1].tid != sp->tid) {
      track *t = realloc(s->tracks, (s->ntracks + 1) * sizeof *t);
      if (!t)
        return -1;
      s->tracks = t;
      t[s->ntracks++] = (track){sp->tid, NULL, 0, 0, sp->ts, sp->ts};
    }
    track *t = &s->tracks[s->ntracks - 1];
    int fresh = t->ops == 0;
    t->ops++;
    double end = sp->ts + sp->dur;
    if (fresh || sp->ts > t->last) { /* a new busy interval of the track */
      double(*b)[2] = realloc(s->busy, (s->nbusy + 1) * sizeof *b);
      if (!b)
        return -1;
      s->busy = b;
      b[s->nbusy][0] = sp->ts;
      b[s->nbusy][1] = sp->ts;
      s->nbusy++;
    }
    if (end > t->last || fresh) {
      t->busy += end - (sp->ts > t->last || fresh ? sp->ts : t->last);
      t->last = end;
      s->busy[s->nbusy - 1][1] = end;
    }
  }
  if (concurrency(s) != 0)
    return -1;
  for (size_t i = 0; i < n; i++) { /* track names */
    json_t *ev = json_array_get(evs, i);
    const char *ph = json_string_value(json_object_get(ev, "ph"));
    const char *name = json_string_value(json_object_get(ev, "name"));
    if (!ph || strcmp(ph, "M") || !name || strcmp(name, "thread_name"))
      continue;
    long long tid = (long long)json_integer_value(json_object_get(ev, "tid"));
    for (size_t k = 0; k < s->ntracks; k++)
      if (s->tracks[k].tid == tid)
        s->tracks[k].name = json_string_value(json_object_get(json_object_get(ev, "args"), "name"));
  }
  /* Gaps: each flow's start event names both ends; its finish event (the first with
   * its id, in file order) gives the target's track. */
  qsort(s->spans, s->nspans, sizeof *s->spans, cmp_span_key);
  size_t nfin = 0;
  flow_end *fin = flow_ends(evs, &nfin);
  if (!fin)
    return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *ev = json_array_get(evs, i);
    const char *ph = json_string_value(json_object_get(ev, "ph"));
    if (!ph || strcmp(ph, "s"))
      continue;
    json_t *args = json_object_get(ev, "args");
    long long from_seq, to_seq;
    json_int_t id = json_integer_value(json_object_get(ev, "id"));
    if (integer_arg(args, "from_seq", &from_seq) || integer_arg(args, "to_seq", &to_seq))
      continue;
    long long from_tid = (long long)json_integer_value(json_object_get(ev, "tid"));
    flow_end key = {id, 0, 0};
    const flow_end *f = bsearch(&key, fin, nfin, sizeof *fin, cmp_flow_id);
    while (f && f > fin && f[-1].id == id) /* bsearch may land on any of equal ids */
      f--;
    const span *from = find(s, from_tid, from_seq), *to = f ? find(s, f->tid, to_seq) : NULL;
    if (from && to)
      add_gap(s, from, to);
  }
  free(fin);
  return 0;
}

static const char *track_name(const summary *s, long long tid, char *buf, size_t bytes) {
  for (size_t k = 0; k < s->ntracks; k++)
    if (s->tracks[k].tid == tid && s->tracks[k].name)
      return s->tracks[k].name;
  snprintf(buf, bytes, "track %lld", tid);
  return buf;
}

/* Bytes per microsecond = MB/s; GB/s = that / 1000. */
static double gb_per_s(const group *g) {
  return g->total > 0 && g->bytes ? (double)g->bytes / g->total / 1000.0 : 0.0;
}

static void print_groups(const char *title, const char *col, const group *g, size_t n) {
  printf("%s\n  %-24s %7s %12s %10s %10s %10s %10s %14s %10s\n", title, col, "COUNT", "TOTAL us",
         "MEAN us", "P50 us", "P95 us", "P99 us", "BYTES", "GB/s");
  for (size_t i = 0; i < n; i++)
    printf("  %-24s %7zu %12.3f %10.3f %10.3f %10.3f %10.3f %14llu %10.3f\n", g[i].name, g[i].count,
           g[i].total, g[i].total / (double)g[i].count, pct(&g[i], 50), pct(&g[i], 95),
           pct(&g[i], 99), g[i].bytes, gb_per_s(&g[i]));
  if (!n)
    printf("  (none)\n");
}

static void print_text(const summary *s, const char *path) {
  double extent = s->nspans ? s->last - s->first : 0.0;
  printf("trace %s: %zu ops over %.3f us; two or more streams busy for %.3f us (%.1f%%)\n", path,
         s->nspans, extent, s->concurrent, extent > 0 ? 100.0 * s->concurrent / extent : 0.0);
  if (s->ndevice) /* (host backends' traces have none) */
    printf("%zu of them timed on the device (their device spans count)\n", s->ndevice);
  printf("\n");
  print_groups("Kernels", "KERNEL", s->kernels, s->nkernels);
  printf("\n");
  print_groups("Op kinds", "KIND", s->kinds, s->nkinds);
  printf("\nStreams\n  %-32s %7s %12s %12s\n", "TRACK", "OPS", "BUSY us", "UTILISATION");
  char buf[64];
  for (size_t i = 0; i < s->ntracks; i++)
    printf("  %-32s %7zu %12.3f %11.1f%%\n", track_name(s, s->tracks[i].tid, buf, sizeof buf),
           s->tracks[i].ops, s->tracks[i].busy,
           extent > 0 ? 100.0 * s->tracks[i].busy / extent : 0.0);
  printf("\nLongest gaps between dependent ops\n");
  if (!s->ngaps)
    printf("  (no dependencies between streams in the trace)\n");
  for (size_t i = 0; i < s->ngaps; i++) {
    char b1[64], b2[64];
    const gap *g = &s->gaps[i];
    printf("  %10.3f us  %s #%lld (%s) -> %s #%lld (%s)\n", g->us,
           track_name(s, g->from->tid, b1, sizeof b1), g->from->seq, g->from->name,
           track_name(s, g->to->tid, b2, sizeof b2), g->to->seq, g->to->name);
  }
}

static void json_groups(kiln__json *j, const char *key, const char *name_key, const group *g,
                        size_t n) {
  kiln__json_begin_array(j, key);
  for (size_t i = 0; i < n; i++) {
    kiln__json_begin_object(j, NULL);
    kiln__json_string(j, name_key, g[i].name);
    kiln__json_uint(j, "count", g[i].count);
    kiln__json_number(j, "total_us", g[i].total);
    kiln__json_number(j, "mean_us", g[i].total / (double)g[i].count);
    kiln__json_number(j, "p50_us", pct(&g[i], 50));
    kiln__json_number(j, "p95_us", pct(&g[i], 95));
    kiln__json_number(j, "p99_us", pct(&g[i], 99));
    kiln__json_uint(j, "bytes", g[i].bytes);
    kiln__json_number(j, "gb_per_s", gb_per_s(&g[i]));
    kiln__json_end_object(j);
  }
  kiln__json_end_array(j);
}

static void json_end(kiln__json *j, const summary *s, const span *sp) {
  char buf[64];
  kiln__json_begin_object(j, NULL);
  kiln__json_string(j, "track", track_name(s, sp->tid, buf, sizeof buf));
  kiln__json_int(j, "seq", sp->seq);
  kiln__json_string(j, "name", sp->name);
  kiln__json_end_object(j);
}

static int print_json(const summary *s, const char *path) {
  double extent = s->nspans ? s->last - s->first : 0.0;
  kiln__json j;
  kiln__json_init(&j, stdout, 1);
  kiln__json_begin_object(&j, NULL);
  kiln__json_string(&j, "file", path);
  kiln__json_uint(&j, "ops", s->nspans);
  kiln__json_uint(&j, "device_timed_ops", s->ndevice);
  kiln__json_number(&j, "extent_us", extent);
  kiln__json_number(&j, "concurrent_us", s->concurrent);
  json_groups(&j, "kernels", "kernel", s->kernels, s->nkernels);
  json_groups(&j, "kinds", "kind", s->kinds, s->nkinds);
  kiln__json_begin_array(&j, "streams");
  char buf[64];
  for (size_t i = 0; i < s->ntracks; i++) {
    kiln__json_begin_object(&j, NULL);
    kiln__json_string(&j, "track", track_name(s, s->tracks[i].tid, buf, sizeof buf));
    kiln__json_uint(&j, "ops", s->tracks[i].ops);
    kiln__json_number(&j, "busy_us", s->tracks[i].busy);
    kiln__json_number(&j, "utilisation", extent > 0 ? s->tracks[i].busy / extent : 0.0);
    kiln__json_end_object(&j);
  }
  kiln__json_end_array(&j);
  kiln__json_begin_array(&j, "gaps");
  for (size_t i = 0; i < s->ngaps; i++) {
    kiln__json_begin_object(&j, NULL);
    kiln__json_number(&j, "gap_us", s->gaps[i].us);
    kiln__json_begin_array(&j, "ops");
    json_end(&j, s, s->gaps[i].from);
    json_end(&j, s, s->gaps[i].to);
    kiln__json_end_array(&j);
    kiln__json_end_object(&j);
  }
  kiln__json_end_array(&j);
  kiln__json_end_object(&j);
  if (kiln__json_finish(&j) != 0) {
    fputs("kiln trace summary: error writing JSON to standard output\n", stderr);
    return KILN_CLI_EXIT_FAILED;
  }
  return KILN_CLI_EXIT_OK;
}

static void summary_free(summary *s) {
  for (size_t i = 0; i < s->nkernels; i++)
    free(s->kernels[i].durs);
  for (size_t i = 0; i < s->nkinds; i++)
    free(s->kinds[i].durs);
  free(s->kernels);
  free(s->kinds);
  free(s->tracks);
  free(s->spans);
  free(s->busy);
}

typedef struct args {
  int json;
  int sub; /* "summary" seen */
  const char *file;
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
    if (!a->sub) {
      if (strcmp(value, "summary") != 0)
        return kiln_cli_usage_error("trace", "unknown subcommand '%s' (kiln trace summary FILE)",
                                    value);
      a->sub = 1;
      return KILN_CLI_GO_ON;
    }
    if (a->file)
      return kiln_cli_usage_error("trace", "unexpected argument '%s'", value);
    a->file = value;
    return KILN_CLI_GO_ON;
  }
}

int kiln_cli_trace(int argc, char **argv) {
  args a = {0, 0, NULL};
  int parsed = kiln_cli_parse("trace", options, argc, argv, apply_option, &a);
  if (parsed != KILN_CLI_GO_ON)
    return parsed;
  if (!a.sub)
    return kiln_cli_usage_error("trace", "missing subcommand (kiln trace summary FILE)");
  if (!a.file)
    return kiln_cli_usage_error("trace", "summary needs the trace FILE");
  struct stat sb;
  if (stat(a.file, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    fprintf(stderr,
            "kiln trace summary: '%s' is a directory: give the trace file kiln wrote "
            "(KILN_TRACE=/abs/path.json)\n",
            a.file);
    return KILN_CLI_EXIT_FAILED;
  }
  json_error_t err;
  json_t *root = json_load_file(a.file, 0, &err);
  if (!root) {
    if (err.line > 0)
      fprintf(stderr,
              "kiln trace summary: cannot read %s: malformed JSON at line %d, column %d: %s\n",
              a.file, err.line, err.column, err.text);
    else
      fprintf(stderr, "kiln trace summary: cannot read %s: %s\n", a.file, err.text);
    return KILN_CLI_EXIT_FAILED;
  }
  json_t *evs = json_object_get(root, "traceEvents");
  if (!json_is_array(evs)) {
    fprintf(stderr, "kiln trace summary: %s has no traceEvents array: not a trace\n", a.file);
    json_decref(root);
    return KILN_CLI_EXIT_FAILED;
  }
  summary s;
  memset(&s, 0, sizeof s);
  int rc = build(evs, &s, a.file);
  if (rc == -1)
    fputs("kiln trace summary: out of host memory\n", stderr);
  if (rc == 0)
    rc = a.json ? print_json(&s, a.file) : (print_text(&s, a.file), KILN_CLI_EXIT_OK);
  else
    rc = KILN_CLI_EXIT_FAILED;
  summary_free(&s);
  json_decref(root);
  return rc;
}

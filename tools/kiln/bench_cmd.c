/* SPDX-License-Identifier: MIT */
/* `kiln bench list | run | compare`: the command-line face of the benchmark library
 * (include/kiln/bench.h) over the built-in suites (bench/suites.h). Results go to
 * stdout as a table, and to the files of --json/--csv/--md/--html/--latex ("-":
 * stdout, then the table goes to stderr). Progress goes to stderr: a bar redrawn in
 * place on a terminal, one plain line per finished case otherwise.
 * Exit: run: 0 measured, 1 a case failed, 2 usage; compare: 0 no regression,
 * 1 a regression beyond the threshold, 2 bad input (unreadable, malformed or mismatched
 * JSON, a document schemas/bench.json rejects, impossible statistics), with one line. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kiln/bench.h"
#include "suites.h"

enum {
  OPT_HELP = 1,
  OPT_DEVICE,
  OPT_QUICK,
  OPT_JSON,
  OPT_CSV,
  OPT_MD,
  OPT_HTML,
  OPT_LATEX,
  OPT_AXIS,
  OPT_BUDGET,
  OPT_TARGET,
  OPT_SELF_TEST,
  OPT_THRESHOLD,
  OPT_CASE,
};

#define MAX_AXES 16
#define MAX_DEVICES 16
#define MAX_SUITES 64 /* more than the built-in suites */

static const kiln_cli_option run_options[] = {
    {OPT_DEVICE, "device", 0, "B:I", "run on device I of backend B (default: the suite's)"},
    {OPT_AXIS, "axis", 0, "NAME=V1,V2",
     "replace the values of a parameter axis (e.g. bytes=4K,1M,64MiB); device=B:I,... runs "
     "the suites on each device"},
    {OPT_CASE, "case", 0, "PATTERNS",
     "run only the cases whose names match one of these comma-separated shell patterns "
     "(e.g. op_burst_10000,op_roundtrip*)"},
    {OPT_QUICK, "quick", 0, NULL, "CI mode: 0.25 s per case, at least 5 samples"},
    {OPT_JSON, "json", 0, "FILE", "also write the results as JSON (schemas/bench.json)"},
    {OPT_CSV, "csv", 0, "FILE", "also write them as CSV"},
    {OPT_MD, "md", 0, "FILE", "also write them as Markdown"},
    {OPT_HTML, "html", 0, "FILE", "also write a self-contained HTML report with plots"},
    {OPT_LATEX, "latex", 0, "FILE", "also write them as a LaTeX document"},
    {OPT_BUDGET, "budget-ms", 0, "MS", "measuring time per case (default 2000, quick 250)"},
    {OPT_TARGET, "target-ci", 0, "PCT",
     "stop once both medians' 95% CI half-widths are under PCT% (default 1)"},
    {OPT_SELF_TEST, "self-test", 0, NULL,
     "compare each kiln side with itself slowed down 2x: ratios should be near 0.5"},
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {0, NULL, 0, NULL, NULL},
};

static const kiln_cli_option compare_options[] = {
    {OPT_THRESHOLD, "threshold", 0, "PCT",
     "a slowdown (more time per op) beyond PCT% with separated intervals is a regression "
     "(default 5)"},
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {0, NULL, 0, NULL, NULL},
};

static const kiln_cli_option help_only[] = {
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {0, NULL, 0, NULL, NULL},
};

static void print_help(FILE *out) {
  fputs("Usage: kiln bench list\n"
        "       kiln bench run <suite...|all> [options]\n"
        "       kiln bench compare OLD.json NEW.json [--threshold PCT]\n"
        "\n"
        "Measure kiln and a baseline doing the same work another way (a plain pthread\n"
        "queue, memcpy, ...), interleaved in one process, and report both medians with\n"
        "95% intervals and the ratio (> 1: kiln is better), and log-log slopes over size\n"
        "axes. Goals are judged on the ratio's interval and reported, never asserted.\n"
        "compare matches two runs' results and exits 1 on a regression, 2 on bad input.\n"
        "\n"
        "Options of run:\n",
        out);
  kiln_cli_print_options(out, run_options);
  fputs("\nOptions of compare:\n", out);
  kiln_cli_print_options(out, compare_options);
}

static int apply_list_option(int id, const char *value, void *user) {
  (void)user;
  if (id == OPT_HELP) {
    fputs("Usage: kiln bench list\nList the suites, their cases and axes.\n", stdout);
    return KILN_CLI_EXIT_OK;
  }
  return kiln_cli_usage_error("bench list", "unexpected argument '%s'", value);
}

static int cmd_list(int argc, char **argv) {
  int parsed = kiln_cli_parse("bench list", help_only, argc, argv, apply_list_option, NULL);
  if (parsed != KILN_CLI_GO_ON)
    return parsed;
  size_t count;
  const kiln_bench_suite *const *suites = kiln__bench_suites(&count);
  for (size_t i = 0; i < count; i++) {
    const kiln_bench_suite *s = suites[i];
    printf("%s: %s\n", s->name, s->description);
    for (size_t k = 0; k < s->case_count; k++) {
      const kiln_bench_case *c = &s->cases[k];
      printf("  %-22s %-8s vs %-14s %s\n", c->name, c->unit,
             c->baseline_name ? c->baseline_name : "-", c->description ? c->description : "");
      for (size_t a = 0; a < c->axis_count; a++) {
        const kiln_bench_axis *ax = &c->axes[a];
        printf("  %-22s axis %s%s =", "", ax->name, ax->scaling ? " (scaling)" : "");
        for (size_t v = 0; v < ax->count; v++) {
          if (ax->strs != NULL)
            printf("%s%s", v ? "," : " ", ax->strs[v]);
          else
            printf("%s%lld", v ? "," : " ", (long long)ax->nums[v]);
        }
        putchar('\n');
      }
    }
  }
  return KILN_CLI_EXIT_OK;
}

/* ---- progress ---- */

typedef struct progress_state {
  int tty;
  uint64_t last_draw_ns;
  int drawn; /* a bar is on the line */
} progress_state;

static void clear_bar(progress_state *ps) {
  if (ps->drawn)
    fputs("\r\033[K", stderr);
  ps->drawn = 0;
}

static void on_result(const kiln_bench_result *r, void *user) {
  progress_state *ps = user;
  clear_bar(ps);
  if (r->status != 0)
    fprintf(stderr, "kiln bench: %s\n", r->message);
  else
    fprintf(stderr, "  %s/%s: %llu samples x %llu ops, %.1f s%s\n", r->suite->name, r->label,
            (unsigned long long)r->kiln.samples, (unsigned long long)r->batch_size,
            (double)r->elapsed_ns / 1e9, r->device_timing ? " (device timing)" : "");
  fflush(stderr);
}

static void on_tick(const kiln_bench_tick *t, void *user) {
  progress_state *ps = user;
  uint64_t now = kiln_bench_clock_monotonic(NULL);
  if (ps->drawn && now - ps->last_draw_ns < 100000000ull)
    return; /* 10 redraws a second */
  ps->last_draw_ns = now;
  double frac = t->estimate_ns ? (double)t->elapsed_ns / (double)t->estimate_ns : 0.0;
  if (frac > 1.0)
    frac = 1.0;
  char bar[21];
  int fill = (int)(frac * 20.0);
  for (int i = 0; i < 20; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[20] = '\0';
  char ci[32] = "";
  if (t->rel_ci == t->rel_ci)
    snprintf(ci, sizeof ci, " +-%.1f%%", 100.0 * t->rel_ci);
  fprintf(stderr, "\r\033[K[%s] %s %zu/%zu %.40s: %s %llu samples%s  %.1f s / ~%.1f s", bar,
          t->suite, t->index + 1, t->total, t->label, t->phase, (unsigned long long)t->samples, ci,
          (double)t->elapsed_ns / 1e9, (double)t->estimate_ns / 1e9);
  fflush(stderr);
  ps->drawn = 1;
}

/* ---- run ---- */

/* 1 when a suite run without --device has its device (host-only and any-device suites
 * always do); else 0 with the reason in why, e.g. "no opencl device: no OpenCL
 * platform: clGetPlatformIDs returned CL_PLATFORM_NOT_FOUND_KHR (-1001)". */
static int suite_has_device(const kiln_bench_suite *s, char *why, size_t why_bytes) {
  if (s->host_only || s->backend == KILN_BACKEND_NONE)
    return 1;
  kiln_device dev = NULL;
  if (kiln_device_find(s->backend, 0, &dev) == KILN_SUCCESS)
    return 1;
  snprintf(why, why_bytes, "no %s device", kiln_backend_name(s->backend));
  for (unsigned i = 0; i < kiln_backend_count(); i++) {
    kiln_backend_info info = KILN_BACKEND_INFO_INIT;
    if (kiln_backend_get_info(i, &info) == KILN_SUCCESS && info.kind == s->backend &&
        info.reason[0] != '\0')
      snprintf(why, why_bytes, "no %s device: %s", info.name, info.reason);
  }
  return 0;
}

typedef struct axis_arg {
  char *text; /* a copy of NAME=V1,V2 cut in place */
  const char *values[64];
  kiln_bench_axis_override o;
} axis_arg;

/* Split "name=v1,v2" into an override; -1 on a usage error (reported). */
static int parse_axis(const char *arg, axis_arg *a) {
  a->text = strdup(arg);
  if (a->text == NULL)
    return -1;
  char *eq = strchr(a->text, '=');
  if (eq == NULL || eq == a->text || eq[1] == '\0') {
    kiln_cli_usage_error("bench run", "--axis wants NAME=V1,V2,..., got '%s'", arg);
    return -1;
  }
  *eq = '\0';
  a->o.name = a->text;
  a->o.count = 0;
  for (char *v = eq + 1;;) {
    char *comma = strchr(v, ',');
    if (comma != NULL)
      *comma = '\0';
    if (*v == '\0' || a->o.count == 64) {
      kiln_cli_usage_error("bench run", "--axis %s: give 1 to 64 non-empty values, got '%s'",
                           a->text, arg);
      return -1;
    }
    a->values[a->o.count++] = v;
    if (comma == NULL)
      break;
    v = comma + 1;
  }
  a->o.values = a->values;
  return 0;
}

typedef struct output {
  int id;
  const char *what;
  const char *path;
  kiln_status (*write)(const kiln_bench_report *, FILE *);
} output;

#define OUTPUT_COUNT 5

/* What `bench run`'s command line asks for. */
typedef struct run_plan {
  kiln_bench_config config;
  output outs[OUTPUT_COUNT];
  const kiln_bench_suite *chosen[MAX_SUITES]; /* each once, in the order named */
  size_t n_chosen;
  int all_named; /* `all` was named: suites without a device are skipped, not failed */
  axis_arg *axes;
  size_t n_axes;
  kiln_bench_axis_override overrides[MAX_AXES]; /* the axes other than device */
  size_t n_overrides;
  const char *devices[MAX_DEVICES]; /* NULL: each suite's own */
  size_t n_devices;
} run_plan;

static int plan_init(run_plan *plan) {
  static const output outs[OUTPUT_COUNT] = {
      {OPT_JSON, "JSON", NULL, kiln_bench_report_write_json},
      {OPT_CSV, "CSV", NULL, kiln_bench_report_write_csv},
      {OPT_MD, "Markdown", NULL, kiln_bench_report_write_markdown},
      {OPT_HTML, "HTML report", NULL, kiln_bench_report_write_html},
      {OPT_LATEX, "LaTeX", NULL, kiln_bench_report_write_latex},
  };
  static const kiln_bench_config config = KILN_BENCH_CONFIG_INIT;
  memset(plan, 0, sizeof *plan);
  plan->config = config;
  memcpy(plan->outs, outs, sizeof outs);
  plan->axes = calloc(MAX_AXES, sizeof *plan->axes);
  return plan->axes != NULL ? 0 : -1;
}

static void plan_free(run_plan *plan) {
  for (size_t i = 0; i < plan->n_axes; i++)
    free(plan->axes[i].text);
  free(plan->axes);
}

/* Add the suite `name` (or every suite for `all`), once; -1 on an unknown name. */
static int choose_suite(run_plan *plan, const char *name) {
  size_t count;
  const kiln_bench_suite *const *suites = kiln__bench_suites(&count);
  int all = strcmp(name, "all") == 0;
  const kiln_bench_suite *named = all ? NULL : kiln__bench_suite_find(name);
  if (!all && named == NULL) {
    fprintf(stderr, "kiln bench run: unknown suite '%s'; the suites are:", name);
    for (size_t i = 0; i < count; i++)
      fprintf(stderr, " %s", suites[i]->name);
    fputs(" (or 'all'); see 'kiln bench list'\n", stderr);
    return -1;
  }
  plan->all_named |= all;
  for (size_t i = 0; i < count; i++) {
    if (!all && suites[i] != named)
      continue;
    int dup = 0;
    for (size_t k = 0; k < plan->n_chosen; k++)
      dup |= plan->chosen[k] == suites[i];
    if (!dup && plan->n_chosen < MAX_SUITES)
      plan->chosen[plan->n_chosen++] = suites[i];
  }
  return 0;
}

/* A percentage in (0, max] (or (0, max) when !max_included); -1 when it is not one. */
static int parse_percent(const char *text, double max, int max_included, double *out) {
  char *end = NULL;
  double pct = strtod(text, &end);
  if (end == text || *end != '\0' || !(pct > 0.0) || pct > max || (!max_included && pct == max))
    return -1;
  *out = pct;
  return 0;
}

/* Apply one option of `bench run`; -1 on a usage error (reported). */
static int plan_option(run_plan *plan, int id, const char *value) {
  uint64_t n;
  double pct;
  switch (id) {
  case OPT_DEVICE:
    plan->config.device = value;
    return 0;
  case OPT_QUICK:
    plan->config.quick = 1;
    return 0;
  case OPT_CASE:
    plan->config.cases = value;
    return 0;
  case OPT_SELF_TEST:
    plan->config.self_test = 1;
    return 0;
  case OPT_AXIS:
    if (plan->n_axes == MAX_AXES) {
      kiln_cli_usage_error("bench run", "at most %d --axis options", MAX_AXES);
      return -1;
    }
    return parse_axis(value, &plan->axes[plan->n_axes++]);
  case OPT_BUDGET:
    if (kiln_cli_parse_count(value, 1, 3600000, &n) != 0) {
      kiln_cli_usage_error("bench run", "--budget-ms wants 1..3600000 ms, got '%s'", value);
      return -1;
    }
    plan->config.budget_ns = n * 1000000ull;
    return 0;
  case OPT_TARGET:
    if (parse_percent(value, 100.0, 1, &pct) != 0) {
      kiln_cli_usage_error("bench run", "--target-ci wants a percentage in (0, 100], got '%s'",
                           value);
      return -1;
    }
    plan->config.target_rel_ci = pct / 100.0;
    return 0;
  default: /* the output files */
    for (size_t i = 0; i < OUTPUT_COUNT; i++)
      if (plan->outs[i].id == id)
        plan->outs[i].path = value;
    return 0;
  }
}

/* One argument of `bench run`: a suite (or all), an option, or --help. */
static int apply_run_option(int id, const char *value, void *user) {
  run_plan *plan = user;
  if (id == OPT_HELP) {
    print_help(stdout);
    return KILN_CLI_EXIT_OK;
  }
  if ((id == KILN_CLI_POSITIONAL ? choose_suite(plan, value) : plan_option(plan, id, value)) != 0)
    return KILN_CLI_EXIT_USAGE;
  return KILN_CLI_GO_ON;
}

/* The command line into *plan: KILN_CLI_GO_ON, or the exit code (--help, usage). */
static int plan_parse(run_plan *plan, int argc, char **argv) {
  int parsed = kiln_cli_parse("bench run", run_options, argc, argv, apply_run_option, plan);
  if (parsed == KILN_CLI_GO_ON && plan->n_chosen == 0)
    parsed = kiln_cli_usage_error("bench run", "name a suite (see 'kiln bench list') or 'all'");
  return parsed;
}

/* The device axis is the CLI's (one pass over the suites per device); the others go
 * to the harness. Then every override is checked against the chosen suites. */
static int plan_axes(run_plan *plan) {
  for (size_t i = 0; i < plan->n_axes; i++) {
    const kiln_bench_axis_override *o = &plan->axes[i].o;
    if (strcmp(o->name, "device") != 0) {
      plan->overrides[plan->n_overrides++] = *o;
      continue;
    }
    if (plan->config.device != NULL) {
      kiln_cli_usage_error("bench run", "give --device or --axis device=..., not both");
      return -1;
    }
    for (size_t v = 0; v < o->count; v++) {
      if (plan->n_devices == MAX_DEVICES) {
        kiln_cli_usage_error("bench run", "at most %d devices", MAX_DEVICES);
        return -1;
      }
      plan->devices[plan->n_devices++] = o->values[v];
    }
  }
  if (plan->n_devices == 0)
    plan->devices[plan->n_devices++] = plan->config.device; /* NULL: each suite's own */
  plan->config.axis_overrides = plan->overrides;
  plan->config.axis_override_count = plan->n_overrides;
  char err[512];
  if (kiln_bench_check_overrides(&plan->config, plan->chosen, plan->n_chosen, err, sizeof err) !=
      0) {
    kiln_cli_usage_error("bench run", "%s", err);
    return -1;
  }
  return 0;
}

/* --case: every pattern must match a case of a chosen suite (a typo is a usage error,
 * not an empty run); suites left without a selected case are dropped. */
static int plan_cases(run_plan *plan) {
  const char *p = plan->config.cases;
  if (p == NULL || *p == '\0')
    return 0;
  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    char pattern[128];
    if (n == 0 || n >= sizeof pattern) {
      kiln_cli_usage_error("bench run",
                           "--case wants comma-separated patterns of 1..%zu characters",
                           sizeof pattern - 1);
      return -1;
    }
    memcpy(pattern, p, n);
    pattern[n] = '\0';
    kiln_bench_config one = plan->config;
    one.cases = pattern;
    size_t hits = 0;
    for (size_t i = 0; i < plan->n_chosen; i++)
      for (size_t c = 0; c < plan->chosen[i]->case_count; c++)
        hits += (size_t)kiln_bench_case_selected(&one, plan->chosen[i]->cases[c].name);
    if (hits == 0) {
      kiln_cli_usage_error("bench run",
                           "--case '%s' matches no case of the suites named (see 'kiln bench "
                           "list')",
                           pattern);
      return -1;
    }
    p += n + (p[n] == ',');
  }
  size_t kept = 0;
  for (size_t i = 0; i < plan->n_chosen; i++) {
    size_t selected = 0;
    for (size_t c = 0; c < plan->chosen[i]->case_count; c++)
      selected += (size_t)kiln_bench_case_selected(&plan->config, plan->chosen[i]->cases[c].name);
    if (selected > 0)
      plan->chosen[kept++] = plan->chosen[i];
  }
  plan->n_chosen = kept;
  return 0;
}

/* 1 when suite `s` runs on devices of `backend` (host-only and any-device suites run
 * on all). */
static int runs_on(const kiln_bench_suite *s, kiln_backend_kind backend) {
  return s->host_only || s->backend == KILN_BACKEND_NONE || s->backend == backend;
}

/* The backend of a device given as "B:I", or KILN_BACKEND_NONE when it names none. */
static kiln_backend_kind device_backend(const char *spec, kiln_status *status) {
  kiln_device dev = NULL;
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  kiln_status st = kiln_device_parse(spec, &dev);
  if (st == KILN_SUCCESS)
    st = kiln_device_get_props(dev, &props);
  if (status != NULL)
    *status = st;
  return st == KILN_SUCCESS ? props.backend : KILN_BACKEND_NONE;
}

/* A bad device is a usage error, said once rather than by every case; so is a suite
 * named on its own that cannot run on a device given. */
static int plan_check_devices(const run_plan *plan) {
  for (size_t d = 0; d < plan->n_devices; d++) {
    if (plan->devices[d] == NULL)
      continue;
    kiln_status st;
    kiln_backend_kind backend = device_backend(plan->devices[d], &st);
    if (st != KILN_SUCCESS) {
      kiln_cli_report_error("bench run", plan->n_devices > 1 ? "--axis device" : "--device", st);
      return -1;
    }
    size_t runnable = 0;
    for (size_t i = 0; i < plan->n_chosen; i++) {
      const kiln_bench_suite *s = plan->chosen[i];
      if (runs_on(s, backend)) {
        runnable++;
      } else if (!plan->all_named) {
        fprintf(stderr, "kiln bench run: suite '%s' runs on the %s backend only, not on %s\n",
                s->name, kiln_backend_name(s->backend), plan->devices[d]);
        return -1;
      }
    }
    if (runnable == 0) {
      fprintf(stderr, "kiln bench run: no suite runs on %s\n", plan->devices[d]);
      return -1;
    }
  }
  return 0;
}

/* Run suite `s` on `device` (NULL: the suite's own) into the report; the exit code. */
static int run_suite_on(run_plan *plan, const kiln_bench_suite *s, const char *device,
                        kiln_backend_kind backend, kiln_bench_report *report, progress_state *ps) {
  if (device != NULL && !runs_on(s, backend)) {
    fprintf(stderr, "kiln bench: skipping suite %s: it runs on %s devices, not on %s\n", s->name,
            kiln_backend_name(s->backend), device);
    return KILN_CLI_EXIT_OK;
  }
  /* Without --device a suite runs on its backend's device 0: where that backend is
   * unavailable (no OpenCL here), `all` skips the suite with one line; a suite named
   * on its own cannot run, which fails the run (exit 1) after the others. */
  char why[400];
  if (device == NULL && !suite_has_device(s, why, sizeof why)) {
    fprintf(stderr, "kiln bench: %s suite %s: %s\n", plan->all_named ? "skipping" : "cannot run",
            s->name, why);
    return plan->all_named ? KILN_CLI_EXIT_OK : KILN_CLI_EXIT_FAILED;
  }
  fprintf(stderr, "kiln bench: running suite %s%s%s%s%s\n", s->name, device ? " on " : "",
          device ? device : "", plan->config.quick ? " (quick)" : "",
          plan->config.self_test ? " (self-test)" : "");
  plan->config.device = device;
  kiln_status st = kiln_bench_run_suite(&plan->config, s, report);
  clear_bar(ps);
  return st == KILN_SUCCESS ? KILN_CLI_EXIT_OK : KILN_CLI_EXIT_FAILED;
}

/* Every chosen suite on every device, in that order; the exit code. */
static int run_plan_all(run_plan *plan, kiln_bench_report *report, progress_state *ps) {
  plan->config.progress = on_result;
  plan->config.progress_user = ps;
  if (ps->tty) {
    plan->config.tick = on_tick;
    plan->config.tick_user = ps;
  }
  int rc = KILN_CLI_EXIT_OK;
  for (size_t d = 0; d < plan->n_devices; d++) {
    const char *device = plan->devices[d];
    kiln_backend_kind backend = device ? device_backend(device, NULL) : KILN_BACKEND_NONE;
    for (size_t i = 0; i < plan->n_chosen; i++)
      if (run_suite_on(plan, plan->chosen[i], device, backend, report, ps) != KILN_CLI_EXIT_OK)
        rc = KILN_CLI_EXIT_FAILED;
  }
  return rc;
}

/* --self-test: each ratio should be near 0.5; 1 when one is not. */
static int print_self_test(const kiln_bench_report *report, FILE *table) {
  int rc = KILN_CLI_EXIT_OK;
  fputs("\nself-test: the kiln side ran 2x against itself; each ratio should be near 0.5\n", table);
  for (size_t i = 0; i < kiln_bench_report_count(report); i++) {
    const kiln_bench_result *r = kiln_bench_report_get(report, i);
    if (r->status != 0)
      continue;
    int ok = r->ratio >= 0.4 && r->ratio <= 0.6;
    fprintf(table, "  %-24s ratio %.3f [%.3f, %.3f]  %s\n", r->label, r->ratio, r->ratio_lo,
            r->ratio_hi, ok ? "ok" : "OFF: outside [0.4, 0.6]");
    if (!ok)
      rc = KILN_CLI_EXIT_FAILED;
  }
  return rc;
}

static int write_outputs(const output *outs, size_t n, const kiln_bench_report *report) {
  int rc = KILN_CLI_EXIT_OK;
  for (size_t i = 0; i < n; i++) {
    if (outs[i].path == NULL)
      continue;
    int to_stdout = strcmp(outs[i].path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(outs[i].path, "w");
    if (f == NULL) {
      fprintf(stderr, "kiln bench run: cannot open '%s' for writing the %s\n", outs[i].path,
              outs[i].what);
      rc = KILN_CLI_EXIT_FAILED;
      continue;
    }
    kiln_status st = outs[i].write(report, f);
    if (!to_stdout && fclose(f) != 0)
      st = KILN_ERROR_IO;
    if (st != KILN_SUCCESS) {
      fprintf(stderr, "kiln bench run: writing the %s to '%s' failed\n", outs[i].what,
              outs[i].path);
      rc = KILN_CLI_EXIT_FAILED;
    } else if (!to_stdout) {
      fprintf(stderr, "kiln bench: wrote the %s to %s\n", outs[i].what, outs[i].path);
    }
  }
  return rc;
}

/* Run the plan, print the table (on stderr when an output goes to stdout), write the
 * files; the exit code. */
static int run_and_report(run_plan *plan) {
  int to_stdout = 0;
  for (size_t i = 0; i < OUTPUT_COUNT; i++)
    to_stdout |= plan->outs[i].path && strcmp(plan->outs[i].path, "-") == 0;
  FILE *table = to_stdout ? stderr : stdout;
  kiln_bench_report *report = NULL;
  if (kiln_bench_report_create(&report) != KILN_SUCCESS) {
    fputs("kiln bench run: out of memory\n", stderr);
    return KILN_CLI_EXIT_FAILED;
  }
  progress_state ps = {isatty(fileno(stderr)), 0, 0};
  int rc = run_plan_all(plan, report, &ps);
  kiln_bench_report_print(report, table);
  if (plan->config.self_test && print_self_test(report, table) != KILN_CLI_EXIT_OK)
    rc = KILN_CLI_EXIT_FAILED;
  if (write_outputs(plan->outs, OUTPUT_COUNT, report) != KILN_CLI_EXIT_OK)
    rc = KILN_CLI_EXIT_FAILED;
  kiln_bench_report_destroy(report);
  return rc;
}

static int cmd_run(int argc, char **argv) {
  run_plan plan;
  if (plan_init(&plan) != 0) {
    fputs("kiln bench run: out of memory\n", stderr);
    plan_free(&plan);
    return KILN_CLI_EXIT_FAILED;
  }
  int rc = plan_parse(&plan, argc, argv);
  if (rc == KILN_CLI_GO_ON)
    rc = plan_cases(&plan) == 0 && plan_axes(&plan) == 0 && plan_check_devices(&plan) == 0
             ? run_and_report(&plan)
             : KILN_CLI_EXIT_USAGE;
  plan_free(&plan);
  return rc;
}

/* ---- compare ---- */

typedef struct compare_args {
  const char *paths[2];
  size_t n_paths;
  double threshold;
} compare_args;

static int apply_compare_option(int id, const char *value, void *user) {
  compare_args *c = user;
  double pct;
  switch (id) {
  case OPT_HELP:
    fputs("Usage: kiln bench compare OLD.json NEW.json [--threshold PCT]\n"
          "Match the results of two `kiln bench run --json` files on suite, name, params\n"
          "and device; mark each faster/slower when the 95% intervals of kiln's medians\n"
          "separate, same otherwise. Exit 1 when one is slower by more than the\n"
          "threshold (in time per op), 2 on bad input: each file is checked first\n"
          "against schemas/bench.json and for possible statistics (positive finite\n"
          "medians, intervals that hold them, batch_size >= 1, ...), and the first\n"
          "problem is named with its file, result, field and value.\n\nOptions:\n",
          stdout);
    kiln_cli_print_options(stdout, compare_options);
    return KILN_CLI_EXIT_OK;
  case OPT_THRESHOLD:
    if (parse_percent(value, 1000.0, 0, &pct) != 0)
      return kiln_cli_usage_error("bench compare",
                                  "--threshold wants a percentage in (0, 1000), got '%s'", value);
    c->threshold = pct / 100.0;
    return KILN_CLI_GO_ON;
  default: /* KILN_CLI_POSITIONAL */
    if (c->n_paths == 2)
      return kiln_cli_usage_error("bench compare", "unexpected argument '%s': give two files",
                                  value);
    c->paths[c->n_paths++] = value;
    return KILN_CLI_GO_ON;
  }
}

static int cmd_compare(int argc, char **argv) {
  compare_args c = {{NULL, NULL}, 0, 0.05};
  int parsed =
      kiln_cli_parse("bench compare", compare_options, argc, argv, apply_compare_option, &c);
  if (parsed != KILN_CLI_GO_ON)
    return parsed;
  if (c.n_paths != 2)
    return kiln_cli_usage_error("bench compare", "give two JSON files: OLD.json NEW.json");
  kiln_bench_compare_summary sum;
  char err[1024];
  kiln_status st =
      kiln_bench_compare_files(c.paths[0], c.paths[1], c.threshold, stdout, &sum, err, sizeof err);
  if (st != KILN_SUCCESS) {
    fprintf(stderr, "kiln bench compare: %s\n", err);
    return KILN_CLI_EXIT_USAGE;
  }
  if (sum.regressions > 0) {
    fprintf(stderr, "kiln bench compare: %zu regression%s beyond %.1f%% (worst %+.1f%% time)\n",
            sum.regressions, sum.regressions == 1 ? "" : "s", 100.0 * c.threshold,
            100.0 * sum.worst_slowdown);
    return KILN_CLI_EXIT_FAILED;
  }
  return KILN_CLI_EXIT_OK;
}

int kiln_cli_bench(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return KILN_CLI_EXIT_USAGE;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
    print_help(stdout);
    return KILN_CLI_EXIT_OK;
  }
  if (strcmp(sub, "list") == 0)
    return cmd_list(argc - 1, argv + 1);
  if (strcmp(sub, "run") == 0)
    return cmd_run(argc - 1, argv + 1);
  if (strcmp(sub, "compare") == 0)
    return cmd_compare(argc - 1, argv + 1);
  return kiln_cli_usage_error("bench", "unknown subcommand '%s' (list, run or compare)", sub);
}

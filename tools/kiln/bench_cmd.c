/* SPDX-License-Identifier: MIT */
/* `kiln bench list | run | compare`: the command-line face of the benchmark library
 * (include/kiln/bench.h) over the built-in suites (bench/suites.h). Results go to
 * stdout as a table, and with --json FILE to FILE as design.md's JSON ("-": stdout,
 * then the table goes to stderr). Exit: 0 measured, 1 a case failed, 2 usage.
 * `compare` comes with the benchmark framework issue. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kiln/bench.h"
#include "suites.h"

enum {
  OPT_HELP = 1,
  OPT_DEVICE,
  OPT_QUICK,
  OPT_JSON,
  OPT_BUDGET,
  OPT_TARGET,
  OPT_SELF_TEST,
};

static const kiln_cli_option run_options[] = {
    {OPT_DEVICE, "device", 0, "B:I", "run on device I of backend B (default: the suite's)"},
    {OPT_QUICK, "quick", 0, NULL, "CI mode: 0.25 s per case, at least 5 samples"},
    {OPT_JSON, "json", 0, "FILE", "also write the results as JSON (schemas/bench.json)"},
    {OPT_BUDGET, "budget-ms", 0, "MS", "measuring time per case (default 2000, quick 250)"},
    {OPT_TARGET, "target-ci", 0, "PCT",
     "stop once both medians' 95% CI half-widths are under PCT% (default 1)"},
    {OPT_SELF_TEST, "self-test", 0, NULL,
     "compare each kiln side with itself slowed down 2x: ratios should be near 0.5"},
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
        "       kiln bench compare A.json B.json\n"
        "\n"
        "Measure kiln and a baseline doing the same work another way (a plain pthread\n"
        "queue, memcpy, ...), interleaved in one process, and report both medians with\n"
        "95% intervals and the ratio (> 1: kiln is better). Goals are judged on the\n"
        "ratio's interval and reported, never asserted.\n"
        "\n"
        "Options of run:\n",
        out);
  kiln_cli_print_options(out, run_options);
}

static int cmd_list(int argc, char **argv) {
  kiln_cli_parser p;
  kiln_cli_parser_init(&p, "bench list", help_only, argc, argv);
  for (;;) {
    const char *value;
    int id = kiln_cli_next(&p, &value);
    if (id == KILN_CLI_END) break;
    if (id == OPT_HELP) {
      fputs("Usage: kiln bench list\nList the suites and their cases.\n", stdout);
      return KILN_CLI_EXIT_OK;
    }
    if (id == KILN_CLI_POSITIONAL)
      return kiln_cli_usage_error("bench list", "unexpected argument '%s'", value);
    return KILN_CLI_EXIT_USAGE;
  }
  size_t count;
  const kiln_bench_suite *const *suites = kiln__bench_suites(&count);
  for (size_t i = 0; i < count; i++) {
    const kiln_bench_suite *s = suites[i];
    printf("%s: %s\n", s->name, s->description);
    for (size_t k = 0; k < s->case_count; k++) {
      const kiln_bench_case *c = &s->cases[k];
      printf("  %-20s %-6s vs %-14s %s\n", c->name, c->unit,
             c->baseline_name ? c->baseline_name : "-", c->description ? c->description : "");
    }
  }
  return KILN_CLI_EXIT_OK;
}

static void progress(const kiln_bench_result *r, void *user) {
  (void)user;
  if (r->status != 0)
    fprintf(stderr, "kiln bench: %s\n", r->message);
  else
    fprintf(stderr, "  %s/%s: %llu samples x %llu ops, %.1f s\n", r->suite->name,
            r->bcase->name, (unsigned long long)r->kiln.samples,
            (unsigned long long)r->batch_size, (double)r->elapsed_ns / 1e9);
}

static int cmd_run(int argc, char **argv) {
  kiln_bench_config config = KILN_BENCH_CONFIG_INIT;
  const char *json_path = NULL;
  int all_named = 0;
  const kiln_bench_suite **chosen = calloc((size_t)argc + 8, sizeof *chosen);
  size_t n_chosen = 0, count;
  const kiln_bench_suite *const *suites = kiln__bench_suites(&count);
  int rc = KILN_CLI_EXIT_USAGE;
  kiln_bench_report *report = NULL;
  if (chosen == NULL) {
    fputs("kiln bench run: out of memory\n", stderr);
    return KILN_CLI_EXIT_FAILED;
  }

  kiln_cli_parser p;
  kiln_cli_parser_init(&p, "bench run", run_options, argc, argv);
  for (;;) {
    const char *value;
    uint64_t n;
    int id = kiln_cli_next(&p, &value);
    if (id == KILN_CLI_END) break;
    switch (id) {
      case OPT_HELP:
        print_help(stdout);
        rc = KILN_CLI_EXIT_OK;
        goto out;
      case OPT_DEVICE: config.device = value; break;
      case OPT_QUICK: config.quick = 1; break;
      case OPT_JSON: json_path = value; break;
      case OPT_SELF_TEST: config.self_test = 1; break;
      case OPT_BUDGET:
        if (kiln_cli_parse_count(value, 1, 3600000, &n) != 0) {
          kiln_cli_usage_error("bench run", "--budget-ms wants 1..3600000 ms, got '%s'", value);
          goto out;
        }
        config.budget_ns = n * 1000000ull;
        break;
      case OPT_TARGET: {
        char *end = NULL;
        double pct = strtod(value, &end);
        if (end == value || *end != '\0' || !(pct > 0.0 && pct <= 100.0)) {
          kiln_cli_usage_error("bench run", "--target-ci wants a percentage in (0, 100], got '%s'",
                               value);
          goto out;
        }
        config.target_rel_ci = pct / 100.0;
        break;
      }
      case KILN_CLI_POSITIONAL:
        if (strcmp(value, "all") == 0) {
          all_named = 1;
          for (size_t i = 0; i < count; i++) chosen[n_chosen++] = suites[i];
        } else {
          const kiln_bench_suite *s = kiln__bench_suite_find(value);
          if (s == NULL) {
            fprintf(stderr, "kiln bench run: unknown suite '%s'; the suites are:", value);
            for (size_t i = 0; i < count; i++) fprintf(stderr, " %s", suites[i]->name);
            fputs(" (or 'all'); see 'kiln bench list'\n", stderr);
            goto out;
          }
          chosen[n_chosen++] = s;
        }
        if (n_chosen > (size_t)argc) {
          kiln_cli_usage_error("bench run", "too many suites");
          goto out;
        }
        break;
      default: goto out; /* KILN_CLI_ERROR: already reported */
    }
  }
  if (n_chosen == 0) {
    kiln_cli_usage_error("bench run", "name a suite (see 'kiln bench list') or 'all'");
    goto out;
  }

  /* A bad --device is a usage error, said once rather than by every case. */
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  if (config.device != NULL) {
    kiln_device dev = NULL;
    kiln_status st = kiln_device_parse(config.device, &dev);
    if (st == KILN_SUCCESS) st = kiln_device_get_props(dev, &props);
    if (st != KILN_SUCCESS) {
      kiln_cli_report_error("bench run", "--device", st);
      goto out;
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < n_chosen; i++) {
    const kiln_bench_suite *s = chosen[i];
    if (config.device != NULL && s->backend != KILN_BACKEND_NONE && s->backend != props.backend) {
      fprintf(stderr, "kiln bench run: suite '%s' runs on the %s backend only, not on %s\n",
              s->name, kiln_backend_name(s->backend), config.device);
      if (!all_named) goto out;
      continue;
    }
    chosen[kept++] = s;
  }
  n_chosen = kept;
  if (n_chosen == 0) {
    fprintf(stderr, "kiln bench run: no suite runs on %s\n", config.device);
    goto out;
  }

  FILE *table = json_path != NULL && strcmp(json_path, "-") == 0 ? stderr : stdout;
  if (kiln_bench_report_create(&report) != KILN_SUCCESS) {
    fputs("kiln bench run: out of memory\n", stderr);
    rc = KILN_CLI_EXIT_FAILED;
    goto out;
  }
  config.progress = progress;
  rc = KILN_CLI_EXIT_OK;
  for (size_t i = 0; i < n_chosen; i++) {
    int dup = 0;
    for (size_t k = 0; k < i; k++) dup |= chosen[k] == chosen[i];
    if (dup) continue;
    fprintf(stderr, "kiln bench: running suite %s%s%s\n", chosen[i]->name,
            config.quick ? " (quick)" : "", config.self_test ? " (self-test)" : "");
    if (kiln_bench_run_suite(&config, chosen[i], report) != KILN_SUCCESS)
      rc = KILN_CLI_EXIT_FAILED;
  }
  kiln_bench_report_print(report, table);

  if (config.self_test) {
    fputs("\nself-test: the kiln side ran 2x against itself; each ratio should be near 0.5\n",
          table);
    for (size_t i = 0; i < kiln_bench_report_count(report); i++) {
      const kiln_bench_result *r = kiln_bench_report_get(report, i);
      if (r->status != 0) continue;
      int ok = r->ratio >= 0.4 && r->ratio <= 0.6;
      fprintf(table, "  %-20s ratio %.3f [%.3f, %.3f]  %s\n", r->bcase->name, r->ratio,
              r->ratio_lo, r->ratio_hi, ok ? "ok" : "OFF: outside [0.4, 0.6]");
      if (!ok) rc = KILN_CLI_EXIT_FAILED;
    }
  }

  if (json_path != NULL) {
    int to_stdout = strcmp(json_path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(json_path, "w");
    if (f == NULL) {
      fprintf(stderr, "kiln bench run: cannot open '%s' for writing\n", json_path);
      rc = KILN_CLI_EXIT_FAILED;
      goto out;
    }
    kiln_status st = kiln_bench_report_write_json(report, f);
    if (!to_stdout && fclose(f) != 0) st = KILN_ERROR_IO;
    if (st != KILN_SUCCESS) {
      fprintf(stderr, "kiln bench run: writing '%s' failed\n", json_path);
      rc = KILN_CLI_EXIT_FAILED;
    }
  }

out:
  kiln_bench_report_destroy(report);
  free(chosen);
  return rc;
}

static int cmd_compare(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fputs("kiln bench compare: not implemented yet: comes with the benchmark framework issue\n",
        stderr);
  return KILN_CLI_EXIT_USAGE;
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
  if (strcmp(sub, "list") == 0) return cmd_list(argc - 1, argv + 1);
  if (strcmp(sub, "run") == 0) return cmd_run(argc - 1, argv + 1);
  if (strcmp(sub, "compare") == 0) return cmd_compare(argc - 1, argv + 1);
  return kiln_cli_usage_error("bench", "unknown subcommand '%s' (list, run or compare)", sub);
}

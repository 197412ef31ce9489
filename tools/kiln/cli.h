/* SPDX-License-Identifier: MIT */
/* Shared helpers of the `kiln` command-line tool: the subcommand entry points, option
 * parsing (getopt_long over a table that also prints the --help list), usage errors,
 * number parsing and error reporting from kiln_last_error().
 * Conventions every subcommand keeps: results on stdout, diagnostics on stderr; exit 0
 * on success, 1 on failure, 2 on a usage error (with the usage on stderr); with --json
 * stdout carries one JSON document and nothing else. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kiln.h>

#include "json.h" /* src/bench: the JSON writer shared with the bench report */

enum { KILN_CLI_EXIT_OK = 0, KILN_CLI_EXIT_FAILED = 1, KILN_CLI_EXIT_USAGE = 2 };

/* Subcommands: argv[0] is the command's name ("info", "demo", "bench"); each handles
 * its own --help and returns the process exit code. */
int kiln_cli_info(int argc, char **argv);
int kiln_cli_demo(int argc, char **argv);
int kiln_cli_bench(int argc, char **argv);
int kiln_cli_pool(int argc, char **argv);  /* pool_cmd.c */
int kiln_cli_cache(int argc, char **argv); /* cache_cmd.c */
int kiln_cli_trace(int argc, char **argv);

/* ---- option parsing: getopt_long under one table per command ---- */

typedef struct kiln_cli_option {
  int id;                 /* > 0, returned by kiln_cli_next() */
  const char *name;       /* long name without dashes: "json" */
  char short_name;        /* 'h', or 0 for none */
  const char *value_name; /* "N" when the option takes a value, NULL for a flag */
  const char *help;       /* one line for the option list */
} kiln_cli_option;

enum {
  KILN_CLI_END = 0,        /* no more arguments */
  KILN_CLI_ERROR = -1,     /* usage error, already reported on stderr */
  KILN_CLI_POSITIONAL = -2 /* a non-option argument, in *value */
};

#define KILN_CLI_MAX_OPTIONS 32

/* getopt_long's tables, built from a kiln_cli_option table. getopt_long keeps its
 * state in globals (optind, optarg): one parser at a time. */
typedef struct kiln_cli_parser {
  const char *command;            /* "demo", for messages ("kiln demo: ..."); NULL: top */
  const kiln_cli_option *options; /* terminated by an entry with id 0 */
  int argc;
  char **argv;
  int next; /* index of the argument after the last one returned */
  int rest; /* getopt_long met "--": argv[next..] are all positional */
  struct option longopts[KILN_CLI_MAX_OPTIONS + 1];
  char shortopts[2 + 2 * KILN_CLI_MAX_OPTIONS + 1];
} kiln_cli_parser;

/* Parse argv[1..argc) (argv[0] is the command's name) with getopt_long: options and
 * arguments in any order, `--opt value`, `--opt=value`, `-o value`, `-ovalue`, bundled
 * short flags, `--` ends the options. Long options must be spelled in full (getopt_long's
 * abbreviations are refused, so a new option never changes what a command line means). */
void kiln_cli_parser_init(kiln_cli_parser *p, const char *command, const kiln_cli_option *options,
                          int argc, char **argv);
/* The next option's id (its value, if it takes one, in *value), KILN_CLI_POSITIONAL
 * with the argument in *value, KILN_CLI_END, or KILN_CLI_ERROR after printing what is
 * wrong (the option as given) and a hint to stderr. */
int kiln_cli_next(kiln_cli_parser *p, const char **value);

/* What an apply function returns to go on with the next argument. */
#define KILN_CLI_GO_ON (-1)
/* Called with each option (its id, and its value or NULL) and each positional argument
 * (KILN_CLI_POSITIONAL, the argument); returns KILN_CLI_GO_ON or an exit code to stop
 * with (KILN_CLI_EXIT_OK after --help, KILN_CLI_EXIT_USAGE after reporting). */
typedef int (*kiln_cli_apply_fn)(int id, const char *value, void *user);
/* The option loop of a command: every argument of argv[1..argc) to `apply`, in order.
 * Returns KILN_CLI_GO_ON when all were applied, apply's exit code when it stopped, or
 * KILN_CLI_EXIT_USAGE after a parse error (reported). */
int kiln_cli_parse(const char *command, const kiln_cli_option *options, int argc, char **argv,
                   kiln_cli_apply_fn apply, void *user);

/* Print the option list, aligned, for --help texts. */
void kiln_cli_print_options(FILE *out, const kiln_cli_option *options);

/* Print "kiln <command>: <message>" and "Try 'kiln <command> --help'." to stderr;
 * returns KILN_CLI_EXIT_USAGE. command may be NULL for the top level. */
int kiln_cli_usage_error(const char *command, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parse a decimal count in [min, max], with an optional binary suffix K, M or G
 * ("4096", "64K", "1M"). Returns 0 on success, -1 when malformed or out of range. */
int kiln_cli_parse_count(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* Format kiln_last_error() as "<message> (<STATUS_NAME>)" into buf; the suggestion,
 * "" when there is none, into hint. Falls back to kiln_status_message(status) when
 * the thread's last error is not about `status`. */
void kiln_cli_error_text(kiln_status status, char *buf, size_t buf_size, char *hint,
                         size_t hint_size);
/* Print "kiln <command>: <what>: <error text>" and "  suggestion: <hint>" to stderr. */
void kiln_cli_report_error(const char *command, const char *what, kiln_status status);

/* Human-readable byte count: "16.0 GiB", "512 B". */
void kiln_cli_format_bytes(uint64_t bytes, char *buf, size_t buf_size);

#endif

/* SPDX-License-Identifier: MIT */
/* Helpers shared by the CLI's subcommands (see cli.h): option parsing (getopt_long, its
 * answers turned into the CLI's messages), usage errors, number parsing and error text.
 * Uses only kiln's public API. Every message names the command and the offending
 * value, and a usage error always ends in a --help hint. */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int kiln_cli_usage_error(const char *command, const char *fmt, ...) {
  va_list ap;
  fputs(command ? "kiln " : "kiln", stderr);
  if (command)
    fputs(command, stderr);
  fputs(": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (command)
    fprintf(stderr, "\nTry 'kiln %s --help'.\n", command);
  else
    fputs("\nTry 'kiln --help'.\n", stderr);
  return KILN_CLI_EXIT_USAGE;
}

/* getopt_long's val of the table's i-th option: above every char, so no short
 * option, nor getopt's 1, '?' and ':', can be taken for it. */
#define LONG_VAL(i) (256 + (int)(i))

void kiln_cli_parser_init(kiln_cli_parser *p, const char *command, const kiln_cli_option *options,
                          int argc, char **argv) {
  memset(p, 0, sizeof *p);
  p->command = command;
  p->options = options;
  p->argc = argc;
  p->argv = argv;
  p->next = 1;
  size_t n = 0, k = 0;
  p->shortopts[k++] = '-'; /* arguments come back in order, as 1 (never permuted) */
  p->shortopts[k++] = ':'; /* a missing value is ':', told apart from an unknown '?' */
  for (const kiln_cli_option *o = options; o && o->id; ++o, ++n) {
    assert(n < KILN_CLI_MAX_OPTIONS);
    p->longopts[n].name = o->name;
    p->longopts[n].has_arg = o->value_name ? required_argument : no_argument;
    p->longopts[n].val = LONG_VAL(n);
    if (o->short_name) {
      p->shortopts[k++] = o->short_name;
      if (o->value_name)
        p->shortopts[k++] = ':';
    }
  }
  optind = 0; /* glibc: start over, argv[0] is the command */
  opterr = 0; /* messages are ours */
}

/* The table's option for getopt_long's return value (a short name or LONG_VAL). */
static const kiln_cli_option *option_of(const kiln_cli_parser *p, int c) {
  size_t n = 0;
  for (const kiln_cli_option *o = p->options; o && o->id; ++o, ++n)
    if (c == LONG_VAL(n) || (o->short_name && c == o->short_name))
      return o;
  return NULL;
}

/* Whether `arg` ("--name" or "--name=value") names `o` in full. */
static int spelled_in_full(const char *arg, const kiln_cli_option *o) {
  size_t len = strcspn(arg + 2, "=");
  return strlen(o->name) == len && strncmp(arg + 2, o->name, len) == 0;
}

/* getopt_long answered '?' for the argument `arg`: an unknown option, or a flag given a
 * value (--json=1; getopt_long then sets optopt to its val). */
static int refuse(const kiln_cli_parser *p, const char *arg) {
  const kiln_cli_option *o = optopt ? option_of(p, optopt) : NULL;
  if (strncmp(arg, "--", 2) != 0)
    kiln_cli_usage_error(p->command, "unknown option '-%c'", optopt);
  else if (o && strchr(arg, '=') && spelled_in_full(arg, o))
    kiln_cli_usage_error(p->command, "option '--%s' takes no value (got '%s')", o->name, arg);
  else
    kiln_cli_usage_error(p->command, "unknown option '%s'", arg);
  return KILN_CLI_ERROR;
}

int kiln_cli_next(kiln_cli_parser *p, const char **value) {
  *value = NULL;
  if (p->rest) {
    if (p->next >= p->argc)
      return KILN_CLI_END;
    *value = p->argv[p->next++];
    return KILN_CLI_POSITIONAL;
  }
  const int at = optind > 0 ? optind : 1; /* the argument this call reads (or its value) */
  const int c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);
  p->next = optind;
  if (c == -1) {
    p->rest = 1; /* the end, or "--": what follows is positional */
    return kiln_cli_next(p, value);
  }
  if (c == 1) {
    *value = optarg;
    return KILN_CLI_POSITIONAL;
  }
  const char *arg = p->argv[at];
  if (c == '?')
    return refuse(p, arg);
  const kiln_cli_option *o = option_of(p, c == ':' ? optopt : c);
  assert(o != NULL);
  if (strncmp(arg, "--", 2) == 0 && !spelled_in_full(arg, o)) {
    kiln_cli_usage_error(p->command, "unknown option '%s'", arg); /* an abbreviation */
    return KILN_CLI_ERROR;
  }
  if (c == ':') {
    kiln_cli_usage_error(p->command, "option '--%s' needs a value: --%s %s", o->name, o->name,
                         o->value_name);
    return KILN_CLI_ERROR;
  }
  *value = optarg;
  return o->id;
}

int kiln_cli_parse(const char *command, const kiln_cli_option *options, int argc, char **argv,
                   kiln_cli_apply_fn apply, void *user) {
  kiln_cli_parser p;
  kiln_cli_parser_init(&p, command, options, argc, argv);
  for (;;) {
    const char *value;
    int id = kiln_cli_next(&p, &value);
    if (id == KILN_CLI_END)
      return KILN_CLI_GO_ON;
    if (id == KILN_CLI_ERROR)
      return KILN_CLI_EXIT_USAGE;
    int rc = apply(id, value, user);
    if (rc != KILN_CLI_GO_ON)
      return rc;
  }
}

void kiln_cli_print_options(FILE *out, const kiln_cli_option *options) {
  char left[64];
  for (const kiln_cli_option *o = options; o && o->id; ++o) {
    if (o->short_name)
      snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->value_name ? " " : "",
               o->value_name ? o->value_name : "");
    else
      snprintf(left, sizeof left, "    --%s%s%s", o->name, o->value_name ? " " : "",
               o->value_name ? o->value_name : "");
    fprintf(out, "  %-22s %s\n", left, o->help ? o->help : "");
  }
}

int kiln_cli_parse_count(const char *text, uint64_t min, uint64_t max, uint64_t *out) {
  if (!text || *text < '0' || *text > '9')
    return -1; /* no sign, no blanks */
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno == ERANGE || end == text)
    return -1;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k')
    shift = 10;
  else if (*end == 'M' || *end == 'm')
    shift = 20;
  else if (*end == 'G' || *end == 'g')
    shift = 30;
  if (shift)
    end++;
  if (*end != '\0')
    return -1;
  if (shift && v > (UINT64_MAX >> shift))
    return -1;
  uint64_t n = (uint64_t)v << shift;
  if (n < min || n > max)
    return -1;
  *out = n;
  return 0;
}

void kiln_cli_error_text(kiln_status status, char *buf, size_t buf_size, char *hint,
                         size_t hint_size) {
  const kiln_error_info *e = kiln_last_error();
  const char *message = kiln_status_message(status);
  const char *suggestion = kiln_status_suggestion(status);
  if (e && e->status == status) {
    if (e->message[0])
      message = e->message;
    if (e->suggestion[0])
      suggestion = e->suggestion;
  }
  if (e && e->status == status && e->native_name[0])
    snprintf(buf, buf_size, "%s (%s, %s %lld)", message, kiln_status_name(status), e->native_name,
             (long long)e->native_code);
  else
    snprintf(buf, buf_size, "%s (%s)", message, kiln_status_name(status));
  snprintf(hint, hint_size, "%s", suggestion ? suggestion : "");
}

void kiln_cli_report_error(const char *command, const char *what, kiln_status status) {
  char text[1024], hint[300];
  kiln_cli_error_text(status, text, sizeof text, hint, sizeof hint);
  fprintf(stderr, "kiln %s: %s: %s\n", command, what, text);
  if (hint[0])
    fprintf(stderr, "  suggestion: %s\n", hint);
}

void kiln_cli_format_bytes(uint64_t bytes, char *buf, size_t buf_size) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = (double)bytes;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, buf_size, "%llu B", (unsigned long long)bytes);
  else
    snprintf(buf, buf_size, "%.1f %s", v, units[u]);
}

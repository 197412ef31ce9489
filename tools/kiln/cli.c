/* SPDX-License-Identifier: MIT */
/* Helpers shared by the CLI's subcommands (see cli.h): option parsing, usage errors,
 * number parsing and error text. Uses only kiln's public API. Every message names the
 * command and the offending value, and a usage error always ends in a --help hint. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void kiln_cli_parser_init(kiln_cli_parser *p, const char *command, const kiln_cli_option *options,
                          int argc, char **argv) {
  p->command = command;
  p->options = options;
  p->argc = argc;
  p->argv = argv;
  p->next = 1;
  p->only_positional = 0;
}

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

int kiln_cli_next(kiln_cli_parser *p, const char **value) {
  *value = NULL;
  if (p->next >= p->argc)
    return KILN_CLI_END;
  const char *arg = p->argv[p->next++];

  if (p->only_positional || arg[0] != '-' || arg[1] == '\0') {
    *value = arg;
    return KILN_CLI_POSITIONAL;
  }
  if (strcmp(arg, "--") == 0) {
    p->only_positional = 1;
    return kiln_cli_next(p, value);
  }

  const kiln_cli_option *opt = NULL;
  const char *inline_value = NULL;
  if (arg[1] == '-') {
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (const kiln_cli_option *o = p->options; o && o->id; ++o)
      if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
        opt = o;
    if (eq)
      inline_value = eq + 1;
  } else if (arg[2] == '\0') {
    for (const kiln_cli_option *o = p->options; o && o->id; ++o)
      if (o->short_name && o->short_name == arg[1])
        opt = o;
  }
  if (!opt) {
    kiln_cli_usage_error(p->command, "unknown option '%s'", arg);
    return KILN_CLI_ERROR;
  }
  if (!opt->value_name) {
    if (inline_value) {
      kiln_cli_usage_error(p->command, "option '--%s' takes no value (got '%s')", opt->name, arg);
      return KILN_CLI_ERROR;
    }
    return opt->id;
  }
  if (inline_value) {
    *value = inline_value;
  } else if (p->next < p->argc) {
    *value = p->argv[p->next++];
  } else {
    kiln_cli_usage_error(p->command, "option '--%s' needs a value: --%s %s", opt->name, opt->name,
                         opt->value_name);
    return KILN_CLI_ERROR;
  }
  return opt->id;
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

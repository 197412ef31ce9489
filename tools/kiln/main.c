/* SPDX-License-Identifier: MIT */
/* `kiln`: the command-line tool. This file owns the top level only: the global
 * options (--help, --version; parsed with getopt_long like every command's) and the
 * dispatch to one function per subcommand, each of which parses its own options.
 * Exit codes: 0 success, 1 failure, 2 usage error. The final flush of stdout is
 * checked, so a full disk or closed pipe is a failure, not silence. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"info", kiln_cli_info, "list the backends kiln knows and the devices it found"},
    {"demo", kiln_cli_demo, "upload, add, scale, download and verify on each device"},
    {"bench", kiln_cli_bench, "run benchmarks of kiln against raw baselines"},
    {"pool", kiln_cli_pool, "run a workload on a device pool and print its statistics"},
    {"cache", kiln_cli_cache, "show, list, verify or clear the compile cache"},
    {"trace", kiln_cli_trace, "summarise a trace kiln wrote (KILN_TRACE): kiln trace summary FILE"},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

enum { OPT_HELP = 1, OPT_VERSION };

static const kiln_cli_option global_options[] = {
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {OPT_VERSION, "version", 'V', NULL, "show the version of the tool and of the loaded library"},
    {0, NULL, 0, NULL, NULL},
};

static void print_usage(FILE *out) {
  fputs("Usage: kiln [--help | --version] <command> [options]\n"
        "\n"
        "kiln is a C runtime for accelerated compute: one API over CPU, OpenCL and CUDA.\n"
        "\n"
        "Commands:\n",
        out);
  for (size_t i = 0; i < COMMAND_COUNT; ++i)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fputs("  help     show this text, or a command's: kiln help <command>\n"
        "\n"
        "Options:\n"
        "  -h, --help     show this text\n"
        "  -V, --version  show the version of the tool and of the loaded library\n"
        "\n"
        "Run 'kiln <command> --help' for a command's options.\n"
        "Environment: KILN_DEVICE=<backend>:<index>, KILN_BACKEND=<backend> choose the\n"
        "device; KILN_LOG=error|warn|info|debug sets the library's log level;\n"
        "KILN_TRACE=/abs/path.json records a trace of kiln's work (docs/observability.md).\n",
        out);
}

static const command *find_command(const char *name) {
  for (size_t i = 0; i < COMMAND_COUNT; ++i)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

/* argv[0] is the command's name ("help" included). */
static int run_command(int argc, char **argv) {
  if (strcmp(argv[0], "help") == 0) {
    if (argc == 1) {
      print_usage(stdout);
      return KILN_CLI_EXIT_OK;
    }
    if (argc > 2)
      return kiln_cli_usage_error(NULL, "help takes one command name");
    const command *c = find_command(argv[1]);
    if (!c)
      return kiln_cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    char help_arg[] = "--help";
    char *help_argv[] = {argv[1], help_arg, NULL};
    return c->run(2, help_argv);
  }
  const command *c = find_command(argv[0]);
  if (!c)
    return kiln_cli_usage_error(NULL, "unknown command '%s'", argv[0]);
  return c->run(argc, argv);
}

/* The global options come before the command, alone; the command parses the rest. */
static int dispatch(int argc, char **argv) {
  kiln_cli_parser p;
  kiln_cli_parser_init(&p, NULL, global_options, argc, argv);
  const char *value;
  int id = kiln_cli_next(&p, &value);
  switch (id) {
  case KILN_CLI_END:
    print_usage(stderr);
    return KILN_CLI_EXIT_USAGE;
  case KILN_CLI_POSITIONAL: /* the command, at p.next - 1 */
    return run_command(argc - (p.next - 1), argv + (p.next - 1));
  case OPT_HELP:
  case OPT_VERSION:
    if (p.next < argc)
      return kiln_cli_usage_error(NULL, "unexpected argument '%s'", argv[p.next]);
    if (id == OPT_HELP)
      print_usage(stdout);
    else /* the tool's own version (headers it was built with) and the loaded library's */
      printf("kiln %s (library %s)\n", KILN_VERSION_STRING, kiln_version_string());
    return KILN_CLI_EXIT_OK;
  default:
    return KILN_CLI_EXIT_USAGE; /* KILN_CLI_ERROR: already reported */
  }
}

int main(int argc, char **argv) {
  int rc = dispatch(argc, argv);
  if ((fflush(stdout) != 0 || ferror(stdout)) && rc == KILN_CLI_EXIT_OK) {
    fputs("kiln: error writing to standard output\n", stderr);
    rc = KILN_CLI_EXIT_FAILED;
  }
  return rc;
}

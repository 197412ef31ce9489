/* SPDX-License-Identifier: MIT */
/* `kiln`: the command-line tool. This file owns the top level only: global options
 * (--help, --version) and the dispatch to one function per subcommand, each of which
 * parses its own options. Exit codes: 0 success, 1 failure, 2 usage error. The final
 * flush of stdout is checked, so a full disk or closed pipe is a failure, not silence. */
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
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

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
        "device; KILN_LOG=error|warn|info|debug sets the library's log level.\n",
        out);
}

static const command *find_command(const char *name) {
  for (size_t i = 0; i < COMMAND_COUNT; ++i)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static int dispatch(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return KILN_CLI_EXIT_USAGE;
  }
  const char *first = argv[1];
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
    if (argc > 2)
      return kiln_cli_usage_error(NULL, "unexpected argument '%s'", argv[2]);
    print_usage(stdout);
    return KILN_CLI_EXIT_OK;
  }
  if (strcmp(first, "--version") == 0 || strcmp(first, "-V") == 0) {
    if (argc > 2)
      return kiln_cli_usage_error(NULL, "unexpected argument '%s'", argv[2]);
    /* The tool's own version (headers it was built with) and the loaded library's. */
    printf("kiln %s (library %s)\n", KILN_VERSION_STRING, kiln_version_string());
    return KILN_CLI_EXIT_OK;
  }
  if (strcmp(first, "help") == 0) {
    if (argc == 2) {
      print_usage(stdout);
      return KILN_CLI_EXIT_OK;
    }
    if (argc > 3)
      return kiln_cli_usage_error(NULL, "help takes one command name");
    const command *c = find_command(argv[2]);
    if (!c)
      return kiln_cli_usage_error(NULL, "unknown command '%s'", argv[2]);
    char help_arg[] = "--help";
    char *help_argv[] = {argv[2], help_arg, NULL};
    return c->run(2, help_argv);
  }
  if (first[0] == '-')
    return kiln_cli_usage_error(NULL, "unknown option '%s'", first);

  const command *c = find_command(first);
  if (!c)
    return kiln_cli_usage_error(NULL, "unknown command '%s'", first);
  return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv) {
  int rc = dispatch(argc, argv);
  if ((fflush(stdout) != 0 || ferror(stdout)) && rc == KILN_CLI_EXIT_OK) {
    fputs("kiln: error writing to standard output\n", stderr);
    rc = KILN_CLI_EXIT_FAILED;
  }
  return rc;
}

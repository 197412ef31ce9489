/* SPDX-License-Identifier: MIT */
/* `kiln info`: every backend kiln knows (available or not, and why not) and every
 * device of the available ones, as a table or as JSON (schemas/info.json). Reads
 * everything through the public API first, then prints, so a failing query leaves
 * no half-written document on stdout. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "streams_info.h"

enum { OPT_HELP = 1, OPT_JSON };

static const kiln_cli_option info_options[] = {
    {OPT_JSON, "json", 0, NULL, "print JSON (schemas/info.json) instead of a table"},
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {0, NULL, 0, NULL, NULL},
};

static void print_help(void) {
  fputs("Usage: kiln info [--json]\n"
        "\n"
        "List every backend kiln knows, whether it is available on this machine (and\n"
        "why not), and the devices of the available ones with their limits. The\n"
        "default device (KILN_DEVICE, KILN_BACKEND, else CUDA, OpenCL GPU, CPU) is\n"
        "marked. Device indices are those KILN_DEVICE=<backend>:<index> takes.\n"
        "\n"
        "Options:\n",
        stdout);
  kiln_cli_print_options(stdout, info_options);
}

typedef struct info_data {
  unsigned backend_count;
  kiln_backend_info *backends;
  unsigned device_count;
  kiln_device_props *devices;
} info_data;

static const char *device_kind_name(kiln_device_kind kind) {
  switch (kind) {
  case KILN_DEVICE_KIND_CPU:
    return "cpu";
  case KILN_DEVICE_KIND_GPU:
    return "gpu";
  case KILN_DEVICE_KIND_ACCELERATOR:
    return "accelerator";
  case KILN_DEVICE_KIND_OTHER:
    break;
  }
  return "other";
}

static const char *backend_name(kiln_backend_kind kind) {
  const char *name = kiln_backend_name(kind);
  return name ? name : "unknown";
}

/* Fills *d; on failure reports on stderr and returns the exit code. */
static int collect(info_data *d) {
  memset(d, 0, sizeof *d);
  d->backend_count = kiln_backend_count();
  if (d->backend_count) {
    d->backends = calloc(d->backend_count, sizeof *d->backends);
    if (!d->backends)
      goto oom;
  }
  for (unsigned i = 0; i < d->backend_count; ++i) {
    kiln_backend_info bi = KILN_BACKEND_INFO_INIT;
    kiln_status st = kiln_backend_get_info(i, &bi);
    if (st != KILN_SUCCESS) {
      char what[64];
      snprintf(what, sizeof what, "backend %u", i);
      kiln_cli_report_error("info", what, st);
      return KILN_CLI_EXIT_FAILED;
    }
    bi.name[sizeof bi.name - 1] = '\0';
    bi.reason[sizeof bi.reason - 1] = '\0';
    d->backends[i] = bi;
  }

  kiln_status st = kiln_device_count(&d->device_count);
  if (st != KILN_SUCCESS) {
    kiln_cli_report_error("info", "counting devices", st);
    return KILN_CLI_EXIT_FAILED;
  }
  if (d->device_count) {
    d->devices = calloc(d->device_count, sizeof *d->devices);
    if (!d->devices)
      goto oom;
  }
  for (unsigned i = 0; i < d->device_count; ++i) {
    kiln_device dev = NULL;
    kiln_device_props p = KILN_DEVICE_PROPS_INIT;
    char what[64];
    snprintf(what, sizeof what, "device %u", i);
    st = kiln_device_get(i, &dev);
    if (st == KILN_SUCCESS)
      st = kiln_device_get_props(dev, &p);
    if (st != KILN_SUCCESS) {
      kiln_cli_report_error("info", what, st);
      return KILN_CLI_EXIT_FAILED;
    }
    p.name[sizeof p.name - 1] = '\0';
    p.vendor[sizeof p.vendor - 1] = '\0';
    p.pci_bus_id[sizeof p.pci_bus_id - 1] = '\0';
    d->devices[i] = p;
  }
  return KILN_CLI_EXIT_OK;
oom:
  fputs("kiln info: out of host memory\n", stderr);
  return KILN_CLI_EXIT_FAILED;
}

static void info_free(info_data *d) {
  free(d->backends);
  free(d->devices);
}

static int print_json(const info_data *d) {
  kiln__json j;
  kiln__json_init(&j, stdout, 1);
  kiln__json_begin_object(&j, NULL);
  kiln__json_string(&j, "kiln_version", kiln_version_string());
  kiln__json_begin_array(&j, "backends");
  for (unsigned i = 0; i < d->backend_count; ++i) {
    const kiln_backend_info *b = &d->backends[i];
    kiln__json_begin_object(&j, NULL);
    kiln__json_string(&j, "name", b->name);
    kiln__json_bool(&j, "available", b->available != 0);
    kiln__json_string(&j, "reason", b->available ? NULL : b->reason);
    kiln__json_uint(&j, "device_count", b->device_count);
    kiln__json_end_object(&j);
  }
  kiln__json_end_array(&j);
  kiln__json_begin_array(&j, "devices");
  for (unsigned i = 0; i < d->device_count; ++i) {
    const kiln_device_props *p = &d->devices[i];
    kiln__json_begin_object(&j, NULL);
    kiln__json_string(&j, "backend", backend_name(p->backend));
    kiln__json_uint(&j, "index", p->index);
    kiln__json_string(&j, "name", p->name);
    kiln__json_string(&j, "vendor", p->vendor);
    kiln__json_string(&j, "kind", device_kind_name(p->kind));
    kiln__json_uint(&j, "global_mem_bytes", p->global_mem_bytes);
    kiln__json_uint(&j, "max_alloc_bytes", p->max_alloc_bytes);
    kiln__json_uint(&j, "compute_units", p->compute_units);
    kiln__json_uint(&j, "max_work_group_size", p->max_work_group_size);
    kiln__json_begin_array(&j, "max_work_item_sizes");
    for (int k = 0; k < 3; ++k)
      kiln__json_uint(&j, NULL, p->max_work_item_sizes[k]);
    kiln__json_end_array(&j);
    kiln__json_uint(&j, "local_mem_bytes", p->local_mem_bytes);
    kiln__json_uint(&j, "mem_align_bytes", p->mem_align_bytes);
    kiln__json_string(&j, "pci_bus_id", p->pci_bus_id[0] ? p->pci_bus_id : NULL);
    kiln__json_string(&j, "arch", p->arch[0] ? p->arch : NULL);
    kiln__json_uint(&j, "driver_version", p->driver_version);
    kiln__json_uint(&j, "clock_mhz", p->clock_mhz);
    kiln__json_uint(&j, "memory_clock_mhz", p->memory_clock_mhz);
    kiln__json_uint(&j, "memory_bus_width_bits", p->memory_bus_width_bits);
    kiln__json_bool(&j, "default", p->is_default != 0);
    kiln_cli_streams_json(&j, p);
    kiln__json_end_object(&j);
  }
  kiln__json_end_array(&j);
  kiln__json_begin_object(&j, "trace");
  kiln__json_bool(&j, "nvtx", kiln_trace_has_nvtx());
  kiln__json_end_object(&j);
  kiln__json_end_object(&j);
  if (kiln__json_finish(&j) != 0) {
    fputs("kiln info: error writing JSON to standard output\n", stderr);
    return KILN_CLI_EXIT_FAILED;
  }
  return KILN_CLI_EXIT_OK;
}

static int max_int(int a, int b) {
  return a > b ? a : b;
}

static void print_table(const info_data *d) {
  printf("kiln %s\n\nBackends\n", kiln_version_string());
  int name_w = (int)strlen("BACKEND");
  for (unsigned i = 0; i < d->backend_count; ++i)
    name_w = max_int(name_w, (int)strlen(d->backends[i].name));
  printf("  %-*s  %-11s  %7s  %s\n", name_w, "BACKEND", "STATUS", "DEVICES", "REASON");
  for (unsigned i = 0; i < d->backend_count; ++i) {
    const kiln_backend_info *b = &d->backends[i];
    printf("  %-*s  %-11s  %7u  %s\n", name_w, b->name, b->available ? "available" : "unavailable",
           b->device_count, b->available ? "" : (b->reason[0] ? b->reason : "(no reason given)"));
  }

  printf("\nTracing: ranges and marks %s\n",
         kiln_trace_has_nvtx() ? "also go to NVTX (built with the nvtx3 headers)"
                               : "stay in kiln's trace (NVTX compiled out: no nvtx3 headers)");

  printf("\nDevices\n");
  if (d->device_count == 0) {
    printf("  (none)\n");
    return;
  }
  char ids[64], mem[32], alloc[32], local[32];
  int id_w = (int)strlen("DEVICE"), dev_name_w = (int)strlen("NAME"),
      vendor_w = (int)strlen("VENDOR");
  for (unsigned i = 0; i < d->device_count; ++i) {
    const kiln_device_props *p = &d->devices[i];
    snprintf(ids, sizeof ids, "%s:%u", backend_name(p->backend), p->index);
    id_w = max_int(id_w, (int)strlen(ids));
    dev_name_w = max_int(dev_name_w, (int)strlen(p->name));
    vendor_w = max_int(vendor_w, (int)strlen(p->vendor));
  }
  printf("  %-*s  %-11s  %-*s  %-*s  %10s  %10s  %10s  %4s  %6s  %s\n", id_w, "DEVICE", "KIND",
         dev_name_w, "NAME", vendor_w, "VENDOR", "MEMORY", "MAX ALLOC", "LOCAL MEM", "CUS",
         "MAX WG", "DEFAULT");
  for (unsigned i = 0; i < d->device_count; ++i) {
    const kiln_device_props *p = &d->devices[i];
    snprintf(ids, sizeof ids, "%s:%u", backend_name(p->backend), p->index);
    kiln_cli_format_bytes(p->global_mem_bytes, mem, sizeof mem);
    kiln_cli_format_bytes(p->max_alloc_bytes, alloc, sizeof alloc);
    kiln_cli_format_bytes(p->local_mem_bytes, local, sizeof local);
    printf("  %-*s  %-11s  %-*s  %-*s  %10s  %10s  %10s  %4u  %6zu  %s\n", id_w, ids,
           device_kind_name(p->kind), dev_name_w, p->name, vendor_w, p->vendor, mem, alloc, local,
           p->compute_units, p->max_work_group_size, p->is_default ? "*" : "");
  }
  for (unsigned i = 0; i < d->device_count; ++i) {
    const kiln_device_props *p = &d->devices[i];
    if (!p->pci_bus_id[0] && !p->arch[0])
      continue;
    printf("  %s:%u", backend_name(p->backend), p->index);
    if (p->arch[0])
      printf(" is %s", p->arch);
    if (p->driver_version)
      printf(" (driver %u.%u)", p->driver_version / 1000u, p->driver_version % 1000u / 10u);
    if (p->pci_bus_id[0])
      printf("%s PCI device %s", p->arch[0] ? "," : " is", p->pci_bus_id);
    if (p->clock_mhz)
      printf(", %u MHz", p->clock_mhz);
    if (p->memory_clock_mhz && p->memory_bus_width_bits) /* DDR: two transfers per clock */
      printf(", memory %u MHz x %u bit (%.0f GB/s peak)", p->memory_clock_mhz,
             p->memory_bus_width_bits,
             2.0 * p->memory_clock_mhz * 1e6 * p->memory_bus_width_bits / 8.0 / 1e9);
    /* the same GPU through another backend */
    for (unsigned k = 0; k < i; ++k)
      if (p->pci_bus_id[0] && strcmp(d->devices[k].pci_bus_id, p->pci_bus_id) == 0)
        printf(" (the same GPU as %s:%u)", backend_name(d->devices[k].backend),
               d->devices[k].index);
    printf("\n");
  }
  kiln_cli_streams_table(d->devices, d->device_count);
}

static int apply_option(int id, const char *value, void *user) {
  switch (id) {
  case OPT_HELP:
    print_help();
    return KILN_CLI_EXIT_OK;
  case OPT_JSON:
    *(int *)user = 1;
    return KILN_CLI_GO_ON;
  default: /* KILN_CLI_POSITIONAL */
    return kiln_cli_usage_error("info", "unexpected argument '%s'", value);
  }
}

int kiln_cli_info(int argc, char **argv) {
  int json = 0;
  int parsed = kiln_cli_parse("info", info_options, argc, argv, apply_option, &json);
  if (parsed != KILN_CLI_GO_ON)
    return parsed;

  info_data d;
  int rc = collect(&d);
  if (rc == KILN_CLI_EXIT_OK) {
    if (json)
      rc = print_json(&d);
    else
      print_table(&d);
  }
  info_free(&d);
  return rc;
}

/* SPDX-License-Identifier: MIT */
/* `kiln demo`: the end-to-end check of a device through the public API only. On each
 * selected device: create a context, a stream, three buffers and the two kernels;
 * upload a and b (async + kiln_wait_all); c = a + b; c *= s (scalar argument);
 * download (blocking); verify against the host. One PASS, FAIL or SKIP line per
 * device; exit 0 when one passed and none failed. The kernels come from the first of
 * two providers the backend takes: the kernels as kiln-dialect source (demo_source:
 * one text for cpu, OpenCL and CUDA devices), else native C functions (the mock
 * backend, which compiles no source); a backend that takes neither (both answer
 * KILN_ERROR_UNSUPPORTED) is skipped with the reason rather than failed. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

enum { OPT_HELP = 1, OPT_JSON, OPT_DEVICE, OPT_SIZE };

static const kiln_cli_option demo_options_table[] = {
    {OPT_DEVICE, "device", 'd', "B:I", "run on this device only (cpu:0, opencl:1, cuda)"},
    {OPT_SIZE, "size", 's', "N", "elements per vector (default 1M = 1048576; K/M/G ok)"},
    {OPT_JSON, "json", 0, NULL, "print JSON (schemas/demo.json) instead of text"},
    {OPT_HELP, "help", 'h', NULL, "show this text"},
    {0, NULL, 0, NULL, NULL},
};

#define DEMO_DEFAULT_SIZE ((uint64_t)1 << 20)
#define DEMO_SCALE 2.5f

static void print_help(void) {
  fputs("Usage: kiln demo [--device B:I] [--size N] [--json]\n"
        "\n"
        "On every available device (or the one chosen), through kiln's public API:\n"
        "create a context and a stream, upload two float vectors a and b, launch\n"
        "c = a + b, then c *= 2.5, download c and compare it with the host's result.\n"
        "Prints each step's time and one PASS, FAIL or SKIP line per device.\n"
        "\n"
        "Options:\n",
        stdout);
  kiln_cli_print_options(stdout, demo_options_table);
  fputs("\n"
        "Without --device, KILN_DEVICE=<backend>:<index> runs that device only and\n"
        "KILN_BACKEND=<backend> that backend's devices only.\n"
        "Exit status: 0 when at least one device passed and none failed, 1 otherwise,\n"
        "2 on a usage error.\n",
        stdout);
}

/* ---- per-device result ---- */

enum { STEP_CREATE, STEP_UPLOAD, STEP_ADD, STEP_SCALE, STEP_DOWNLOAD, STEP_VERIFY, STEP_COUNT };
static const char *const step_names[STEP_COUNT] = {
    [STEP_CREATE] = "create", [STEP_UPLOAD] = "upload",     [STEP_ADD] = "add",
    [STEP_SCALE] = "scale",   [STEP_DOWNLOAD] = "download", [STEP_VERIFY] = "verify",
};

typedef enum demo_status { DEMO_PASS, DEMO_FAIL, DEMO_SKIP } demo_status;
static const char *const status_names[] = {
    [DEMO_PASS] = "PASS", [DEMO_FAIL] = "FAIL", [DEMO_SKIP] = "SKIP"};

typedef struct demo_result {
  char backend[16];
  unsigned index;
  char name[256];
  demo_status status;
  const char *kernels;         /* the provider that supplied the kernels, or NULL */
  double steps_ms[STEP_COUNT]; /* negative: the step did not run */
  char error[1024];            /* "" when none */
  char suggestion[300];        /* "" when none */
} demo_result;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Record a failed kiln call: what was being done, then kiln_last_error()'s detail. */
static void fail_with(demo_result *r, const char *what, kiln_status st) {
  char text[900];
  kiln_cli_error_text(st, text, sizeof text, r->suggestion, sizeof r->suggestion);
  snprintf(r->error, sizeof r->error, "%s: %s", what, text);
  r->status = DEMO_FAIL;
}

/* ---- kernels ---- */

/* c[i] = a[i] + b[i] over this worker's part of the range. */
static void add_native(const kiln_native_range *range, void *const *args, void *user) {
  (void)user;
  const float *a = args[0];
  const float *b = args[1];
  float *c = args[2];
  for (size_t i = range->begin[0]; i < range->end[0]; ++i)
    c[i] = a[i] + b[i];
}

/* c[i] *= s. */
static void scale_native(const kiln_native_range *range, void *const *args, void *user) {
  (void)user;
  float *c = args[0];
  const float s = *(const float *)args[1];
  for (size_t i = range->begin[0]; i < range->end[0]; ++i)
    c[i] *= s;
}

typedef struct demo_kernels {
  kiln_kernel add;   /* (const float *a, const float *b, float *c) */
  kiln_kernel scale; /* (float *c, float s) */
} demo_kernels;

/* A way to obtain the two kernels on a context. Returns KILN_ERROR_UNSUPPORTED when
 * this way does not apply to the context's backend, so the next one is tried. */
typedef struct kernel_provider {
  const char *name;
  kiln_status (*create)(kiln_context context, demo_kernels *k);
} kernel_provider;

static kiln_status create_native_kernels(kiln_context context, demo_kernels *k) {
  static const kiln_param add_params[] = {
      {KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_WRITE, 0}};
  static const kiln_param scale_params[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0},
                                            {KILN_PARAM_SCALAR, sizeof(float)}};
  kiln_native_kernel_desc desc = KILN_NATIVE_KERNEL_DESC_INIT;
  desc.name = "add";
  desc.fn = add_native;
  desc.params = add_params;
  desc.param_count = sizeof add_params / sizeof add_params[0];
  kiln_status st = kiln_kernel_create_native(context, &desc, &k->add);
  if (st != KILN_SUCCESS)
    return st;
  desc.name = "scale";
  desc.fn = scale_native;
  desc.params = scale_params;
  desc.param_count = sizeof scale_params / sizeof scale_params[0];
  return kiln_kernel_create_native(context, &desc, &k->scale);
}

/* The same two kernels in the kiln dialect (docs/kernels.md): how every device that
 * compiles source runs the demo. The global size is rounded up to the local size, so each
 * kernel guards with the size asked for. */
static const char demo_source[] =
    "KILN_KERNEL void add(KILN_GLOBAL const float *a, KILN_GLOBAL const float *b,\n"
    "                     KILN_GLOBAL float *c) {\n"
    "  unsigned long i = kiln_global_id(0);\n"
    "  if (i < kiln_global_size(0)) c[i] = a[i] + b[i];\n"
    "}\n"
    "KILN_KERNEL void scale(KILN_GLOBAL float *c, float s) {\n"
    "  unsigned long i = kiln_global_id(0);\n"
    "  if (i < kiln_global_size(0)) c[i] *= s;\n"
    "}\n";

static kiln_status create_source_kernels(kiln_context context, demo_kernels *k) {
  kiln_program_desc desc = KILN_PROGRAM_DESC_INIT;
  desc.source = demo_source;
  desc.name = "demo.kiln";
  kiln_program program = NULL;
  kiln_status st = kiln_program_create(context, &desc, &program);
  if (st != KILN_SUCCESS)
    return st;
  st = kiln_kernel_create(program, "add", &k->add);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(program, "scale", &k->scale);
  /* The kernels keep what they need; the program handle can go now. */
  kiln_status st2 = kiln_program_destroy(program);
  return st != KILN_SUCCESS ? st : st2;
}

/* Tried in order: a backend that does not take one kind answers
 * KILN_ERROR_UNSUPPORTED and the next is tried. */
static const kernel_provider kernel_providers[] = {
    {"source", create_source_kernels},
    {"native", create_native_kernels},
};
#define PROVIDER_COUNT (sizeof kernel_providers / sizeof kernel_providers[0])

/* ---- one device ---- */

typedef struct demo_host {
  size_t count; /* elements per vector */
  float *a, *b, *c, *expected;
} demo_host;

static void host_fill(const demo_host *h) {
  /* Values whose sums and products are exact in float, so any device must match
   * the host bit for bit; the comparison still allows rounding for safety. */
  for (size_t i = 0; i < h->count; ++i) {
    h->a[i] = (float)(i % 1024u);
    h->b[i] = (float)(i % 7u) * 0.25f - 1.0f;
    h->expected[i] = (h->a[i] + h->b[i]) * DEMO_SCALE;
    h->c[i] = NAN; /* a download that writes nothing cannot pass */
  }
}

/* Returns the number of mismatches; the first one's detail in msg. */
static size_t host_verify(const demo_host *h, char *msg, size_t msg_size) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < h->count; ++i) {
    float e = h->expected[i], g = h->c[i];
    float tol = 1e-6f * fmaxf(1.0f, fabsf(e));
    if (!(fabsf(g - e) <= tol)) { /* also catches NaN */
      if (bad++ == 0)
        first = i;
    }
  }
  if (bad)
    snprintf(msg, msg_size,
             "verify: %zu of %zu elements differ from the host; first at index %zu: "
             "got %.9g, expected %.9g = (%.9g + %.9g) * %.9g",
             bad, h->count, first, (double)h->c[first], (double)h->expected[first],
             (double)h->a[first], (double)h->b[first], (double)DEMO_SCALE);
  return bad;
}

/* One device's run: its objects, torn down in reverse whatever happened. */
typedef struct demo_run {
  kiln_device device;
  const demo_host *h;
  size_t bytes; /* per vector */
  kiln_range range;
  kiln_context ctx;
  kiln_stream stream;
  kiln_buffer a, b, c;
  demo_kernels k;
  demo_result *r;
} demo_run;

static int create_buffers(demo_run *run) {
  static const char *const labels[3] = {"demo.a", "demo.b", "demo.c"};
  kiln_buffer *const bufs[3] = {&run->a, &run->b, &run->c};
  for (int i = 0; i < 3; ++i) {
    kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
    bd.bytes = run->bytes;
    bd.label = labels[i];
    kiln_status st = kiln_buffer_create(run->ctx, &bd, bufs[i]);
    if (st != KILN_SUCCESS) {
      char what[96];
      snprintf(what, sizeof what, "creating buffer %s (%zu bytes)", labels[i], run->bytes);
      fail_with(run->r, what, st);
      return -1;
    }
  }
  return 0;
}

/* The first provider the backend takes; SKIP when it takes none. */
static int create_kernels(demo_run *run) {
  demo_result *r = run->r;
  kiln_status st = KILN_ERROR_UNSUPPORTED;
  for (size_t i = 0; i < PROVIDER_COUNT && st == KILN_ERROR_UNSUPPORTED; ++i) {
    kiln_kernel_destroy(run->k.add);
    kiln_kernel_destroy(run->k.scale);
    run->k.add = run->k.scale = NULL;
    st = kernel_providers[i].create(run->ctx, &run->k);
    if (st == KILN_SUCCESS)
      r->kernels = kernel_providers[i].name;
  }
  if (st == KILN_ERROR_UNSUPPORTED) {
    char text[900];
    kiln_cli_error_text(st, text, sizeof text, r->suggestion, sizeof r->suggestion);
    snprintf(r->error, sizeof r->error, "no kernel path for this backend yet: %s", text);
    r->suggestion[0] = '\0';
    r->status = DEMO_SKIP;
    return -1;
  }
  if (st != KILN_SUCCESS) {
    fail_with(r, "creating the kernels", st);
    return -1;
  }
  return 0;
}

/* Each step returns 0, or -1 with the failure (or skip) in run->r. */

static int step_create(demo_run *run) {
  kiln_status st = kiln_context_create(run->device, NULL, &run->ctx);
  if (st != KILN_SUCCESS) {
    fail_with(run->r, "creating a context", st);
    return -1;
  }
  st = kiln_stream_create(run->ctx, NULL, &run->stream);
  if (st != KILN_SUCCESS) {
    fail_with(run->r, "creating a stream", st);
    return -1;
  }
  if (create_buffers(run) != 0)
    return -1;
  return create_kernels(run);
}

/* Both vectors in flight at once, then one wait for both. */
static int step_upload(demo_run *run) {
  kiln_pending tokens[2] = {KILN_PENDING_INIT, KILN_PENDING_INIT};
  kiln_status st =
      kiln_buffer_write_async(run->stream, run->a, 0, run->bytes, run->h->a, &tokens[0]);
  if (st != KILN_SUCCESS) {
    fail_with(run->r, "uploading a (kiln_buffer_write_async)", st);
    return -1;
  }
  st = kiln_buffer_write_async(run->stream, run->b, 0, run->bytes, run->h->b, &tokens[1]);
  if (st != KILN_SUCCESS) {
    fail_with(run->r, "uploading b (kiln_buffer_write_async)", st);
    kiln_status ignored = kiln_wait(&tokens[0]); /* a's write may still read h->a */
    (void)ignored;
    return -1;
  }
  st = kiln_wait_all(tokens, 2);
  if (st != KILN_SUCCESS) {
    fail_with(run->r, "uploading a and b (kiln_wait_all)", st);
    return -1;
  }
  return 0;
}

static int launch(demo_run *run, const char *what, kiln_kernel kernel, const kiln_arg *args,
                  size_t arg_count) {
  kiln_status st = kiln_launch(run->stream, kernel, &run->range, args, arg_count);
  if (st != KILN_SUCCESS) {
    fail_with(run->r, what, st);
    return -1;
  }
  return 0;
}

static int step_add(demo_run *run) {
  const kiln_arg args[] = {kiln_arg_buffer(run->a), kiln_arg_buffer(run->b),
                           kiln_arg_buffer(run->c)};
  return launch(run, "launching add", run->k.add, args, sizeof args / sizeof args[0]);
}

static int step_scale(demo_run *run) {
  const float scale = DEMO_SCALE;
  const kiln_arg args[] = {kiln_arg_buffer(run->c), kiln_arg_scalar(&scale, sizeof scale)};
  return launch(run, "launching scale", run->k.scale, args, sizeof args / sizeof args[0]);
}

static int step_download(demo_run *run) {
  kiln_status st = kiln_buffer_read(run->c, 0, run->bytes, run->h->c);
  if (st != KILN_SUCCESS) {
    fail_with(run->r, "downloading c (kiln_buffer_read)", st);
    return -1;
  }
  return 0;
}

/* A mismatch fails the device, but the step ran: its time is reported. */
static int step_verify(demo_run *run) {
  if (host_verify(run->h, run->r->error, sizeof run->r->error) != 0)
    run->r->status = DEMO_FAIL;
  return 0;
}

static int (*const steps[STEP_COUNT])(demo_run *) = {
    [STEP_CREATE] = step_create, [STEP_UPLOAD] = step_upload,     [STEP_ADD] = step_add,
    [STEP_SCALE] = step_scale,   [STEP_DOWNLOAD] = step_download, [STEP_VERIFY] = step_verify,
};

/* Tear down in reverse; a failure here fails a device that otherwise passed. */
static void teardown(demo_run *run) {
  static const char *const what[7] = {"destroying kernel scale", "destroying kernel add",
                                      "destroying buffer c",     "destroying buffer b",
                                      "destroying buffer a",     "destroying the stream",
                                      "destroying the context"};
  kiln_status st[7];
  st[0] = kiln_kernel_destroy(run->k.scale);
  st[1] = kiln_kernel_destroy(run->k.add);
  st[2] = kiln_buffer_destroy(run->c);
  st[3] = kiln_buffer_destroy(run->b);
  st[4] = kiln_buffer_destroy(run->a);
  st[5] = kiln_stream_destroy(run->stream);
  st[6] = kiln_context_destroy(run->ctx);
  for (int i = 0; i < 7; ++i) {
    if (st[i] != KILN_SUCCESS && run->r->status == DEMO_PASS) {
      fail_with(run->r, what[i], st[i]);
      break;
    }
  }
}

/* The steps in order, each timed, until one fails. */
static void run_device(kiln_device device, const demo_host *h, demo_result *r) {
  demo_run run = {device,
                  h,
                  h->count * sizeof(float),
                  kiln_range_1d(h->count),
                  NULL,
                  NULL,
                  NULL,
                  NULL,
                  NULL,
                  {NULL, NULL},
                  r};
  r->status = DEMO_PASS;
  for (int s = 0; s < STEP_COUNT; ++s)
    r->steps_ms[s] = -1.0;
  for (int s = 0; s < STEP_COUNT; ++s) {
    /* Host data is written only once kiln has accepted the sizes: a --size beyond the
     * device's limits fails with kiln's message rather than by exhausting host memory
     * (the host vectors are untouched until here). Not timed. */
    if (s == STEP_UPLOAD)
      host_fill(h);
    double t = now_ms();
    if (steps[s](&run) != 0)
      break;
    r->steps_ms[s] = now_ms() - t;
  }
  teardown(&run);
}

/* ---- selection ---- */

typedef struct demo_selection {
  unsigned count;
  kiln_device *devices;
} demo_selection;

/* Where a selection failed: the message naming the value at fault, and a hint. */
typedef struct demo_error {
  char text[1200];
  char hint[300];
} demo_error;

/* The one device `spec` names (from `source`: --device or KILN_DEVICE); 1 on failure. */
static int select_named(const char *spec, const char *source, demo_selection *sel, demo_error *e) {
  char text[900];
  kiln_device dev = NULL;
  kiln_status st = kiln_device_parse(spec, &dev);
  if (st != KILN_SUCCESS) {
    kiln_cli_error_text(st, text, sizeof text, e->hint, sizeof e->hint);
    if (strstr(text, spec)) /* kiln's message names the value already */
      snprintf(e->text, sizeof e->text, "cannot use the device given by %s: %s", source, text);
    else
      snprintf(e->text, sizeof e->text, "cannot use device '%s' given by %s: %s", spec, source,
               text);
    if (!e->hint[0])
      snprintf(e->hint, sizeof e->hint, "run 'kiln info' to list the devices and their indices");
    return 1;
  }
  sel->devices = malloc(sizeof *sel->devices);
  if (!sel->devices) {
    snprintf(e->text, sizeof e->text, "out of host memory");
    return 1;
  }
  sel->devices[0] = dev;
  sel->count = 1;
  return 0;
}

/* Every available device, of the backend KILN_BACKEND names when it is set; 1 on
 * failure. */
static int select_all(const char *env_backend, demo_selection *sel, demo_error *e) {
  char text[900];
  kiln_backend_kind only = KILN_BACKEND_NONE;
  if (env_backend && env_backend[0]) {
    only = kiln_backend_from_name(env_backend);
    if (only == KILN_BACKEND_NONE) {
      snprintf(e->text, sizeof e->text, "backend '%s' (from KILN_BACKEND) is not one kiln knows",
               env_backend);
      snprintf(e->hint, sizeof e->hint, "run 'kiln info' to list the backends");
      return 1;
    }
  }
  unsigned n = 0;
  kiln_status st = kiln_device_count(&n);
  if (st != KILN_SUCCESS) {
    kiln_cli_error_text(st, text, sizeof text, e->hint, sizeof e->hint);
    snprintf(e->text, sizeof e->text, "counting devices: %s", text);
    return 1;
  }
  if (n && !(sel->devices = calloc(n, sizeof *sel->devices))) {
    snprintf(e->text, sizeof e->text, "out of host memory");
    return 1;
  }
  for (unsigned i = 0; i < n; ++i) {
    kiln_device dev = NULL;
    kiln_device_props p = KILN_DEVICE_PROPS_INIT;
    st = kiln_device_get(i, &dev);
    if (st == KILN_SUCCESS)
      st = kiln_device_get_props(dev, &p);
    if (st != KILN_SUCCESS) {
      kiln_cli_error_text(st, text, sizeof text, e->hint, sizeof e->hint);
      snprintf(e->text, sizeof e->text, "device %u: %s", i, text);
      return 1;
    }
    if (only == KILN_BACKEND_NONE || p.backend == only)
      sel->devices[sel->count++] = dev;
  }
  if (sel->count == 0) {
    if (only != KILN_BACKEND_NONE)
      snprintf(e->text, sizeof e->text, "backend '%s' (from KILN_BACKEND) has no available device",
               env_backend);
    else
      snprintf(e->text, sizeof e->text, "no available device");
    snprintf(e->hint, sizeof e->hint,
             "run 'kiln info' to see which backends are available and why");
    return 1;
  }
  return 0;
}

/* Fills sel with the devices to run on: --device, else KILN_DEVICE, else every device
 * (of KILN_BACKEND's backend). On failure fills *e and returns 1. */
static int select_devices(const char *spec, demo_selection *sel, demo_error *e) {
  sel->count = 0;
  sel->devices = NULL;
  e->text[0] = e->hint[0] = '\0';
  const char *env_device = getenv("KILN_DEVICE");
  if (spec)
    return select_named(spec, "--device", sel, e);
  if (env_device && env_device[0])
    return select_named(env_device, "KILN_DEVICE", sel, e);
  return select_all(getenv("KILN_BACKEND"), sel, e);
}

/* ---- output ---- */

static void print_text_result(const demo_result *r) {
  for (int s = 0; s < STEP_COUNT; ++s)
    if (r->steps_ms[s] >= 0)
      printf("  %-9s %10.3f ms\n", step_names[s], r->steps_ms[s]);
  printf("%s %s:%u %s", status_names[r->status], r->backend, r->index, r->name);
  if (r->status == DEMO_PASS)
    printf("\n");
  else
    printf(": %s\n", r->error);
  if (r->status == DEMO_FAIL && r->suggestion[0])
    printf("  suggestion: %s\n", r->suggestion);
}

static int print_json(uint64_t size, const demo_result *results, unsigned count, int passed,
                      const char *error, const char *hint) {
  kiln__json j;
  kiln__json_init(&j, stdout, 1);
  kiln__json_begin_object(&j, NULL);
  kiln__json_string(&j, "kiln_version", kiln_version_string());
  kiln__json_uint(&j, "size", size);
  kiln__json_number(&j, "scale", (double)DEMO_SCALE);
  kiln__json_begin_array(&j, "devices");
  for (unsigned i = 0; i < count; ++i) {
    const demo_result *r = &results[i];
    kiln__json_begin_object(&j, NULL);
    kiln__json_string(&j, "backend", r->backend);
    kiln__json_uint(&j, "index", r->index);
    kiln__json_string(&j, "name", r->name);
    kiln__json_string(&j, "status", status_names[r->status]);
    kiln__json_string(&j, "kernels", r->kernels);
    kiln__json_string(&j, "error", r->error[0] ? r->error : NULL);
    kiln__json_string(&j, "suggestion", r->suggestion[0] ? r->suggestion : NULL);
    kiln__json_begin_object(&j, "steps_ms");
    for (int s = 0; s < STEP_COUNT; ++s) {
      if (r->steps_ms[s] >= 0) /* to the microsecond: finer is noise */
        kiln__json_number(&j, step_names[s], round(r->steps_ms[s] * 1e3) / 1e3);
      else
        kiln__json_null(&j, step_names[s]);
    }
    kiln__json_end_object(&j);
    kiln__json_end_object(&j);
  }
  kiln__json_end_array(&j);
  kiln__json_bool(&j, "passed", passed);
  kiln__json_string(&j, "error", error);
  kiln__json_string(&j, "suggestion", hint && hint[0] ? hint : NULL);
  kiln__json_end_object(&j);
  if (kiln__json_finish(&j) != 0) {
    fputs("kiln demo: error writing JSON to standard output\n", stderr);
    return -1;
  }
  return 0;
}

typedef struct demo_options {
  int json;
  const char *device_spec;
  uint64_t size;
} demo_options;

static int apply_option(int id, const char *value, void *user) {
  demo_options *o = user;
  switch (id) {
  case OPT_HELP:
    print_help();
    return KILN_CLI_EXIT_OK;
  case OPT_JSON:
    o->json = 1;
    return KILN_CLI_GO_ON;
  case OPT_DEVICE:
    if (!value[0])
      return kiln_cli_usage_error("demo", "--device needs a value like cpu:0");
    o->device_spec = value;
    return KILN_CLI_GO_ON;
  case OPT_SIZE:
    /* Bounded so the three host vectors and their byte sizes cannot overflow. */
    if (kiln_cli_parse_count(value, 1, (uint64_t)(SIZE_MAX / 4 / sizeof(float)), &o->size))
      return kiln_cli_usage_error(
          "demo", "--size '%s' is not a positive element count (e.g. 4096, 64K, 1M)", value);
    return KILN_CLI_GO_ON;
  default: /* KILN_CLI_POSITIONAL */
    return kiln_cli_usage_error("demo", "unexpected argument '%s'", value);
  }
}

/* A failure before any device ran: on stderr, and as the JSON document with --json. */
static int fail_early(const demo_options *o, const char *text, const char *hint) {
  if (o->json)
    print_json(o->size, NULL, 0, 0, text, hint);
  fprintf(stderr, "kiln demo: %s\n", text);
  if (hint && hint[0])
    fprintf(stderr, "  suggestion: %s\n", hint);
  return KILN_CLI_EXIT_FAILED;
}

static int host_alloc(demo_host *h, size_t count) {
  h->count = count;
  h->a = malloc(count * sizeof(float));
  h->b = malloc(count * sizeof(float));
  h->c = malloc(count * sizeof(float));
  h->expected = malloc(count * sizeof(float));
  return h->a && h->b && h->c && h->expected ? 0 : -1;
}

static void host_free(demo_host *h) {
  free(h->a);
  free(h->b);
  free(h->c);
  free(h->expected);
}

/* The device's name into r, then its run; with text output, its lines. */
static void demo_device(kiln_device device, const demo_host *h, int json, demo_result *r) {
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  kiln_status st = kiln_device_get_props(device, &props);
  if (st != KILN_SUCCESS) {
    snprintf(r->backend, sizeof r->backend, "unknown");
    for (int s = 0; s < STEP_COUNT; ++s)
      r->steps_ms[s] = -1.0;
    fail_with(r, "reading the device's properties", st);
  } else {
    const char *bname = kiln_backend_name(props.backend);
    snprintf(r->backend, sizeof r->backend, "%s", bname ? bname : "unknown");
    r->index = props.index;
    props.name[sizeof props.name - 1] = '\0';
    snprintf(r->name, sizeof r->name, "%s", props.name);
    if (!json)
      printf("\n%s:%u %s\n", r->backend, r->index, r->name);
    run_device(device, h, r);
  }
  if (!json)
    print_text_result(r);
  fflush(stdout);
}

/* Run every selected device and print the outcome; the exit code. */
static int demo_devices(const demo_options *o, const demo_selection *sel, const demo_host *h,
                        demo_result *results) {
  if (!o->json) {
    char bytes_text[32];
    kiln_cli_format_bytes(h->count * sizeof(float), bytes_text, sizeof bytes_text);
    printf("kiln %s demo: c = (a + b) * %g over %zu floats (%s per vector)\n",
           kiln_version_string(), (double)DEMO_SCALE, h->count, bytes_text);
  }
  unsigned counts[3] = {0, 0, 0}; /* by demo_status */
  for (unsigned i = 0; i < sel->count; ++i) {
    demo_device(sel->devices[i], h, o->json, &results[i]);
    counts[results[i].status]++;
  }
  int ok = counts[DEMO_FAIL] == 0 && counts[DEMO_PASS] > 0;
  if (o->json) {
    const char *error = ok || counts[DEMO_FAIL] ? NULL : "no device could run the demo";
    if (print_json(o->size, results, sel->count, ok, error, NULL) != 0)
      ok = 0;
  } else {
    printf("\n%u passed, %u failed, %u skipped\n", counts[DEMO_PASS], counts[DEMO_FAIL],
           counts[DEMO_SKIP]);
    fflush(stdout);
    if (!ok && counts[DEMO_FAIL] == 0)
      fputs("kiln demo: no device could run the demo\n", stderr);
  }
  return ok ? KILN_CLI_EXIT_OK : KILN_CLI_EXIT_FAILED;
}

int kiln_cli_demo(int argc, char **argv) {
  demo_options o = {0, NULL, DEMO_DEFAULT_SIZE};
  int parsed = kiln_cli_parse("demo", demo_options_table, argc, argv, apply_option, &o);
  if (parsed != KILN_CLI_GO_ON)
    return parsed;

  demo_selection sel;
  demo_error e;
  if (select_devices(o.device_spec, &sel, &e) != 0) {
    free(sel.devices);
    return fail_early(&o, e.text, e.hint);
  }
  int rc;
  demo_host h;
  demo_result *results = calloc(sel.count, sizeof *results);
  if (host_alloc(&h, (size_t)o.size) != 0 || !results) {
    snprintf(e.text, sizeof e.text, "out of host memory for %llu-element vectors",
             (unsigned long long)o.size);
    rc = fail_early(&o, e.text, NULL);
  } else {
    rc = demo_devices(&o, &sel, &h, results);
  }
  host_free(&h);
  free(results);
  free(sel.devices);
  return rc;
}

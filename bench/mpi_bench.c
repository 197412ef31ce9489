/* SPDX-License-Identifier: MIT */
/* kiln-mpi-bench: the mpi suite (docs/mpi.md, docs/benchmarks.md), run as
 * `mpirun -np 2 kiln-mpi-bench [--quick] [--device cpu:0|opencl:0] [--case PATTERN]
 * [--json FILE]`. Rank 0 runs kiln's benchmark harness (kiln_bench) as `kiln bench`
 * does and writes the same JSON; rank 1 mirrors each batch: before every set-up, run
 * and tear-down rank 0 sends it a command (side, iterations, bytes) on a control
 * communicator, so the harness's adaptive batches never leave the ranks out of step.
 * Cases: pingpong_{8B,64KiB,16MiB} (kiln_mpi_send/recv of a kiln buffer vs
 * ref-manual-staging: kiln_buffer_read + MPI_Send, MPI_Recv + kiln_buffer_write, by
 * hand) and pingpong_*_raw (the same kiln side vs raw-mpi: plain host memory). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_mpi.h"
#include "kiln/bench.h"
#include "kiln/mpi.h"
#include "ref_mpi.h"

enum { SIDE_KILN = 0, SIDE_REF = 1, SIDE_RAW = 2, SIDES = 3 };
enum { CMD_SETUP = 1, CMD_RUN, CMD_TEARDOWN, CMD_QUIT };

typedef struct cmd {
  int32_t op, side;
  uint64_t iters, bytes;
} cmd;

static kiln_mpi g_mpi;
static kiln_context g_ctx;
static MPI_Comm g_ctrl, g_data;
static int g_rank;

typedef struct kiln_side {
  kiln_buffer buf;
  size_t bytes;
} kiln_side;

/* ---------------------------------------------------------------- the sides */
static int side_setup(int side, size_t bytes, void **state) {
  *state = NULL;
  if (side == SIDE_REF)
    return bench_ref_mpi_setup(g_ctx, g_data, bytes, state);
  if (side == SIDE_RAW)
    return bench_baseline_mpi_setup(g_data, bytes, state);
  kiln_side *k = calloc(1, sizeof *k);
  if (!k)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes ? bytes : 1;
  kiln_status st = kiln_buffer_create(g_ctx, &d, &k->buf);
  unsigned char pattern = 0x5a;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(k->buf, 0, d.bytes, &pattern, 1);
  if (st != KILN_SUCCESS) {
    (void)kiln_buffer_destroy(k->buf);
    free(k);
    return st;
  }
  k->bytes = bytes;
  *state = k;
  return 0;
}

static int side_run(int side, void *state, uint64_t iters) {
  if (side == SIDE_REF)
    return bench_ref_mpi_pingpong(state, iters, g_rank);
  if (side == SIDE_RAW)
    return bench_baseline_mpi_pingpong(state, iters, g_rank);
  kiln_side *k = state;
  int peer = 1 - g_rank;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st;
    if (g_rank == 0) {
      st = kiln_mpi_send(g_mpi, k->buf, 0, k->bytes, peer, 0);
      if (st == KILN_SUCCESS)
        st = kiln_mpi_recv(g_mpi, k->buf, 0, k->bytes, peer, 0);
    } else {
      st = kiln_mpi_recv(g_mpi, k->buf, 0, k->bytes, peer, 0);
      if (st == KILN_SUCCESS)
        st = kiln_mpi_send(g_mpi, k->buf, 0, k->bytes, peer, 0);
    }
    if (st != KILN_SUCCESS)
      return st;
  }
  return 0;
}

static void side_teardown(int side, void *state) {
  if (side == SIDE_REF) {
    bench_ref_mpi_teardown(state);
  } else if (side == SIDE_RAW) {
    bench_baseline_mpi_teardown(state);
  } else if (state) {
    kiln_side *k = state;
    (void)kiln_buffer_destroy(k->buf);
    free(k);
  }
}

/* ---------------------------------------------------------------- rank 0: the harness */
typedef struct case_arg {
  size_t bytes;
  int baseline_side; /* SIDE_REF or SIDE_RAW */
} case_arg;

typedef struct held {
  int side;
  void *state;
} held;

static int tell(int op, int side, uint64_t iters, uint64_t bytes) {
  cmd c = {op, side, iters, bytes};
  return MPI_Send(&c, (int)sizeof c, MPI_BYTE, 1, 1, g_ctrl) == MPI_SUCCESS ? 0 : -1;
}

/* Rank 1 answers every set-up with its own status, so a failure there fails the case. */
static int setup_both(int side, size_t bytes, void **state) {
  *state = NULL;
  if (tell(CMD_SETUP, side, 0, bytes) != 0)
    return KILN_ERROR_BACKEND;
  int theirs = 0;
  MPI_Recv(&theirs, 1, MPI_INT, 1, 2, g_ctrl, MPI_STATUS_IGNORE);
  held *h = calloc(1, sizeof *h);
  if (!h)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  h->side = side;
  int st = side_setup(side, bytes, &h->state);
  if (st != 0 || theirs != 0) {
    side_teardown(side, h->state);
    (void)tell(CMD_TEARDOWN, side, 0, 0);
    free(h);
    return st != 0 ? st : theirs;
  }
  *state = h;
  return 0;
}

static int kiln_setup(const kiln_bench_env *env, void **state) {
  const case_arg *a = env->arg;
  return setup_both(SIDE_KILN, a->bytes, state);
}

static int baseline_setup(void *arg, void **state) {
  const case_arg *a = arg;
  return setup_both(a->baseline_side, a->bytes, state);
}

static int run_both(void *state, uint64_t iters) {
  held *h = state;
  if (tell(CMD_RUN, h->side, iters, 0) != 0)
    return KILN_ERROR_BACKEND;
  return side_run(h->side, h->state, iters);
}

static void teardown_both(void *state) {
  held *h = state;
  if (!h)
    return;
  (void)tell(CMD_TEARDOWN, h->side, 0, 0);
  side_teardown(h->side, h->state);
  free(h);
}

/* ---------------------------------------------------------------- rank 1: the mirror */
static int mirror(void) {
  void *states[SIDES] = {NULL, NULL, NULL};
  for (;;) {
    cmd c;
    if (MPI_Recv(&c, (int)sizeof c, MPI_BYTE, 0, 1, g_ctrl, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      return 1;
    if (c.op == CMD_QUIT)
      break;
    if (c.side < 0 || c.side >= SIDES)
      return 1;
    if (c.op == CMD_SETUP) {
      side_teardown(c.side, states[c.side]);
      int st = side_setup(c.side, (size_t)c.bytes, &states[c.side]);
      MPI_Send(&st, 1, MPI_INT, 0, 2, g_ctrl);
    } else if (c.op == CMD_RUN) {
      int st = side_run(c.side, states[c.side], c.iters);
      if (st != 0) {
        fprintf(stderr, "kiln-mpi-bench rank 1: side %d failed: %s\n", c.side,
                kiln_last_error()->message);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    } else if (c.op == CMD_TEARDOWN) {
      side_teardown(c.side, states[c.side]);
      states[c.side] = NULL;
    }
  }
  for (int s = 0; s < SIDES; s++)
    side_teardown(s, states[s]);
  return 0;
}

/* ---------------------------------------------------------------- main */
static case_arg g_args[6] = {
    {8, SIDE_REF}, {64 << 10, SIDE_REF}, {16 << 20, SIDE_REF},
    {8, SIDE_RAW}, {64 << 10, SIDE_RAW}, {16 << 20, SIDE_RAW},
};

#define PP_CASE(name, i, base, goal, goal_text)                                                   \
  {                                                                                               \
    name, "one round trip of a kiln buffer between rank 0 and rank 1", NULL, 0, "us",             \
        KILN_BENCH_LOWER, 0, 0, goal, goal_text, &g_args[i], kiln_setup, run_both, teardown_both, \
        base, baseline_setup, run_both, teardown_both, NULL, 0, NULL, NULL, NULL, NULL            \
  }

static const kiln_bench_case cases[] = {
    PP_CASE("pingpong_8B", 0, "ref-manual-staging", 0.95,
            ">= 0.95x of staging by hand (read + MPI_Send, MPI_Recv + write)"),
    PP_CASE("pingpong_64KiB", 1, "ref-manual-staging", 0.95,
            ">= 0.95x of staging by hand (read + MPI_Send, MPI_Recv + write)"),
    PP_CASE("pingpong_16MiB", 2, "ref-manual-staging", 1.0,
            "> 1x of staging by hand: copies of chunk i+1 overlap the transfer of chunk i"),
    PP_CASE("pingpong_8B_raw", 3, "raw-mpi", 0, NULL),
    PP_CASE("pingpong_64KiB_raw", 4, "raw-mpi", 0, NULL),
    PP_CASE("pingpong_16MiB_raw", 5, "raw-mpi", 0, NULL),
};

static void usage(void) {
  fprintf(stderr, "usage: mpirun -np 2 kiln-mpi-bench [--quick] [--device BACKEND:0] "
                  "[--case PATTERN] [--json FILE]\n");
}

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  kiln_bench_config config = KILN_BENCH_CONFIG_INIT;
  const char *json = NULL, *device = "cpu:0";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      config.quick = 1;
    } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json = argv[++i];
    } else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
      device = argv[++i];
    } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
      config.cases = argv[++i];
    } else {
      if (g_rank == 0)
        usage();
      MPI_Finalize();
      return 2;
    }
  }
  if (size != 2) {
    if (g_rank == 0)
      fprintf(stderr, "kiln-mpi-bench: run it with mpirun -np 2 (got %d ranks)\n", size);
    MPI_Finalize();
    return 2;
  }
  kiln_device dev = NULL;
  kiln_status st = kiln_device_parse(device, &dev);
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  if (st == KILN_SUCCESS)
    st = kiln_device_get_props(dev, &props);
  if (st != KILN_SUCCESS) {
    fprintf(stderr, "kiln-mpi-bench rank %d: --device %s: %s\n", g_rank, device,
            kiln_last_error()->message);
    MPI_Finalize();
    return 77; /* the backend is absent here */
  }
  kiln_mpi_desc d = KILN_MPI_DESC_INIT;
  d.backend = props.backend;
  st = kiln_mpi_init(MPI_COMM_WORLD, &d, &g_mpi);
  if (st != KILN_SUCCESS) {
    fprintf(stderr, "kiln-mpi-bench rank %d: %s\n", g_rank, kiln_last_error()->message);
    MPI_Finalize();
    return 1;
  }
  kiln_mpi_info info = KILN_MPI_INFO_INIT;
  (void)kiln_mpi_get_info(g_mpi, &info);
  g_ctx = info.context;
  MPI_Comm_dup(MPI_COMM_WORLD, &g_ctrl);
  MPI_Comm_dup(MPI_COMM_WORLD, &g_data);
  int rc = 0;
  if (g_rank == 1) {
    rc = mirror();
  } else {
    kiln_bench_suite suite = {"mpi",         "kiln buffers over MPI (2 ranks, docs/mpi.md)",
                              props.backend, 0,
                              cases,         sizeof cases / sizeof cases[0]};
    config.device = device;
    kiln_bench_report *report = NULL;
    st = kiln_bench_report_create(&report);
    if (st == KILN_SUCCESS) {
      st = kiln_bench_run_suite(&config, &suite, report);
      kiln_bench_report_print(report, stdout);
      if (json) {
        FILE *f = fopen(json, "w");
        if (!f || kiln_bench_report_write_json(report, f) != KILN_SUCCESS) {
          fprintf(stderr, "kiln-mpi-bench: cannot write %s\n", json);
          rc = 1;
        }
        if (f)
          fclose(f);
      }
      kiln_bench_report_destroy(report);
    }
    if (st != KILN_SUCCESS)
      rc = 1;
    (void)tell(CMD_QUIT, 0, 0, 0);
    FILE *la = fopen("/proc/loadavg", "r");
    char load[128] = "";
    if (la) {
      if (!fgets(load, sizeof load, la))
        load[0] = '\0';
      fclose(la);
    }
    printf("load average: %s", load[0] ? load : "unknown\n");
  }
  MPI_Comm_free(&g_ctrl);
  MPI_Comm_free(&g_data);
  (void)kiln_mpi_finalize(g_mpi);
  MPI_Finalize();
  return rc;
}

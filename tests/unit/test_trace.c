/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* Tracing (include/kiln/trace.h) on the CPU backend: the trace of a three-stream
 * workload with cross-stream hazards validates against schemas/trace.json and holds
 * every op exactly once (begin <= end) with flows joining exactly the ops the hazards
 * order; user ranges, marks and KILN_TRACE_SCOPE; a range left open is closed at the
 * flush with a warning; an unwritable path (API and KILN_TRACE) is a clear error and
 * the program carries on; ring mode keeps the last N events. Each test is its own
 * process (KILN_TRACE is read at the first context create). Traces are read back with
 * jansson (tests/trace.cmake). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln_test.h"

extern char **environ;

static char trace_file[256];

static void tmp_trace(const char *tag) {
  snprintf(trace_file, sizeof trace_file, "/tmp/kiln_test_trace_%s_%d.json", tag, (int)getpid());
}

static json_t *load_trace(const char *path) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (!root)
    fail_msg("trace %s does not parse: %s (line %d)", path, err.text, err.line);
  assert_true(json_is_array(json_object_get(root, "traceEvents")));
  return root;
}

static const char *ev_str(json_t *ev, const char *key) {
  return json_string_value(json_object_get(ev, key));
}

static json_t *arg(json_t *ev, const char *key) {
  return json_object_get(json_object_get(ev, "args"), key);
}

/* Run scripts/validate-json.py on the trace with Debian's python (jsonschema). */
static void validate_schema(const char *path) {
  char *argv[] = {"/usr/bin/python3", KILN_SOURCE_DIR "/scripts/validate-json.py",
                  KILN_SOURCE_DIR "/schemas/trace.json", (char *)path, NULL};
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- the workload ---- */
static void k_scale(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  float *x = args[0];
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    x[i] = x[i] * 2.0f + 1.0f;
}

static void k_sum(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const float *a = args[0];
  float *b = args[1];
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    b[i] += a[i];
}

static kiln_kernel native(kiln_context ctx, const char *name, kiln_native_fn fn,
                          const kiln_param *params, size_t n) {
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = name;
  d.fn = fn;
  d.params = params;
  d.param_count = n;
  kiln_kernel k;
  KT_OK(kiln_kernel_create_native(ctx, &d, &k));
  return k;
}

#define N 4096
#define ROUNDS 6

typedef struct expect_flow {
  unsigned long long from_stream, from_seq, to_stream, to_seq;
} expect_flow;

/* Three streams: s0 (held by a gate) writes A and scales it; s1 sums A into B (waits
 * for s0's scale: read after write) and reads B; s2 fills A (waits for the scale, write
 * after write, and for the sum, write after read); six rounds. Returns the ops queued
 * (tokens all waited). */
static unsigned run_workload(kiln_context ctx, kiln_stream s[3], unsigned long long uid[3]) {
  static const kiln_param p1[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0}};
  static const kiln_param p2[] = {{KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_READ_WRITE, 0}};
  kiln_kernel scale = native(ctx, "scale", k_scale, p1, 1);
  kiln_kernel sum = native(ctx, "sum", k_sum, p2, 2);
  kiln_buffer a = kt_buffer(ctx, N * sizeof(float)), b = kt_buffer(ctx, N * sizeof(float));
  static float host[N], out[N];
  for (unsigned i = 0; i < N; i++)
    host[i] = (float)i;
  unsigned ops = 0;
  kiln_range r = kiln_range_1d(N);
  kiln_kernel gk = kt_gate_kernel(ctx);
  for (unsigned round = 0; round < ROUNDS; round++) {
    /* s0 is held by a gate while the round is queued, so every cross-stream
     * dependency is still pending when its op is submitted (and becomes a flow). */
    kt_gate g;
    kt_gate_init(&g);
    kiln_pending t[6];
    KT_OK(kt_gate_launch_async(s[0], gk, &g, &t[5]));
    kiln_arg a1[] = {kiln_arg_buffer(a)};
    kiln_arg a2[] = {kiln_arg_buffer(a), kiln_arg_buffer(b)};
    KT_OK(kiln_buffer_write_async(s[0], a, 0, sizeof host, host, &t[0]));
    KT_OK(kiln_launch_async(s[0], scale, &r, a1, 1, &t[1]));
    KT_OK(kiln_launch_async(s[1], sum, &r, a2, 2, &t[2]));
    KT_OK(kiln_buffer_fill_async(s[2], a, 0, sizeof host, &(float){0}, sizeof(float), &t[3]));
    KT_OK(kiln_buffer_read_async(s[1], b, 0, sizeof out, out, &t[4]));
    kt_gate_open(&g);
    KT_OK(kiln_wait_all(t, 6));
    ops += 6;
  }
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_stream_synchronize(s[i]));
  (void)uid;
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(scale));
  KT_OK(kiln_kernel_destroy(sum));
  KT_OK(kiln_kernel_destroy(gk));
  return ops;
}

static void multi_stream_trace_is_complete_and_valid(void **state) {
  (void)state;
  tmp_trace("multi");
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = trace_file;
  KT_OK(kiln_trace_start(&td));
  assert_true(kiln_trace_enabled());
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  kiln_stream s[3];
  kiln_stream_desc labelled = KILN_STREAM_DESC_INIT;
  labelled.label = "filling"; /* a labelled stream's track carries its label */
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_stream_create(ctx, i == 2 ? &labelled : NULL, &s[i]));
  unsigned long long uid[3] = {0, 0, 0};
  KT_OK(kiln_trace_name_stream(s[1], "summing"));
  KT_EXPECT_MSG(kiln_trace_name_stream(s[1], NULL), KILN_ERROR_INVALID_ARGUMENT, "name is NULL");
  KT_EXPECT(kiln_trace_name_stream(NULL, "x"), KILN_ERROR_INVALID_HANDLE);
  unsigned ops = run_workload(ctx, s, uid);
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_stream_destroy(s[i]));
  KT_OK(kiln_context_destroy(ctx)); /* writes the trace */
  KT_OK(kiln_trace_stop());
  assert_false(kiln_trace_enabled());
  assert_int_equal(kiln_trace_dropped(), 0);
  validate_schema(trace_file);

  json_t *root = load_trace(trace_file);
  json_t *evs = json_object_get(root, "traceEvents");
  int named_summing = 0, named_filling = 0; /* track names (metadata events) */
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *track = json_string_value(json_object_get(json_object_get(ev, "args"), "name"));
    if (strcmp(ev_str(ev, "ph"), "M") || !track)
      continue;
    named_summing += strncmp(track, "summing", 7) == 0;
    named_filling += strncmp(track, "filling", 7) == 0;
  }
  assert_int_equal(named_summing, 1);
  assert_int_equal(named_filling, 1);
  /* Every op once: (stream, seq) unique; the user streams' ops are exactly `ops`
   * (5 per round), in the order queued: write, scale, sum, fill, read. */
  size_t n = json_array_size(evs);
  unsigned user_ops = 0, launches = 0, flows_s = 0, flows_f = 0, api_spans = 0, hazards = 0;
  json_int_t async_tid = 0;
  typedef struct span {
    long long stream, seq;
    double ts, end;
    const char *kind;
  } span;
  span *spans = calloc(n, sizeof *spans);
  size_t nspans = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *ev = json_array_get(evs, i);
    const char *ph = ev_str(ev, "ph"), *cat = ev_str(ev, "cat");
    if (!strcmp(ph, "X") && cat && !strcmp(cat, "op")) {
      span sp = {json_integer_value(arg(ev, "stream")), json_integer_value(arg(ev, "seq")),
                 json_number_value(json_object_get(ev, "ts")), 0,
                 json_string_value(arg(ev, "kind"))};
      double dur = json_number_value(json_object_get(ev, "dur"));
      assert_true(dur >= 0.0);
      sp.end = sp.ts + dur;
      for (size_t j = 0; j < nspans; j++)
        assert_false(spans[j].stream == sp.stream && spans[j].seq == sp.seq); /* once */
      spans[nspans++] = sp;
      assert_string_equal(json_string_value(arg(ev, "status")), "KILN_SUCCESS");
      assert_string_equal(json_string_value(arg(ev, "timing")), "run"); /* cpu: the worker's */
      if (!strcmp(sp.kind, "launch")) {
        launches++;
        const char *kn = json_string_value(arg(ev, "kernel"));
        assert_string_equal(ev_str(ev, "name"), kn);
        assert_int_equal(json_integer_value(json_array_get(arg(ev, "range"), 0)),
                         strcmp(kn, "kt_gate") ? N : 1);
        if (strcmp(kn, "kt_gate")) /* the gate is launched by tests/support */
          assert_non_null(strstr(json_string_value(arg(ev, "site")), "test_trace.c:"));
      }
      if (!strcmp(sp.kind, "write") || !strcmp(sp.kind, "read") || !strcmp(sp.kind, "fill"))
        assert_int_equal(json_integer_value(arg(ev, "bytes")), N * sizeof(float));
    } else if (!strcmp(ph, "X") && cat && !strcmp(cat, "api")) {
      api_spans++;
      /* An async call's API span is on the track of the thread that made it (this
       * one), never on the worker's that completed the op. */
      const char *fn = ev_str(ev, "name");
      if (strstr(fn, "_async")) {
        json_int_t tid = json_integer_value(json_object_get(ev, "tid"));
        if (!async_tid)
          async_tid = tid;
        assert_int_equal(tid, async_tid);
      }
    } else if (!strcmp(ph, "s")) {
      flows_s++;
    } else if (!strcmp(ph, "f")) {
      flows_f++;
    } else if (!strcmp(ph, "i") && cat && !strcmp(cat, "hazard")) {
      hazards++;
    }
  }
  /* The three user streams have uids 1..3 in creation order; the internal default
   * stream (none used here) would be another. */
  for (size_t j = 0; j < nspans; j++)
    if (spans[j].stream >= 1 && spans[j].stream <= 3)
      user_ops++;
  assert_int_equal(user_ops, ops);
  assert_int_equal(launches, 3 * ROUNDS); /* with the gates */
  assert_true(api_spans >= ops);          /* each _async call, plus the waits */
  /* Flows: every s has its f, and each joins ops the hazards order. */
  assert_int_equal(flows_s, flows_f);
  assert_int_equal(flows_s, 3 * ROUNDS); /* sum <- scale, fill <- scale, fill <- sum */
  assert_int_equal(hazards, 2 * ROUNDS); /* the sum's and the fill's */
  unsigned checked = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *ev = json_array_get(evs, i);
    if (strcmp(ev_str(ev, "ph"), "s"))
      continue;
    long long fs = json_integer_value(arg(ev, "from_stream")),
              fq = json_integer_value(arg(ev, "from_seq")),
              ts_ = json_integer_value(arg(ev, "to_stream")),
              tq = json_integer_value(arg(ev, "to_seq"));
    assert_true(fs != ts_); /* cross-stream only */
    const span *from = NULL, *to = NULL;
    for (size_t j = 0; j < nspans; j++) {
      if (spans[j].stream == fs && spans[j].seq == fq)
        from = &spans[j];
      if (spans[j].stream == ts_ && spans[j].seq == tq)
        to = &spans[j];
    }
    assert_non_null(from);
    assert_non_null(to);
    /* The ordering the hazard enforced: the waiting op began after its source ended. */
    assert_true(to->ts >= from->end - 0.002);
    /* The right ops, in round r: s0 runs gate 3r+1, write 3r+2, scale 3r+3; s1 sum
     * 2r+1, read 2r+2; s2 fill r+1. */
    long long round = ts_ == 2 ? (tq - 1) / 2 : tq - 1;
    if (ts_ == 2) { /* the sum waits for the scale */
      assert_int_equal(tq, 2 * round + 1);
      assert_int_equal(fs, 1);
      assert_int_equal(fq, 3 * round + 3);
    } else { /* the fill waits for the scale and the sum */
      assert_int_equal(ts_, 3);
      assert_true((fs == 1 && fq == 3 * round + 3) || (fs == 2 && fq == 2 * round + 1));
    }
    assert_string_equal(from->kind, "launch");
    /* The f event with the same id binds to the target's track. */
    json_int_t id = json_integer_value(json_object_get(ev, "id"));
    int found = 0;
    for (size_t k = 0; k < n && !found; k++) {
      json_t *f = json_array_get(evs, k);
      if (!strcmp(ev_str(f, "ph"), "f") && json_integer_value(json_object_get(f, "id")) == id) {
        found = 1;
        assert_string_equal(ev_str(f, "bp"), "e");
        assert_true(fabs(json_number_value(json_object_get(f, "ts")) - to->ts) < 0.0015);
      }
    }
    assert_true(found);
    checked++;
  }
  assert_int_equal(checked, 3 * ROUNDS);
  free(spans);
  json_decref(root);
  unlink(trace_file);
}

/* ---- ranges, marks, scopes ---- */
static void scoped(void) {
  KILN_TRACE_SCOPE("inner scope");
  KT_OK(kiln_trace_mark("inside", KILN_TRACE_KERNEL));
}

static int count_ph_name(json_t *evs, const char *ph, const char *name) {
  int c = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    if (!strcmp(ev_str(ev, "ph"), ph) && ev_str(ev, "name") && !strcmp(ev_str(ev, "name"), name))
      c++;
  }
  return c;
}

static void ranges_marks_and_scopes(void **state) {
  (void)state;
  tmp_trace("ranges");
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = trace_file;
  KT_OK(kiln_trace_start(&td));
  KT_OK(kiln_trace_range_begin("outer", KILN_TRACE_ALGORITHM));
  scoped();
  KT_OK(kiln_trace_range_end()); /* outer: the scope closed its own range */
  KT_EXPECT_MSG(kiln_trace_range_end(), KILN_ERROR_INVALID_STATE, "no range is open");
  KT_EXPECT_MSG(kiln_trace_range_begin(NULL, KILN_TRACE_USER), KILN_ERROR_INVALID_ARGUMENT,
                "name is NULL");
  KT_EXPECT_MSG(kiln_trace_mark("x", (kiln_trace_category)99), KILN_ERROR_INVALID_ARGUMENT,
                "category 99");
  /* A name longer than the inline copy is cut, not overrun. */
  KT_OK(kiln_trace_mark("a mark whose name is much longer than forty-seven bytes, cut",
                        KILN_TRACE_IO));
  KT_OK(kiln_trace_stop());
  validate_schema(trace_file);
  json_t *root = load_trace(trace_file);
  json_t *evs = json_object_get(root, "traceEvents");
  assert_int_equal(count_ph_name(evs, "B", "outer"), 1);
  assert_int_equal(count_ph_name(evs, "E", "outer"), 1);
  assert_int_equal(count_ph_name(evs, "B", "inner scope"), 1);
  assert_int_equal(count_ph_name(evs, "E", "inner scope"), 1);
  assert_int_equal(count_ph_name(evs, "i", "inside"), 1);
  int cut = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *name = ev_str(ev, "name");
    if (name && !strncmp(name, "a mark whose name", 17)) {
      cut = 1;
      assert_int_equal(strlen(name), 47);
      assert_string_equal(ev_str(ev, "cat"), "io");
      assert_string_equal(ev_str(ev, "cname"), "yellow");
    }
    if (name && !strcmp(name, "inside"))
      assert_string_equal(ev_str(ev, "cat"), "kernel");
  }
  assert_true(cut);
  json_decref(root);
  unlink(trace_file);
}

static void open_range_closed_at_flush_with_warning(void **state) {
  (void)state;
  tmp_trace("open");
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = trace_file;
  KT_OK(kiln_trace_start(&td));
  KT_OK(kiln_trace_range_begin("never closed", KILN_TRACE_SYNC));
  KT_OK(kiln_trace_flush());
  assert_true(kt_log_capture_has(&cap, "range 'never closed'"));
  assert_true(kt_log_capture_has(&cap, "still open"));
  json_t *root = load_trace(trace_file);
  json_t *evs = json_object_get(root, "traceEvents");
  assert_int_equal(count_ph_name(evs, "B", "never closed"), 1);
  assert_int_equal(count_ph_name(evs, "E", "never closed"), 1);
  json_decref(root);
  /* Closed for real later: the next flush has the real end and no warning. */
  KT_OK(kiln_trace_range_end());
  int before = kt_log_capture_warnings(&cap);
  KT_OK(kiln_trace_stop());
  assert_int_equal(kt_log_capture_warnings(&cap), before);
  kt_log_capture_stop(&cap);
  validate_schema(trace_file);
  unlink(trace_file);
}

/* ---- errors: the program carries on ---- */
static void unwritable_path_is_a_clear_error(void **state) {
  (void)state;
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = "/nonexistent-kiln-dir/trace.json";
  KT_EXPECT_MSG(kiln_trace_start(&td), KILN_ERROR_IO, "/nonexistent-kiln-dir/trace.json");
  KT_MSG_HAS("No such file or directory");
  assert_false(kiln_trace_enabled());
  KT_EXPECT_MSG(kiln_trace_flush(), KILN_ERROR_INVALID_STATE, "no trace is recording");
  KT_EXPECT(kiln_trace_write(NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_trace_desc small = {4, NULL, 0};
  KT_EXPECT_MSG(kiln_trace_start(&small), KILN_ERROR_INVALID_ARGUMENT, "struct_size is 4");
  /* Work goes on. */
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  kiln_buffer b = kt_buffer(ctx, 64);
  KT_OK(kiln_buffer_fill(b, 0, 64, &(uint32_t){7}, 4));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_context_destroy(ctx));
  /* A trace in memory cannot be written where nobody may write either. */
  KT_OK(kiln_trace_start(NULL));
  KT_EXPECT_MSG(kiln_trace_flush(), KILN_ERROR_INVALID_STATE, "has no path");
  KT_EXPECT_MSG(kiln_trace_write("/nonexistent-kiln-dir/t.json"), KILN_ERROR_IO,
                "/nonexistent-kiln-dir/t.json");
  KT_OK(kiln_trace_stop());
  KT_OK(kiln_trace_stop()); /* no trace: a no-op */
}

static void env_unwritable_path_logs_and_carries_on(void **state) {
  (void)state;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_ERROR);
  setenv("KILN_TRACE", "/nonexistent-kiln-dir/env.json", 1); /* read at the first context */
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  assert_true(kt_log_capture_has(&cap, "KILN_TRACE"));
  assert_true(kt_log_capture_has(&cap, "/nonexistent-kiln-dir/env.json"));
  assert_true(kt_log_capture_has(&cap, "tracing stays off"));
  assert_false(kiln_trace_enabled());
  kiln_buffer b = kt_buffer(ctx, 64);
  KT_OK(kiln_buffer_fill(b, 0, 64, &(uint32_t){7}, 4));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_context_destroy(ctx));
  kt_log_capture_stop(&cap);
}

static void env_relative_path_and_bad_ring_are_refused(void **state) {
  (void)state;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_ERROR);
  setenv("KILN_TRACE", "/tmp/kiln-never-written.json", 1);
  setenv("KILN_TRACE_RING", "12x", 1);
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  assert_true(kt_log_capture_has(&cap, "KILN_TRACE_RING='12x'"));
  assert_false(kiln_trace_enabled());
  KT_OK(kiln_context_destroy(ctx));
  kt_log_capture_stop(&cap);
}

static void env_trace_records_and_writes_at_destroy(void **state) {
  (void)state;
  tmp_trace("env");
  unlink(trace_file);
  setenv("KILN_TRACE", trace_file, 1);
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  assert_true(kiln_trace_enabled());
  kiln_buffer b = kt_buffer(ctx, 256);
  KT_OK(kiln_buffer_fill(b, 0, 256, &(uint32_t){1}, 4)); /* a blocking call */
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_context_destroy(ctx));
  json_t *root = load_trace(trace_file);
  json_t *evs = json_object_get(root, "traceEvents");
  assert_int_equal(count_ph_name(evs, "X", "fill"), 1);
  assert_int_equal(count_ph_name(evs, "X", "kiln_buffer_fill"), 1); /* its API span */
  json_decref(root);
  KT_OK(kiln_trace_stop());
  unlink(trace_file);
}

/* ---- ring mode ---- */
static void ring_keeps_the_last_n_events(void **state) {
  (void)state;
  tmp_trace("ring");
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = trace_file;
  td.ring_events = 10;
  KT_OK(kiln_trace_start(&td));
  for (int i = 0; i < 100; i++) {
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    KT_OK(kiln_trace_mark(name, KILN_TRACE_USER));
  }
  KT_OK(kiln_trace_stop());
  validate_schema(trace_file);
  json_t *root = load_trace(trace_file);
  json_t *evs = json_object_get(root, "traceEvents");
  int marks = 0;
  for (int i = 0; i < 100; i++) {
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    int c = count_ph_name(evs, "i", name);
    assert_int_equal(c, i >= 90 ? 1 : 0);
    marks += c;
  }
  assert_int_equal(marks, 10);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(root, "otherData"), "mode")), "ring");
  json_decref(root);
  unlink(trace_file);
}

/* A ring records each op from its end event alone: span, kind, kernel, bytes, status
 * (no start event, no API spans: docs/observability.md, "What it costs"). */
static void ring_op_spans_keep_kind_kernel_and_bytes(void **state) {
  (void)state;
  tmp_trace("ringops");
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = trace_file;
  td.ring_events = 4096; /* keeps the whole workload */
  KT_OK(kiln_trace_start(&td));
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  kiln_stream s[3];
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_stream_create(ctx, NULL, &s[i]));
  unsigned long long uid[3] = {0, 0, 0};
  unsigned ops = run_workload(ctx, s, uid);
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_stream_destroy(s[i]));
  KT_OK(kiln_context_destroy(ctx));
  KT_OK(kiln_trace_stop());
  validate_schema(trace_file);
  json_t *root = load_trace(trace_file);
  json_t *evs = json_object_get(root, "traceEvents");
  unsigned user_ops = 0, launches = 0, transfers = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *ph = ev_str(ev, "ph"), *cat = ev_str(ev, "cat");
    if (strcmp(ph, "X") || !cat)
      continue;
    assert_string_not_equal(cat, "api");
    if (strcmp(cat, "op"))
      continue;
    long long stream = json_integer_value(arg(ev, "stream"));
    user_ops += stream >= 1 && stream <= 3;
    const char *kind = json_string_value(arg(ev, "kind"));
    assert_string_equal(json_string_value(arg(ev, "timing")), "run");
    assert_string_equal(json_string_value(arg(ev, "status")), "KILN_SUCCESS");
    if (!strcmp(kind, "launch")) {
      const char *kn = json_string_value(arg(ev, "kernel"));
      assert_non_null(kn);
      assert_string_equal(ev_str(ev, "name"), kn);
      assert_null(arg(ev, "range")); /* the one thing a ring's op span leaves out */
      launches++;
    } else if (!strcmp(kind, "write") || !strcmp(kind, "read") || !strcmp(kind, "fill")) {
      assert_int_equal(json_integer_value(arg(ev, "bytes")), N * sizeof(float));
      transfers++;
    }
  }
  assert_int_equal(user_ops, ops);
  assert_int_equal(launches, 3 * ROUNDS);
  assert_int_equal(transfers, 3 * ROUNDS);
  json_decref(root);
  unlink(trace_file);
}

static void pause_and_resume(void **state) {
  (void)state;
  KT_OK(kiln_trace_start(NULL));
  KT_OK(kiln_trace_mark("seen 1", KILN_TRACE_USER));
  kiln_trace_pause();
  assert_false(kiln_trace_enabled());
  KT_OK(kiln_trace_mark("hidden", KILN_TRACE_USER));
  kiln_trace_resume();
  assert_true(kiln_trace_enabled());
  KT_OK(kiln_trace_mark("seen 2", KILN_TRACE_USER));
  tmp_trace("pause");
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  json_t *root = load_trace(trace_file);
  json_t *evs = json_object_get(root, "traceEvents");
  assert_int_equal(count_ph_name(evs, "i", "seen 1"), 1);
  assert_int_equal(count_ph_name(evs, "i", "seen 2"), 1);
  assert_int_equal(count_ph_name(evs, "i", "hidden"), 0);
  json_decref(root);
  unlink(trace_file);
  /* A new trace starts empty. */
  KT_OK(kiln_trace_start(NULL));
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  root = load_trace(trace_file);
  assert_int_equal(count_ph_name(json_object_get(root, "traceEvents"), "i", "seen 1"), 0);
  json_decref(root);
  unlink(trace_file);
}

/* ---- clocks ---- */
static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A mark stamped between two CLOCK_MONOTONIC reads lands between them once converted
 * (t0_ns + ts), whichever clock recorded it; `want` is the recorder otherData names. */
static void mark_lands_between_clock_reads(const char *want) {
  tmp_trace("clock");
  KT_OK(kiln_trace_start(NULL));
  uint64_t before[3], after[3];
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "tick %d", i);
    before[i] = mono_ns();
    KT_OK(kiln_trace_mark(name, KILN_TRACE_USER));
    after[i] = mono_ns();
    kt_sleep_us(2000);
  }
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  json_t *root = load_trace(trace_file);
  json_t *other = json_object_get(root, "otherData");
  assert_string_equal(json_string_value(json_object_get(other, "recorded_with")), want);
  uint64_t t0 = (uint64_t)json_integer_value(json_object_get(other, "t0_ns"));
  json_t *evs = json_object_get(root, "traceEvents");
  int seen = 0;
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *name = ev_str(ev, "name");
    int k;
    if (!name || sscanf(name, "tick %d", &k) != 1)
      continue;
    double at = (double)t0 + json_number_value(json_object_get(ev, "ts")) * 1000.0;
    /* 1 us of slack: the file's microseconds have three decimals, and the conversion's
     * own error (docs/observability.md, "Clocks") is a fraction of that. */
    assert_true(at >= (double)before[k] - 1000.0);
    assert_true(at <= (double)after[k] + 1000.0);
    seen++;
  }
  assert_int_equal(seen, 3);
  json_decref(root);
  unlink(trace_file);
}

static void clock_tsc_where_the_kernel_uses_it(void **state) {
  (void)state;
  char cs[32] = "";
  FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (f) {
    if (!fgets(cs, sizeof cs, f))
      cs[0] = '\0';
    fclose(f);
  }
#if defined(__x86_64__)
  mark_lands_between_clock_reads(strcmp(cs, "tsc\n") == 0 ? "tsc" : "clock_gettime");
#else
  mark_lands_between_clock_reads("clock_gettime");
#endif
}

static void clock_gettime_with_kiln_trace_no_tsc(void **state) {
  (void)state;
  setenv("KILN_TRACE_NO_TSC", "1", 1); /* read at the process's first trace start */
  mark_lands_between_clock_reads("clock_gettime");
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(multi_stream_trace_is_complete_and_valid),
      cmocka_unit_test(ranges_marks_and_scopes),
      cmocka_unit_test(open_range_closed_at_flush_with_warning),
      cmocka_unit_test(unwritable_path_is_a_clear_error),
      cmocka_unit_test(env_unwritable_path_logs_and_carries_on),
      cmocka_unit_test(env_relative_path_and_bad_ring_are_refused),
      cmocka_unit_test(env_trace_records_and_writes_at_destroy),
      cmocka_unit_test(ring_keeps_the_last_n_events),
      cmocka_unit_test(ring_op_spans_keep_kind_kernel_and_bytes),
      cmocka_unit_test(pause_and_resume),
      cmocka_unit_test(clock_tsc_where_the_kernel_uses_it),
      cmocka_unit_test(clock_gettime_with_kiln_trace_no_tsc),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

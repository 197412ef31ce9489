/* SPDX-License-Identifier: MIT */
/* Shared by the device-time trace tests (tests/unit/test_trace_opencl.c,
 * test_trace_cuda_fake.c): run a small workload on one device while a trace records
 * in memory, write it, and check its spans — every op once with an observed span,
 * the ops a device timed with a device span (cat device) between their submission and
 * their observed end (up to `slack_us` plus the anchor's own error, anchor_error_us), device spans
 * of one stream never overlapping, the file valid against schemas/trace.json. Needs jansson, cmocka
 * and KILN_SOURCE_DIR (tests/trace.cmake). */
#ifndef KILN_TEST_TRACE_DEVICE_SPANS_H
#define KILN_TEST_TRACE_DEVICE_SPANS_H

#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln_test.h"

extern char **environ;

#define DS_MAX_OPS 256

typedef struct ds_span {
  long long tid, seq;
  double ts, dur;
  double queued; /* op spans: when it was submitted (args.queued_us) */
  double error;  /* device spans: args.anchor_error_us */
} ds_span;

typedef struct ds_result {
  int ops, device, run_timed;
  ds_span obs[DS_MAX_OPS], dev[DS_MAX_OPS];
  int ndev;
} ds_result;

static void ds_validate(const char *path) {
  char *argv[] = {"/usr/bin/python3", KILN_SOURCE_DIR "/scripts/validate-json.py",
                  KILN_SOURCE_DIR "/schemas/trace.json", (char *)path, NULL};
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* `rounds` of write, `launches` kernel launches (kernel may be NULL: copies instead),
 * read, on stream s; a fill on stream s2 after each read (a cross-stream hazard).
 * `ready` (may be NULL) runs once the streams and buffers exist and a first write is
 * done (a test arms its fault there); the trace should start before. */
static unsigned ds_workload(kiln_context ctx, kiln_kernel k, unsigned rounds, unsigned launches,
                            void (*ready)(void)) {
  enum { N = 1024 };
  static uint32_t host[N];
  kiln_stream s, s2;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  KT_OK(kiln_stream_create(ctx, NULL, &s2));
  kiln_buffer b = kt_buffer(ctx, sizeof host), c = kt_buffer(ctx, sizeof host);
  unsigned ops = 0;
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_buffer_write(c, 0, sizeof host, host));
  ops++;
  if (ready)
    ready();
  for (unsigned round = 0; round < rounds; round++) {
    KT_OK(kiln_buffer_write(b, 0, sizeof host, host));
    ops++;
    for (unsigned i = 0; i < launches; i++) {
      kiln_pending t;
      if (k) {
        kiln_arg a[3];
        kt_add_args(a, b, &off, &add);
        KT_OK(kiln_launch_async(s, k, &r, a, 3, &t));
      } else {
        KT_OK(kiln_buffer_copy_async(s, c, 0, b, 0, sizeof host, &t));
      }
      KT_OK(kiln_pending_release(&t));
      ops++;
    }
    kiln_pending t1, t2;
    KT_OK(kiln_buffer_read_async(s, b, 0, sizeof host, host, &t1));
    KT_OK(kiln_buffer_fill_async(s2, b, 0, sizeof host, &(uint32_t){0}, 4, &t2));
    KT_OK(kiln_wait(&t1));
    KT_OK(kiln_wait(&t2));
    ops += 2;
  }
  KT_OK(kiln_stream_synchronize(s));
  kiln_buffer_destroy(b);
  kiln_buffer_destroy(c);
  kiln_stream_destroy(s);
  kiln_stream_destroy(s2);
  return ops;
}

static ds_span *ds_find(ds_span *a, int n, long long tid, long long seq) {
  for (int i = 0; i < n; i++)
    if (a[i].tid == tid && a[i].seq == seq)
      return &a[i];
  return NULL;
}

/* Read the trace back and check it (see the top); fills *out. */
static void ds_check(const char *path, double slack_us, ds_result *out) {
  memset(out, 0, sizeof *out);
  ds_validate(path);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (!root)
    fail_msg("trace %s does not parse: %s", path, err.text);
  json_t *evs = json_object_get(root, "traceEvents");
  for (size_t i = 0; i < json_array_size(evs); i++) {
    json_t *ev = json_array_get(evs, i);
    const char *ph = json_string_value(json_object_get(ev, "ph"));
    const char *cat = json_string_value(json_object_get(ev, "cat"));
    if (!ph || strcmp(ph, "X") || !cat)
      continue;
    json_t *args = json_object_get(ev, "args");
    const char *timing = json_string_value(json_object_get(args, "timing"));
    ds_span sp = {0,
                  json_integer_value(json_object_get(args, "seq")),
                  json_number_value(json_object_get(ev, "ts")),
                  json_number_value(json_object_get(ev, "dur")),
                  json_number_value(json_object_get(args, "queued_us")),
                  json_number_value(json_object_get(args, "anchor_error_us"))};
    if (!strcmp(cat, "op")) {
      sp.tid = json_integer_value(json_object_get(ev, "tid"));
      assert_true(out->ops < DS_MAX_OPS);
      assert_null(ds_find(out->obs, out->ops, sp.tid, sp.seq)); /* each op once */
      out->obs[out->ops++] = sp;
      if (!strcmp(timing, "run"))
        out->run_timed++;
    } else if (!strcmp(cat, "device")) {
      assert_string_equal(timing, "device");
      sp.tid = json_integer_value(json_object_get(args, "op_tid"));
      assert_true(out->ndev < DS_MAX_OPS);
      out->dev[out->ndev++] = sp;
    }
  }
  for (int i = 0; i < out->ndev; i++) {
    ds_span *d = &out->dev[i], *o = ds_find(out->obs, out->ops, d->tid, d->seq);
    if (!o)
      fail_msg("device span of op #%lld has no op span", d->seq);
    assert_true(d->dur >= 0);
    /* The device ran it after its submission and before kiln saw it complete (the
     * observed span's end). The observed span's start is no bound: it is the stream's
     * previous op's observed end when later than the submission, and kiln may notice a
     * completion late. */
    double slack = slack_us + d->error;
    if (d->ts < o->queued - slack || d->ts + d->dur > o->ts + o->dur + slack)
      fail_msg("op #%lld: device span %.3f+%.3f us is outside its submission (%.3f us) to "
               "observed end (%.3f us), slack %.1f us of which the anchor's error %.3f us",
               d->seq, d->ts, d->dur, o->queued, o->ts + o->dur, slack, d->error);
    for (int j = 0; j < out->ndev; j++) { /* one stream's device spans do not overlap */
      ds_span *e = &out->dev[j];
      if (e->tid == d->tid && e->seq == d->seq + 1 && e->ts < d->ts + d->dur - 0.002)
        fail_msg("device spans of ops #%lld and #%lld overlap: %.3f+%.3f, %.3f", d->seq, e->seq,
                 d->ts, d->dur, e->ts);
    }
  }
  out->device = out->ndev;
  json_decref(root);
}

#endif

/* SPDX-License-Identifier: MIT */
/* Internals shared by the files of src/bench: the host description, compare's document
 * check and the writers' helpers; the JSON writer has its own header (json.h), which
 * the CLI uses too. Not installed; only src/bench includes this one. */
#ifndef KILN_BENCH_INTERNAL_H
#define KILN_BENCH_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "kiln/bench.h"
#include "json.h"

/* compare's check of one parsed document (validate.c): 0 when `root` has the structure
 * schemas/bench.json requires and statistics that are possible (positive finite medians,
 * ordered intervals, ...); else -1 with the first problem in error[0..error_size), naming
 * the result, the field, its value and what is expected, without the file name:
 * `results[0] (cpu/op_roundtrip): kiln.median is -5: expected ...`. Reads only. */
struct json_t;
int kiln__bench_validate(struct json_t *root, char *error, size_t error_size);

typedef struct kiln__bench_host {
  char hostname[256];
  char cpu[256];
  unsigned cores;
  char os[256];
} kiln__bench_host;

void kiln__bench_host_get(kiln__bench_host *host);

/* Most values of one axis (after --axis). */
#define KILN__BENCH_MAX_AXIS_VALUES 64

/* Run `run` of the case's axis combinations; index/total place it in its suite for
 * the progress ticks. */
kiln_status kiln__bench_run(const kiln_bench_config *config, const kiln_bench_suite *suite,
                            const kiln_bench_case *c, size_t run, size_t index, size_t total,
                            kiln_bench_result *r);

/* The text of the timing note of the JSON document (also in the other formats). */
extern const char kiln__bench_timing_note[];

/* Writers' helpers (report.c): a number formatted with %.4g, "-" when not finite. */
void kiln__bench_fmt(char *buf, size_t size, double v);
/* A fit in words: "time ~ n^1.02 (r2 0.999)", with the breakpoint when there is one. */
void kiln__bench_fit_text(const kiln_bench_fit *f, char *buf, size_t size);
/* The measured results of a report, in order (failed ones left out). */
size_t kiln__bench_measured(const kiln_bench_report *report, const kiln_bench_result **out,
                            size_t max);

#endif

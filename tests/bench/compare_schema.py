#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""usage: compare_schema.py KILN SCHEMA VALID.json DIR

`kiln bench compare`'s hand-written checks (src/bench/validate.c) against
python3-jsonschema on the same files: from one valid document, write variants to DIR
and run both on each. Valid variants: both accept. Schema mutations (a required field
missing, a wrong type, a bad enum or pattern, an extra field, a broken conditional
rule): both reject. Semantic mutations (impossible statistics: a zero or negative
median, inverted intervals, ...): the schema accepts them, which shows the rule is
beyond it, and compare alone rejects. A rejection by compare is exit 2 with one line
on stderr naming the file and the field, and nothing on stdout. Exit 0 when all
agree, 1 otherwise, 77 without python3-jsonschema. Run with Debian's /usr/bin/python3.
"""
import copy
import json
import os
import subprocess
import sys


def main(argv):
    if len(argv) != 5:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    kiln, schema_path, valid_path, out_dir = argv[1:]
    try:
        from jsonschema import Draft202012Validator
    except ImportError as e:
        print(f"compare_schema: python3-jsonschema is missing ({e}); skipping", file=sys.stderr)
        return 77
    with open(schema_path, encoding="utf-8") as f:
        validator = Draft202012Validator(json.load(f))
    with open(valid_path, encoding="utf-8") as f:
        valid = json.load(f)
    os.makedirs(out_dir, exist_ok=True)

    # Each case: (kind, name, field named in compare's message or None, mutation).
    # The mutation edits a deep copy of the valid document in place, or returns the
    # text to write (for what json.dump cannot produce).
    cases = []

    def case(kind, name, field, fn):
        cases.append((kind, name, field, fn))

    def setter(path, value):
        def fn(d):
            *parents, last = path
            for p in parents:
                d = d[p]
            d[last] = value
        return fn

    def deleter(path):
        def fn(d):
            *parents, last = path
            for p in parents:
                d = d[p]
            del d[last]
        return fn

    r0 = ["results", 0]        # us, lower, with a baseline and a ratio
    r1 = ["results", 1]        # GB/s, higher, work_per_op
    r2 = ["results", 2]        # ns, no baseline
    s0 = ["scaling", 0]

    # -- valid variants: both accept
    case("valid", "as_is", None, lambda d: None)
    case("valid", "no_scaling", None, deleter(["scaling"]))
    case("valid", "integral_reals", None,
         lambda d: (setter(r0 + ["batch_size"], 1800.0)(d), setter(r0 + ["kiln", "samples"], 5.0)(d),
                    setter(["host", "cores"], 2.0)(d), setter(r1 + ["device", "index"], 0.0)(d)))
    case("valid", "params_kinds", None,
         setter(r2 + ["params"], {"mode": "x", "flag": True, "ops": 2.5}))
    case("valid", "no_work_per_op", None, deleter(r1 + ["work_per_op"]))
    case("valid", "version_suffix", None, setter(["kiln_version"], "1.2.3-dev"))
    case("valid", "fit_null", None, setter(s0 + ["kiln_fit"], None))
    case("valid", "baseline_ns_nulls", None, setter(s0 + ["baseline_ns"], [1.0, None, 3.0]))
    case("valid", "one_result", None, lambda d: d["results"].__delitem__(slice(1, None)))

    # -- schema mutations: both reject
    for key in ("kiln_version", "host", "timing_note", "results"):
        case("schema", f"top_missing_{key}", key, deleter([key]))
    case("schema", "top_extra_field", "extra", setter(["extra"], 1))
    case("schema", "version_number", "kiln_version", setter(["kiln_version"], 1))
    case("schema", "version_pattern", "kiln_version", setter(["kiln_version"], "v1"))
    for key in ("hostname", "cpu", "cores", "os"):
        case("schema", f"host_missing_{key}", f"host.{key}", deleter(["host", key]))
    case("schema", "host_cores_zero", "host.cores", setter(["host", "cores"], 0))
    case("schema", "host_cores_string", "host.cores", setter(["host", "cores"], "2"))
    case("schema", "host_hostname_empty", "host.hostname", setter(["host", "hostname"], ""))
    case("schema", "host_extra", "host.arch", setter(["host", "arch"], "x86"))
    case("schema", "timing_note_empty", "timing_note", setter(["timing_note"], ""))
    case("schema", "results_object", "results", setter(["results"], {"a": 1}))
    case("schema", "scaling_object", "scaling", setter(["scaling"], {}))
    case("schema", "result_not_object", "results[1]", setter(r1, 7))
    for key in ("suite", "name", "device", "params", "unit", "better", "timing", "batch_size",
                "kiln", "baseline", "ratio", "ratio_ci95"):
        case("schema", f"result_missing_{key}", key, deleter(r0 + [key]))
    case("schema", "result_extra", "comment", setter(r0 + ["comment"], "hi"))
    case("schema", "suite_number", "suite", setter(r0 + ["suite"], 5))
    case("schema", "name_pattern", "name", setter(r0 + ["name"], "bad name!"))
    case("schema", "device_backend_enum", "device.backend", setter(r0 + ["device", "backend"], "gpu"))
    case("schema", "device_index_negative", "device.index", setter(r0 + ["device", "index"], -1))
    case("schema", "device_index_fraction", "device.index", setter(r0 + ["device", "index"], 1.5))
    case("schema", "device_name_number", "device.name", setter(r0 + ["device", "name"], 3))
    case("schema", "device_extra", "device.vendor", setter(r0 + ["device", "vendor"], "v"))
    case("schema", "params_array", "params", setter(r0 + ["params"], [1]))
    case("schema", "params_value_null", "params.ops", setter(r0 + ["params", "ops"], None))
    case("schema", "params_value_object", "params.ops", setter(r0 + ["params", "ops"], {}))
    case("schema", "unit_enum", "unit", setter(r0 + ["unit"], "furlongs"))
    case("schema", "better_enum", "better", setter(r0 + ["better"], "faster"))
    case("schema", "better_null", "better", setter(r0 + ["better"], None))
    case("schema", "timing_enum", "timing", setter(r0 + ["timing"], "wall"))
    case("schema", "batch_size_negative", "batch_size", setter(r0 + ["batch_size"], -1))
    case("schema", "batch_size_zero", "batch_size", setter(r0 + ["batch_size"], 0))
    case("schema", "batch_size_fraction", "batch_size", setter(r0 + ["batch_size"], 2.5))
    case("schema", "batch_size_string", "batch_size", setter(r0 + ["batch_size"], "100"))
    case("schema", "work_per_op_zero", "work_per_op", setter(r1 + ["work_per_op"], 0))
    case("schema", "work_per_op_negative", "work_per_op", setter(r1 + ["work_per_op"], -5))
    for key in ("median", "mean", "min", "max", "p5", "p50", "p95", "p99", "stddev", "ci95",
                "samples", "outliers"):
        case("schema", f"kiln_missing_{key}", f"kiln.{key}", deleter(r0 + ["kiln", key]))
    case("schema", "kiln_median_string", "kiln.median", setter(r0 + ["kiln", "median"], "10"))
    case("schema", "kiln_median_bool", "kiln.median", setter(r0 + ["kiln", "median"], True))
    case("schema", "kiln_extra", "kiln.name", setter(r0 + ["kiln", "name"], "kiln"))
    case("schema", "kiln_ci95_short", "kiln.ci95", setter(r0 + ["kiln", "ci95"], [1]))
    case("schema", "kiln_ci95_long", "kiln.ci95", setter(r0 + ["kiln", "ci95"], [0.7, 0.8, 0.9]))
    case("schema", "kiln_ci95_string", "kiln.ci95", setter(r0 + ["kiln", "ci95"], [0.7, "1"]))
    case("schema", "kiln_samples_zero", "kiln.samples", setter(r0 + ["kiln", "samples"], 0))
    case("schema", "kiln_samples_fraction", "kiln.samples", setter(r0 + ["kiln", "samples"], 1.5))
    case("schema", "kiln_outliers_negative", "kiln.outliers", setter(r0 + ["kiln", "outliers"], -1))
    case("schema", "kiln_stddev_negative", "kiln.stddev", setter(r0 + ["kiln", "stddev"], -1))
    case("schema", "baseline_missing_name", "baseline.name", deleter(r0 + ["baseline", "name"]))
    case("schema", "baseline_name_pattern", "baseline.name",
         setter(r0 + ["baseline", "name"], "raw opencl"))
    case("schema", "baseline_extra", "baseline.note", setter(r0 + ["baseline", "note"], "x"))
    case("schema", "baseline_missing_median", "baseline.median",
         deleter(r0 + ["baseline", "median"]))
    case("schema", "baseline_string", "baseline", setter(r0 + ["baseline"], "memcpy"))
    case("schema", "ratio_string", "ratio", setter(r0 + ["ratio"], "0.9"))
    case("schema", "ratio_negative", "ratio", setter(r0 + ["ratio"], -1))
    case("schema", "ratio_ci95_short", "ratio_ci95", setter(r0 + ["ratio_ci95"], [1]))
    case("schema", "ratio_without_baseline", "ratio", setter(r2 + ["ratio"], 1.0))
    case("schema", "ratio_ci95_without_baseline", "ratio_ci95",
         setter(r2 + ["ratio_ci95"], [0.5, 2.0]))
    case("schema", "ratio_null_with_interval", "ratio_ci95", setter(r0 + ["ratio"], None))
    case("schema", "ratio_without_interval", "ratio_ci95", setter(r0 + ["ratio_ci95"], None))
    case("schema", "time_unit_higher", "better", setter(r0 + ["better"], "higher"))
    case("schema", "rate_unit_lower", "better", setter(r1 + ["better"], "lower"))
    case("schema", "series_missing_n", "n", deleter(s0 + ["n"]))
    case("schema", "series_one_point", "n", setter(s0 + ["n"], [4096]))
    case("schema", "series_kiln_ns_string", "kiln_ns[1]", setter(s0 + ["kiln_ns", 1], "1"))
    case("schema", "series_axis_pattern", "axis", setter(s0 + ["axis"], "by tes"))
    case("schema", "series_device_missing_name", "device.name", deleter(s0 + ["device", "name"]))
    case("schema", "series_fit_number", "kiln_fit", setter(s0 + ["kiln_fit"], 1))
    case("schema", "series_fit_missing_r2", "kiln_fit.r2", deleter(s0 + ["kiln_fit", "r2"]))
    case("schema", "series_breakpoint_extra", "kiln_fit.breakpoint.x",
         setter(s0 + ["kiln_fit", "breakpoint", "x"], 1))
    case("schema", "series_baseline_ns_string", "baseline_ns", setter(s0 + ["baseline_ns"], "x"))
    case("schema", "series_extra", "note", setter(s0 + ["note"], "x"))

    # -- semantic mutations: the schema accepts, compare rejects
    def median_and_p50(path, value):
        def fn(d):
            setter(path + ["median"], value)(d)
            setter(path + ["p50"], value)(d)
        return fn
    case("semantic", "median_negative", "kiln.median", median_and_p50(r0 + ["kiln"], -70350.7))
    case("semantic", "median_zero", "kiln.median", median_and_p50(r0 + ["kiln"], 0))
    case("semantic", "median_minus_1e308", "kiln.median", median_and_p50(r0 + ["kiln"], -1e308))
    case("semantic", "median_1e308", "kiln.ci95", median_and_p50(r0 + ["kiln"], 1e308))
    case("semantic", "rate_median_zero", "kiln.median", median_and_p50(r1 + ["kiln"], 0))
    case("semantic", "rate_median_negative", "kiln.median", median_and_p50(r1 + ["kiln"], -3.5))
    case("semantic", "baseline_median_zero", "baseline.median",
         median_and_p50(r0 + ["baseline"], 0))
    case("semantic", "ci95_inverted", "kiln.ci95", setter(r0 + ["kiln", "ci95"], [5000, 1]))
    case("semantic", "ci95_above_median", "kiln.ci95", setter(r0 + ["kiln", "ci95"], [0.9, 1.0]))
    case("semantic", "baseline_ci95_inverted", "baseline.ci95",
         setter(r0 + ["baseline", "ci95"], [72.3, 3.3]))
    case("semantic", "min_above_median", "kiln.min", setter(r0 + ["kiln", "min"], 0.9))
    case("semantic", "min_negative", "kiln.min", setter(r0 + ["kiln", "min"], -1))
    case("semantic", "max_below_median", "kiln.max", setter(r0 + ["kiln", "max"], 0.5))
    case("semantic", "p95_above_p99", "kiln.p99", setter(r0 + ["kiln", "p95"], 6.68))
    case("semantic", "mean_above_max", "kiln.mean", setter(r0 + ["kiln", "mean"], 100))
    case("semantic", "outliers_above_samples", "kiln.outliers",
         setter(r0 + ["kiln", "outliers"], 6))
    case("semantic", "ratio_zero", "ratio", setter(r0 + ["ratio"], 0))
    case("semantic", "ratio_ci95_inverted", "ratio_ci95", setter(r0 + ["ratio_ci95"], [90.4, 0.5]))
    case("semantic", "ratio_ci95_negative", "ratio_ci95", setter(r0 + ["ratio_ci95"], [-1, 2]))
    case("semantic", "result_twice", "appears twice",
         lambda d: d["results"].append(copy.deepcopy(d["results"][0])))

    def duplicate_key(d):  # json.loads keeps the last "median"; compare refuses the pair
        text = json.dumps(d, indent=1)
        return text.replace('"kiln": {', '"kiln": {"median": -5, ', 1)
    case("semantic", "duplicate_key", "duplicate object key", duplicate_key)

    failures = 0
    counts = {"valid": 0, "schema": 0, "semantic": 0}
    for kind, name, field, fn in cases:
        doc = copy.deepcopy(valid)
        text = fn(doc)
        if not isinstance(text, str):
            text = json.dumps(doc, indent=1)
        path = os.path.join(out_dir, f"{kind}_{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        errors = [e.message for e in validator.iter_errors(json.loads(text))]
        schema_ok = not errors
        run = subprocess.run([kiln, "bench", "compare", path, path], capture_output=True,
                             text=True, timeout=60)
        lines = run.stderr.strip().splitlines()
        c_ok = run.returncode == 0
        problem = None
        if run.returncode not in (0, 2):
            problem = f"compare exited {run.returncode}"
        elif schema_ok != (kind != "schema"):
            problem = ("jsonschema accepts it" if schema_ok else
                       f"jsonschema rejects it ({errors[0]})")
        elif c_ok != (kind == "valid"):
            problem = "compare accepts it" if c_ok else "compare rejects it"
        elif c_ok and run.stderr:
            problem = "compare wrote to stderr on a valid document"
        elif not c_ok:
            msg = lines[0] if lines else ""
            if run.stdout or len(lines) != 1:
                problem = "compare printed a verdict or more than one line"
            elif not msg.startswith(f"kiln bench compare: {path}: "):
                problem = "compare's message does not start with the file"
            elif field not in msg:
                problem = f"compare's message does not name '{field}'"
        verdict = "ok" if problem is None else "FAIL"
        detail = lines[0] if lines and not c_ok else "accepted"
        print(f"{verdict}: {kind}/{name}: jsonschema {'accepts' if schema_ok else 'rejects'}; "
              f"compare: {detail}")
        if problem is not None:
            print(f"  {problem}")
            if run.stdout:
                print("  stdout: " + run.stdout.strip().replace("\n", "\n          "))
            failures += 1
        counts[kind] += 1
    print(f"{len(cases)} documents ({counts['valid']} valid, {counts['schema']} schema "
          f"mutations, {counts['semantic']} semantic): {failures} disagreement(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

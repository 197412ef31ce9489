#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fail when a test that must run on the build machine was skipped.

usage: check-skips.py JUNIT.xml:TESTS.json [...]

JUNIT.xml is ctest's --output-junit file of one build tree, TESTS.json that tree's
`ctest --show-only=json-v1` (JUnit output carries no labels). A test labelled cpu,
mock, opencl or cuda-nogpu exits 77 (skip) only when its backend is missing, and
every one of those backends is present here (PoCL for OpenCL, the CUDA stub or the
fake libcuda for cuda-nogpu): such a skip means a broken setup, not a missing GPU.
Tests labelled only `cuda` (a real GPU) may skip.
"""
import json
import sys
import xml.etree.ElementTree as ET

MUST_RUN = {"cpu", "mock", "opencl", "cuda-nogpu"}


def labels_by_test(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    out = {}
    for test in data.get("tests", []):
        labels = []
        for prop in test.get("properties", []):
            if prop.get("name") == "LABELS":
                value = prop.get("value")
                labels = value if isinstance(value, list) else [value]
        out[test["name"]] = set(labels)
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    bad = []
    total_skipped = 0
    for arg in argv[1:]:
        junit, _, tests_json = arg.partition(":")
        labels = labels_by_test(tests_json) if tests_json else {}
        root = ET.parse(junit).getroot()
        for case in root.iter("testcase"):
            if case.find("skipped") is None:
                continue
            total_skipped += 1
            name = case.get("name", "?")
            must = sorted(labels.get(name, set()) & MUST_RUN)
            if must:
                bad.append((junit, name, must))
            else:
                print(f"check-skips: skipped (allowed): {name}  [{junit}]")
    if bad:
        print("check-skips: tests that must run on this machine were skipped "
              "(exit 77: backend missing?):", file=sys.stderr)
        for junit, name, must in bad:
            print(f"  {name}  labels {' '.join(must)}  [{junit}]", file=sys.stderr)
        print("run one with `ctest -R '^NAME$' -V` in its build tree to see why",
              file=sys.stderr)
        return 1
    print(f"check-skips: {total_skipped} skipped, none of them labelled "
          f"{', '.join(sorted(MUST_RUN))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

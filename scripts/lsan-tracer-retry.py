#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# lsan-tracer-retry.py JUNIT — for scripts/check.sh: print the names of the failed tests
# (one per line) when EVERY failure in ctest's JUnit output is LeakSanitizer's own
# tracer crashing at process exit ("Tracer caught signal 11 ... LeakSanitizer has
# encountered a fatal error") after the test itself passed — a known intermittent
# fault of the sanitizer runtime (google/sanitizers#1353), not of kiln. Prints nothing
# (and check.sh retries nothing) when any failure has another cause.
import sys
import xml.etree.ElementTree as ET

SIGNATURE = "LeakSanitizer has encountered a fatal error"
root = ET.parse(sys.argv[1]).getroot()
names = []
for case in root.iter("testcase"):
    if case.get("status") != "fail" and case.find("failure") is None:
        continue
    out = "".join(e.text or "" for e in case.iter("system-out"))
    if SIGNATURE not in out or "Tracer caught signal" not in out:
        sys.exit(0)
    names.append(case.get("name"))
print("\n".join(names))

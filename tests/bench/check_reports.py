#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Check the report files of `kiln bench run` / kiln_bench_report_write_*.

usage: check_reports.py [--html F] [--csv F] [--md F] [--tex F] [--json F]
                        [--rows N] [--points N1,N2,...]

--html: parses as XML (xml.etree); no script, no external resource; one
        <svg class="scaling"> per scaling series whose kiln points (circle class
        "pt kiln") equal its data-points; with --points, the plots' point counts in
        order; with --json, the plots match the JSON's "scaling" array.
--csv:  every record has the header's column count; with --rows, the record count.
--md:   in every table, every row has the header's cell count, and a separator row.
--tex:  braces balance (escaped ones aside), \\begin/\\end nest and match, a document.
Exit 0 when all hold, 1 otherwise (each failure printed).
"""
import csv
import json
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def check_html(path, points, doc):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        fail(f"{path} does not parse as XML: {e}")
        return
    if root.tag != XHTML + "html":
        fail(f"{path}: root is {root.tag}, not XHTML's html")
    for el in root.iter():
        if el.tag in (XHTML + "script", SVG + "script"):
            fail(f"{path}: has a script")
        for attr in ("src", "href", "{http://www.w3.org/1999/xlink}href"):
            if el.get(attr):
                fail(f"{path}: external resource {el.get(attr)}")
    plots = [s for s in root.iter(SVG + "svg") if s.get("class") == "scaling"]
    counts = []
    for s in plots:
        kiln = [c for c in s.iter(SVG + "circle") if c.get("class") == "pt kiln"]
        counts.append(len(kiln))
        if str(len(kiln)) != s.get("data-points"):
            fail(f"{path}: plot {s.get('data-series')} has {len(kiln)} kiln points, "
                 f"data-points {s.get('data-points')}")
    if points is not None and counts != points:
        fail(f"{path}: scaling plots have {counts} points, expected {points}")
    if doc is not None:
        want = [len(s["n"]) for s in doc.get("scaling", [])]
        if counts != want:
            fail(f"{path}: scaling plots have {counts} points, the JSON's series {want}")
    cases = [s for s in root.iter(SVG + "svg") if s.get("class") == "cases"]
    if not cases:
        fail(f"{path}: no case chart")
    print(f"ok: {path}: XML, {len(cases)} case chart(s), {len(plots)} scaling plot(s) {counts}")


def check_csv(path, rows):
    with open(path, newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    if not records:
        fail(f"{path}: empty")
        return
    width = len(records[0])
    for i, r in enumerate(records[1:], 2):
        if len(r) != width:
            fail(f"{path}: record {i} has {len(r)} fields, the header {width}")
    if rows is not None and len(records) - 1 != rows:
        fail(f"{path}: {len(records) - 1} records, expected {rows}")
    print(f"ok: {path}: {len(records) - 1} records of {width} fields")


def md_cells(line):
    # cells between unescaped pipes
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def check_md(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    tables, i = 0, 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        block = []
        while i < len(lines) and lines[i].startswith("|"):
            block.append(lines[i])
            i += 1
        tables += 1
        width = md_cells(block[0])
        if len(block) < 2 or not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", block[1]):
            fail(f"{path}: table {tables} has no separator row")
        for row in block:
            if md_cells(row) != width:
                fail(f"{path}: table {tables}: row '{row}' has {md_cells(row)} cells, not {width}")
    if tables == 0:
        fail(f"{path}: no table")
    print(f"ok: {path}: {tables} table(s)")


def check_tex(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"(?m)(?<!\\)%.*$", "", text)          # comments
    text = text.replace("\\\\", "")                       # row ends
    depth = 0
    for m in re.finditer(r"\\[{}]|[{}]", text):
        if len(m.group()) == 2:
            continue
        depth += 1 if m.group() == "{" else -1
        if depth < 0:
            fail(f"{path}: a '}}' closes nothing")
            return
    if depth != 0:
        fail(f"{path}: {depth} unclosed brace(s)")
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", text):
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            fail(f"{path}: \\end{{{env}}} does not match")
            return
    if stack:
        fail(f"{path}: unclosed environments {stack}")
    if "\\documentclass" not in text or "\\end{document}" not in text:
        fail(f"{path}: not a standalone document")
    print(f"ok: {path}: braces and environments balance")


def main(argv):
    args = dict(zip(argv[1::2], argv[2::2]))
    if len(argv) % 2 == 0 or not args:
        print(__doc__, file=sys.stderr)
        return 2
    points = [int(p) for p in args["--points"].split(",")] if "--points" in args else None
    rows = int(args["--rows"]) if "--rows" in args else None
    doc = json.load(open(args["--json"], encoding="utf-8")) if "--json" in args else None
    if "--html" in args:
        check_html(args["--html"], points, doc)
    if "--csv" in args:
        if rows is None and doc is not None:
            rows = len(doc["results"])
        check_csv(args["--csv"], rows)
    if "--md" in args:
        check_md(args["--md"])
    if "--tex" in args:
        check_tex(args["--tex"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

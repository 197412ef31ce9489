#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""examples/seed_streams.c against seed 003's Rust originals (tests/examples/seed_003):
each example's code between `/* seed: <name> */` and `/* seed end */` may have at most
1.5x the non-blank lines of <name>.rs. Prints each count; exit 1 when one is over or a
marker is missing."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2]
c = (root / "examples" / "seed_streams.c").read_text()
sections = dict(re.findall(r"/\* seed: (\w+) \*/\n(.*?)/\* seed end \*/", c, re.S))
ok = True
for rs in sorted((root / "tests" / "examples" / "seed_003").glob("*.rs")):
    rust = sum(1 for line in rs.read_text().splitlines() if line.strip())
    if rs.stem not in sections:
        print(f"{rs.stem}: no `/* seed: {rs.stem} */ ... /* seed end */` section in seed_streams.c")
        ok = False
        continue
    lines = sum(1 for line in sections[rs.stem].splitlines() if line.strip())
    limit = rust * 3 // 2
    verdict = "ok" if lines <= limit else "OVER"
    print(f"{rs.stem}: C {lines} non-blank lines, Rust {rust}, limit {limit} (1.5x): {verdict}")
    ok = ok and lines <= limit
sys.exit(0 if ok else 1)

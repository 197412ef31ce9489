#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# gen_flow_chain.py N OUT: a kiln-format trace of N launches alternating between two
# streams, each depending on the one before it (a flow per op), for tests/trace.cmake's
# large-trace case of `kiln trace summary`. Op i starts at 10*i us and lasts 5 us, so
# every gap is 5 us, except that op N/2 starts 100 us late: the one gap of 105 us,
# s2 #N/4 -> s1 #N/4+1 for N divisible by 4. The events are written in a shuffled order
# (fixed seed): the summary must not depend on the file's order.
import json
import random
import sys

n, out = int(sys.argv[1]), sys.argv[2]
ev = [{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1000000 + s,
       "args": {"name": "s%d" % s}} for s in (1, 2)]


def where(i):  # (stream, seq, start) of op i
    return 1 + i % 2, i // 2 + 1, i * 10.0 + (100.0 if i >= n // 2 else 0.0)


for i in range(n):
    st, seq, ts = where(i)
    ev.append({"ph": "X", "cat": "op", "name": "k", "pid": 1, "tid": 1000000 + st, "ts": ts,
               "dur": 5.0, "args": {"kind": "launch", "stream": st, "seq": seq, "bytes": 0,
                                    "kernel": "k", "timing": "run",
                                    "status": "KILN_SUCCESS"}})
    if i:
        pst, pseq, pts = where(i - 1)
        ev.append({"ph": "s", "cat": "dep", "name": "hazard", "id": i, "pid": 1,
                   "tid": 1000000 + pst, "ts": pts + 5.0,
                   "args": {"from_seq": pseq, "to_seq": seq}})
        ev.append({"ph": "f", "cat": "dep", "name": "hazard", "id": i, "bp": "e",
                   "pid": 1, "tid": 1000000 + st, "ts": ts})
random.Random(1).shuffle(ev)
with open(out, "w") as f:
    json.dump({"traceEvents": ev}, f)

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Differential testing of the CPU backend's barrier paths (docs/kernels.md, "Barriers
on PoCL"): generates kiln-dialect kernels with barriers in uniform control flow and runs
each with loop fission, on fibers (KILN_CPU_FISSION=0) and, with --opencl, on the OpenCL
device; loop fission and fibers must agree byte for byte (exit 1 when they do not), and
OpenCL's differences are reported (PoCL 3.1 gets some of these kernels wrong).

  difftest.py --drv build/bin/difftest_drv [--seeds 0:100] [--opencl] [--keep DIR]

The kernels are race-free by construction: between two barriers a local array is either
written only at the work-item's own slot (and read there) or only read; barriers sit
only in control flow every work-item of a group takes alike (parameters, group ids,
uniform counters), and a per-work-item `return` only after the last barrier. Private
scalars and arrays live across barriers, helpers read the ids, loops have per-work-item
trip counts between barriers. A kernel is one seed: the same seed gives the same text.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

LOCAL_SIZES = [1, 3, 16, 64, 256]
GROUPS = 4


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.lines = []
        self.depth = 1
        self.names = 0

    def emit(self, text):
        self.lines.append("  " * self.depth + text)

    def fresh(self, prefix):
        self.names += 1
        return "%s%d" % (prefix, self.names)

    def expr(self):
        r = self.r
        a = r.choice(["a", "b", "c", "pa[%d]" % r.randrange(3), "(uint)lid", "u", "g",
                      "%du" % r.randrange(100)])
        b = r.choice(["a", "b", "c", "(uint)gid", "hlp(b)", "%du" % r.randrange(1, 9)])
        return "(%s %s %s)" % (a, r.choice(["+", "*", "^", "-", "|"]), b)

    def target(self):
        return self.r.choice(["a", "b", "c", "pa[%d]" % self.r.randrange(3)])

    # state of each local array since the last barrier: None (untouched), "w" (own slot
    # written), "r" (other slots read)
    def private(self, st):
        r, t = self.r, self.target()
        k = r.randrange(8)
        if k < 4:
            self.emit("%s = %s;" % (t, self.expr()))
        elif k == 4:
            self.emit("{ uint t = %s; %s ^= t >> 1; }" % (self.expr(), t))
        elif k == 5:  # a per-work-item branch, no barrier in it
            self.emit("if ((a & 3u) == %du) {" % r.randrange(4))
            self.depth += 1
            self.emit("%s += %s;" % (t, self.expr()))
            for arr in ("tile", "tile2"):
                if st[arr] != "r" and r.random() < 0.3:
                    self.emit("%s[lid] = %s;" % (arr, self.expr()))
                    st[arr] = "w"
            self.depth -= 1
            self.emit("} else {")
            self.emit("  %s -= 1u;" % t)
            self.emit("}")
        elif k == 6:  # a per-work-item trip count
            self.emit("for (uint q = 0; q < (a & 3u); q++) %s += q * %du;" % (t, r.randrange(1, 5)))
        else:
            self.emit("%s = hlp(%s);" % (t, self.expr()))

    def local_access(self, st):
        r = self.r
        arr = r.choice(["tile", "tile2"])
        if st[arr] != "r" and r.random() < 0.5:
            self.emit("%s[lid] = %s;" % (arr, self.expr()))
            st[arr] = "w"
        elif st[arr] != "w":
            self.emit("%s += %s[(lid + %du) %% L];" % (r.choice("abc"), arr, r.randrange(1, 300)))
            st[arr] = "r"
        else:
            self.emit("%s += %s[lid];" % (r.choice("abc"), arr))

    def barrier(self, st):
        self.emit("kiln_barrier();")
        st["tile"] = st["tile2"] = None

    def no_locals(self):
        return {"tile": "r", "tile2": "r"}  # private() may not write local arrays

    def fenced(self, budget):
        """A body whose local-array accesses lie between barriers of its own."""
        st = {"tile": None, "tile2": None}
        for _ in range(self.r.randrange(0, 3)):
            self.private(self.no_locals())
        self.barrier(st)
        self.block(st, budget)
        self.barrier(st)
        for _ in range(self.r.randrange(0, 2)):
            self.private(self.no_locals())

    def nested(self, head, budget, tail="}"):
        self.emit(head)
        self.depth += 1
        self.fenced(budget - 1)
        self.depth -= 1
        self.emit(tail)

    def block(self, st, budget):
        r = self.r
        for _ in range(r.randrange(1, 6)):
            k = r.randrange(13)
            if k < 3:
                self.private(st)
            elif k < 6:
                self.local_access(st)
            elif k < 7:
                self.barrier(st)
            elif budget <= 0:
                continue
            elif k == 7:
                self.nested("for (uint rr = 0; rr < (u %% 3u) + %du; rr++) {" % r.randrange(2),
                            budget)
            elif k == 8:
                cond = r.choice(["u > 2u", "g % 2u == 0u", "L > 8", "n > 100"])
                if r.random() < 0.5:
                    self.nested("if (%s) {" % cond, budget, "} else {")
                    self.depth += 1
                    self.fenced(budget - 1)
                    self.depth -= 1
                    self.emit("}")
                else:
                    self.nested("if (%s) {" % cond, budget)
            elif k == 9:  # a tree reduction through tile
                self.emit("for (uint s = L / 2; s > 0; s >>= 1) {")
                self.emit("  kiln_barrier();")
                self.emit("  if (lid < s) tile[lid] += tile[lid + s];")
                self.emit("}")
                self.barrier(st)
                self.emit("c += tile[0];")
                st["tile"] = "r"
            else:
                self.shape(r.randrange(7), st, budget)

    def shape(self, kind, st, budget):
        r = self.r
        if kind == 0:  # a while on a uniform counter
            v = self.fresh("k")
            self.emit("uint %s = 0u;" % v)
            self.emit("while (%s < u %% 4u) {" % v)
            self.depth += 1
            self.fenced(budget - 1)
            self.emit("%s++;" % v)
            self.depth -= 1
            self.emit("}")
        elif kind == 1:
            self.nested("do {", budget, "} while (0);")
        elif kind == 2:  # a private value kept across a barrier
            v = self.fresh("m")
            self.emit("uint %s = (uint)lid * %du + a;" % (v, r.randrange(1, 5)))
            self.barrier(st)
            self.emit("b += %s;" % v)
        elif kind == 3:  # a private array at a computed index; a break without barriers
            self.emit("pa[a %% 3u] += %s;" % self.expr())
            self.emit("for (uint w = 0; w < 10u; w++) { if (w == (a & 7u)) break; c += w; }")
        elif kind == 4:  # a value recomputed from the ids after a barrier
            v = self.fresh("r")
            self.emit("size_t %s = lid * 2u;" % v)
            self.barrier(st)
            self.emit("c += (uint)%s;" % v)
        elif kind == 5:  # a condition every work-item evaluates, agreeing
            v = self.fresh("v")
            self.emit("uint %s = u;" % v)
            self.emit("if ((a & 1u) == 0u) %s = (uint)n %% 7u;" % v)
            self.nested("if (%s > %du) {" % (v, r.randrange(5)), budget)
        else:  # a for on a uniform variable of the kernel's own
            v = self.fresh("w")
            self.emit("uint %s = u + (uint)L;" % v)
            self.nested("for (uint t = 0; t < %s %% 3u; t++) {" % v, budget)

    def kernel(self):
        r = self.r
        self.lines = [
            "KILN_INLINE uint hlp(uint v) {",
            "  return v * 3u + (uint)kiln_local_id(0) + 7u * (uint)kiln_group_id(0);",
            "}",
            "KILN_KERNEL void gen(KILN_GLOBAL const int *in, KILN_GLOBAL int *out, int n) {",
            "  KILN_LOCAL_ARRAY uint tile[512];",
            "  KILN_LOCAL_ARRAY uint tile2[256];",
            "  size_t lid = kiln_local_id(0);",
            "  size_t gid = kiln_global_id(0);",
            "  size_t L = kiln_local_size(0);",
            "  uint g = (uint)kiln_group_id(0);",
            "  uint u = (uint)n % 7u;",
            "  uint a = (uint)in[gid];",
            "  uint b = 1u, c = 2u;",
            "  uint pa[3] = {3u, 4u, 5u};",
        ]
        st = {"tile": None, "tile2": None}
        self.emit("tile[lid] = a; tile[lid + L] = 0u; tile2[lid] = b;")
        self.barrier(st)
        if r.random() < 0.2:
            self.emit("if (u == 6u) return;")
        self.block(st, 2)
        if r.random() < 0.3:
            self.emit("if ((a & 7u) == 3u) return;")
        for _ in range(r.randrange(3)):
            self.private(self.no_locals())
        self.emit("out[gid * 4 + 0] = (int)a; out[gid * 4 + 1] = (int)b;")
        self.emit("out[gid * 4 + 2] = (int)c;")
        self.emit("out[gid * 4 + 3] = (int)(pa[0] + pa[1] * 3u + pa[2] * 7u);")
        self.lines.append("}")
        return "\n".join(self.lines) + "\n"


def run(drv, path, device, local, env, timeout):
    try:
        p = subprocess.run([drv, path, device, str(local), str(GROUPS)], capture_output=True,
                           text=True, env=env, timeout=timeout)
        return p.stdout.strip() or "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:]), p.stderr
    except subprocess.TimeoutExpired:
        return "TIMEOUT after %d s" % timeout, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drv", required=True, help="the difftest_drv binary")
    ap.add_argument("--seeds", default="0:20", help="FIRST:END (END excluded)")
    ap.add_argument("--opencl", action="store_true", help="also run on opencl:0, report differences")
    ap.add_argument("--keep", help="write each kernel that differs into this folder")
    ap.add_argument("--timeout", type=int, default=120)
    a = ap.parse_args()
    first, end = (int(x) for x in a.seeds.split(":"))
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="kiln-difftest-")
    env.setdefault("KILN_CACHE_DIR", os.path.join(tmp, "cache"))
    env["KILN_LOG"] = "debug"
    kiln_bad = ocl_bad = fission = 0
    for seed in range(first, end):
        src = Gen(seed).kernel()
        path = os.path.join(tmp, "k%d.kiln" % seed)
        with open(path, "w") as f:
            f.write(src)
        local = random.Random(seed).choice(LOCAL_SIZES)
        fis, log = run(a.drv, path, "cpu:0", local, env, a.timeout)
        fission += "kernel 'gen' on cpu: loop fission" in log
        fib, _ = run(a.drv, path, "cpu:0", local, dict(env, KILN_CPU_FISSION="0"), a.timeout)
        kept = False
        if fis != fib or not fis.startswith("OK"):
            kiln_bad += 1
            kept = True
            print("seed %d (local %d): fission and fibers differ:\n  fission: %s\n  fibers:  %s"
                  % (seed, local, fis, fib), flush=True)
        elif a.opencl:
            ocl, _ = run(a.drv, path, "opencl:0", local, env, a.timeout)
            if ocl != fis:
                ocl_bad += 1
                kept = True
                print("seed %d (local %d): opencl:0 differs from the cpu: %s" % (seed, local, ocl),
                      flush=True)
        if kept and a.keep:
            os.makedirs(a.keep, exist_ok=True)
            with open(os.path.join(a.keep, "k%d.kiln" % seed), "w") as f:
                f.write(src)
        os.remove(path)
    shutil.rmtree(tmp, ignore_errors=True)
    n = end - first
    print("difftest: %d kernels, %d by loop fission; fission and fibers differ on %d%s"
          % (n, fission, kiln_bad, "; opencl:0 differs on %d" % ocl_bad if a.opencl else ""))
    return 1 if kiln_bad else 0


if __name__ == "__main__":
    sys.exit(main())

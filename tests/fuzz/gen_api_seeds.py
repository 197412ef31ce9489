#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed programs of tests/fuzz/fuzz_api.c into tests/fuzz/api-seeds/.

Each seed is a small, valid program in the fuzzer's byte language (header, then ops;
fuzz_api.c is the reference for the encoding): contexts on cpu and mock, streams,
buffers, every transfer blocking and _async, waits, events, futures, pools, pinned
memory, managed buffers, launches, stream pools and sets, pipelines, under the mock's
chaos and injected failures. libFuzzer mutates from there. Deterministic: rerunning it
rewrites the same files.
"""
import os
import random
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api-seeds")

# op bytes (op % 20 picks the call; bit 5 picks async transfers and stream groups)
CTX_CREATE, CTX_DESTROY, STREAM_CREATE, STREAM_DESTROY = 0, 1, 2, 3
BUF_CREATE, BUF_DESTROY = 4, 5
WRITE, READ, COPY, FILL = 6, 7, 8, 9
WRITE_A, READ_A, COPY_A, FILL_A = 46, 47, 48, 49
TOKEN, STREAM_SYNC, EVENT, FUTURE, POOL, HOST, MANAGED, LAUNCH = 10, 12, 13, 14, 15, 16, 17, 18
CTX_MISC, GROUP, EXTRA = 19, 39, 79


class Prog:
    def __init__(self, rng, header):
        self.rng = rng
        self.b = bytearray(header)

    def op(self, *bs):
        self.b += bytes(x & 0xFF for x in bs)

    def live(self):  # a handle selector that keeps the argument valid
        return self.rng.randrange(0, 200)

    def u16(self, v):
        return [v & 0xFF, (v >> 8) & 0xFF]

    def transfer(self, kind_op, ctx=0):
        """op_transfer's bytes, in the order it reads them."""
        r = self.rng
        bs = [kind_op, ctx]
        if kind_op >= 40:  # async: the stream
            bs += [self.live(), r.randrange(256)]
        bs += [self.live(), r.randrange(256)]  # dst
        if kind_op in (COPY, COPY_A):
            bs += [self.live(), r.randrange(256)]  # src
        pn = 1
        if kind_op in (FILL, FILL_A):
            sel = r.randrange(4)
            pn = 1 << sel
            bs += [sel]
        bs += [r.randrange(200)] + self.u16(r.randrange(65536)) + self.u16(r.randrange(65536))
        if kind_op in (COPY, COPY_A):
            bs += self.u16(r.randrange(65536))  # src offset
        else:
            bs += [r.randrange(250)]  # the host pointer stays non-NULL
        if kind_op >= 40:
            bs += [r.randrange(256)]  # token or KILN_NO_TOKEN
        if kind_op in (FILL, FILL_A):
            bs += [r.randrange(256) for _ in range(pn)]
        elif kind_op in (WRITE, WRITE_A):
            bs += [r.randrange(256), r.randrange(256)]  # the data's seed and step
        self.op(*bs)


def basic(rng, header, mock):
    p = Prog(rng, header)
    p.op(CTX_CREATE, 1 if mock else 0)
    p.op(STREAM_CREATE, 0, 10)
    p.op(STREAM_CREATE, 0, 20)
    for _ in range(3):
        p.op(BUF_CREATE, 0, 100 + rng.randrange(100), 0x40 | rng.randrange(64), rng.randrange(256))
    return p


def seed_transfers(rng, header, mock):
    p = basic(rng, header, mock)
    for _ in range(24):
        p.transfer(rng.choice([WRITE, READ, COPY, FILL, WRITE_A, READ_A, COPY_A, FILL_A]))
        if rng.random() < 0.3:
            p.op(TOKEN, 0, rng.randrange(224), rng.randrange(256), rng.randrange(256))
    p.op(CTX_MISC, 0, 0)
    p.transfer(READ)
    return p


def seed_events_futures(rng, header, mock):
    p = basic(rng, header, mock)
    for i in range(4):
        p.op(EVENT, 0, 0 | (16 if i % 2 else 0))
    for _ in range(30):
        c = rng.random()
        if c < 0.3:
            p.transfer(rng.choice([WRITE_A, READ_A, COPY_A, FILL_A]))
        elif c < 0.5:
            p.op(EVENT, 0, rng.randrange(224), *[p.live() if j % 2 == 0 else rng.randrange(256)
                                                 for j in range(6)])
        elif c < 0.7:
            p.op(TOKEN, 0, 7 + 8 * rng.randrange(27), rng.randrange(256))  # future_from_pending
        elif c < 0.9:
            p.op(FUTURE, 0, rng.randrange(224), rng.randrange(256), rng.randrange(256))
        else:
            p.op(STREAM_SYNC, 0, p.live(), rng.randrange(256), rng.randrange(256))
    return p


def seed_pools(rng, header, mock):
    p = Prog(rng, header)
    p.op(CTX_CREATE, (1 if mock else 0) | 2)  # pooled context
    p.op(STREAM_CREATE, 0, 10)
    p.op(POOL, 0, 0)
    p.op(POOL, 0, 8)
    for _ in range(30):
        c = rng.random()
        if c < 0.3:
            p.op(POOL, 0, 2, rng.randrange(2), 0, rng.randrange(256), rng.randrange(256),
                 rng.randrange(256), rng.randrange(245))
        elif c < 0.45:
            p.op(POOL, 0, 4, p.live(), rng.randrange(256), p.live(), rng.randrange(256))
        elif c < 0.55:
            p.op(POOL, 0, 6, rng.randrange(256), rng.randrange(256), rng.randrange(256))
        elif c < 0.65:
            p.op(BUF_CREATE, 0, 100, rng.randrange(256), rng.randrange(256))
        else:
            p.transfer(rng.choice([WRITE, READ, COPY, FILL, WRITE_A, READ_A, COPY_A, FILL_A]))
    p.op(POOL, 0, 1, 0)
    return p


def seed_host_managed(rng, header, mock):
    p = basic(rng, header, mock)
    p.op(BUF_CREATE, 0, 10, 0x50, 0)  # managed
    for _ in range(30):
        c = rng.random()
        if c < 0.3:
            p.op(HOST, 0, rng.randrange(240), rng.randrange(256), rng.randrange(256),
                 rng.randrange(256), rng.randrange(256), rng.randrange(256))
        elif c < 0.6:
            p.op(MANAGED, 0, rng.randrange(256), rng.randrange(256), rng.randrange(256),
                 rng.randrange(256))
        elif c < 0.8:
            p.op(LAUNCH, 0, p.live(), rng.randrange(256), p.live(), rng.randrange(256),
                 rng.randrange(256), rng.randrange(236), rng.randrange(256), rng.randrange(256))
        else:
            p.transfer(rng.choice([WRITE, READ, WRITE_A, READ_A]))
    return p


def seed_groups(rng, header, mock):
    p = basic(rng, header, mock)
    p.op(GROUP, 0, 0, 2)  # stream pool of 3
    p.op(GROUP, 0, 4, 2)  # stream set of 3
    for _ in range(30):
        c = rng.random()
        if c < 0.4:
            p.op(GROUP, 0, rng.randrange(248), *[rng.randrange(256) for _ in range(8)])
        elif c < 0.8:
            p.transfer(rng.choice([WRITE_A, READ_A, COPY_A, FILL_A]))
        else:
            p.op(CTX_MISC, 0, rng.randrange(256), *[rng.randrange(256) for _ in range(8)])
    return p


def seed_two_contexts(rng, header, mock):
    p = basic(rng, header, mock)
    p.op(CTX_CREATE, 0 if mock else 1)
    p.op(STREAM_CREATE, 1, 5)
    p.op(BUF_CREATE, 1, 120, 0x50, 0)
    for _ in range(40):
        ctx = rng.randrange(2)
        c = rng.random()
        if c < 0.5:
            p.transfer(rng.choice([WRITE, READ, COPY, FILL, WRITE_A, READ_A, COPY_A, FILL_A]), ctx)
            # a wrong argument now and then: another context's handle, a destroyed one
            if rng.random() < 0.3:
                p.b[-20] = 200 + rng.randrange(56)
        elif c < 0.6:
            p.op(BUF_DESTROY, ctx, rng.randrange(256))
        elif c < 0.7:
            p.op(STREAM_DESTROY, ctx, rng.randrange(256))
        elif c < 0.8:
            p.op(TOKEN, ctx, rng.randrange(256), rng.randrange(256), rng.randrange(256))
        else:
            p.op(EVENT, ctx, rng.randrange(256), *[rng.randrange(256) for _ in range(6)])
    p.op(CTX_DESTROY, 1)
    for _ in range(6):
        p.op(TOKEN, 0, 240, rng.randrange(256), rng.randrange(9))  # stale tokens
    return p


def seed_device_loss(rng, header, mock):
    p = basic(rng, header, True)
    p.op(CTX_CREATE, 0)  # a cpu context beside the mock's
    for _ in range(6):
        p.transfer(rng.choice([WRITE_A, READ_A, COPY_A, FILL_A]))
    p.op(CTX_MISC, 0, 249, rng.randrange(8))  # the mock device is lost a few calls on
    for _ in range(12):
        c = rng.random()
        if c < 0.6:
            p.transfer(rng.choice([WRITE, READ, WRITE_A, READ_A, COPY_A, FILL_A]), rng.randrange(2))
        elif c < 0.8:
            p.op(TOKEN, 0, rng.randrange(224), rng.randrange(256), rng.randrange(256))
        else:
            p.op(EVENT, 0, rng.randrange(224), *[rng.randrange(256) for _ in range(6)])
    p.op(CTX_MISC, 0, 248)  # reset: the old generation's handles are refused
    p.op(CTX_CREATE, 1)
    p.op(STREAM_CREATE, 1, 10)
    for _ in range(8):
        p.transfer(rng.choice([WRITE, READ, WRITE_A, READ_A]), rng.randrange(2))
    p.op(CTX_DESTROY, 0)
    return p


def seed_trace_extra(rng, header, mock):
    p = basic(rng, header, mock)
    p.op(EXTRA, 0, 8)  # trace_start, in memory
    for _ in range(30):
        c = rng.random()
        if c < 0.5:
            p.op(EXTRA, 0, rng.randrange(256), *[rng.randrange(256) for _ in range(4)])
        else:
            p.transfer(rng.choice([WRITE, READ, WRITE_A, READ_A, COPY_A, FILL_A]))
    return p


def main():
    os.makedirs(OUT, exist_ok=True)
    gens = [seed_transfers, seed_events_futures, seed_pools, seed_host_managed, seed_groups,
            seed_two_contexts, seed_device_loss, seed_trace_extra]
    # headers: plain; mock shuffle + delay; a failure once; failures from N on; host
    # allocations failing once
    headers = [
        ("plain", [0x00], False),
        ("chaos", [0x18, 7, 20], True),
        ("failonce", [0x19, 25, 9, 10], True),
        ("failfrom", [0x02, 60, 0], True),
        ("allocfail", [0x60, 90, 0], False),
    ]
    n = 0
    for g in gens:
        for name, header, mock in headers:
            rng = random.Random(f"{g.__name__}-{name}")
            data = bytes(g(rng, header, mock).b)
            with open(os.path.join(OUT, f"{g.__name__[5:]}-{name}"), "wb") as f:
                f.write(data)
            n += 1
    print(f"{n} seeds in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: cli_usage.sh KILN — `kiln bench` usage errors exit 2 with a message naming the
# problem (before any case runs); `kiln bench list` lists the cpu suite's goal cases
# and its axes (the scaling ones: bytes, ops, buffers, threads, streams).
set -u
kiln=$1
status=0
expect() { # expect CODE PATTERN ARGS...: exit code and a stderr/stdout pattern
  code=$1 pattern=$2; shift 2
  text=$("$kiln" "$@" 2>&1); rc=$?
  if [ $rc -ne "$code" ]; then
    echo "FAIL: kiln $* exited $rc, expected $code"; printf '%s\n' "$text"; status=1
  elif ! printf '%s\n' "$text" | grep -q -- "$pattern"; then
    echo "FAIL: kiln $*: no '$pattern' in:"; printf '%s\n' "$text"; status=1
  elif printf '%s\n' "$text" | grep -q "running suite"; then
    echo "FAIL: kiln $*: a suite ran before the usage error"; status=1
  else
    echo "ok: kiln $* -> $rc"
  fi
}
expect 2 "unknown suite 'nosuch'" bench run nosuch --quick
expect 2 "name a suite" bench run
# `all` alone on a short command line (it used to be refused as "too many suites")
expect 2 "unknown axis 'nosuch'" bench run all --axis nosuch=1
expect 2 "give two JSON files" bench compare a.json
expect 2 "unknown subcommand" bench frobnicate
expect 2 "unknown option" bench run cpu --frob
expect 2 "budget-ms" bench run cpu --budget-ms 0
expect 2 "does not exist" bench run cpu --quick --device cpu:99
expect 2 "unknown axis 'nosuch'; the axes of the chosen suites are: bytes (cpu/copy) ops (cpu/op_burst) buffers (cpu/launch_buffers) threads (cpu/submit_threads) streams (cpu/submit_threads)" \
  bench run cpu --quick --axis nosuch=1,2
expect 2 "'12parsecs' is not an integer" bench run cpu --quick --axis bytes=4K,12parsecs
expect 2 "axis wants NAME=V1,V2" bench run cpu --quick --axis bytes
expect 2 "non-empty values" bench run cpu --quick --axis bytes=4K,,8K
expect 2 "not both" bench run cpu --quick --device cpu:0 --axis device=cpu:0
expect 2 "does not exist" bench run cpu --quick --axis device=cpu:0,cpu:99
expect 2 "threshold" bench compare a.json b.json --threshold -3
expect 2 "target-ci wants a percentage" bench run cpu --quick --target-ci 0
expect 2 "option '--json' needs a value: --json FILE" bench run cpu --json
expect 2 "option '--axis' needs a value" bench run cpu --axis
expect 2 "option '--quick' takes no value" bench run cpu --quick=yes
expect 2 "unknown option '--thresh'" bench compare a.json b.json --thresh 5
expect 2 "unexpected argument 'c.json': give two files" bench compare a.json b.json c.json
expect 2 "unexpected argument 'extra'" bench list extra
expect 2 "case 'nope' matches no case of the suites named" bench run cpu ocl_events --case nope
expect 2 "case 'op_burst_10000' matches no case" bench run ocl_events --case op_burst_10000
expect 2 "comma-separated patterns" bench run cpu --case ',copy_64MiB'
expect 0 "Usage: kiln bench list" bench list --help
expect 0 "Usage: kiln bench compare" bench compare -h
expect 0 "Options of run" bench run -h
expect 0 "op_burst_10000" bench list
expect 0 "axis bytes (scaling) = 4096,32768" bench list
expect 0 "axis ops (scaling) = 100,1000,10000,100000,1000000" bench list
expect 0 "axis buffers (scaling) = 1,2,4,8,16,32,64" bench list
expect 0 "axis streams (scaling) = 1,2,4,8" bench list
expect 0 "Usage: kiln bench" bench --help
expect 0 "Options of compare" bench run --help
# --case runs exactly the cases it names (op_roundtrip, not op_roundtrip_starpu) and
# drops the suites left without one
dir=$(mktemp -d)
if "$kiln" bench run cpu ocl_events --case 'copy_64MiB,op_round*p' --quick --budget-ms 20 \
    --json "$dir/r.json" >"$dir/log" 2>&1; then
  names=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(r["suite"] + "/" + r["name"] for r in json.load(open(sys.argv[1]))["results"]))' "$dir/r.json")
  if [ "$names" = "cpu/op_roundtrip cpu/copy_64MiB" ] && ! grep -q "suite ocl_events" "$dir/log"; then
    echo "ok: --case ran $names"
  else
    echo "FAIL: --case 'copy_64MiB,op_round*p' ran: $names"; cat "$dir/log"; status=1
  fi
else
  echo "FAIL: bench run --case exited $?"; cat "$dir/log"; status=1
fi
rm -rf "$dir"
exit $status

#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: cli_usage.sh KILN — `kiln bench` usage errors exit 2 with a message naming the
# problem; `kiln bench list` lists the cpu suite's goal cases.
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
  else
    echo "ok: kiln $* -> $rc"
  fi
}
expect 2 "unknown suite 'nosuch'" bench run nosuch --quick
expect 2 "name a suite" bench run
expect 2 "not implemented yet" bench compare a.json b.json
expect 2 "unknown subcommand" bench frobnicate
expect 2 "unknown option" bench run cpu --frob
expect 2 "budget-ms" bench run cpu --budget-ms 0
expect 2 "does not exist" bench run cpu --quick --device cpu:99
expect 0 "op_burst_10000" bench list
expect 0 "Usage: kiln bench" bench --help
exit $status

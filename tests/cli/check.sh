#!/bin/sh
# SPDX-License-Identifier: MIT
# Run a command and check what it did: the exact exit status, extended regexes over
# stdout and stderr (each may be given several times; all must match), and stdout
# validated against a JSON schema. Used by tests/cli.cmake.
#
# usage: check.sh [--rc N] [--stdout ERE]... [--stderr ERE]... [--no-stdout]
#                 [--env NAME=VALUE]... [--schema SCHEMA --validator SCRIPT]
#                 [--python PYTHON] -- COMMAND...
# KILN_DEVICE and KILN_BACKEND are unset first (the caller's choice must not leak into
# a test); --env sets variables for the command. Exit: 0 when every check holds, 1
# otherwise (printing what was seen), 77 when only the schema check could not run
# (python3-jsonschema missing), 2 on a usage error.
set -u

want_rc=0 no_stdout=0 schema= validator= python=/usr/bin/python3
nl='
'
out_res= err_res=
unset KILN_DEVICE KILN_BACKEND
while [ $# -gt 0 ]; do
  case "$1" in
    --rc) want_rc=$2; shift 2 ;;
    --stdout) out_res="$out_res$2$nl"; shift 2 ;;
    --stderr) err_res="$err_res$2$nl"; shift 2 ;;
    --no-stdout) no_stdout=1; shift ;;
    --env) export "$2" || exit 2; shift 2 ;;
    --schema) schema=$2; shift 2 ;;
    --validator) validator=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "check.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "check.sh: no command given" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cli-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

"$@" >"$tmp/out" 2>"$tmp/err"
rc=$?

fail=0
if [ "$rc" -ne "$want_rc" ]; then
  echo "FAIL: exit status $rc, expected exactly $want_rc"; fail=1
fi
match_all() { # <file> <stream name> <newline-separated regexes>
  file=$1 name=$2 res=$3
  old_ifs=$IFS; IFS=$nl
  for re in $res; do
    if ! grep -Eq -- "$re" "$file"; then echo "FAIL: $name does not match /$re/"; fail=1; fi
  done
  IFS=$old_ifs
}
match_all "$tmp/out" stdout "$out_res"
match_all "$tmp/err" stderr "$err_res"
if [ "$no_stdout" -eq 1 ] && [ -s "$tmp/out" ]; then
  echo "FAIL: expected nothing on stdout"; fail=1
fi
skipped=0
if [ -n "$schema" ]; then
  "$python" "$validator" "$schema" "$tmp/out"
  vrc=$?
  if [ "$vrc" -eq 77 ]; then
    skipped=1
  elif [ "$vrc" -ne 0 ]; then
    echo "FAIL: stdout does not validate against $schema"; fail=1
  fi
fi

echo "--- command: $*"
echo "--- exit status: $rc"
echo "--- stdout:"; cat "$tmp/out"
echo "--- stderr:"; cat "$tmp/err"
if [ "$fail" -ne 0 ]; then echo "FAILED"; exit 1; fi
if [ "$skipped" -ne 0 ]; then echo "SKIPPED: JSON schema check needs python3-jsonschema"; exit 77; fi
echo "PASSED"
exit 0

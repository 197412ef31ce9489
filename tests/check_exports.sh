#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check_exports.sh only-public LIBKILN.so
#   every dynamic symbol libkiln defines is kiln_<name>, never kiln__<internal>
#   (src/kiln.map and hidden visibility), besides the version node KILN_0.
# check_exports.sh api-complete LIBKILN.so INCLUDE_DIR
#   every KILN_API function declared by the headers kiln.h includes is exported.
set -euo pipefail
mode=$1 lib=$2

symbols=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' | sort -u)
if [[ -z "$symbols" ]]; then
  echo "no dynamic symbols in $lib" >&2
  exit 1
fi

case "$mode" in
only-public)
  bad=$(grep -vxE 'kiln_[a-z0-9][A-Za-z0-9_]*|KILN_[0-9]+' <<<"$symbols" || true)
  if [[ -n "$bad" ]]; then
    echo "$lib exports symbols outside the public kiln_ namespace (internals are" >&2
    echo "kiln__* with hidden visibility; see src/kiln.map):" >&2
    sed 's/^/  /' <<<"$bad" >&2
    exit 1
  fi
  echo "$(wc -l <<<"$symbols") exported symbols, all public"
  ;;
api-complete)
  inc=$3
  headers=$(sed -n 's/^#include "\(kiln\/[a-z_]*\.h\)"/\1/p' "$inc/kiln.h")
  declared=$(for h in $headers; do tr '\n' ' ' <"$inc/$h"; echo; done |
    grep -oE 'KILN_API[^;(]*\(' | grep -oE 'kiln_[a-z0-9_]+ *\($' | tr -d ' (' | sort -u)
  missing=$(comm -23 <(echo "$declared") <(echo "$symbols"))
  if [[ -n "$missing" ]]; then
    echo "declared with KILN_API in include/kiln/*.h but not exported by $lib:" >&2
    sed 's/^/  /' <<<"$missing" >&2
    exit 1
  fi
  echo "all $(wc -l <<<"$declared") KILN_API functions are exported"
  ;;
*)
  echo "usage: $0 only-public LIB | api-complete LIB INCLUDE_DIR" >&2
  exit 2
  ;;
esac

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check_format.sh SOURCE_DIR — every C/C++ source of the tree is as clang-format-14 with
# the root .clang-format would write it. Exits 77 (ctest: skipped, visibly) when
# clang-format-14 is missing (scripts/deps.sh installs it); lists the files that differ
# and exits 1 otherwise. Fix with: clang-format-14 -i <files>.
set -euo pipefail
root=$1
fmt=$(command -v clang-format-14 || true)
if [[ -z $fmt ]]; then
  echo "format: SKIPPED: clang-format-14 is not installed (scripts/deps.sh installs it)" >&2
  exit 77
fi
cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' '*.cpp' | sort)
else
  mapfile -t files < <(find src include tools tests bench examples -name '*.[ch]' -o -name '*.cpp' | sort)
fi
bad=()
for f in "${files[@]}"; do
  [[ -f $f ]] || continue
  if ! "$fmt" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if [[ ${#bad[@]} -ne 0 ]]; then
  echo "format: ${#bad[@]} file(s) differ from clang-format-14's output:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "format: run  clang-format-14 -i ${bad[*]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files as clang-format-14 writes them"

#!/bin/sh
# SPDX-License-Identifier: MIT
# No kiln binary links a vendor runtime (design.md "Devices and backends"): every ELF
# file given, and every executable or shared object under the folders given, must have
# no DT_NEEDED entry for libcuda, libnvrtc or libOpenCL (they are dlopen'ed).
#   usage: check_no_vendor_links.sh FILE_OR_DIR...
# Exit 0 when clean, 1 naming each offender, 77 when readelf is missing.
command -v readelf >/dev/null 2>&1 || { echo "readelf not found: skipped"; exit 77; }
bad=0 checked=0
check() {
  head -c 4 "$1" 2>/dev/null | grep -q 'ELF' || return 0
  needed=$(readelf -dW "$1" 2>/dev/null | grep '(NEEDED)')
  checked=$((checked + 1))
  if printf '%s\n' "$needed" | grep -Eq '\[(libcuda|libnvrtc|libOpenCL)[.]so'; then
    echo "FAIL: $1 links a vendor runtime:"
    printf '%s\n' "$needed" | grep -E 'libcuda|libnvrtc|libOpenCL'
    bad=1
  fi
}
for arg in "$@"; do
  if [ -d "$arg" ]; then
    for f in $(find "$arg" -type f \( -perm -u+x -o -name '*.so*' \) 2>/dev/null); do check "$f"; done
  elif [ -e "$arg" ]; then
    check "$arg"
  fi
done
echo "checked $checked ELF files for libcuda, libnvrtc, libOpenCL in DT_NEEDED"
[ "$checked" -gt 0 ] || { echo "FAIL: nothing checked"; exit 1; }
exit $bad

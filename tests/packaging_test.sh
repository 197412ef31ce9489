#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# packaging_test.sh BUILD_DIR CONSUMER_SRC WORK_DIR CMAKE CC GENERATOR
# Installs the kiln build tree into WORK_DIR/prefix and builds and runs
# tests/consumer against it: with find_package(kiln) (shared and static) and with
# pkg-config (shared, and static through Libs.private). No network.
set -euo pipefail
build=$1 consumer=$2 work=$3 cmake=$4 cc=$5 generator=$6

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
step() { echo "== $*"; }

step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log"
  exit 1
}
for f in include/kiln.h include/kiln/status.h; do
  [[ -f "$prefix/$f" ]] || { echo "not installed: $f" >&2; exit 1; }
done
config=$(find "$prefix" -name kilnConfig.cmake -print -quit)
pcfile=$(find "$prefix" -name kiln.pc -print -quit)
[[ -n "$config" && -f "$(dirname "$config")/kilnConfigVersion.cmake" ]] ||
  { echo "kilnConfig.cmake / kilnConfigVersion.cmake not installed" >&2; exit 1; }
[[ -n "$pcfile" ]] || { echo "kiln.pc not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pcfile")")
for f in libkiln.so libkiln.a; do
  [[ -e "$libdir/$f" ]] || { echo "not installed: $libdir/$f" >&2; exit 1; }
done

# Nothing may come from the build tree: run with a clean library path.
unset LD_LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH || true

step "find_package(kiln): configure and build tests/consumer"
"$cmake" -S "$consumer" -B "$work/cmake-build" -G "$generator" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_BUILD_TYPE=Release >"$work/consumer-configure.log" ||
  { cat "$work/consumer-configure.log"; exit 1; }
"$cmake" --build "$work/cmake-build"
step "run consumer_shared (find_package, kiln::kiln)"
"$work/cmake-build/consumer_shared"
ldd "$work/cmake-build/consumer_shared" | grep -F "$libdir/libkiln.so" >/dev/null ||
  { echo "consumer_shared does not load $libdir/libkiln.so:" >&2;
    ldd "$work/cmake-build/consumer_shared" >&2; exit 1; }
step "run consumer_static (find_package, kiln::kiln_static)"
"$work/cmake-build/consumer_static"
if ldd "$work/cmake-build/consumer_static" | grep -q libkiln; then
  echo "consumer_static loads libkiln.so" >&2
  exit 1
fi

export PKG_CONFIG_PATH=$libdir/pkgconfig
step "pkg-config: $(pkg-config --modversion kiln), $(pkg-config --cflags --libs kiln)"
[[ "$(pkg-config --variable=libdir kiln)" -ef "$libdir" ]] ||
  { echo "kiln.pc libdir is $(pkg-config --variable=libdir kiln), not $libdir" >&2; exit 1; }
# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
"$cc" -std=c11 -Wall -Werror "$consumer/consumer.c" $(pkg-config --cflags --libs kiln) \
  -o "$work/pc_shared"
step "run pc_shared (pkg-config, LD_LIBRARY_PATH=$libdir)"
LD_LIBRARY_PATH=$libdir "$work/pc_shared"
static_libs=$(pkg-config --static --libs-only-l kiln | sed 's/-lkiln\b//')
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Werror "$consumer/consumer.c" $(pkg-config --cflags kiln) \
  "$libdir/libkiln.a" $static_libs -o "$work/pc_static"
step "run pc_static (libkiln.a + pkg-config --static)"
"$work/pc_static"
if [[ -x "$prefix/bin/kiln" ]]; then
  step "run the installed CLI: $prefix/bin/kiln --version"
  "$prefix/bin/kiln" --version
  loaded=$(ldd "$prefix/bin/kiln" | awk '$1 ~ /^libkiln\.so/ { print $3 }')
  [[ -n "$loaded" && "$(readlink -f "$loaded")" == "$(readlink -f "$libdir")"/libkiln.so* ]] ||
    { echo "installed kiln loads '$loaded', not $libdir/libkiln.so (INSTALL_RPATH?)" >&2;
      exit 1; }
fi
# libkiln_mpi (docs/mpi.md), when kiln was built with an MPI: its own export set and
# .pc, found with COMPONENTS mpi; libkiln itself never needs libmpi.
if readelf -d "$libdir/libkiln.so" | grep -q 'NEEDED.*libmpi'; then
  echo "libkiln.so needs libmpi: MPI belongs to libkiln_mpi only" >&2
  exit 1
fi
if [[ -e "$libdir/libkiln_mpi.so" ]]; then
  for f in libkiln_mpi.a pkgconfig/kiln-mpi.pc cmake/kiln/kilnMpiTargets.cmake; do
    [[ -e "$libdir/$f" ]] || { echo "not installed: $libdir/$f" >&2; exit 1; }
  done
  [[ -f "$prefix/include/kiln/mpi.h" ]] || { echo "not installed: include/kiln/mpi.h" >&2; exit 1; }
  step "find_package(kiln COMPONENTS mpi): configure and build tests/consumer_mpi"
  "$cmake" -S "$(dirname "$consumer")/consumer_mpi" -B "$work/cmake-build-mpi" -G "$generator" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer-mpi-configure.log" ||
    { cat "$work/consumer-mpi-configure.log"; exit 1; }
  "$cmake" --build "$work/cmake-build-mpi"
  step "run consumer_mpi_shared and consumer_mpi_static"
  "$work/cmake-build-mpi/consumer_mpi_shared"
  "$work/cmake-build-mpi/consumer_mpi_static"
  step "pkg-config kiln-mpi: $(pkg-config --cflags --libs kiln-mpi)"
fi
step "packaging OK"

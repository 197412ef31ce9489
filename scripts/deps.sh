#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages that kiln's build, `make demo` and `make check` need,
# and nothing that no build file, test or script uses (add a package with its user).
# A fast no-op when all are present. As root it runs `apt-get update` once and installs
# only what is missing; otherwise it uses `sudo -n` when that works without a password,
# else prints the command to run and exits 1.
set -euo pipefail

PACKAGES=(
  cmake ninja-build pkg-config make gcc g++ binutils   # build
  clang libclang-rt-14-dev                             # libFuzzer, sanitizer runtimes
  clang-format-14                                      # make check: packaging.format
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo   # OpenCL on the CPU
  libcmocka-dev                                        # unit tests
  libuv1-dev                                           # examples/libuv_loop.c
  python3-jsonschema                                   # schema checks of JSON output
  libjansson-dev                                       # reading JSON (bench compare)
  libstarpu-dev   # the cpu suite's StarPU baseline: <starpu.h> at build time, and
                  # libstarpu-1.3-9, dlopened (never linked), at run time
  libck-dev       # the ring suite's Concurrency Kit baseline (ck_ring.h is header-only:
                  # bench/baseline_ring.c only; the build skips those cases without it)
  libssl-dev                                           # compile cache: SHA-256 (EVP)
  libopenmpi-dev openmpi-bin   # libkiln_mpi (include/kiln/mpi.h), its tests (mpirun -np 2)
                               # and the mpi benchmark; all skipped without them
  gcovr                                                # make coverage
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")

if [[ $(id -u) -eq 0 ]]; then
  sudo_cmd=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo_cmd=(sudo -n)
else
  echo "deps.sh: not root; install them with:" >&2
  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install_cmd[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive "${install_cmd[@]}"

# Check again: apt-get can succeed and still leave a package out (held, renamed).
still=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || still+=("$pkg")
done
if [[ ${#still[@]} -ne 0 ]]; then
  echo "deps.sh: still missing after apt-get: ${still[*]}" >&2
  exit 1
fi
echo "deps.sh: installed ${missing[*]}" >&2

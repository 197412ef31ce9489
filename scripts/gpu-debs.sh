#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetch (here, on a build machine) the Debian 12 packages the GPU machine lacks for
# building kiln's tests: cmocka and jansson (runtime + headers). gpu-check.sh unpacks
# them with dpkg -x into build-gpu/prefix there; the folder travels with `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-debs
cd .gpu-debs
apt-get download libcmocka0 libcmocka-dev libjansson4 libjansson-dev
ls -l

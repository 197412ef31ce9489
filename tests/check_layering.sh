#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check_layering.sh SOURCE_DIR — the include rules of docs/architecture.md's layers:
#   - a file under src/backends/<b>/ includes, of kiln's own headers, only
#     core/backend.h, the public headers (kiln.h, kiln/*.h), platform/*.h and headers
#     of its own folder (backends/<b>/*): never another core header, never another
#     backend's;
#   - src/platform includes nothing of the core, the backends or the services;
#   - src/pool (a service of the core) includes no backend header;
#   - src/trace (a service of the core) includes no backend's header: it knows only
#     what the core hands it (ops, timestamps, decisions);
#   - src/graph (task graphs) sits above the public API, like src/bench: it includes,
#     of kiln's own headers, only the public ones (kiln.h, kiln/*.h) and its own
#     folder's;
#   - src/mpi (libkiln_mpi, above the public API like src/bench) includes only the
#     public headers and its own: no core, service, platform or backend header;
#   - the public headers (include/) include only public headers.
# Prints every violation as file:line and exits 1 when there is one.
set -euo pipefail
root=$1
bad=0
report() {
  echo "layering: $1:$2: $3" >&2
  bad=1
}
while IFS= read -r f; do
  rel=${f#"$root"/}
  own=$(echo "$rel" | cut -d/ -f2-3) # backends/<b>
  while IFS=: read -r line text; do
    inc=$(echo "$text" | sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/')
    case $inc in
    core/backend.h | kiln.h | kiln/* | platform/*) ;;
    "$own"/*) ;;
    backends/*) report "$rel" "$line" "includes another backend's header $inc" ;;
    core/*) report "$rel" "$line" "includes the core header $inc: a backend sees the core only through core/backend.h" ;;
    *) [[ -f $(dirname "$f")/$inc ]] || report "$rel" "$line" "includes $inc, which is not a backend's own header" ;;
    esac
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
done < <(find "$root/src/backends" -name '*.[ch]' | sort)

while IFS=: read -r f line text; do
  report "${f#"$root"/}" "$line" "the platform layer includes ${text#*#include }: it sits below the core"
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(core|backends|pool|kcache|trace|graph|ring|bench)/' \
  "$root"/src/platform/*.[ch] /dev/null || true)

# Services of the core (src/pool, ...) reach devices only through backend ops: no
# backend header.
while IFS=: read -r f line text; do
  report "${f#"$root"/}" "$line" "a service of the core includes ${text#*#include }: it reaches devices only through the ops table (core/backend.h)"
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"backends/' \
  "$root"/src/pool/*.[ch] /dev/null || true)

while IFS=: read -r f line text; do
  report "${f#"$root"/}" "$line" "the trace service includes ${text#*#include }: it knows no backend"
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"backends/' \
  "$root"/src/trace/*.[ch] /dev/null || true)

# src/graph: public headers and its own folder's only (no core, service or backend).
while IFS=: read -r f line text; do
  inc=$(echo "$text" | sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/')
  case $inc in
  kiln.h | kiln/*) ;;
  *) [[ $inc != */* && -f $root/src/graph/$inc ]] ||
    report "${f#"$root"/}" "$line" "src/graph includes $inc: it sits above the public API (kiln.h, kiln/*.h and its own headers only)" ;;
  esac
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root"/src/graph/*.[ch] /dev/null || true)
# libkiln_mpi sits above the public API: kiln.h, kiln/*.h and mpi/*.h only.
while IFS=: read -r f line text; do
  report "${f#"$root"/}" "$line" "libkiln_mpi includes ${text#*#include }: it uses kiln's public API only"
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root"/src/mpi/*.[ch] /dev/null |
  grep -vE '#[[:space:]]*include[[:space:]]*"(kiln(/[a-z_]+)?|mpi/[a-z_]+)\.h"' || true)

while IFS=: read -r f line text; do
  report "${f#"$root"/}" "$line" "a public header includes ${text#*#include }"
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root"/include/kiln.h "$root"/include/kiln/*.h |
  grep -vE '#[[:space:]]*include[[:space:]]*"kiln(/[a-z_]+)?\.h"' || true)

if [[ $bad -ne 0 ]]; then
  echo "layering: FAILED (docs/architecture.md, 'Layers')" >&2
  exit 1
fi
echo "layering: every include follows the layers"

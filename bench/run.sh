#!/usr/bin/env bash
# run.sh -- the benchmarks in one command: install what is missing, build sandboxd for speed
# (Release, in build-bench/), install the npm packages (puppeteer-core and ws, pinned by
# package-lock.json; nothing downloads a browser), then run bench.mjs against the real server,
# the Debian Chromium and python3, and workspace.py (Python sessions against ipykernel through
# jupyter_client). Prints medians, p90 and ratios; writes bench/results.md (a partial run,
# --only, writes bench/results-only.md instead).
#
#   sudo bench/run.sh              the full run (about 10 minutes on 2 cores)
#   sudo bench/run.sh --quick      fewer rounds, for a smoke run
#   sudo bench/run.sh --only exec,throughput,session,work,memory,reads,workspace
#
# Run it on an otherwise idle machine: every row alternates sandboxd and its baseline, but a
# busy neighbour still adds noise. Environment: BUILD_DIR (default build-bench).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
build=${BUILD_DIR:-build-bench}

scripts/install-deps.sh build runtime
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    scripts/install-deps.sh bench
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSANDBOXD_SANITIZE=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sandboxd

if [[ ! -d bench/node_modules/puppeteer-core || ! -d bench/node_modules/playwright-core ||
      bench/package-lock.json -nt bench/node_modules ]]; then
    (cd bench && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund)
    touch bench/node_modules
fi

# --only: bench.mjs's groups, and "workspace" for workspace.py
args=() only="" workspace=1
while (($#)); do
    if [[ $1 == --only && $# -ge 2 ]]; then
        only=$2
        shift 2
    else
        args+=("$1")
        shift
    fi
done
if [[ -n $only ]]; then
    groups=() workspace=0
    IFS=, read -ra wanted <<<"$only"
    for g in "${wanted[@]}"; do
        if [[ $g == workspace ]]; then workspace=1; else groups+=("$g"); fi
    done
    if ((${#groups[@]})); then
        node bench/bench.mjs --bin "$build/sandboxd" "${args[@]}" --only "$(IFS=,; echo "${groups[*]}")"
    fi
else
    node bench/bench.mjs --bin "$build/sandboxd" "${args[@]}"
fi
((workspace)) || exit 0
# Python sessions against ipykernel (jupyter_client), with Debian's python3 (where apt puts
# the packages; a python3 earlier on PATH, e.g. pyenv's, does not see them); --quick passes on.
if ! /usr/bin/python3 -c 'import jupyter_client, ipykernel' 2>/dev/null; then
    scripts/install-deps.sh bench
fi
quick=()
for a in "${args[@]}"; do [[ $a == --quick ]] && quick=(--quick); done
# a partial run (--only) writes bench/results-only.md, as bench.mjs does, unless --out says
out=()
for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == --out ]] && out=(--out "${args[i + 1]}"); done
[[ -n $only && ${#out[@]} -eq 0 ]] && out=(--out bench/results-only.md)
exec /usr/bin/python3 bench/workspace.py --bin "$build/sandboxd" "${quick[@]}" "${out[@]}"

#!/usr/bin/env bash
# run.sh -- install what is missing, build sandboxd, and start it in the foreground.
#
#   sudo ./scripts/run.sh [sandboxd flags...]      e.g. --port 9000, --log-level debug
#
# With AUTH_TOKEN set in the environment the server uses it; without, it starts with --dev,
# which mints a token for this run and prints it once. DATA_DIR defaults to /var/lib/sandboxd
# (as root) or ~/.local/state/sandboxd (otherwise). HOST defaults to 127.0.0.1: set HOST=0.0.0.0
# only behind a firewall or proxy you trust. Every other setting: build/sandboxd --help.
# Running it again is quick: installed packages are skipped and the build is incremental.
# BUILD_DIR (default build) picks another build directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build}

scripts/install-deps.sh build runtime

if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j"$(nproc)" --target sandboxd

if [[ -z ${DATA_DIR:-} ]]; then
    if ((EUID == 0)); then
        DATA_DIR=/var/lib/sandboxd
    else
        DATA_DIR=${XDG_STATE_HOME:-$HOME/.local/state}/sandboxd
    fi
fi
export DATA_DIR
mkdir -p "$DATA_DIR"

dev=()
if [[ -z ${AUTH_TOKEN:-} ]]; then
    unset AUTH_TOKEN
    dev=(--dev)
    echo "run.sh: AUTH_TOKEN is not set: starting in development mode (the token is printed below)"
fi
echo "run.sh: starting $build/sandboxd (DATA_DIR=$DATA_DIR); Ctrl-C stops it"
exec "$build/sandboxd" "${dev[@]}" "$@"

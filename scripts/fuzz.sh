#!/usr/bin/env bash
# fuzz.sh -- build the libFuzzer targets of tests/fuzz with clang (ASan+UBSan+fuzzer, in
# build-fuzz/) and run each for a while.
#
#   scripts/fuzz.sh                       every target for FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh fuzz_url fuzz_router  only these
#   FUZZ_SECONDS=14400 FUZZ_JOBS=2 scripts/fuzz.sh fuzz_websocket    four hours, two workers
#
# Targets run FUZZ_PARALLEL at a time (default: cores / FUZZ_JOBS), each on a core of its own.
#
# Each target starts from its seeds (tests/fuzz/corpus/<target>/, read only) and grows a work
# corpus in build-fuzz/corpus/<target>/ that the next run starts from too. A crash, leak,
# timeout (FUZZ_TIMEOUT_S a single input, default 10) or assertion stops that target and its
# input lands in build-fuzz/crashes/<target>/ (crash-*, leak-*, timeout-*); replay it with
# build-fuzz/fuzz/<target> FILE. Exits nonzero when any target found something. Environment:
# BUILD_DIR (default build-fuzz), CC (default clang-14).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

build=${BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
per_input=${FUZZ_TIMEOUT_S:-10}
cc=${CC:-clang-14}

scripts/install-deps.sh build runtime test

targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
fi
for t in "${targets[@]}"; do
    if [[ ! -f tests/fuzz/$t.c ]]; then
        echo "fuzz.sh: no target $t (tests/fuzz/$t.c)" >&2
        exit 2
    fi
done

if [[ ! -f $build/CMakeCache.txt ]]; then
    CC=$cc cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANDBOXD_FUZZ=ON >/dev/null
else
    cmake -S . -B "$build" -DSANDBOXD_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# run_one T: fuzz target T for $seconds; its summary goes to $build/T.summary, and it exits
# nonzero when the target found something.
run_one() {
    local t=$1 work=$build/corpus/$1 crashes=$build/crashes/$1 start=$SECONDS rc
    mkdir -p "$work" "$crashes"
    local args=(-max_total_time="$seconds" -timeout="$per_input" -rss_limit_mb=2048
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$crashes/")
    if ((jobs > 1)); then
        args+=(-fork="$jobs" -ignore_crashes=0)
    fi
    set +e
    "$build/fuzz/$t" "${args[@]}" "$work" "tests/fuzz/corpus/$t" >"$build/$t.log" 2>&1
    rc=$?
    set -e
    {
        echo "==> $t for ${seconds}s (work corpus $work, crashes in $crashes/)"
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' \
            "$build/$t.log" | sed 's/^/    /' || true
        if ((rc != 0)); then
            echo "fuzz.sh: $t FAILED (exit $rc) after $((SECONDS - start))s (whole log:" \
                "$build/$t.log):"
            {
                grep -m1 -E 'runtime error|fuzz assertion failed|ERROR: (Address|Leak)Sanitizer' \
                    "$build/$t.log"
                grep -m1 -A8 -E '^ +#0 ' "$build/$t.log"
                grep -m1 '^SUMMARY' "$build/$t.log"
                grep -m1 'Test unit written' "$build/$t.log"
            } | sed 's/^/    /'
        else
            echo "    $t: ok, $(ls "$work" | wc -l) inputs in the work corpus, $((SECONDS - start))s"
        fi
    } >"$build/$t.summary"
    return "$rc"
}

# Targets are single-threaded (or use $jobs workers each): run as many at once as the machine
# has cores, so every target still gets a core for its whole time.
parallel=${FUZZ_PARALLEL:-$(($(nproc) / jobs))}
((parallel >= 1)) || parallel=1
found=()
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
    batch=("${targets[@]:i:parallel}")
    pids=()
    for t in "${batch[@]}"; do
        run_one "$t" &
        pids+=($!)
    done
    for k in "${!batch[@]}"; do
        wait "${pids[$k]}" || found+=("${batch[$k]}")
        cat "$build/${batch[$k]}.summary"
    done
done
if ((${#found[@]})); then
    echo "fuzz: ${#found[@]} of ${#targets[@]} targets found a bug: ${found[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each ($parallel at a time), nothing found"

#!/usr/bin/env bash
# check-format.sh -- check every C source and header against .clang-format (used by .ci/run).
#
#   scripts/check-format.sh          report files that differ; exit 1 if any does
#   scripts/check-format.sh --fix    rewrite them in place instead
#
# Files: every *.c/*.h git knows of or would add (tracked, or untracked and not ignored);
# outside a git checkout, those under src/ and tests/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' |
        sort -u | while read -r f; do [[ -f $f ]] && printf '%s\n' "$f"; done)
else
    mapfile -t files < <(find src tests -name '*.[ch]' -type f | sort)
fi
if ((${#files[@]} == 0)); then
    echo "format: no C files found" >&2
    exit 1
fi

if [[ ${1:-} == --fix ]]; then
    clang-format -i "${files[@]}"
    echo "format: formatted ${#files[@]} files"
    exit 0
fi

bad=()
for f in "${files[@]}"; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done
if ((${#bad[@]})); then
    echo "format: ${#bad[@]} of ${#files[@]} files differ from .clang-format:" >&2
    printf '  %s\n' "${bad[@]}" >&2
    echo "format: see the differences with: clang-format --dry-run ${bad[0]}" >&2
    echo "format: fix them with: scripts/check-format.sh --fix" >&2
    exit 1
fi
echo "format: ${#files[@]} files clean ($(clang-format --version | sed 's/.*version //'))"

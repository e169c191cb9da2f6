#!/usr/bin/env bash
# update-readme.sh -- rewrite README.md's settings table from `sandboxd --help-markdown`.
#
#   scripts/update-readme.sh [path/to/sandboxd]     default: build/sandboxd (built if missing)
#
# The table sits between <!-- settings:begin --> and <!-- settings:end -->; this checkout's
# path is shown as <repo>. tests/e2e/test_packaging.py fails while the two differ.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=${1:-build/sandboxd}
if [[ $# -eq 0 && ! -x $bin ]]; then
    [[ -f build/CMakeCache.txt ]] || cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build build -j"$(nproc)" --target sandboxd
fi
table=$("$bin" --help-markdown)
# The binary's default profile path was compiled in as the source directory it was built from.
src=$(sed -n 's|^CMAKE_HOME_DIRECTORY:INTERNAL=||p' "$(dirname "$bin")/CMakeCache.txt" 2>/dev/null || true)
for dir in "$root" ${src:+"$src"}; do
    table=${table//"$dir/"/<repo>/}
done
TABLE="$table" python3 - README.md <<'PY'
import os, re, sys
path = sys.argv[1]
text = open(path).read()
new, n = re.subn(r"(<!-- settings:begin -->\n).*?(<!-- settings:end -->)",
                 lambda m: m.group(1) + os.environ["TABLE"].strip() + "\n" + m.group(2),
                 text, flags=re.S)
if n != 1:
    sys.exit("update-readme: README.md needs exactly one settings:begin/end marker pair")
if new != text:
    open(path, "w").write(new)
    print("update-readme: settings table updated")
else:
    print("update-readme: settings table already current")
PY

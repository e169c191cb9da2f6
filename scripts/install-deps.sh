#!/usr/bin/env bash
# install-deps.sh -- install the Debian 12 packages sandboxd needs, and only those missing.
#
#   scripts/install-deps.sh [GROUP...]      install the packages of these groups (default: all
#                                           but "image"); groups are in scripts/packages.txt
#   scripts/install-deps.sh --list GROUP... print the package names of these groups and exit
#
# Quick and harmless to run again: when every package is installed (dpkg-query) it touches
# nothing and needs no root; otherwise it runs `apt-get update` once and installs the missing
# ones without recommends, as root (or through sudo). The Dockerfile runs it too, so the image
# and a host get the same packages.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
list="$here/packages.txt"

list_only=0
if [[ ${1:-} == --list ]]; then
    list_only=1
    shift
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
groups=("$@")
if ((${#groups[@]} == 0)); then
    groups=(build runtime test)
fi

# packages_of GROUP...: the names whose group list contains any of GROUP, in file order.
packages_of() {
    awk -v want=" $* " '
        /^[[:space:]]*(#|$)/ { next }
        {
            n = split($2, g, ",")
            for (i = 1; i <= n; i++)
                if (index(want, " " g[i] " ") && !seen[$1]++) { print $1; break }
        }' "$list"
}

for g in "${groups[@]}"; do
    if ! awk '!/^[[:space:]]*(#|$)/ { print $2 }' "$list" | tr , '\n' | grep -qx -- "$g"; then
        echo "install-deps: unknown group \"$g\" (see $list)" >&2
        exit 2
    fi
done

mapfile -t pkgs < <(packages_of "${groups[@]}")
if ((list_only)); then
    printf '%s\n' "${pkgs[@]}"
    exit 0
fi

# What installed packages provide also counts (e.g. Node from nodesource provides npm, and
# Debian's npm would conflict with it).
provided=" $(dpkg-query -W -f='${db:Status-Status} ${Provides}\n' 2>/dev/null |
    awk '$1 == "installed" { $1 = ""; print }' | sed 's/([^)]*)//g' | tr ',' ' ' | xargs) "
missing=()
for p in "${pkgs[@]}"; do
    # One line per installed architecture; "installed" on any of them will do.
    if ! dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed &&
        [[ $provided != *" $p "* ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#pkgs[@]} packages (${groups[*]}) already installed"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
as_root=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
        echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
        exit 1
    fi
    as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
fi
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
install() {
    "${as_root[@]}" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
}
"${as_root[@]}" apt-get "${apt_opts[@]}" update
if ! install; then
    # A mirror may have moved on between the update and the install; refresh once and retry.
    echo "install-deps: install failed; refreshing the package lists and retrying" >&2
    sleep 5
    "${as_root[@]}" apt-get "${apt_opts[@]}" update
    install
fi
echo "install-deps: done"

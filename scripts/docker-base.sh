#!/usr/bin/env bash
# docker-base.sh -- make sure the Docker engine has the Debian 12 slim base the Dockerfile
# starts from, building it locally when no registry can provide it.
#
#   scripts/docker-base.sh [IMAGE]      default IMAGE: debian:bookworm-slim
#
# When the engine already has IMAGE (pulled from a registry with `docker pull`, or made here
# before) nothing is done. Otherwise, without asking any registry, the image is made from
# Debian's own archive: `debootstrap --variant=minbase bookworm` into a
# temporary directory, slimmed the way Debian's official slim images are (no docs, man pages,
# locales or package lists, and a dpkg rule so later installs leave them out too), then
# `docker import`ed under IMAGE. Needs root for debootstrap (installed when missing) and
# the deb.debian.org mirror (DEBIAN_MIRROR overrides it). Takes about a minute.
set -euo pipefail

image=${1:-debian:bookworm-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
docker=${DOCKER:-docker}

if "$docker" image inspect "$image" >/dev/null 2>&1; then
    echo "docker-base: $image is already there"
    exit 0
fi
echo "docker-base: the engine has no $image; making it with debootstrap from $mirror"
if ((EUID != 0)); then
    echo "docker-base: debootstrap needs root" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends debootstrap
fi

work=$(mktemp -d /var/tmp/docker-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/log" 2>&1; then
    tail -n 20 "$work/log" >&2
    echo "docker-base: debootstrap failed" >&2
    exit 1
fi

# The same three suites a registry image has, in deb822 form.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# What makes an image "slim": dpkg leaves documentation and translations out of every package
# installed later, apt keeps no downloaded .debs, and what debootstrap installed loses them too
# (copyright files stay, as Debian's slim images keep them).
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,info,groff,lintian}/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
    "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.bash_history

tar --numeric-owner --xattrs -C "$root" -c . |
    "$docker" import --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase bookworm ($mirror)" - "$image" >/dev/null
echo "docker-base: made $image ($("$docker" image inspect -f '{{.Size}}' "$image" |
    awk '{printf "%.0f MB", $1 / 1e6}'))"

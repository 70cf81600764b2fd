#!/usr/bin/env bash
# Build the `debian:bookworm-slim` base image locally, for hosts that cannot pull from a
# registry. Does nothing when the image already exists. Run as root with the engine up
# (ensure-docker.sh).
#
# The root filesystem comes from debootstrap (minbase) against the host's own Debian mirror,
# so the image speaks to the same mirror the host does: the host's debian.sources and any
# apt.conf.d snippet turning off Valid-Until (dated snapshot mirrors) are copied in. The
# result carries the same tag as the official image, so Dockerfiles need no change.
#
# Environment:
#   CLAUDERON_DEBIAN_MIRROR  mirror URL to debootstrap from (default: the host's apt sources)
#   CLAUDERON_BASE_TAG       tag to produce (default: debian:bookworm-slim)
#
# Neighbours: ensure-docker.sh (engine), agent/Dockerfile (builds FROM this image).
set -euo pipefail

log() { printf 'bootstrap-base: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

tag="${CLAUDERON_BASE_TAG:-debian:bookworm-slim}"
suite=bookworm
sources_d=/etc/apt/sources.list.d/debian.sources
sources_list=/etc/apt/sources.list

if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag already present"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"

# The first URIs line of the deb822 file, else the first `deb` line of the classic file.
host_mirror() {
    if [ -r "$sources_d" ]; then
        awk '/^URIs:/ { print $2; exit }' "$sources_d"
    fi
    if [ -r "$sources_list" ]; then
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            "$sources_list"
    fi
}

mirror="${CLAUDERON_DEBIAN_MIRROR:-$(host_mirror | head -n 1)}"
[ -n "$mirror" ] || die "no Debian mirror found in $sources_d or $sources_list; set CLAUDERON_DEBIAN_MIRROR"

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap; }
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/clauderon-rootfs.XXXXXX")"
cleanup() { rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT

log "debootstrap $suite from $mirror"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >&2

# Apt inside the image uses the host's sources (when the mirror came from them) and the
# host's snippets that keep a dated snapshot mirror usable.
if [ -z "${CLAUDERON_DEBIAN_MIRROR:-}" ] && [ -r "$sources_d" ]; then
    cp "$sources_d" "$rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$rootfs/etc/apt/sources.list"
fi
for snippet in /etc/apt/apt.conf.d/*; do
    [ -f "$snippet" ] || continue
    if grep -qiE 'Check-Valid-Until|check-valid-until' "$snippet"; then
        cp "$snippet" "$rootfs/etc/apt/apt.conf.d/"
    fi
done

# Slim it the way the official -slim image is: no package lists, caches, docs, manuals or
# translations (copyright files stay), and dpkg and apt told to keep it so for later installs.
slim_rootfs() {
    local root="$1"
    if [ -z "$root" ] || [ "$root" = / ] || [ ! -d "$root/etc/dpkg" ]; then
        die "refusing to trim '$root'"
    fi
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    printf '%s\n' 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log \
        "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* \
        "$root"/usr/share/lintian/*
}
slim_rootfs "$rootfs"

log "importing as $tag"
tar -C "$rootfs" -c --numeric-owner . \
    | docker import \
        -c 'CMD ["bash"]' \
        -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$tag" >/dev/null
log "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"

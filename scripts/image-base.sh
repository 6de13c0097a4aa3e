#!/usr/bin/env bash
# Make a local stand-in for the Containerfile's default base image (a slim Debian bookworm with
# Python 3.11), for machines that cannot pull from public container registries.
#
# debootstrap builds a minimal bookworm root file system with python3 and python3-venv from
# Debian's package mirror; the tarball is cached, and buildah imports it as a local image.
# A second run finds the image (or the tarball) and is quick.
#
# Usage: scripts/image-base.sh [IMAGE]        prints the image name on its last line
# Env:   IMAGE_CACHE   cache directory           (default: build/image-cache, gitignored)
#        DEBIAN_MIRROR package mirror            (default: http://deb.debian.org/debian)
set -euo pipefail

suite=bookworm
packages=python3,python3-venv
key=$(printf '%s %s minbase v1' "$suite" "$packages" | sha256sum | cut -c1-12)
image=${1:-localhost/provider-aws-base:$suite-$key}
cache=${IMAGE_CACHE:-build/image-cache}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball=$cache/rootfs-$suite-$key.tar.gz

log() { printf 'image-base: %s\n' "$*" >&2; }

if buildah inspect --type image "$image" >/dev/null 2>&1; then
    log "found $image"
    echo "$image"
    exit 0
fi

if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing (run scripts/image-tools.sh)"; exit 1; }
    mkdir -p "$cache"
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$root" "$tarball.tmp"' EXIT
    log "debootstrap $suite ($packages) from $mirror; this takes a few minutes"
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
        log "debootstrap failed; the last lines of $cache/debootstrap.log:"
        tail -n 20 "$cache/debootstrap.log" >&2
        exit 1
    }
    # What a published slim image also leaves out: package lists, downloaded .debs, docs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    tar --numeric-owner -C "$root" -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    trap - EXIT
    log "cached $tarball"
fi

log "importing $tarball as $image"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$tarball" / >/dev/null
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --cmd python3 \
    --label org.opencontainers.image.description="local Debian $suite + python3 (debootstrap), stand-in for a public slim Python 3.11 image" \
    "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
trap - EXIT
echo "$image"

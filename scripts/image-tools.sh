#!/usr/bin/env bash
# Install what building and running the image needs, from Debian's packages: buildah (builds with
# --isolation chroot, no daemon), podman with runc (runs the image test; crun refuses hybrid
# cgroup hierarchies such as this machine's), and debootstrap (the local base image).
set -euo pipefail

install_missing() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "image-tools: missing $*; install them as root (apt-get install -y $*)" >&2
        exit 1
    fi
    echo "image-tools: installing $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "$@" >/dev/null
}

missing=()
for tool in buildah podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    install_missing "${missing[@]}"
fi

# buildah needs its storage driver (overlay here) to work; say plainly what is wrong rather than
# fail deep inside a build.
if ! info=$(buildah info 2>&1); then
    echo "image-tools: buildah cannot run on this machine: $info" >&2
    exit 1
fi

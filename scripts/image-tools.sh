#!/usr/bin/env bash
# Install what building and running the image needs, from Debian's packages: buildah (builds with
# --isolation chroot, no daemon), podman with runc (runs the image test; crun refuses hybrid
# cgroup hierarchies such as this machine's), and debootstrap (the local base image).
set -euo pipefail

missing=()
for tool in buildah podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "image-tools: missing ${missing[*]}; install them as root (apt-get install -y ${missing[*]})" >&2
    exit 1
fi
echo "image-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Build the Containerfile with buildah, without a daemon: scripts/image-build.sh IMAGE BASE
#
# Behind a TLS-inspecting proxy pip inside the build needs the host's CA bundle: the one pip uses
# here (PIP_CERT, else pip's `global.cert` setting, else the system bundle) is bind-mounted into
# the builder stage for the build only; it never lands in a layer.
set -euo pipefail
image=${1:?usage: image-build.sh IMAGE BASE}
base=${2:?usage: image-build.sh IMAGE BASE}

ca=${PIP_CERT:-$(python3 -m pip config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$/\1/p")}
[ -n "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
ca_args=()
if [ -n "$ca" ] && [ -f "$ca" ]; then
    ca_args=(--volume "$ca:/run/build-ca.crt:ro" --build-arg PIP_CERT=/run/build-ca.crt)
fi

exec buildah bud --isolation chroot --layers \
    --file Containerfile \
    --build-arg "BASE=$base" \
    "${ca_args[@]}" \
    --tag "$image" \
    .

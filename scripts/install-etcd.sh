#!/usr/bin/env bash
# Install etcd (Debian's etcd-server package) for the end-to-end tests' control plane, without
# letting the package start its own etcd service: testkit/cluster.py starts a private etcd per run.
set -euo pipefail

if command -v etcd >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "make cluster: etcd is missing; install it as root (apt-get install -y etcd-server)" >&2
    exit 1
fi
echo "make cluster: installing etcd-server" >&2
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d answering 101 stops the package's maintainer scripts from starting a service; it is
# removed again unless one was already there.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=true
fi
trap '[ "$own_policy" = true ] && rm -f "$policy"' EXIT
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
command -v etcd >/dev/null || { echo "make cluster: etcd-server installed no etcd command" >&2; exit 1; }

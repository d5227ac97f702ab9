#!/usr/bin/env bash
# Installs what `make test-container` needs, from Debian: podman (builds and runs the image),
# runc (crun refuses this machine's hybrid cgroup v1 + v2 layout), mmdebstrap (makes the Debian
# base image: CI reaches no image registry) and the system CA bundle (pip in the build trusts
# what the host trusts).
# How podman is set up for this machine (storage, cgroups) is tests/harness/container.py's job.
# Re-running is cheap: nothing is installed when every command is already there.
set -euo pipefail

missing=()
for cmd in podman mmdebstrap runc; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends \
        podman runc conmon mmdebstrap ca-certificates >/dev/null
fi

echo "install-container-tools: $(podman --version), mmdebstrap $(mmdebstrap --version | awk '{print $2}')"

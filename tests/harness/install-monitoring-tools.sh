#!/usr/bin/env bash
# Installs what `make test-monitoring` needs beyond Python, from Debian's packages:
#   prometheus  the server (the dashboard test scrapes a real service with it) and promtool
#               (`promtool test rules`, `check rules`, `check config`)
#   podman      podman-compose (a dev extra) asks `podman --version` before `config` and, without
#               it, prints an error yet exits 0; `config` itself starts no container.
# Only the binaries are used: the packages' services must not start (and cannot, in a container).
# Re-running is cheap: nothing is installed when the commands are already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1 \
    || ! command -v podman >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus podman >/dev/null
fi

echo "install-monitoring-tools: $(promtool --version 2>&1 | head -n 1); $(podman --version)"

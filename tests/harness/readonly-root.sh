#!/usr/bin/env bash
# readonly-root.sh CMD [ARG...]: runs CMD the way a pod with readOnlyRootFilesystem runs it,
# in a mount namespace of its own: every file system read-only but /proc, /sys and /dev, an
# empty tmpfs on /tmp (the pod's emptyDir), no capabilities and no new privileges. The working
# directory stays visible, read-only, even when it is under /tmp.
# The host's mounts are untouched: only this namespace's copies are remounted (`bind`
# changes the mount point's flag, never the file system's). Needs CAP_SYS_ADMIN (root).
set -euo pipefail
exec unshare --mount --propagation private -- bash -c '
    set -euo pipefail
    for mp in $(awk "{ print \$5 }" /proc/self/mountinfo | sort -u); do
        case "$mp" in /proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /tmp/*) continue ;; esac
        mount -o remount,bind,ro "$mp"
    done
    # The tmpfs hides what was under /tmp, but not from our working directory: a checkout
    # there is bound back in its place through "." (not canonicalized: the old directory).
    mount -t tmpfs -o size=1g,mode=1777 tmpfs /tmp
    if [[ "$PWD" == /tmp/* ]]; then
        mkdir -p "$PWD" && mount --no-canonicalize --bind . "$PWD" && mount -o remount,bind,ro "$PWD" && cd "$PWD"
    fi
    # The image seeds numba'"'"'s cache on the tmpfs from the kernels it compiled at build time
    # (deploy/container/entrypoint.sh); READONLY_ROOT_SEED="from:to" does the same here.
    if [[ -n "${READONLY_ROOT_SEED:-}" ]]; then
        mkdir -p "${READONLY_ROOT_SEED#*:}" && cp -R "${READONLY_ROOT_SEED%%:*}/." "${READONLY_ROOT_SEED#*:}/"
    fi
    # Proof the sandbox holds before anything runs in it.
    if touch "$PWD/.readonly-root-probe" 2>/dev/null; then
        echo "readonly-root: $PWD is writable" >&2
        rm -f "$PWD/.readonly-root-probe"
        exit 1
    fi
    exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"
' readonly-root "$@"

#!/bin/sh
# The image's entry point: `beaconwatch "$@"`, with the kernels compiled at build time in place.
# numba loads cached kernels only from a directory it can write (it probes each with a temporary
# file) and the root file system is read-only, so the image's cache is copied to NUMBA_CACHE_DIR
# (a tmpfs, ~6 MB) once per container. numba keeps any kernel it still has to compile there too.
set -eu
seed=/opt/beaconwatch/numba-cache
if [ ! -e "$NUMBA_CACHE_DIR/.seeded" ]; then
    if ! { mkdir -p "$NUMBA_CACHE_DIR" && cp -R "$seed/." "$NUMBA_CACHE_DIR/"; } 2>/dev/null; then
        echo "beaconwatch: NUMBA_CACHE_DIR=$NUMBA_CACHE_DIR is not writable; with a read-only" \
            "root file system mount a tmpfs there (podman/docker run --tmpfs /tmp)" >&2
        exit 1
    fi
    touch "$NUMBA_CACHE_DIR/.seeded"
fi
exec /opt/beaconwatch/bin/beaconwatch "$@"

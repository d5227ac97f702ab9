# beaconwatch service image: `docker build -t beaconwatch .` (or `podman build`).
#
# BASE is any image with Python >= 3.11 as `python3`, with its venv module: the official
# python:3.11-slim by default; `make test-container` passes a Debian bookworm base it makes with
# mmdebstrap (tests/harness/container.py). Both stages must use the same BASE: the venv links
# to its Python. If pip needs a private CA, pass the bundle as a build secret:
#   --secret id=pip_cert,src=/path/to/ca-bundle.crt
# Run it with a read-only root file system and a tmpfs at /tmp (numba's kernel cache, 6 MB):
#   docker run --read-only --tmpfs /tmp -e BEACONWATCH_KAFKA__BOOTSTRAP_SERVERS=... beaconwatch
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# Kernels are compiled for a generic x86-64 CPU, so the cache also matches on the machine that
# runs the image (numba keys cached machine code by CPU name and features).
ENV NUMBA_CACHE_DIR=/opt/beaconwatch/numba-cache \
    NUMBA_CPU_NAME=generic
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
# Everything goes into one venv, copied whole into the final stage: no wheel layer to delete.
# Byte code is compiled now, since a read-only root cannot take it later.
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python3 -m venv /opt/beaconwatch \
 && /opt/beaconwatch/bin/pip install --no-cache-dir --disable-pip-version-check . \
 && /opt/beaconwatch/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/beaconwatch/bin/python -m beaconwatch.warm_kernels

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    NUMBA_CPU_NAME=generic \
    PATH=/opt/beaconwatch/bin:$PATH
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin beaconwatch
COPY --from=build /opt/beaconwatch /opt/beaconwatch
COPY deploy/container/entrypoint.sh /opt/beaconwatch/entrypoint.sh
COPY config/beaconwatch.toml /etc/beaconwatch/beaconwatch.toml
USER 10001:10001
EXPOSE 9108
# The probe reads the service's config file and BEACONWATCH_* environment: it follows
# BEACONWATCH_METRICS__PORT or a mounted config with another [metrics] port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/opt/beaconwatch/bin/python", "-m", "beaconwatch.healthcheck", "--config", "/etc/beaconwatch/beaconwatch.toml"]
ENTRYPOINT ["/opt/beaconwatch/entrypoint.sh"]
CMD ["run", "--config", "/etc/beaconwatch/beaconwatch.toml"]

# beaconwatch service image: `docker build -t beaconwatch .`
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY service ./service
# A wheel without dev extras; numba/numpy come as manylinux wheels, no compiler needed.
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin beaconwatch
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/beaconwatch.toml /etc/beaconwatch/beaconwatch.toml
USER beaconwatch
EXPOSE 9108
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["beaconwatch"]
CMD ["run", "--config", "/etc/beaconwatch/beaconwatch.toml"]

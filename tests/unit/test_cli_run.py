"""`beaconwatch run` and the command line an operator meets first."""

from __future__ import annotations

import socket

import pytest

from beaconwatch import __version__
from beaconwatch.cli import main


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_an_unreachable_broker_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    monkeypatch.setenv("BEACONWATCH_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    for workers in ("1", "2"):
        assert main(["run", "--workers", workers]) == 1
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [
            f"beaconwatch: cannot reach Kafka at 127.0.0.1:{port} (kafka.bootstrap_servers, "
            "PLAINTEXT): no broker answered"
        ]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"beaconwatch {__version__}"

"""Alerts as ECS JSON lines to a file or stdout (the offline counterpart of the alerts topic)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.ecs import encode_alert


class JsonLinesSink:
    """Writes one ``encode_alert`` document per line. ``"-"`` means standard output."""

    def __init__(self, path: str | Path = "-", stdout: BinaryIO | None = None) -> None:
        self._own = str(path) != "-"
        self._stream: BinaryIO = (
            open(path, "wb")  # noqa: SIM115 - closed in close()
            if self._own
            else (stdout if stdout is not None else sys.stdout.buffer)
        )
        self.written = 0

    def write(self, alert: Alert) -> None:
        self._stream.write(encode_alert(alert) + b"\n")
        self.written += 1

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        if self._own:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""``beaconwatch scan``: the service's pipeline over files, offline, alerts as ECS JSON lines."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import BinaryIO, TextIO

import orjson

from beaconwatch.config import Config
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.decode.registry import DECODERS, get_decoder
from beaconwatch.sinks.jsonl import JsonLinesSink
from beaconwatch.sources.files import LineBatch, read_batches

PROGRESS_EVERY_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="JSON-lines files, .gz ok; - = stdin"
    )
    parser.add_argument("--format", default="goflow2-json", choices=sorted(DECODERS))
    parser.add_argument("--config", help="TOML config (scoring/state/alerting sections apply)")
    parser.add_argument("--output", default="-", help="alerts as ECS JSON lines (default stdout)")
    parser.add_argument(
        "--rejects",
        metavar="PATH",
        help="write rejected records here as JSON lines with file, line, reason and detail "
        "(scan has no dead-letter topic: without this they are only counted)",
    )
    parser.add_argument("--batch-records", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


class _RejectWriter:
    def __init__(self, path: str | None) -> None:
        self._stream: BinaryIO | None = open(path, "wb") if path else None  # noqa: SIM115
        self.by_reason: Counter[str] = Counter()

    def add(self, batch: LineBatch, index: int, reason: str, detail: str) -> None:
        self.by_reason[reason] += 1
        if self._stream is not None:
            source, line = batch.origins[index]
            raw = batch.records[index]
            self._stream.write(
                orjson.dumps(
                    {
                        "file": source,
                        "line": line,
                        "reason": reason,
                        "detail": detail,
                        "record": raw.decode("utf-8", errors="replace"),
                    }
                )
                + b"\n"
            )

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def run_scan(
    args: argparse.Namespace,
    config: Config,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    err = stderr if stderr is not None else sys.stderr
    pipeline = Pipeline(config, decoder=get_decoder(args.format))
    rejects = _RejectWriter(args.rejects)
    records = flows = 0
    started = last_report = time.monotonic()

    def progress(final: bool = False) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        tag = "done" if final else "scanning"
        print(
            f"{tag}: {records} records, {flows} flows ({flows / elapsed:,.0f} flows/s), "
            f"{sink.written} alerts",
            file=err,
            flush=True,
        )

    try:
        with JsonLinesSink(args.output, stdout=stdout) as sink:
            for batch in read_batches(args.files, args.batch_records, stdin=stdin):
                outcome = pipeline.process_records(batch.records)
                records += len(batch)
                flows += outcome.flows_accepted
                for alert in outcome.alerts:
                    sink.write(alert)
                for rejection in outcome.rejections:
                    rejects.add(batch, rejection.record_index, rejection.reason, rejection.detail)
                if not args.quiet and time.monotonic() - last_report >= PROGRESS_EVERY_S:
                    last_report = time.monotonic()
                    progress()
            # No end-of-input flush: pairs are scored at the connection that makes them due,
            # exactly as in the service, so scan emits what the service would have published.
            if not args.quiet:
                progress(final=True)
    finally:
        rejects.close()
    if rejects.by_reason:
        total = sum(rejects.by_reason.values())
        parts = ", ".join(f"{r}={n}" for r, n in sorted(rejects.by_reason.items()))
        where = f"written to {args.rejects}" if args.rejects else "not kept (use --rejects PATH)"
        print(
            f"rejected {total} records ({parts}); scan has no dead-letter topic: {where}",
            file=err,
        )
    return 0

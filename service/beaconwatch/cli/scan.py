"""``beaconwatch scan``: the service's pipeline over files, offline.

Reads any supported format (``--format auto`` by default: each file's first line, then each
record, tells), several files and stdin, ``.gz`` too. Alerts go to stdout or ``--output``:
a ranked table when that is a terminal, ECS (or OCSF: ``--alert-format``) JSON lines otherwise
(``--output-format``).
A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import BinaryIO, TextIO

import orjson

from beaconwatch.alerting.alert import CHANNEL_NAME, CHANNEL_PREFIX, Alert
from beaconwatch.alerting.formats import ALERT_FORMATS, alert_encoder
from beaconwatch.cli.scan_output import (
    OUTPUT_FORMATS,
    AlertWriter,
    PairTotals,
    ProgressBar,
    is_tty,
    terminal_width,
)
from beaconwatch.config import Config, NetworkConfig
from beaconwatch.core.detector import Detector
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.decode.base import Decoder, DecodeResult
from beaconwatch.decode.registry import FORMAT_NAMES, get_decoder
from beaconwatch.decode.zeek.zeek_tsv import ZeekHeader, ZeekTsvDecoder
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.names import name_hash
from beaconwatch.sources.files import LineBatch, ReadProgress, Segment, read_batches
from beaconwatch.state.levels import NAME_LEVEL, PREFIX_LEVEL

PROGRESS_EVERY_S = 0.2


# Exit status when input was read but every record was rejected (nothing was analysed).
EXIT_ALL_REJECTED = 3
# Above this share of rejected records the summary warns that the results cover the rest only.
WARN_REJECTED_SHARE = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="flow records: JSON lines, Zeek conn.log (TSV/CSV), ...; .gz ok; - = stdin",
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=sorted(FORMAT_NAMES),
        help="record format (default auto: told from each file's header or each record)",
    )
    parser.add_argument("--config", help="TOML config (network/scoring/state/alerting apply)")
    parser.add_argument("--output", default="-", help="where alerts go (default stdout)")
    parser.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        help="table (one ranked row per pair), jsonl (ECS alerts, as the service publishes "
        "them) or csv (one row per alert); default: table on a terminal, jsonl otherwise",
    )
    parser.add_argument(
        "--alert-format",
        choices=ALERT_FORMATS,
        help="documents of --output-format jsonl: ecs or ocsf (OCSF Detection Findings); "
        "default: alerting.format of the config (ecs)",
    )
    parser.add_argument(
        "--internal",
        action="append",
        metavar="CIDR",
        help="an internal network (repeatable); replaces network.internal_cidrs of the config",
    )
    parser.add_argument(
        "--rejects",
        metavar="PATH",
        help="write rejected records here as JSON lines with file, line, reason and detail "
        "(scan has no dead-letter topic: without this they are only counted)",
    )
    parser.add_argument("--batch-records", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")


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


class _SegmentDecoder:
    """The pipeline's decoder in scan: the decoder of the segment being read. Zeek TSV files
    each get a decoder for their own header; other formats share one instance per format."""

    name = "scan"

    def __init__(self) -> None:
        self._decoders: dict[tuple[str, tuple[bytes, ...]], Decoder] = {}
        self.current: Decoder | None = None

    def select(self, segment: Segment) -> None:
        key = (segment.format, segment.header if segment.format == "zeek-tsv" else ())
        decoder = self._decoders.get(key)
        if decoder is None:
            if segment.format == "zeek-tsv":
                decoder = ZeekTsvDecoder(ZeekHeader.parse(segment.header))
            else:
                decoder = get_decoder(segment.format)
            self._decoders[key] = decoder
        self.current = decoder

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        assert self.current is not None, "select() a segment first"
        return self.current.decode(records)


def pair_totals(detector: Detector, alerts: Sequence[Alert]) -> PairTotals:
    """Each alerted pair still tracked at the end of the input: (connections since first
    seen, first seen, last seen), for the table (an alert's own figures stop at the alert)."""
    totals: dict[bytes, tuple[int, int, int]] = {}
    for alert in alerts:
        key = alert.pair_key
        if key in totals:
            continue
        src, dst = ip_to_halves(alert.src_ip), ip_to_halves(alert.dst_ip)
        port_proto = alert.dst_port << 8 | alert.proto
        if alert.channel == CHANNEL_PREFIX:  # the prefix channel's row (`core.channels`)
            dst = ip_to_halves(alert.dst_prefix.split("/")[0])
            port_proto |= PREFIX_LEVEL
        if alert.channel == CHANNEL_NAME:  # the name channel's row (`state.name_channels`)
            dst = (name_hash(alert.dst_domain), 0)
            port_proto |= NAME_LEVEL
        for state in detector.partitions.values():
            table = state.table
            row = table.find(src, dst, port_proto)
            if row >= 0:
                totals[key] = (
                    int(table.count[row]),
                    int(table.first_seen_ms[row]),
                    int(table.last_seen_ms[row]),
                )
                break
    return totals


def with_internal_networks(config: Config, cidrs: list[str] | None) -> Config:
    """``config`` with ``network.internal_cidrs`` replaced (validated; ValueError if bad)."""
    if not cidrs:
        return config
    network = NetworkConfig.model_validate(
        {**config.network.model_dump(), "internal_cidrs": list(cidrs)}
    )
    return config.model_copy(update={"network": network})


def run_scan(
    args: argparse.Namespace,
    config: Config,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    err = stderr if stderr is not None else sys.stderr
    config = with_internal_networks(config, getattr(args, "internal", None))
    decoder = _SegmentDecoder()
    pipeline = Pipeline(config, decoder=decoder)
    rejects = _RejectWriter(args.rejects)

    to_file = args.output != "-"
    out: BinaryIO = (
        open(args.output, "wb")  # noqa: SIM115 - closed by AlertWriter
        if to_file
        else (stdout if stdout is not None else sys.stdout.buffer)
    )
    out_tty = not to_file and is_tty(out if stdout is not None else sys.stdout)
    output_format = args.output_format or ("table" if out_tty else "jsonl")
    encode = alert_encoder(config, getattr(args, "alert_format", None))
    sink = AlertWriter(out, output_format, own=to_file, width=terminal_width(out), encode=encode)
    sink.pair_totals = lambda alerts: pair_totals(pipeline.detector, alerts)
    bar = ProgressBar(err, terminal_width(err)) if is_tty(err) and not args.quiet else None
    reading = ReadProgress.for_paths(args.files)
    records = flows = 0
    started = last_shown = time.monotonic()

    def rate() -> float:
        return flows / max(time.monotonic() - started, 1e-9)

    try:
        for batch in read_batches(
            args.files, args.batch_records, stdin=stdin, format=args.format, progress=reading
        ):
            assert batch.segment is not None
            decoder.select(batch.segment)
            outcome = pipeline.process_records(batch.records)
            records += len(batch)
            flows += outcome.flows_accepted
            for alert in outcome.alerts:
                sink.write(alert)
            for rejection in outcome.rejections:
                rejects.add(batch, rejection.record_index, rejection.reason, rejection.detail)
            if bar is not None and time.monotonic() - last_shown >= PROGRESS_EVERY_S:
                last_shown = time.monotonic()
                total = reading.total_bytes
                fraction = reading.read_bytes / total if total else None
                bar.show(fraction, records, flows, rate(), sink.written)
        # No end-of-input flush: pairs are scored at the connection that makes them due,
        # exactly as in the service, so scan emits what the service would have published.
        total_rejected = sum(rejects.by_reason.values())
        if records and total_rejected >= records:
            sink.empty_table = "No flows analysed: every record was rejected (see below).\n"
    finally:
        if bar is not None:
            bar.clear()
        sink.close()
        rejects.close()
    if not args.quiet:
        print(
            f"done: {records} records, {flows} flows ({rate():,.0f} flows/s), "
            f"{sink.written} alerts",
            file=err,
            flush=True,
        )
    total_rejected = sum(rejects.by_reason.values())
    if not total_rejected:
        return 0
    parts = ", ".join(f"{r}={n}" for r, n in sorted(rejects.by_reason.items()))
    where = f"written to {args.rejects}" if args.rejects else "not kept (use --rejects PATH)"
    print(
        f"rejected {total_rejected} records ({parts}); scan has no dead-letter topic: {where}",
        file=err,
    )
    hint = "wrong --format?" if args.format != "auto" else "not flow records of a known format?"
    if total_rejected >= records:
        print(f"error: every record was rejected, nothing was analysed ({hint})", file=err)
        return EXIT_ALL_REJECTED
    if total_rejected >= WARN_REJECTED_SHARE * records:
        print(
            f"warning: {total_rejected / records:.0%} of the records were rejected; the "
            "results describe the rest only",
            file=err,
        )
    return 0

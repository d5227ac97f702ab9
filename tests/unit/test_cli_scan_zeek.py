"""``scan`` on Zeek logs and mixed inputs: file segments, formats, outputs, TTY behaviour, NjRAT."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
import pytest
from evaluation.data_dir import find_shared_data

from beaconwatch.cli import build_parser, main
from beaconwatch.cli import scan as scan_cli
from beaconwatch.cli.scan import run_scan, with_internal_networks
from beaconwatch.config import Config
from beaconwatch.sources.files import ReadProgress, read_batches

FIXTURES = Path(__file__).parent.parent / "fixtures" / "zeek"
SHARED = find_shared_data()
assert SHARED is not None, "the labelled captures (../shared/data) are needed by these tests"
NJRAT = SHARED / "stratosphere-njrat" / "conn.log.labeled"
C2 = ("192.168.1.115", "41.108.179.197", 1177, "tcp")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeBinaryTty(io.BytesIO):
    def isatty(self) -> bool:
        return True


def pairs(jsonl: bytes) -> set[tuple[str, str, int, str]]:
    out = set()
    for line in jsonl.splitlines():
        doc = orjson.loads(line)
        d = doc["destination"]
        out.add((doc["source"]["ip"], d["ip"], d["port"], doc["network"]["transport"]))
    return out


@pytest.mark.parametrize("fmt", ["zeek-tsv", "auto"])
def test_scan_finds_the_njrat_c2_channel(fmt: str, tmp_path: Path) -> None:
    out, rejects = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl"
    args = ["scan", "--quiet", "--format", fmt, "--output", str(out), "--rejects", str(rejects)]
    assert main([*args, str(NJRAT)]) == 0
    assert C2 in pairs(out.read_bytes())


def test_read_batches_consumes_headers_and_splits_segments(tmp_path: Path) -> None:
    log = (FIXTURES / "conn.log").read_bytes()
    twice = tmp_path / "rotated.log"
    twice.write_bytes(log + log)  # two logs concatenated: header, data, #close, header, ...
    csv_gz = tmp_path / "conn.csv.gz"
    csv_gz.write_bytes(gzip.compress((FIXTURES / "conn.csv").read_bytes()))
    paths = [str(twice), str(csv_gz), str(FIXTURES / "conn.json")]
    progress = ReadProgress.for_paths(paths)
    batches = list(read_batches(paths, 3, format="auto", progress=progress))
    assert [(len(b), b.segment.format, b.origins[0]) for b in batches if b.segment] == [
        (3, "zeek-tsv", (str(twice), 9)), (1, "zeek-tsv", (str(twice), 12)),
        (3, "zeek-tsv", (str(twice), 22)), (1, "zeek-tsv", (str(twice), 25)),
        (3, "zeek-tsv", (str(csv_gz), 2)),
        (3, "auto", (paths[2], 1)), (3, "auto", (paths[2], 4)), (1, "auto", (paths[2], 7)),
    ]  # fmt: skip
    segments = [b.segment for b in batches]
    assert segments[0] is segments[1] and segments[1] is not segments[2]
    assert segments[2] is not None and segments[2].header[0] == b"#separator \\x09"
    assert all(not r.startswith(b"#") for b in batches for r in b.records)
    assert progress.files_done == 3 and progress.read_bytes == progress.total_bytes
    assert ReadProgress.for_paths(["-"]).total_bytes is None


def test_scan_reads_every_zeek_shape_without_rejections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gz = tmp_path / "conn.log.gz"
    gz.write_bytes(gzip.compress((FIXTURES / "conn.log").read_bytes()))
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO((FIXTURES / "conn.json").read_bytes())))
    monkeypatch.setattr("sys.stdin", stdin)
    rejects = tmp_path / "rejects.jsonl"
    paths = [str(FIXTURES / "conn.log"), str(FIXTURES / "conn.csv"), str(gz), "-"]
    out = tmp_path / "a.csv"
    args = ["scan", "--output", str(out), "--output-format", "csv", "--rejects", str(rejects)]
    assert main([*args, *paths]) == 0
    assert rejects.read_bytes() == b""
    err = capsys.readouterr().err
    assert "done: 18 records" in err and "rejected" not in err
    assert out.read_text().startswith("event_id,severity,")


def _args(*extra: str) -> list[str]:
    return ["scan", "--quiet", *extra, str(FIXTURES / "conn.log")]


def test_default_output_is_a_table_on_a_terminal_and_json_lines_otherwise() -> None:
    tty, pipe = FakeBinaryTty(), io.BytesIO()
    assert run_scan(build_parser().parse_args(_args()), Config(), stdout=tty) == 0
    assert run_scan(build_parser().parse_args(_args()), Config(), stdout=pipe) == 0
    assert tty.getvalue() == b"No beaconing found.\n"  # four connections: no beacon
    assert pipe.getvalue() == b""
    forced = FakeBinaryTty()
    args = build_parser().parse_args(_args("--output-format", "jsonl"))
    assert run_scan(args, Config(), stdout=forced) == 0
    assert forced.getvalue() == b""


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_cli, "PROGRESS_EVERY_S", 0.0)
    argv = ["scan", "--batch-records", "1", "--output-format", "jsonl", str(FIXTURES / "conn.log")]
    tty_err, plain_err = FakeTty(), io.StringIO()
    run_scan(build_parser().parse_args(argv), Config(), stdout=io.BytesIO(), stderr=tty_err)
    run_scan(build_parser().parse_args(argv), Config(), stdout=io.BytesIO(), stderr=plain_err)
    assert "flows/s" in tty_err.getvalue() and "\r[" in tty_err.getvalue()
    assert "%" in tty_err.getvalue()  # file size known: a percentage
    assert "\r" not in plain_err.getvalue()
    assert plain_err.getvalue().startswith("done: 4 records")
    quiet = FakeTty()
    run_scan(
        build_parser().parse_args([*argv, "--quiet"]), Config(), stdout=io.BytesIO(), stderr=quiet
    )
    assert quiet.getvalue() == ""


def test_internal_networks_override(capsys: pytest.CaptureFixture[str]) -> None:
    config = with_internal_networks(Config(), ["147.32.0.0/16", "10.0.0.0/8"])
    assert config.network.internal_cidrs == ["147.32.0.0/16", "10.0.0.0/8"]
    assert with_internal_networks(Config(), None) == Config()
    assert main(["scan", "--internal", "not-a-net", str(FIXTURES / "conn.log")]) == 2
    assert "not-a-net" in capsys.readouterr().err


def test_no_alert_on_an_inbound_initiated_pair_of_the_benign_windows_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Attacks from outside on 147.32.81.167 (labelled Malicious) were turned round into "the
    # host beacons to its attacker": two alerts, to 45.140.140.75/78:10647 every 10 s. Zeek
    # says who originated each connection; every alert left is the host's own outbound pair.
    log = SHARED / "stratosphere-windows-benign" / "conn.log.labeled"
    originated: set[tuple[str, str, int]] = set()
    with log.open() as f:
        for line in f:
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            originated.add((cols[2], cols[4], int(cols[5])))  # id.orig_h, id.resp_h, resp_p
    out = tmp_path / "alerts.jsonl"
    args = ["scan", "--format", "zeek-tsv", "--internal", "147.32.0.0/16", "--output", str(out)]
    assert main([*args, str(log)]) == 0
    docs = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert docs, "the host's periodic update checks still alert"
    for doc in docs:
        pair = (doc["source"]["ip"], doc["destination"]["ip"], doc["destination"]["port"])
        assert pair in originated, pair  # the internal host started it
        block = doc["beacon"]  # long connections too (an MQTT push session, 3 a day)
        assert block["direction_inferred"] is False
    assert not {d["destination"]["ip"] for d in docs} & {"45.140.140.75", "45.140.140.78"}
    assert "inbound_initiated" not in capsys.readouterr().err  # ignored, not rejected

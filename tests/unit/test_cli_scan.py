"""``beaconwatch scan`` and ``beaconwatch simulate --output`` end to end, in process."""

from __future__ import annotations

import datetime
import gzip
import io
from pathlib import Path

import orjson
import pytest

from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.cli import main
from beaconwatch.cli.report import beacon_pair
from beaconwatch.cli.scan import EXIT_ALL_REJECTED
from beaconwatch.config import Config
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.simulate import SimulationSpec, TrafficSimulator, read_truth

START_MS = 1_700_000_000_000
SIM_ARGS = ["--seed", "5", "--hosts", "120", "--beacons", "4", "--start-ms", str(START_MS)]
DURATION_S = 7_200


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sim")
    flows, truth = d / "flows.jsonl", d / "truth.json"
    args = ["simulate", "--output", str(flows), "--truth", str(truth), *SIM_ARGS]
    assert main([*args, "--duration-s", str(DURATION_S)]) == 0
    return flows, truth


@pytest.fixture(scope="module")
def scanned(simulated: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("scan") / "alerts.jsonl"
    assert main(["scan", "--quiet", "--output", str(out), str(simulated[0])]) == 0
    return out.read_bytes()


def _pairs(alert_lines: bytes) -> set[tuple[str, str, int, int]]:
    pairs = set()
    for line in alert_lines.splitlines():
        doc = orjson.loads(line)
        pairs.add(
            (
                doc["source"]["ip"],
                doc["destination"]["ip"],
                doc["destination"]["port"],
                int(doc["network"]["iana_number"]),
            )
        )
    return pairs


def test_simulate_writes_the_simulator_records_and_the_truth(simulated: tuple[Path, Path]) -> None:
    flows, truth = simulated
    spec = SimulationSpec(seed=5, start_ms=START_MS, duration_s=DURATION_S, hosts=120, beacons=4)
    sim = TrafficSimulator(spec)
    expected = b"".join(r.value + b"\n" for r in sim.records())
    assert flows.read_bytes() == expected
    assert read_truth(truth) == sim.planted


def test_scan_alerts_on_exactly_the_planted_beacons(
    simulated: tuple[Path, Path], scanned: bytes
) -> None:
    planted = {beacon_pair(b) for b in read_truth(simulated[1])}
    assert len(planted) == 4
    assert _pairs(scanned) == planted


def test_scan_output_equals_pipeline_driven_output(
    simulated: tuple[Path, Path], scanned: bytes
) -> None:
    # What the service does per batch: Pipeline.process_records, then encode_alert per alert.
    records = simulated[0].read_bytes().splitlines()
    pipeline = Pipeline(Config())
    expected: list[bytes] = []
    for i in range(0, len(records), 10_000):
        outcome = pipeline.process_records(records[i : i + 10_000])
        assert outcome.rejections == []
        expected.extend(encode_alert(a) + b"\n" for a in outcome.alerts)
    assert scanned == b"".join(expected)
    assert len(expected) >= 4


def test_gzip_and_stdin_inputs_give_the_same_alerts(
    simulated: tuple[Path, Path],
    scanned: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    gz = tmp_path / "flows.jsonl.gz"
    gz.write_bytes(gzip.compress(simulated[0].read_bytes()))
    out = tmp_path / "gz.jsonl"
    assert main(["scan", "--quiet", "--output", str(out), str(gz)]) == 0
    assert out.read_bytes() == scanned

    fake_stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(simulated[0].read_bytes())))
    monkeypatch.setattr("sys.stdin", fake_stdin)
    capsysbinary.readouterr()
    assert main(["scan", "--quiet", "-"]) == 0
    assert capsysbinary.readouterr().out == scanned


def test_rejected_records_are_counted_and_written_with_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = next(TrafficSimulator(SimulationSpec(start_ms=START_MS, hosts=5)).records()).value
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b"\n".join([good, b"{not json", b"", b"[1, 2]", good]) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    code = main(
        ["scan", "--output", str(tmp_path / "a.jsonl"), "--rejects", str(rejects), str(src)]
    )
    assert code == 0
    lines = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    assert [(x["line"], x["reason"]) for x in lines] == [(2, "invalid_json"), (4, "not_an_object")]
    assert lines[0]["record"] == "{not json"
    assert lines[0]["file"] == str(src)
    err = capsys.readouterr().err
    assert "rejected 2 records" in err
    assert "no dead-letter topic" in err
    assert "done: 4 records, 2 flows" in err
    assert "warning: 50% of the records were rejected" in err


def test_rejections_without_rejects_path_say_how_to_keep_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"nope\n")
    assert main(["scan", "--output", str(tmp_path / "a.jsonl"), str(src)]) == EXIT_ALL_REJECTED
    assert "--rejects PATH" in capsys.readouterr().err


def test_every_record_rejected_exits_non_zero_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Seen: "No beaconing found." and exit 0 for a binary file and for a wrong --format.
    binary = tmp_path / "capture.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    table = tmp_path / "table.txt"
    args = ["scan", "--output-format", "table", "--output", str(table)]
    assert main([*args, str(binary)]) == EXIT_ALL_REJECTED
    err = capsys.readouterr().err
    assert "error: every record was rejected, nothing was analysed" in err
    assert "rejected " in err and "not flow records of a known format?" in err
    assert table.read_text() == "No flows analysed: every record was rejected (see below).\n"

    good = next(TrafficSimulator(SimulationSpec(start_ms=START_MS, hosts=5)).records()).value
    flows = tmp_path / "flows.jsonl"
    flows.write_bytes(good + b"\n")
    assert main([*args, "--format", "zeek-json", str(flows)]) == EXIT_ALL_REJECTED
    assert "(wrong --format?)" in capsys.readouterr().err
    assert main([*args, str(flows)]) == 0
    assert table.read_text() == "No beaconing found.\n"


def test_config_error_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[scoring]\nthreshhold = 0.5\n")
    assert main(["scan", "--config", str(cfg), str(tmp_path / "x")]) == 2
    assert "scoring.threshhold" in capsys.readouterr().err
    assert main(["run", "--config", str(cfg)]) == 2


def test_missing_input_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--output", str(tmp_path / "a.jsonl"), str(tmp_path / "nope.jsonl")]) == 1
    assert "nope.jsonl" in capsys.readouterr().err


def test_simulate_gzip_output_and_invalid_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "f.jsonl.gz"
    args = ["simulate", "--output", str(out), "--duration-s", "60", "--hosts", "10"]
    assert main([*args, "--start-ms", str(START_MS)]) == 0
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert lines and all(orjson.loads(x)["type"] == "IPFIX" for x in lines)
    assert main(["simulate", "--output", "-", "--hosts", "2", "--beacons", "3"]) == 2
    assert "beacons" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--output", "a", "--topic", "b"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "scan" in capsys.readouterr().out


def test_the_table_shows_each_pair_over_the_whole_input(tmp_path: Path) -> None:
    # Seen: CONNS, FIRST and LAST SEEN were the snapshot at the alert (8 connections, the
    # alert's time), however long the beacon went on after it.
    from tests.integration.test_service import flow_json

    t0 = 1_767_225_600_000
    src = tmp_path / "beacon.jsonl"
    times = [t0 + i * 60_000 + (i * 7919) % 3000 for i in range(40)]
    records = [
        flow_json(t, "10.0.0.7", "203.0.113.50", 443, 700, 40_000 + i) for i, t in enumerate(times)
    ]
    src.write_bytes(b"\n".join(records) + b"\n")
    table = tmp_path / "table.txt"
    args = ["scan", "--quiet", "--output-format", "table", "--output", str(table), str(src)]
    assert main(args) == 0
    text = table.read_text()
    header, row = text.splitlines()[:2]
    at = header.index("CONNS")  # right-aligned under its header
    assert "10.0.0.7" in row
    assert row[at : at + len("CONNS")].strip() == "40"  # the whole input, not the alert's
    last = datetime.datetime.fromtimestamp(times[-1] / 1000, tz=datetime.UTC)
    assert last.strftime("%H:%M:%S") in row

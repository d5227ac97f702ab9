"""`python -m evaluation --quick`: the whole evaluation end to end on a small scenario."""

from __future__ import annotations

from pathlib import Path

import pytest
from evaluation.__main__ import main


def test_eval_quick_writes_report_and_plots(tmp_path: Path) -> None:
    assert main(["--quick", "--output-dir", str(tmp_path)]) == 0
    md = (tmp_path / "evaluation.md").read_text(encoding="utf-8")
    for heading in (
        "## Summary",
        "## Recall on the synthetic grid",
        "## False alerts",
        "### The same office, packet-sampled",
        "## beaconwatch vs RITA v5",
        "## Real labelled captures",
        "## Where we lose",
        "## Data sources",
    ):
        assert heading in md
    assert "doi:10.5281/zenodo.4743746" in md
    assert "NjRAT" in md  # the real captures were replayed
    assert "| 1:10 |" in md and "| 1:100 |" in md  # the office replayed packet-sampled
    for png in (
        "recall_vs_jitter",
        "recall_vs_period",
        "score_distributions",
        "beaconwatch_vs_rita",
    ):
        data = (tmp_path / "evaluation" / f"{png}.png").read_bytes()
        assert data.startswith(b"\x89PNG")


def test_a_bad_config_stops_with_a_message(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[scoring]\nthreshold = 7\n")
    assert main(["--quick", "--config", str(bad), "--output-dir", str(tmp_path)]) == 2


def test_the_shared_data_variable_is_not_taken_for_a_config_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The config loader refuses unknown BEACONWATCH_* variables (a typo must not pass
    # silently), so the evaluation's own variable must live outside that prefix.
    from evaluation.data_dir import ENV_VAR, find_shared_data

    assert not ENV_VAR.startswith("BEACONWATCH_")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert find_shared_data() == tmp_path
    assert main(["--quick", "--data-dir", "none", "--output-dir", str(tmp_path)]) == 0

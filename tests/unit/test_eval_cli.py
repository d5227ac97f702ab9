"""`beaconwatch eval --quick`: the whole evaluation end to end on a small scenario."""

from __future__ import annotations

import time
from pathlib import Path

from beaconwatch.cli import main


def test_eval_quick_writes_report_and_plots(tmp_path: Path) -> None:
    started = time.perf_counter()
    assert main(["eval", "--quick", "--output-dir", str(tmp_path)]) == 0
    assert time.perf_counter() - started < 30
    md = (tmp_path / "evaluation.md").read_text(encoding="utf-8")
    for heading in (
        "## Summary",
        "## Recall on the synthetic grid",
        "## False alerts",
        "## beaconwatch vs RITA v5",
        "## Real labelled captures",
        "## Where we lose",
        "## Data sources",
    ):
        assert heading in md
    assert "doi:10.5281/zenodo.4743746" in md
    assert "NjRAT" in md  # the real captures were replayed
    for png in (
        "recall_vs_jitter",
        "recall_vs_period",
        "score_distributions",
        "beaconwatch_vs_rita",
    ):
        data = (tmp_path / "evaluation" / f"{png}.png").read_bytes()
        assert data.startswith(b"\x89PNG")

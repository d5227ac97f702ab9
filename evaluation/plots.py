"""PNG plots for docs/evaluation.md (matplotlib, Agg backend: no display needed).

matplotlib is the optional ``eval`` extra: it is imported here only, when plots are drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beaconwatch.domain.dtypes import F64
from evaluation.metrics import Curve, RecallCell


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def recall_lines(
    path: Path,
    series: Mapping[str, Mapping[object, RecallCell]],
    xlabel: str,
    title: str,
    *,
    log_x: bool = False,
) -> None:
    """One line per series: recall against a numeric key (jitter, period, ...)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, cells in series.items():
        xs = sorted(k for k in cells if isinstance(k, int | float))
        ys = [cells[x].recall for x in xs]
        ax.plot(xs, ys, marker="o", label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("recall (beacons with >= 12 check-ins)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def score_histogram(path: Path, groups: Mapping[str, F64], title: str, threshold: float) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    bins = np.linspace(0.0, 1.0, 41)
    for name, scores in groups.items():
        s = scores[np.isfinite(scores)]
        if s.size:
            ax.hist(s, bins=bins, alpha=0.55, label=f"{name} (n={s.size})", density=True)
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold}")
    ax.set_yscale("log")
    ax.set_xlabel("score")
    ax.set_ylabel("density (log)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def curves(
    path: Path,
    named: Sequence[tuple[str, Curve]],
    host_days: float,
    marks: Sequence[tuple[str, float, float]] = (),
) -> None:
    """Recall against false-alerting benign pairs per 1,000 host-days (log x)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    floor = 1000 / host_days / 2  # zero false pairs drawn half a pair below the first step
    for name, c in named:
        xs = np.maximum(1000 * c.false_pairs / host_days, floor)
        ax.step(xs, c.recall, where="post", label=name)
    for label, x, y in marks:
        ax.plot([max(x, floor)], [y], marker="o", color="k")
        ax.annotate(
            label, (max(x, floor), y), fontsize=7, xytext=(4, -10), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("benign pairs alerted per 1,000 host-days (log)")
    ax.set_ylabel("recall (beacons with >= 12 check-ins)")
    ax.set_title("Threshold sweep: beaconwatch vs RITA v5 beacon score")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""``python -m evaluation`` (``make eval``), from the repository root: the labelled benchmark,
RITA v5 comparison and real captures -> docs/evaluation.md and docs/evaluation/*.png. Needs the
``eval`` extra (matplotlib)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from beaconwatch.config import Config, ConfigError, load_config

DEFAULT_OUTPUT = Path("docs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation",
        description="labelled benchmark + RITA comparison + real captures -> docs/evaluation.md",
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run (seconds)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="writes OUTPUT_DIR/evaluation.md and OUTPUT_DIR/evaluation/*.png (default docs)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="labelled real captures (default ../shared/data from the repository root, if it "
        "exists; 'none' skips them)",
    )
    parser.add_argument("--hosts", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", help="TOML config (scoring/state/alerting/network apply)")
    return parser


def _data_dir(arg: Path | None) -> Path | None:
    if arg is not None:
        return None if str(arg) == "none" else arg
    from evaluation.data_dir import find_shared_data

    return find_shared_data()


def run_eval(args: argparse.Namespace, config: Config, *, stderr: TextIO | None = None) -> int:
    from dataclasses import replace

    from evaluation.evaluate import evaluate
    from evaluation.report import write_report
    from evaluation.scenarios import ScenarioSpec

    err = stderr if stderr is not None else sys.stderr
    spec = ScenarioSpec.quick(args.seed) if args.quick else ScenarioSpec(seed=args.seed)
    if args.hosts is not None:
        spec = replace(spec, hosts=args.hosts)
    started = time.perf_counter()
    results = evaluate(
        spec, config, data_dir=_data_dir(args.data_dir), log=lambda s: print(s, file=err)
    )
    command = "make eval" if not args.quick else "python -m evaluation --quick"
    if args.seed != 1:
        command = f"python -m evaluation --seed {args.seed}" + (" --quick" if args.quick else "")
    out_md = args.output_dir / "evaluation.md"
    write_report(results, out_md, args.output_dir / "evaluation", command)
    print(f"wrote {out_md} in {time.perf_counter() - started:.0f} s", file=err)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"evaluation: {exc}", file=sys.stderr)
        return 2
    return run_eval(args, config)


if __name__ == "__main__":
    sys.exit(main())

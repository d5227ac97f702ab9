"""The ``beaconwatch`` command: run | demo | simulate | scan | alerts.

(The evaluation is repository tooling: ``python -m evaluation`` from a checkout.)

Exit codes: 0 success, 1 runtime failure (unreadable input, broker error), 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from beaconwatch import __version__
from beaconwatch.cli import alerts, demo, run, scan, simulate
from beaconwatch.config import ConfigError, load_config

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beaconwatch", description="Streaming detector of C2 beaconing in flow telemetry."
    )
    parser.add_argument("--version", action="version", version=f"beaconwatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_arguments(commands.add_parser("run", help="consume flows from Kafka, publish alerts"))
    demo.add_arguments(
        commands.add_parser("demo", help="embedded broker + service + simulated traffic")
    )
    simulate.add_arguments(
        commands.add_parser("simulate", help="synthetic goflow2 JSON with planted beacons")
    )
    scan.add_arguments(commands.add_parser("scan", help="offline: files of flow records -> alerts"))
    alerts.add_arguments(
        commands.add_parser("alerts", help="follow the alerts topic as a readable table")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "simulate":
            return simulate.run_simulate(args)
        config = load_config(args.config)
        if args.command == "run":
            return run.run_service(args, config)
        if args.command == "demo":
            return demo.run_demo_command(args, config)
        if args.command == "alerts":
            return alerts.run_alerts(args, config)
        return scan.run_scan(args, config)
    except ConfigError as exc:
        print(f"beaconwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # e.g. an impossible simulation spec
        print(f"beaconwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"beaconwatch: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

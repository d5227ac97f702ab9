"""Rerunnable evaluation: a labelled synthetic benchmark, a RITA v5 reference scorer, metrics.

Evaluation tooling only: nothing in the service imports this package. ``beaconwatch eval``
(`beaconwatch.cli.eval`) drives it and writes ``docs/evaluation.md``.
"""

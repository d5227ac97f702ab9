"""Rerunnable evaluation: a labelled synthetic benchmark, a RITA v5 reference scorer, metrics.

Repository tooling beside ``bench/``, not part of the service or its wheel: nothing in
``beaconwatch`` imports it. ``python -m evaluation`` (``make eval``, from the repository root)
drives it and writes ``docs/evaluation.md``.
"""

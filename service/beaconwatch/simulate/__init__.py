"""Synthetic flow telemetry: benign background traffic with planted C2 beacons (and the truth)."""

from beaconwatch.simulate.generator import SimRecord, SimulationSpec, TrafficSimulator
from beaconwatch.simulate.model import (
    PlantedBeacon,
    SimFlow,
    read_truth,
    write_truth,
)

__all__ = [
    "PlantedBeacon",
    "SimFlow",
    "SimRecord",
    "SimulationSpec",
    "TrafficSimulator",
    "read_truth",
    "write_truth",
]

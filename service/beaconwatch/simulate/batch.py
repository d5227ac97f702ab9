"""The one batch builder of the traffic models: `SimFlow` rows -> the `FlowBatch` a decoder
would make of them (the initiator from the TCP flags, as `decode.common.initiator` reads them)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from beaconwatch.decode.common.initiator import tcp_flags_initiator
from beaconwatch.decode.common.protocols import protocol_number
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.simulate.model import SimFlow


@cache
def _halves(address: str) -> tuple[int, int]:
    # Replays convert the same few hundred addresses millions of times.
    return ip_to_halves(address)


@cache
def _proto(name: str) -> int:
    number = protocol_number(name)
    if number is None:
        raise ValueError(f"unknown protocol name {name!r}")
    return number


def to_batch(flows: Sequence[SimFlow]) -> FlowBatch:
    if not flows:
        return FlowBatch.empty(0)
    s = np.array([_halves(f.src_ip) for f in flows], dtype=np.uint64)
    d = np.array([_halves(f.dst_ip) for f in flows], dtype=np.uint64)
    proto = [_proto(f.proto) for f in flows]
    return FlowBatch.from_columns(
        start_ms=[f.start_ms for f in flows], end_ms=[f.end_ms for f in flows],
        src_hi=s[:, 0], src_lo=s[:, 1], dst_hi=d[:, 0], dst_lo=d[:, 1],
        src_port=[f.src_port for f in flows], dst_port=[f.dst_port for f in flows],
        proto=proto, bytes=[f.bytes for f in flows], packets=[f.packets for f in flows],
        sampling_rate=[f.sampling_rate for f in flows],
        initiator=[tcp_flags_initiator(p, f.tcp_flags) for p, f in zip(proto, flows, strict=True)],
    )  # fmt: skip

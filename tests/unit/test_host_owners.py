"""Hosts arriving on two partitions are counted (state split), handovers are not."""

from __future__ import annotations

import numpy as np

from beaconwatch.core.host_owners import HostOwners


def test_moves_are_counted_once_per_arrival_elsewhere() -> None:
    owners = HostOwners(slots_log2=10)
    a = np.array([11, 12, 13], dtype=np.uint64)
    assert owners.observe("p0", a) == 0
    assert owners.observe("p0", a) == 0  # same partition again: fine
    assert owners.observe("p1", np.array([12, 99], dtype=np.uint64)) == 1
    assert owners.observe("p0", np.array([12], dtype=np.uint64)) == 1  # and back
    assert owners.split_hosts == 2


def test_a_revoked_partitions_hosts_may_turn_up_elsewhere() -> None:
    owners = HostOwners(slots_log2=10)
    owners.observe("p0", np.array([5, 6], dtype=np.uint64))
    owners.forget(["p0"])
    assert owners.observe("p1", np.array([5, 6], dtype=np.uint64)) == 0


def test_colliding_hosts_never_count_as_moved() -> None:
    owners = HostOwners(slots_log2=4)  # 16 slots: 3 and 19 share slot 3
    owners.observe("p0", np.array([3], dtype=np.uint64))
    assert owners.observe("p1", np.array([19], dtype=np.uint64)) == 0

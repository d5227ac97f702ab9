"""Which input partition each internal host's flows arrive on, to catch split state.

A pair's history is whole only if all its flows reach one partition's state. After the
repartition stage that holds by construction; with `kafka.input_keyed_by_host` it holds only
if every collector really keys its records by source address. This remembers, per host, the
partition its last flows came from, and counts hosts that show up on another one: the
detector stage warns and exports the count. It sees the partitions of its own process only.

A direct-mapped table of host hashes (a fixed 12 MiB for 2^20 slots, whatever the number of
hosts): two hosts sharing a slot overwrite each other, which can hide a move but never report
one that did not happen (the whole 64-bit hash is compared).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable

import numpy as np
import numpy.typing as npt

# splitmix64's finaliser: every input bit moves every output bit.
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_SLOTS_LOG2 = 20
_NO_OWNER = -1


def host_hash(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A fixed 64-bit mix of 128-bit addresses: the same in every process and version."""
    with np.errstate(over="ignore"):
        z = lo ^ (hi * _GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        mixed: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return mixed


class HostOwners:
    def __init__(self, slots_log2: int = _SLOTS_LOG2) -> None:
        self._mask = np.uint64((1 << slots_log2) - 1)
        self._hashes = np.zeros(1 << slots_log2, dtype=np.uint64)
        self._owners = np.full(1 << slots_log2, _NO_OWNER, dtype=np.int32)
        self._ids: dict[Hashable, int] = {}
        self.split_hosts = 0  # hosts seen arriving on another partition than before (total)

    def observe(self, partition: Hashable, hosts: npt.NDArray[np.uint64]) -> int:
        """Record that ``hosts`` (unique `host_hash`es) arrived on ``partition``; returns how
        many of them last arrived on another partition."""
        if hosts.size == 0:
            return 0
        me = self._ids.setdefault(partition, len(self._ids))
        slots = (hosts & self._mask).astype(np.intp)
        owners = self._owners[slots]
        moved = (self._hashes[slots] == hosts) & (owners != _NO_OWNER) & (owners != me)
        self._hashes[slots] = hosts
        self._owners[slots] = me
        count = int(np.count_nonzero(moved))
        self.split_hosts += count
        return count

    def forget(self, partitions: Collection[Hashable]) -> None:
        """Partitions revoked: their hosts turning up elsewhere now is a handover, not a split."""
        for partition in partitions:
            found = self._ids.get(partition)
            if found is not None:
                self._owners[self._owners == found] = _NO_OWNER

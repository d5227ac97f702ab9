"""Sets of CIDR networks matched against the (hi, lo) uint64 address halves of a FlowBatch.

A handful of prefixes is matched with one vectorised mask-and-compare per prefix, which costs a
few nanoseconds per flow; IPv4 prefixes are stored as IPv4-mapped IPv6 prefixes, like the
addresses themselves (see `beaconwatch.domain.flows`). So an IPv6 prefix that covers
``::ffff:0:0/96`` (``::/0`` does) matches IPv4 addresses too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.dtypes import U64

_ALL_ONES = (1 << 128) - 1
_MAPPED = 0xFFFF_0000_0000
_ALL_ONES_64 = (1 << 64) - 1


def _prefix_bits(cidr: str) -> tuple[int, int]:
    """(network as a 128-bit int, mask as a 128-bit int) in the mapped address space."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 4:
        value = int(net.network_address) | _MAPPED
        length = 96 + net.prefixlen
    else:
        value = int(net.network_address)
        length = net.prefixlen
    mask = (_ALL_ONES << (128 - length)) & _ALL_ONES
    return value & mask, mask


@dataclass(frozen=True)
class NetworkSet:
    cidrs: tuple[str, ...]
    _net_hi: U64
    _net_lo: U64
    _mask_hi: U64
    _mask_lo: U64

    @classmethod
    def of(cls, cidrs: Iterable[str]) -> NetworkSet:
        cidrs = tuple(cidrs)
        bits = [_prefix_bits(c) for c in cidrs]

        def as_u64(values: list[int]) -> U64:
            return np.array(values, dtype=np.uint64)

        return cls(
            cidrs,
            as_u64([v >> 64 for v, _ in bits]),
            as_u64([v & 0xFFFF_FFFF_FFFF_FFFF for v, _ in bits]),
            as_u64([m >> 64 for _, m in bits]),
            as_u64([m & 0xFFFF_FFFF_FFFF_FFFF for _, m in bits]),
        )

    def contains(self, hi: U64, lo: U64) -> npt.NDArray[np.bool_]:
        """Element-wise: is the address in any of the networks?"""
        out = np.zeros(hi.shape, dtype=np.bool_)
        high_zero: npt.NDArray[np.bool_] | None = None
        scratch = np.empty(hi.shape, dtype=np.uint64)
        # Only the halves a prefix constrains are compared: an IPv4 prefix's high half is 0
        # (compared once for all of them), a prefix of /64 or shorter has no low half.
        for net_hi, net_lo, mask_hi, mask_lo in self._halves:
            hit: npt.NDArray[np.bool_] | None = None
            if mask_lo:
                np.bitwise_and(lo, mask_lo, out=scratch)
                hit = scratch == net_lo
            if mask_hi == _ALL_ONES_64 and net_hi == 0:
                if high_zero is None:
                    high_zero = hi == 0
                hit = high_zero if hit is None else hit & high_zero
            elif mask_hi:
                np.bitwise_and(hi, mask_hi, out=scratch)
                high = scratch == net_hi
                hit = high if hit is None else hit & high
            if hit is None:  # ::/0
                out[:] = True
                return out
            out |= hit
        return out

    @cached_property
    def _halves(self) -> list[tuple[np.uint64, np.uint64, np.uint64, np.uint64]]:
        return list(zip(self._net_hi, self._net_lo, self._mask_hi, self._mask_lo, strict=True))

    def __contains__(self, address: str) -> bool:
        value = int(ipaddress.ip_address(address))
        if ipaddress.ip_address(address).version == 4:
            value |= _MAPPED
        hi = np.array([value >> 64], dtype=np.uint64)
        lo = np.array([value & 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64)
        return bool(self.contains(hi, lo)[0])


# Never beacon endpoints: multicast, broadcast, link-local, loopback, unspecified.
SPECIAL_CIDRS = (
    "224.0.0.0/4", "255.255.255.255/32", "169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/32",
    "ff00::/8", "fe80::/10", "::1/128", "::/128",
)  # fmt: skip

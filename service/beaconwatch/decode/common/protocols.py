"""IP protocol names as goflow2 writes them in its JSON ``proto`` field <-> IANA numbers.

goflow2 v2 renders ``proto`` through a name table. Releases differ: early v2 releases know only
ICMP, TCP, UDP, ICMPv6 and SCTP (and print ``""`` for anything else); later releases use the
IANA "Keyword" column for 0..145 (so 58 is ``"IPv6-ICMP"``) and print ``"unassigned"``,
``"experimental"`` or ``"unknown"`` where the number cannot be recovered. With the ``none``
renderer configured, ``proto`` is the plain number instead. We accept all of these spellings
plus decimal strings (``"47"``); names that do not identify one number are left to the caller.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# IANA "Assigned Internet Protocol Numbers", keyword column, 0..145.
_IANA_KEYWORDS: tuple[str, ...] = (
    "HOPOPT", "ICMP", "IGMP", "GGP", "IPv4", "ST", "TCP", "CBT", "EGP", "IGP",  # 0-9
    "BBN-RCC-MON", "NVP-II", "PUP", "ARGUS", "EMCON", "XNET", "CHAOS", "UDP", "MUX",  # 10-18
    "DCN-MEAS", "HMP", "PRM", "XNS-IDP", "TRUNK-1", "TRUNK-2", "LEAF-1", "LEAF-2",  # 19-26
    "RDP", "IRTP", "ISO-TP4", "NETBLT", "MFE-NSP", "MERIT-INP", "DCCP", "3PC", "IDPR",  # 27-35
    "XTP", "DDP", "IDPR-CMTP", "TP++", "IL", "IPv6", "SDRP", "IPv6-Route", "IPv6-Frag",  # 36-44
    "IDRP", "RSVP", "GRE", "DSR", "BNA", "ESP", "AH", "I-NLSP", "SWIPE", "NARP",  # 45-54
    "Min-IPv4", "TLSP", "SKIP", "IPv6-ICMP", "IPv6-NoNxt", "IPv6-Opts",  # 55-60
    "any-host-internal-protocol", "CFTP", "any-local-network", "SAT-EXPAK", "KRYPTOLAN",  # 61-65
    "RVD", "IPPC", "any-distributed-file-system", "SAT-MON", "VISA", "IPCV", "CPNX",  # 66-72
    "CPHB", "WSN", "PVP", "BR-SAT-MON", "SUN-ND", "WB-MON", "WB-EXPAK", "ISO-IP", "VMTP",  # 73-81
    "SECURE-VMTP", "VINES", "IPTM", "NSFNET-IGP", "DGP", "TCF", "EIGRP", "OSPFIGP",  # 82-89
    "Sprite-RPC", "LARP", "MTP", "AX.25", "IPIP", "MICP", "SCC-SP", "ETHERIP", "ENCAP",  # 90-98
    "any-private-encryption-scheme", "GMTP", "IFMP", "PNNI", "PIM", "ARIS", "SCPS", "QNX",  # 99-106
    "A/N", "IPComp", "SNP", "Compaq-Peer", "IPX-in-IP", "VRRP", "PGM",  # 107-113
    "any-0-hop-protocol", "L2TP", "DDX", "IATP", "STP", "SRP", "UTI", "SMP", "SM", "PTP",  # 114-123
    "ISIS over IPv4", "FIRE", "CRTP", "CRUDP", "SSCOPMCE", "IPLT", "SPS", "PIPE", "SCTP",  # 124-132
    "FC", "RSVP-E2E-IGNORE", "Mobility Header", "UDPLite", "MPLS-in-IP", "manet", "HIP",  # 133-139
    "Shim6", "WESP", "ROHC", "Ethernet", "AGGFRAG", "NSH",  # 140-145
)  # fmt: skip

# Name -> number. Older goflow2 spells 58 "ICMPv6"; "reserved" is only ever 255.
PROTOCOL_NUMBERS: dict[str, int] = {
    **{name: number for number, name in enumerate(_IANA_KEYWORDS)},
    "ICMPv6": 58,
    "reserved": 255,
}

# Spellings that do not identify one protocol number (goflow2's fallbacks).
AMBIGUOUS_NAMES: frozenset[str] = frozenset({"", "unknown", "unassigned", "experimental"})

# Most frequent first: the numba scanner searches this order linearly.
_HOT_NAMES = ("TCP", "UDP", "ICMP", "ICMPv6", "IPv6-ICMP", "GRE", "ESP", "SCTP")


def protocol_number(name: str) -> int | None:
    """``"TCP"`` -> 6, ``"47"`` -> 47; None for ambiguous or unknown names."""
    number = PROTOCOL_NUMBERS.get(name)
    if number is not None:
        return number
    # Plain decimal 0..255 without sign, spaces or leading zeros (as Go's strconv prints).
    if 1 <= len(name) <= 3 and name.isascii() and name.isdigit():
        if len(name) > 1 and name[0] == "0":
            return None
        value = int(name)
        return value if value <= 255 else None
    return None


def name_table() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The names as a padded byte matrix, their lengths and numbers, for the numba scanner."""
    ordered = list(_HOT_NAMES) + [n for n in PROTOCOL_NUMBERS if n not in _HOT_NAMES]
    encoded = [name.encode("ascii") for name in ordered]
    width = max(len(e) for e in encoded)
    names = np.zeros((len(encoded), width), dtype=np.uint8)
    for row, raw in enumerate(encoded):
        names[row, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    numbers = np.array([PROTOCOL_NUMBERS[name] for name in ordered], dtype=np.int64)
    return names, lengths, numbers

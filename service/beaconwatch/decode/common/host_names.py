"""A host as a flow's name: an HTTP ``Host`` or TLS SNI value -> (hash, text) of the name."""

from __future__ import annotations

import ipaddress
from typing import Any

from beaconwatch.domain.names import hash_of


def host_name(value: Any) -> Any:
    """An HTTP ``host`` (or SNI) without its ``:port``; None for an IP literal."""
    if not isinstance(value, str):
        return value
    if value.startswith("["):  # [IPv6]:port
        return None
    text = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text
    return None


def host_name_hash(value: Any) -> tuple[int, str | None]:
    """(hash, normalised text) of a host value; (0, None) when it is no usable name (unset,
    an IP literal, garbage: `domain.names.normalise`)."""
    return hash_of(host_name(value))

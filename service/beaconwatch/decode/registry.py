"""Decoders by the name used in config (`kafka.input_format`) and on the `scan` command line."""

from __future__ import annotations

from collections.abc import Callable

from beaconwatch.decode.base import Decoder


def _goflow2_json() -> Decoder:
    from beaconwatch.decode.goflow2_json import Goflow2JsonDecoder

    return Goflow2JsonDecoder()


DECODERS: dict[str, Callable[[], Decoder]] = {"goflow2-json": _goflow2_json}

# Every format name config may use (the decoders themselves are imported only when built).
FORMAT_NAMES: tuple[str, ...] = tuple(DECODERS)


def get_decoder(name: str) -> Decoder:
    try:
        factory = DECODERS[name]
    except KeyError:
        raise ValueError(f"unknown input format {name!r}; known: {', '.join(DECODERS)}") from None
    return factory()

"""Every input format, registered once: its name (in config, `kafka.input_format`, and on the
`scan` command line), how to build its decoder, how ``auto`` sniffs its records, and the encoder
``simulate`` writes it with (by name: simulate imports decode, not the other way).

This module imports no decoder, encoder or configuration when it loads: the builders import
their decoder when called, so `config` can check format names here and `scan --help` lists
them without starting a numba kernel. Order matters: ``auto`` tries the sniffs of ``FORMATS``
from the top, so a format whose keys are more specific comes first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from beaconwatch.decode.sniff import Sniffer, length_delimited_protobuf, zeek_tsv_line

if TYPE_CHECKING:
    from beaconwatch.decode.base import Decoder


@dataclass(frozen=True, slots=True)
class FormatSpec:
    name: str
    build: Callable[[], Decoder]  # a decoder with the format's default options
    # ``auto``: a JSON record holding one of these quoted keys is of this format ...
    json_keys: tuple[bytes, ...] = ()
    # ... and a record that is not JSON is when this says so.
    sniff: Callable[[bytes], bool] | None = None
    # ``simulate``: the name of the function in `beaconwatch.simulate.encoders` that writes
    # simulated flows in this format (simulate sits above decode: it looks the name up itself).
    encoder: str | None = None


# -- goflow2 ------------------------------------------------------------------------------------


def _goflow2_json() -> Decoder:
    from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder

    return Goflow2JsonDecoder()


def _goflow2_pb() -> Decoder:
    from beaconwatch.decode.scan.goflow2_pb import Goflow2PbDecoder

    return Goflow2PbDecoder()


# -- Zeek ---------------------------------------------------------------------------------------


def _zeek_json() -> Decoder:
    from beaconwatch.decode.zeek.zeek_json import ZeekJsonDecoder

    return ZeekJsonDecoder()


def _zeek_tsv() -> Decoder:
    from beaconwatch.decode.zeek.zeek_tsv import ZeekTsvDecoder

    return ZeekTsvDecoder()  # default conn.log columns; files give their header (scan)


# -- pmacct, ECS --------------------------------------------------------------------------------


def _pmacct_json() -> Decoder:
    from beaconwatch.decode.parsed.pmacct_json import PmacctJsonDecoder

    return PmacctJsonDecoder()


def _ecs_json() -> Decoder:
    from beaconwatch.decode.parsed.ecs_json import EcsJsonDecoder

    return EcsJsonDecoder()


# -- ours ---------------------------------------------------------------------------------------


def _auto() -> Decoder:
    from beaconwatch.decode.auto import AutoDecoder

    return AutoDecoder(sniff_record, get_decoder, FORMAT_NAMES)


def _flow_columns() -> Decoder:
    from beaconwatch.decode.flow_columns import FlowColumnsDecoder

    return FlowColumnsDecoder()


FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec(
        "goflow2-json",
        _goflow2_json,
        json_keys=(b'"time_flow_start_ns"', b'"src_addr"', b'"time_received_ns"'),
        encoder="goflow2_json",
    ),
    FormatSpec(
        "zeek-json", _zeek_json, json_keys=(b'"id.orig_h"', b'"orig_h"'), encoder="zeek_json"
    ),
    FormatSpec("pmacct-json", _pmacct_json, json_keys=(b'"ip_src"',), encoder="pmacct_json"),
    FormatSpec(
        "ecs-json",
        _ecs_json,
        json_keys=(b'"source.ip"', b'"source"', b'"@timestamp"'),
        encoder="ecs_json",
    ),
    # A TSV line is tried before the protobuf frame: a short line can pass for both.
    FormatSpec("zeek-tsv", _zeek_tsv, sniff=zeek_tsv_line, encoder="zeek_tsv"),
    FormatSpec("goflow2-pb", _goflow2_pb, sniff=length_delimited_protobuf, encoder="goflow2_pb"),
    FormatSpec("auto", _auto),
    # The internal topic's format (written by the repartition stage), not a collector's.
    FormatSpec("beaconwatch-flows", _flow_columns),
)

SPECS: dict[str, FormatSpec] = {spec.name: spec for spec in FORMATS}
FORMAT_NAMES: tuple[str, ...] = tuple(SPECS)
ENCODED_FORMATS: tuple[str, ...] = tuple(spec.name for spec in FORMATS if spec.encoder is not None)

# ``auto``'s sniff: record -> format name, ``"json"`` or ``"unknown"``.
sniff_record = Sniffer(
    [(spec.name, spec.json_keys) for spec in FORMATS if spec.json_keys],
    [(spec.name, spec.sniff) for spec in FORMATS if spec.sniff is not None],
)


def format_spec(name: str) -> FormatSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown input format {name!r}; known: {', '.join(SPECS)}") from None


def get_decoder(name: str) -> Decoder:
    return format_spec(name).build()

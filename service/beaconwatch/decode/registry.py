"""Decoders by the name used in config (`kafka.input_format`) and on the `scan` command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from beaconwatch.decode.base import Decoder

if TYPE_CHECKING:
    from beaconwatch.config import KafkaConfig


def _goflow2_json() -> Decoder:
    from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder

    return Goflow2JsonDecoder()


def _goflow2_pb() -> Decoder:
    from beaconwatch.decode.scan.goflow2_pb import Goflow2PbDecoder

    return Goflow2PbDecoder()


def _zeek_json() -> Decoder:
    from beaconwatch.decode.zeek.zeek_json import ZeekJsonDecoder

    return ZeekJsonDecoder()


def _zeek_tsv() -> Decoder:
    from beaconwatch.decode.zeek.zeek_tsv import ZeekTsvDecoder

    return ZeekTsvDecoder()  # default conn.log columns; files give their header (scan)


def _auto() -> Decoder:
    from beaconwatch.decode.auto import AutoDecoder

    return AutoDecoder()


def _pmacct_json() -> Decoder:
    from beaconwatch.decode.parsed.pmacct_json import PmacctJsonDecoder

    return PmacctJsonDecoder()


def _ecs_json() -> Decoder:
    from beaconwatch.decode.parsed.ecs_json import EcsJsonDecoder

    return EcsJsonDecoder()


def _flow_columns() -> Decoder:
    from beaconwatch.decode.flow_columns import FlowColumnsDecoder

    return FlowColumnsDecoder()


DECODERS: dict[str, Callable[[], Decoder]] = {
    "pmacct-json": _pmacct_json,
    "ecs-json": _ecs_json,
    "goflow2-json": _goflow2_json,
    "goflow2-pb": _goflow2_pb,
    "zeek-json": _zeek_json,
    "zeek-tsv": _zeek_tsv,
    "auto": _auto,
    # The internal topic's format (written by the repartition stage), not a collector's.
    "beaconwatch-flows": _flow_columns,
}

# Every format name config may use (the decoders themselves are imported only when built).
FORMAT_NAMES: tuple[str, ...] = tuple(DECODERS)


def get_decoder(name: str) -> Decoder:
    try:
        factory = DECODERS[name]
    except KeyError:
        raise ValueError(f"unknown input format {name!r}; known: {', '.join(DECODERS)}") from None
    return factory()


class TopicDecoders:
    """The decoder of each input topic's format (`kafka.topic_formats`, else
    `kafka.input_format`), each built once; or one ``fixed`` decoder for every input."""

    def __init__(self, kafka: KafkaConfig, fixed: Decoder | None = None) -> None:
        self._kafka = kafka
        self._fixed = fixed
        self._built: dict[str, Decoder] = {}

    def for_topic(self, topic: str | None) -> Decoder:
        """Without a topic (files): the decoder of `kafka.input_format`."""
        if self._fixed is not None:
            return self._fixed
        kafka = self._kafka
        name = kafka.input_format if topic is None else kafka.format_for(topic)
        if name not in self._built:
            self._built[name] = get_decoder(name)
        return self._built[name]

    def build_all(self) -> None:
        """Build every configured topic's decoder now (decoders warm their own kernels)."""
        for topic in {*self._kafka.input_topics, *self._kafka.topic_formats}:
            self.for_topic(topic)

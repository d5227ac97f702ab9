"""The decoder of each input topic, as the configuration names its format."""

from __future__ import annotations

from beaconwatch.config import KafkaConfig
from beaconwatch.decode.base import Decoder
from beaconwatch.decode.registry import get_decoder


class TopicDecoders:
    """The decoder of each input topic's format (`kafka.topic_formats`, else
    `kafka.input_format`), each built once; or one ``fixed`` decoder for every input.

    A `zeek-tsv` topic named in `kafka.zeek_tsv_topics` gets a decoder of its own, built for
    the log and columns configured there (its lines carry no header)."""

    def __init__(self, kafka: KafkaConfig, fixed: Decoder | None = None) -> None:
        self._kafka = kafka
        self._fixed = fixed
        self._built: dict[str, Decoder] = {}  # by format name
        self._own: dict[str, Decoder] = {}  # by topic: decoders with the topic's options

    def for_topic(self, topic: str | None) -> Decoder:
        """Without a topic (files): the decoder of `kafka.input_format`."""
        if self._fixed is not None:
            return self._fixed
        kafka = self._kafka
        if topic is not None and topic in kafka.zeek_tsv_topics:
            if topic not in self._own:
                self._own[topic] = _zeek_tsv_decoder(kafka, topic)
            return self._own[topic]
        name = kafka.input_format if topic is None else kafka.format_for(topic)
        if name not in self._built:
            self._built[name] = get_decoder(name)
        return self._built[name]

    def build_all(self) -> None:
        """Build every configured topic's decoder now (decoders warm their own kernels)."""
        for topic in {*self._kafka.input_topics, *self._kafka.topic_formats}:
            self.for_topic(topic)


def _zeek_tsv_decoder(kafka: KafkaConfig, topic: str) -> Decoder:
    from beaconwatch.decode.zeek.zeek_tsv import ZeekHeader, ZeekTsvDecoder

    options = kafka.zeek_tsv_topics[topic]
    return ZeekTsvDecoder(ZeekHeader.for_log(options.log, options.fields))

"""Zeek TSV lines on Kafka carry no header: `kafka.zeek_tsv_topics` says which log (and which
columns) each zeek-tsv topic carries, checked at start-up; conn.log stays the default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beaconwatch.config import Config, ConfigError, KafkaConfig, load_config, with_overrides
from beaconwatch.decode.topic_decoders import TopicDecoders
from beaconwatch.decode.zeek.zeek_columns import DEFAULT_FIELDS, column_problem
from beaconwatch.decode.zeek.zeek_tsv import ZeekHeader, read_zeek_log
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.names import name_hash
from beaconwatch.domain.rejections import RejectReason
from beaconwatch.simulate.encoders import zeek_tsv
from tests.unit.test_decode_zeek_names import cdn_conns

FIXTURES = Path(__file__).parent.parent / "fixtures" / "zeek"
SSL = read_zeek_log(FIXTURES / "ssl.log")
HTTP = read_zeek_log(FIXTURES / "http.log")
CONN = read_zeek_log(FIXTURES / "conn.log")
# A site whose ssl.log has the columns of two common policy scripts more (ja3 plugin, certs).
SITE_SSL_FIELDS = [*DEFAULT_FIELDS["ssl"], "validation_status", "ja3", "ja3s"]


def names_of(flows: FlowBatch) -> list[str]:
    return [flows.names[h] for h in flows.name_hash.tolist()]


def kafka(**zeek_tsv_topics: dict[str, object]) -> KafkaConfig:
    topics = ["zeek.conn", "zeek.ssl", "zeek.http", "flows"]
    return with_overrides(
        Config(),
        kafka={
            "input_topics": topics,
            "topic_formats": dict.fromkeys(topics[:3], "zeek-tsv"),
            "zeek_tsv_topics": zeek_tsv_topics,
        },
    ).kafka


def test_the_default_columns_are_those_zeek_writes() -> None:
    """The fixtures' headers are Zeek 6/7's own (tests/fixtures/zeek/SOURCE.md)."""
    assert ZeekHeader.for_log("ssl").fields == SSL.header.fields
    assert ZeekHeader.for_log("http").fields == HTTP.header.fields
    assert ZeekHeader.for_log("conn").fields == ZeekHeader().fields  # the labels aside:
    assert CONN.header.fields[: len(ZeekHeader().fields)] == ZeekHeader().fields
    assert ZeekHeader.for_log("ssl").path == "ssl"


def test_each_topic_reads_its_own_log_without_a_header() -> None:
    decoders = TopicDecoders(kafka(**{"zeek.ssl": {"log": "ssl"}, "zeek.http": {"log": "http"}}))
    ssl = decoders.for_topic("zeek.ssl").decode(SSL.records)
    http = decoders.for_topic("zeek.http").decode(HTTP.records)
    lines = zeek_tsv(cdn_conns("10.0.0.5"))  # Zeek's default conn.log columns
    conn = decoders.for_topic("zeek.conn").decode(lines)
    # ssl/http lines are name annotations: the named ones only, none rejected.
    assert ssl.rejections == [] and http.rejections == []
    assert names_of(ssl.flows) == ["c2.example.net", "v6.example.org"]
    assert names_of(http.flows) == ["updates.example.com"]
    assert np.all(ssl.flows.annotation != 0) and np.all(http.flows.annotation != 0)
    assert ssl.flows.name_hash.tolist() == [name_hash(n) for n in names_of(ssl.flows)]
    # The conn topic (not named in zeek_tsv_topics) keeps Zeek's default conn.log columns.
    assert conn.rejections == [] and len(conn.flows) == len(lines) > 0
    assert not np.any(conn.flows.annotation)
    # One decoder per topic, built once.
    assert decoders.for_topic("zeek.ssl") is decoders.for_topic("zeek.ssl")
    assert decoders.for_topic("zeek.ssl") is not decoders.for_topic("zeek.conn")


def test_ssl_lines_on_a_conn_topic_are_rejected_not_misread() -> None:
    """Without the topic's configuration the lines are read as conn.log's 21 columns."""
    decoders = TopicDecoders(kafka())
    result = decoders.for_topic("zeek.ssl").decode(SSL.records)
    assert len(result.flows) == 0
    assert [r.reason for r in result.rejections] == [RejectReason.INVALID_FIELD] * 3
    assert "18 columns, the header has 21" in result.rejections[0].detail


def test_a_site_s_own_columns() -> None:
    values = {"ts": "1767324720.100000", "id.orig_h": "10.0.0.5", "id.orig_p": "50000",
              "id.resp_h": "23.1.2.3", "id.resp_p": "443", "server_name": "C2.example.net",
              "ja3": "e7d705a3286e19ea42f587b344ee6865"}  # fmt: skip
    line = "\t".join(values.get(f, "-") for f in SITE_SSL_FIELDS).encode()
    own = TopicDecoders(kafka(**{"zeek.ssl": {"log": "ssl", "fields": SITE_SSL_FIELDS}}))
    result = own.for_topic("zeek.ssl").decode([line])
    assert result.rejections == [] and names_of(result.flows) == ["c2.example.net"]
    # With Zeek's defaults the same line has three columns too many: rejected, not misread.
    default = TopicDecoders(kafka(**{"zeek.ssl": {"log": "ssl"}})).for_topic("zeek.ssl")
    assert default.decode([line]).rejections[0].detail == "21 columns, the header has 18"


def test_a_bad_name_gives_no_name_and_never_rejects_the_record() -> None:
    decoder = TopicDecoders(kafka(**{"zeek.ssl": {"log": "ssl"}})).for_topic("zeek.ssl")
    values = {"ts": "1767324720.1", "id.orig_h": "10.0.0.5", "id.orig_p": "1",
              "id.resp_h": "23.1.2.3", "id.resp_p": "443"}  # fmt: skip
    bad = ["-", "(empty)", "23.1.2.4", "\\xff\\xfe", "x" * 300, " "]

    def lines(names: list[str]) -> list[bytes]:
        fields = DEFAULT_FIELDS["ssl"]
        return ["\t".join({**values, "server_name": n}.get(f, "-") for f in fields).encode()
                for n in names]  # fmt: skip

    result = decoder.decode(lines(bad))
    assert result.rejections == [] and len(result.flows) == 0
    # The same lines with good names: one annotation row each.
    good = decoder.decode(lines([f"n{i}.example.com" for i in range(len(bad))]))
    assert good.rejections == [] and good.flows.record_index.tolist() == list(range(len(bad)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"log": "dns"}, "zeek_tsv_topics.zeek.ssl.log: Input should be 'conn', 'ssl' or 'http'"),
        ({"log": "ssl", "fields": []}, "fields: must name at least one column"),
        ({"log": "ssl", "fields": ["ts", "id.orig_h", "id.resp_h", "id.resp_p"]},
         "fields: a ssl.log needs the columns server_name"),
        ({"log": "http", "fields": list(DEFAULT_FIELDS["ssl"])},
         "fields: a http.log needs the columns host"),
        ({"log": "conn", "fields": ["ts", "id.orig_h", "id.resp_h"]},
         "fields: a conn.log needs the columns id.resp_p, proto"),
        ({"log": "ssl", "fields": [*DEFAULT_FIELDS["ssl"], "ts"]}, "column 'ts' is named twice"),
        ({"log": "ssl", "fields": [*DEFAULT_FIELDS["ssl"], " ja3"]}, "has spaces around it"),
        ({"log": "ssl", "separator": ","}, "zeek_tsv_topics.zeek.ssl.separator: unknown key"),
    ],
)  # fmt: skip
def test_bad_topic_options_are_config_errors_naming_the_key(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        kafka(**{"zeek.ssl": options})
    assert message in str(err.value)


def test_a_topic_of_another_format_cannot_take_zeek_tsv_options() -> None:
    with pytest.raises(ConfigError) as err:
        kafka(flows={"log": "ssl"})
    assert "zeek_tsv_topics names topic 'flows', whose format is 'goflow2-json'" in str(err.value)


def test_the_options_load_from_toml_and_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "bw.toml"
    path.write_text(
        '[kafka]\ninput_topics = ["zeek.conn", "zeek.ssl"]\ninput_format = "zeek-tsv"\n'
        '[kafka.zeek_tsv_topics."zeek.ssl"]\nlog = "ssl"\n'
        f"fields = {SITE_SSL_FIELDS!r}\n".replace("'", '"')
    )
    config = load_config(path, env={})
    assert config.kafka.zeek_tsv_topics["zeek.ssl"].log == "ssl"
    assert config.kafka.zeek_tsv_topics["zeek.ssl"].fields == SITE_SSL_FIELDS
    env = {
        "BEACONWATCH_KAFKA__INPUT_FORMAT": "zeek-tsv",
        "BEACONWATCH_KAFKA__ZEEK_TSV_TOPICS": '{ "zeek.http" = { log = "http" } }',
    }
    from_env = load_config(None, env=env)
    assert from_env.kafka.zeek_tsv_topics["zeek.http"].log == "http"
    assert from_env.kafka.zeek_tsv_topics["zeek.http"].fields is None


def test_column_problem_accepts_the_defaults() -> None:
    assert all(column_problem(log, fields) is None for log, fields in DEFAULT_FIELDS.items())

"""Destination names: normalisation and hash (`domain.names`), and the ECS decoder's name
fields (SNI, destination.domain, url.domain), hostile values included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from beaconwatch.decode.parsed.ecs_json import EcsJsonDecoder
from beaconwatch.domain.names import MAX_NAME_CHARS, NO_NAME, NameBook, hash_of, name_hash

FIXTURES = Path(__file__).parent.parent / "fixtures"
BASE = orjson.loads((FIXTURES / "ecs" / "same_flows.jsonl").read_bytes().splitlines()[2])
DECODER = EcsJsonDecoder()


def with_fields(**fields: Any) -> bytes:
    """BASE with nested fields set (``tls__client__server_name="..."``)."""
    obj = json.loads(json.dumps(BASE))
    for path, value in fields.items():
        *parents, leaf = path.split("__")
        node = obj
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return json.dumps(obj).encode()  # escapes a lone surrogate (orjson refuses one)


def decoded_name(record: bytes) -> tuple[int, str | None]:
    result = DECODER.decode([record])
    assert result.rejections == [], result.rejections
    h = int(result.flows.name_hash[0])
    return h, result.flows.names.get(h)


def test_hash_is_stable_and_never_zero() -> None:
    # Written to checkpoints and the internal topic: the same in every process.
    assert name_hash("c2.example.com") == 0xA9CBD4DF3AA4ED1E  # BLAKE2b-64, little-endian
    assert name_hash("c2.example.com") == name_hash("c2.example.com")
    assert name_hash("c2.example.com") != name_hash("c3.example.com")
    assert hash_of("C2.Example.COM.") == (name_hash("c2.example.com"), "c2.example.com")


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "   ",
        "a b.example",
        "tab\t.example",
        "nul\0.example",
        "x" * (MAX_NAME_CHARS + 1),
        "\ud800.example",
        42,
        None,
        ["c2.example.com"],
        {"a": 1},
    ],
)
def test_unusable_values_are_no_name(value: object) -> None:
    assert hash_of(value) == (NO_NAME, None)


def test_longest_usable_name() -> None:
    longest = "a" * MAX_NAME_CHARS
    assert hash_of(longest + ".")[1] == longest


def test_sni_is_preferred_then_destination_domain_then_url_domain() -> None:
    sni, dom, url = "sni.example.com", "dom.example.com", "url.example.com"
    everything = with_fields(tls__client__server_name=sni, destination__domain=dom, url__domain=url)
    assert decoded_name(everything) == (name_hash(sni), sni)
    assert decoded_name(with_fields(destination__domain=dom, url__domain=url)) == (
        name_hash(dom), dom,
    )  # fmt: skip
    assert decoded_name(with_fields(url__domain="URL.Example.com.")) == (name_hash(url), url)
    # Dotted keys, as other shippers write them.
    obj = json.loads(json.dumps(BASE))
    obj["tls.client.server_name"] = sni
    assert decoded_name(orjson.dumps(obj)) == (name_hash(sni), sni)


def test_an_unusable_name_falls_through_and_never_rejects_the_flow() -> None:
    dom = "dom.example.com"
    bad_sni = with_fields(tls__client__server_name="x" * 300, destination__domain=dom)
    assert decoded_name(bad_sni) == (name_hash(dom), dom)
    for value in ("", 17, "a\nb", {"nested": "x"}):
        assert decoded_name(with_fields(tls__client__server_name=value)) == (NO_NAME, None)
    # A lone surrogate escape: not valid JSON text for orjson, the record is rejected whole,
    # as any such string field was before names.
    result = DECODER.decode([with_fields(tls__client__server_name="\ud800")])
    assert len(result.flows) == 0 and result.rejections[0].reason == "invalid_json"


def test_no_name_fields_no_name() -> None:
    assert decoded_name(orjson.dumps(BASE)) == (NO_NAME, None)


def test_a_batch_carries_the_texts_of_its_kept_flows_only() -> None:
    good = with_fields(tls__client__server_name="a.example")
    rejected = with_fields(tls__client__server_name="b.example", source__ip="not-an-ip")
    result = DECODER.decode([good, rejected, orjson.dumps(BASE)])
    assert [r.record_index for r in result.rejections] == [1]
    assert result.flows.name_hash.tolist() == [name_hash("a.example"), 0]
    assert dict(result.flows.names) == {name_hash("a.example"): "a.example"}


def test_invalid_utf8_record_is_rejected_as_before() -> None:
    record = with_fields(tls__client__server_name="zz.example").replace(b"zz", b"\xff\xfe")
    result = DECODER.decode([record])
    assert len(result.flows) == 0 and result.rejections[0].reason == "invalid_utf8"


def test_name_book_is_bounded_and_keeps_recent_names() -> None:
    book = NameBook(max_names=3)
    book.add({1: "a", 2: "b", 3: "c"})
    book.add({1: "a"})  # used again: kept
    book.add([(4, "d")])
    assert len(book) == 3
    assert book.get(2) is None and book.get(1) == "a" and book.get(4) == "d"

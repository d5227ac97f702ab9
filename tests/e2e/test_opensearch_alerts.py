"""deploy/elasticsearch on a running search engine: install.sh, then real alerts indexed through
the ingest pipeline into the data stream its template makes.

The engine is OpenSearch 2.19 (tests/harness/opensearch.py): no Elasticsearch is served by the
registries CI reaches. It shares Elasticsearch 7.10's ingest and template APIs, so this proves
the pipeline's processors, conditions and templates, the data stream and the mappings for
real; what only Elasticsearch 8 has is checked against its own API types in
tests/unit/test_siem_elasticsearch.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from beaconwatch.alerting.ecs import encode_alert
from tests.harness.opensearch import OpenSearchNode
from tests.unit.siem_alerts import emitted_alerts, flatten
from tests.unit.test_siem_elasticsearch import field_type, leaves, merged_mappings

INSTALL = Path(__file__).parents[2] / "deploy" / "elasticsearch" / "install.sh"
STREAM = "logs-beaconwatch.alert-default"


@pytest.fixture(scope="module")
def node() -> Iterator[OpenSearchNode]:
    with OpenSearchNode() as running:
        subprocess.run([str(INSTALL)], env={**os.environ, "ES_URL": running.url}, check=True,
                       capture_output=True, timeout=60)  # fmt: skip
        yield running


def call(node: OpenSearchNode, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    request = urllib.request.Request(f"{node.url}/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def index(node: OpenSearchNode, body: Any) -> tuple[int, Any]:
    # op_type=create, as shippers write to a data stream
    return call(node, "POST", f"{STREAM}/_doc?refresh=true", body)


def stored(node: OpenSearchNode, doc_id: str) -> dict[str, Any]:
    status, found = call(node, "POST", f"{STREAM}/_search",
                         {"query": {"ids": {"values": [doc_id]}}})  # fmt: skip
    assert status == 200
    (hit,) = found["hits"]["hits"]
    source: dict[str, Any] = hit["_source"]
    return source


def test_install_sh_installs_what_the_data_stream_is_made_of(node: OpenSearchNode) -> None:
    status, pipelines = call(node, "GET", "_ingest/pipeline/beaconwatch-alert")
    assert status == 200 and "beaconwatch-alert" in pipelines
    status, templates = call(node, "GET", "_index_template/beaconwatch-alerts")
    assert status == 200
    (template,) = templates["index_templates"]
    assert template["index_template"]["composed_of"] == [
        "beaconwatch-alerts@ecs", "beaconwatch-alerts@beacon"
    ]  # fmt: skip


def test_an_alert_is_indexed_once_with_its_id_and_enrichments(node: OpenSearchNode) -> None:
    beacon, _ = emitted_alerts()
    before = datetime.now(UTC) - timedelta(seconds=5)
    status, created = index(node, encode_alert(beacon))
    assert status == 201, created
    assert created["_id"] == beacon.event_id  # the pipeline's _id
    assert created["_index"].startswith(f".ds-{STREAM}-")  # a data stream's backing index
    doc = stored(node, beacon.event_id)
    assert datetime.fromisoformat(doc["event"]["ingested"]) >= before
    assert doc["related"]["ip"] == [beacon.src_ip, beacon.dst_ip]
    want = orjson.loads(encode_alert(beacon))
    assert {k: v for k, v in doc.items() if k != "related"} == {
        **want,
        "event": {**want["event"], "ingested": doc["event"]["ingested"]},
    }
    # Delivered again (at-least-once): refused as a duplicate, still one document.
    status, refused = index(node, encode_alert(beacon))
    assert status == 409, refused
    status, count = call(node, "GET", f"{STREAM}/_count?q=event.id:{beacon.event_id}")
    assert count["count"] == 1


def test_an_alert_shipped_as_a_string_in_message_is_parsed(node: OpenSearchNode) -> None:
    _, long_connection = emitted_alerts()
    shipped = {  # as Filebeat's or Elastic Agent's Kafka input sends a record
        "@timestamp": datetime.now(UTC).isoformat(),
        "message": encode_alert(long_connection).decode(),
        "agent": {"type": "filebeat"},
    }
    status, created = index(node, shipped)
    assert status == 201, created
    doc = stored(node, long_connection.event_id)
    want = orjson.loads(encode_alert(long_connection))
    assert doc["@timestamp"] == want["@timestamp"] and doc["message"] == want["message"]
    assert doc["beacon"] == want["beacon"] and doc["rule"] == want["rule"]
    assert doc["event"]["kind"] == "alert" and "error" not in doc


def test_a_record_that_does_not_parse_is_kept_as_a_pipeline_error(node: OpenSearchNode) -> None:
    status, created = index(node, {"@timestamp": "2026-01-01T00:00:00Z", "message": "{oops"})
    assert status == 201, created
    doc = stored(node, created["_id"])
    assert doc["event"]["kind"] == "pipeline_error"
    assert doc["error"]["message"] and doc["message"] == "{oops"


def test_the_fields_have_the_templates_types_not_dynamic_ones(node: OpenSearchNode) -> None:
    for alert in emitted_alerts():  # both indexed by now, whatever the order of the tests
        index(node, encode_alert(alert))
    status, mappings = call(node, "GET", f"{STREAM}/_mapping")
    assert status == 200
    (backing,) = mappings.values()
    live = {p: field_type(f) for p, f in leaves(backing["mappings"]["properties"]).items()}
    want = {p: field_type(f) for p, f in leaves(merged_mappings()["properties"]).items()}
    for alert in emitted_alerts():
        for path in flatten(orjson.loads(encode_alert(alert))):
            assert live[path] == want.get(path, "keyword"), path  # labels.*: keyword
    # And they search as such: an IP range, a number range, a keyword.
    query = {"bool": {"filter": [
        {"term": {"source.ip": "10.0.15.0/24"}},
        {"range": {"destination.port": {"gte": 8000, "lt": 9000}}},
        {"term": {"beacon.severity": "high"}},
    ]}}  # fmt: skip
    status, found = call(node, "POST", f"{STREAM}/_search", {"query": query})
    assert [h["_id"] for h in found["hits"]["hits"]] == [emitted_alerts()[0].event_id]

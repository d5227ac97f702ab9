"""deploy/elasticsearch: the index template and ingest pipeline against ECS's own field list.

ECS 8.11.0's generated/csv/fields.csv and the allowed values of its categorization fields are
vendored in tests/fixtures/ecs-schema/8.11.0 (Apache-2.0, see its README). No Elasticsearch
runs here, so the structure is checked as Elasticsearch reads it: the component templates merged
in `composed_of` order, every emitted value against the type its field is mapped to; and each
file is type-checked as a request of Elasticsearch's own API types (tests/harness/es_api_types.py).
"""

from __future__ import annotations

import csv
import ipaddress
import json
import math
import re
from datetime import datetime
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from beaconwatch.alerting.ecs import ECS_VERSION
from tests.harness.es_api_types import type_check
from tests.unit.siem_alerts import emitted_documents, flatten

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "elasticsearch"
ECS_DIR = ROOT / "tests" / "fixtures" / "ecs-schema" / ECS_VERSION
CUSTOM = ("beacon.",)  # our namespace; ECS reserves labels.* for custom keyword pairs

# Parameters Elasticsearch accepts per field type (the ones a template like ours may use).
_COMMON = {"type", "meta", "index", "doc_values", "store", "null_value"}
_NUMERIC = _COMMON | {"coerce", "ignore_malformed"}
PARAMS = {
    "keyword": _COMMON | {"ignore_above", "fields", "normalizer", "eager_global_ordinals"},
    "match_only_text": {"type", "meta", "fields"},
    "date": _COMMON | {"format", "locale", "ignore_malformed"},
    "ip": _COMMON | {"ignore_malformed"},
    "long": _NUMERIC,
    "float": _NUMERIC,
    "double": _NUMERIC,
    "boolean": _COMMON,
    "object": {"type", "properties", "dynamic", "enabled", "subobjects"},
}
MAPPINGS_KEYS = {"properties", "dynamic", "dynamic_templates", "date_detection", "_meta", "_source"}
INDEX_TEMPLATE_KEYS = {"index_patterns", "composed_of", "template", "data_stream", "priority",
                       "version", "_meta", "allow_auto_create"}  # fmt: skip
COMPONENT_KEYS = {"template", "version", "_meta"}
TEMPLATE_KEYS = {"settings", "mappings", "aliases"}
PROCESSOR_COMMON = {"tag", "description", "if", "ignore_failure", "on_failure"}
PROCESSORS = {  # type -> (required, optional) parameters
    "json": ({"field"}, {"target_field", "add_to_root", "allow_duplicate_keys"}),
    "set": ({"field"}, {"value", "copy_from", "override", "ignore_empty_value", "media_type"}),
    "append": ({"field", "value"}, {"allow_duplicates", "media_type"}),
}  # fmt: skip


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DEPLOY / name).read_text(encoding="utf-8"))
    return doc


@cache
def ecs_fields() -> dict[str, dict[str, str]]:
    with (ECS_DIR / "fields.csv").open(encoding="utf-8", newline="") as fh:
        return {row["Field"]: row for row in csv.DictReader(fh)}


def installed() -> dict[str, str]:
    """API path -> file, as install.sh PUTs them."""
    calls = re.findall(r"^put (\S+) (\S+)$", (DEPLOY / "install.sh").read_text(), re.M)
    return dict(calls)


def merged_mappings() -> dict[str, Any]:
    """The mappings a new backing index gets: component templates in order, then the index
    template's own, later ones overriding earlier ones field by field."""
    template = load("index-template.json")
    files = installed()
    parts = [load(files[f"_component_template/{name}"]) for name in template["composed_of"]]
    merged: dict[str, Any] = {}
    for part in [*parts, template]:
        merge(merged, part.get("template", {}).get("mappings", {}))
    return merged


def merge(into: dict[str, Any], mappings: dict[str, Any]) -> None:
    for key, value in mappings.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        elif key == "dynamic_templates":
            into[key] = [*into.get(key, []), *value]
        else:
            into[key] = value


def leaves(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted path -> field mapping, for every mapped field (objects included)."""
    out: dict[str, dict[str, Any]] = {}
    for name, field in properties.items():
        path = f"{prefix}{name}"
        out[path] = field
        if "properties" in field:
            out.update(leaves(field["properties"], f"{path}."))
    return out


def field_type(field: dict[str, Any]) -> str:
    return str(field.get("type", "object"))


def mapped_type(mapping: dict[str, Any], path: str, value: Any) -> str | None:
    """The type ``path`` gets: mapped, else from a dynamic template, else None (unmapped)."""
    fields = leaves(mapping["properties"])
    if path in fields:
        return field_type(fields[path])
    for entry in mapping.get("dynamic_templates", []):
        (rule,) = entry.values()
        if fnmatchcase(path, rule["path_match"]) and rule.get("match_mapping_type") in (
            None, "*", "string" if isinstance(value, str) else None,
        ):  # fmt: skip
            return str(rule["mapping"]["type"])
    return None


def accepts(es_type: str, value: Any) -> bool:
    """Whether Elasticsearch indexes ``value`` into a field of ``es_type`` as it is."""
    if isinstance(value, list):
        return bool(value) and all(accepts(es_type, v) for v in value)
    if es_type in ("keyword", "match_only_text"):
        return isinstance(value, str)
    if es_type == "boolean":
        return isinstance(value, bool)
    if es_type == "long":
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    if es_type in ("float", "double"):
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if es_type == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True
    if es_type == "date":  # strict_date_optional_time: ISO 8601 with a zone
        try:
            return datetime.fromisoformat(value).tzinfo is not None
        except (TypeError, ValueError):
            return False
    return False


def test_the_templates_are_shaped_as_elasticsearch_reads_them() -> None:
    files = installed()
    template = load(files["_index_template/beaconwatch-alerts"])
    assert set(template) <= INDEX_TEMPLATE_KEYS
    assert set(template["template"]) <= TEMPLATE_KEYS
    assert template["index_patterns"] == ["logs-beaconwatch.alert-*"]
    assert template["data_stream"] == {}  # alerts are append-only: a data stream
    assert template["priority"] > 100  # above the built-in logs-*-*
    # Every component it names and the pipeline its settings name are installed, pipeline first.
    for name in template["composed_of"]:
        assert set(load(files[f"_component_template/{name}"])) <= COMPONENT_KEYS
    pipeline = template["template"]["settings"]["index"]["default_pipeline"]
    assert next(iter(files)) == f"_ingest/pipeline/{pipeline}"
    mapping = merged_mappings()
    assert set(mapping) <= MAPPINGS_KEYS
    for path, field in leaves(mapping["properties"]).items():
        es_type = field_type(field)
        assert es_type in PARAMS, f"{path}: type {es_type}"
        assert set(field) <= PARAMS[es_type], f"{path}: {set(field) - PARAMS[es_type]}"
    for entry in mapping["dynamic_templates"]:
        ((name, rule),) = entry.items()
        assert set(rule) <= {"path_match", "match_mapping_type", "mapping"}, name


def test_every_ecs_field_the_template_maps_has_the_type_ecs_gives_it() -> None:
    ecs = ecs_fields()
    mapping = merged_mappings()
    checked = 0
    for path, field in leaves(mapping["properties"]).items():
        if path.startswith(CUSTOM) or path + "." in CUSTOM:
            continue
        if path.startswith("labels."):  # ECS: custom key/value pairs, keyword values
            assert field_type(field) == "keyword", path
            continue
        if "properties" in field and path not in ecs:  # an object ECS lists no row for
            assert any(name.startswith(f"{path}.") for name in ecs), path
            continue
        assert path in ecs, f"{path} is mapped but is no ECS {ECS_VERSION} field"
        assert field_type(field) == ecs[path]["Type"], path
        checked += 1
    assert checked >= 40
    for entry in mapping["dynamic_templates"]:  # labels.*: ECS says keyword
        (rule,) = entry.values()
        assert rule["path_match"] == "labels.*" and rule["mapping"]["type"] == "keyword"


def test_every_field_an_emitted_alert_carries_is_mapped_and_takes_its_value() -> None:
    mapping = merged_mappings()
    ecs = ecs_fields()
    for doc in emitted_documents():
        for path, value in flatten(doc).items():
            es_type = mapped_type(mapping, path, value)
            assert es_type is not None, f"{path} is emitted but not mapped"
            assert accepts(es_type, value), f"{path}: {value!r} does not index as {es_type}"
            if path.startswith(CUSTOM):
                assert path not in ecs  # ours only where ECS has nothing
            elif not path.startswith("labels."):
                assert path in ecs, f"{path} is neither ECS nor under beacon.* / labels.*"
                if ecs[path]["Normalization"] == "array":
                    assert isinstance(value, list), f"ECS normalises {path} to an array"


def test_the_categorization_values_are_ones_ecs_allows() -> None:
    allowed = json.loads((ECS_DIR / "allowed_values.json").read_text(encoding="utf-8"))
    for doc in emitted_documents():
        event = doc["event"]
        assert event["kind"] in allowed["event.kind"]
        assert set(event["category"]) <= set(allowed["event.category"])
        assert set(event["type"]) <= set(allowed["event.type"])
        expected = {c: set(allowed["event.category"][c]) for c in event["category"]}
        # Each type is one some category expects, and each category gets a type it expects.
        assert all(any(t in types for types in expected.values()) for t in event["type"])
        assert all(types & set(event["type"]) for types in expected.values())
    # The pipeline's failure marker is allowed too.
    assert "pipeline_error" in allowed["event.kind"]


def test_the_mapping_types_drive_the_value_check() -> None:
    # The checker itself: a wrong type or value shape is caught, not waved through.
    assert not accepts("long", 1.5) and not accepts("long", True) and accepts("long", 443)
    assert not accepts("ip", "10.0.0.256") and accepts("ip", "2001:db8::1")
    assert not accepts("date", "2025-06-15 15:17") and accepts("date", "2025-06-15T15:17:37+00:00")
    assert not accepts("boolean", 1) and not accepts("keyword", 5)


# -- ingest pipeline ------------------------------------------------------------------------

MUSTACHE = re.compile(r"\{\{\{?\s*([\w.@]+)\s*\}?\}\}")
CTX_PATH = re.compile(r"ctx((?:\??\.[A-Za-z_]\w*(?!\w|\())+)")  # not a method call


def processors() -> list[tuple[str, dict[str, Any]]]:
    pipeline = load("ingest-pipeline.json")
    # No _meta: Elasticsearch takes it, OpenSearch (tests/e2e) rejects it.
    assert set(pipeline) <= {"description", "processors", "on_failure", "version"}
    return [next(iter(p.items())) for p in [*pipeline["processors"], *pipeline["on_failure"]]]


def test_the_pipeline_uses_known_processors_with_their_parameters() -> None:
    for kind, params in processors():
        assert kind in PROCESSORS, kind
        required, optional = PROCESSORS[kind]
        assert required <= set(params), f"{kind} lacks {required - set(params)}"
        assert set(params) <= required | optional | PROCESSOR_COMMON, kind
        if kind == "set":
            assert ("value" in params) != ("copy_from" in params)


def test_the_pipeline_reads_emitted_fields_and_writes_mapped_ones() -> None:
    mapping = merged_mappings()
    emitted = {
        prefix
        for doc in emitted_documents()
        for path in flatten(doc)
        for prefix in [".".join(path.split(".")[: i + 1]) for i in range(path.count(".") + 1)]
    }
    written = set()
    for kind, params in processors():
        field = params["field"]
        if not field.startswith("_"):  # _id and the like are metadata, not mapped
            written.add(field)
            sample = ["10.0.0.1"] if field == "related.ip" else "2025-06-15T15:17:37+00:00"
            if field.startswith("error.") or field == "event.kind":
                sample = "x"
            es_type = mapped_type(mapping, field, sample)
            assert es_type is not None, f"the pipeline writes {field}, which is not mapped"
        values = params.get("value", [])
        for template in values if isinstance(values, list) else [values]:
            for read in MUSTACHE.findall(template):
                assert read.startswith("_ingest.") or read in emitted, read
        for read in CTX_PATH.findall(params.get("if", "")):
            path = read.replace("?", "").lstrip(".")
            assert path in emitted, f"the condition of {kind} reads {path}, never emitted"
    assert {"event.ingested", "related.ip"} <= written
    assert mapped_type(mapping, "event.ingested", "") == "date"


@pytest.mark.parametrize("name", ["beacon", "long-connection"])
def test_the_id_the_pipeline_sets_is_the_alerts_event_id(name: str) -> None:
    (doc,) = [
        d for d in emitted_documents() if (d["rule"]["id"].find("long") >= 0) == (name != "beacon")
    ]
    (id_set,) = [p for kind, p in processors() if kind == "set" and p["field"] == "_id"]
    (read,) = MUSTACHE.findall(id_set["value"])
    assert flatten(doc)[read] == doc["event"]["id"]


# -- Elasticsearch's own API types ----------------------------------------------------------

REQUEST_TYPES = {  # install.sh's API path prefix -> the client's request type
    "_ingest/pipeline/": ("IngestPutPipelineRequest", "id"),
    "_component_template/": ("ClusterPutComponentTemplateRequest", "name"),
    "_index_template/": ("IndicesPutIndexTemplateRequest", "name"),
}


def requests() -> list[tuple[str, dict[str, Any]]]:
    """Each file install.sh PUTs, as the request the client would send."""
    out = []
    for path, file in installed().items():
        prefix, name = path.rsplit("/", 1)
        request_type, key = REQUEST_TYPES[f"{prefix}/"]
        out.append((request_type, {key: name, **load(file)}))
    return out


def test_the_files_are_valid_requests_of_elasticsearchs_api_types() -> None:
    result = type_check(requests())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_api_type_check_rejects_a_typo_and_an_unknown_field_type() -> None:
    bodies = requests()
    pipeline = next(body for kind, body in bodies if kind == "IngestPutPipelineRequest")
    pipeline["processors"][1]["set"]["feild"] = "event.ingested"
    ecs = next(body for kind, body in bodies if body.get("name") == "beaconwatch-alerts@ecs")
    ecs["template"]["mappings"]["properties"]["source"]["properties"]["ip"]["type"] = "ipv4"
    result = type_check(bodies)
    assert result.returncode != 0
    assert "'\"feild\"' does not exist in type 'IngestSetProcessor'" in result.stdout
    assert "'\"ipv4\"' is not assignable" in result.stdout

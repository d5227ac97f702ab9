"""Validate OCSF events against the real OCSF schema.

The compiled schema (the schema server's export) of each OCSF version ships inside the PyPI
package ocsf-json-schema (Apache-2.0, like OCSF), which also turns a class into JSON Schema
(draft 2020-12): every attribute must exist in the class or object (additionalProperties is
false), types, ranges and the data types' patterns (ip_t, port_t, ...) must match, required
attributes must be present, enum attributes must hold one of their ids. On top of that, rules
JSON Schema cannot state, read from the same compiled schema:

* type_uid = class_uid * 100 + activity_id, category_uid the class's category;
* an enum attribute's sibling (severity for severity_id, ...) is its id's caption (99 = Other
  may carry any text);
* metadata.version is the version validated against;
* each observable names an attribute path that holds its value, and its type_id is the
  observable id of that attribute's data type (ip_t -> 2, port_t -> 11).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

OTHER = "99"


@functools.cache
def compiled(version: str) -> dict[str, Any]:
    schema: dict[str, Any] = get_ocsf_schema(version=version)
    assert schema["version"] == version
    return schema


@functools.cache
def validator(version: str, class_name: str, profiles: tuple[str, ...]) -> Draft202012Validator:
    json_schema = OcsfJsonSchemaEmbedded(compiled(version)).get_class_schema(
        class_name, profiles=list(profiles)
    )
    Draft202012Validator.check_schema(json_schema)
    return Draft202012Validator(json_schema)


def ocsf_errors(event: dict[str, Any], version: str) -> list[str]:
    """Every way ``event`` breaks OCSF ``version`` (empty: valid)."""
    schema = compiled(version)
    classes = {c["uid"]: c for c in schema["classes"].values()}
    cls = classes.get(event.get("class_uid"))  # type: ignore[arg-type]
    if cls is None:
        return [f"class_uid {event.get('class_uid')!r} is no class of OCSF {version}"]
    profiles = tuple(sorted(event.get("metadata", {}).get("profiles", [])))
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator(version, cls["name"], profiles).iter_errors(event)
    ]
    if event.get("metadata", {}).get("version") != version:
        errors.append(f"metadata.version is not {version}")
    if event.get("category_uid") != cls["category_uid"]:
        errors.append(f"category_uid is not {cls['category_uid']} ({cls['category_name']})")
    activity = event.get("activity_id")
    if isinstance(activity, int) and event.get("type_uid") != cls["uid"] * 100 + activity:
        errors.append(f"type_uid {event.get('type_uid')} is not class_uid * 100 + activity_id")
    errors += _sibling_errors(event, cls["attributes"], schema, "")
    errors += _observable_errors(event, cls["attributes"], schema)
    return errors


def _sibling_errors(
    value: dict[str, Any], attributes: dict[str, Any], schema: dict[str, Any], path: str
) -> list[str]:
    errors = []
    for name, attr in attributes.items():
        if name not in value:
            continue
        here = f"{path}{name}"
        if attr.get("enum") and attr.get("sibling") in value:
            key = str(value[name])
            want = attr["enum"].get(key, {}).get("caption")
            if key != OTHER and value[attr["sibling"]] != want:
                errors.append(f"{path}{attr['sibling']} is not {want!r} (the caption of {here})")
        if attr.get("type") == "object_t" and attr["object_type"] in schema["objects"]:
            inner = schema["objects"][attr["object_type"]]["attributes"]
            items = value[name] if attr.get("is_array") else [value[name]]
            for item in items:
                if isinstance(item, dict):
                    errors += _sibling_errors(item, inner, schema, f"{here}.")
    return errors


def _observable_errors(
    event: dict[str, Any], attributes: dict[str, Any], schema: dict[str, Any]
) -> list[str]:
    errors = []
    types = schema["dictionary"]["types"]["attributes"]
    for obs in event.get("observables", []):
        found = list(_resolve(event, attributes, schema, obs.get("name", "").split(".")))
        if not any(str(v) == obs.get("value") for v, _ in found):
            errors.append(f"observable {obs.get('name')!r} does not hold {obs.get('value')!r}")
            continue
        kinds = {types.get(t, {}).get("observable") for _, t in found}
        if obs.get("type_id") not in kinds:
            errors.append(f"observable {obs.get('name')!r}: type_id is not one of {kinds}")
    return errors


def _resolve(
    value: Any, attributes: dict[str, Any], schema: dict[str, Any], parts: list[str]
) -> Iterator[tuple[Any, str]]:
    """(value, data type) of each attribute an observable name points at (arrays expand)."""
    attr = attributes.get(parts[0])
    if attr is None or not isinstance(value, dict) or parts[0] not in value:
        return
    items = value[parts[0]] if attr.get("is_array") else [value[parts[0]]]
    for item in items:
        if len(parts) == 1:
            yield item, attr["type"]
        elif attr.get("type") == "object_t":
            inner = schema["objects"][attr["object_type"]]["attributes"]
            yield from _resolve(item, inner, schema, parts[1:])

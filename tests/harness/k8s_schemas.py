"""Kubernetes API schemas -> standalone, strict JSON schemas in kubeconform's file layout.

    python tests/harness/k8s_schemas.py openapi <swagger.json> <out dir>
    python tests/harness/k8s_schemas.py crd <out dir> <crd.yaml>...

kubeconform looks a resource's schema up as ``<kind>-<group's first label>-<version>.json``
(``deployment-apps-v1.json``, ``service-v1.json``, ``podmonitor-monitoring-v1.json``), lower
case. Its default schemas live on GitHub, which CI cannot reach; this writes the same layout
from the OpenAPI v2 spec in the k8s.io/kubernetes Go module (``api/openapi-spec/swagger.json``)
and from CustomResourceDefinitions (their ``openAPIV3Schema``).

Each file is standalone: the definitions its kind reaches are copied into it and ``$ref``s
point there. Strict: an object that lists its properties rejects any other (a typo'd field
fails, as with the API server's strict field validation) unless it preserves unknown fields.
A field may be null (the API server takes null as unset), but the root's ``apiVersion`` and
``kind`` must be the kind's own. CEL rules (``x-kubernetes-validations``) are not checked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]

_REF_PREFIX = "#/definitions/"
# Types the spec describes as strings but the API also takes as numbers (`cpu: 1`, `port: 9108`).
_INT_OR_STRING: Schema = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
_QUANTITY: Schema = {"oneOf": [{"type": "string"}, {"type": "number"}]}
_COPIED_KEYS = (
    "type",
    "format",
    "enum",
    "required",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
)
_BRANCH_KEYS = ("anyOf", "oneOf", "allOf")


def convert(node: Schema, refs: set[str], *, strict: bool = True) -> Schema:
    """One schema node, strict and nullable; collects the definitions it refers to."""
    if "$ref" in node:
        name = node["$ref"].removeprefix(_REF_PREFIX)
        refs.add(name)
        return {"$ref": _REF_PREFIX + name}
    if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
        return dict(_INT_OR_STRING)
    out: Schema = {key: node[key] for key in _COPIED_KEYS if key in node}
    if "type" in out:
        out["type"] = [out["type"], "null"]
    if "items" in node:
        out["items"] = convert(node["items"], refs)
    if "properties" in node:
        out["properties"] = {k: convert(v, refs) for k, v in node["properties"].items()}
    for key in _BRANCH_KEYS:
        if key in node:
            # A branch only adds constraints to its parent's fields: never strict on its own.
            out[key] = [convert(branch, refs, strict=False) for branch in node[key]]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = convert(extra, refs)
    elif extra is not None:
        out["additionalProperties"] = bool(extra)
    elif strict and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False  # only the listed fields
    return out


def as_resource(schema: Schema, group: str, version: str, kind: str) -> Schema:
    """``schema`` as the root of a resource: an object of exactly this apiVersion and kind."""
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version}" if group else version]}
    props["kind"] = {"type": "string", "enum": [kind]}
    schema["type"] = "object"
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
    return schema


def file_name(group: str, version: str, kind: str) -> str:
    """kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json`."""
    label = group.split(".")[0]
    suffix = f"-{label}-{version}" if label else f"-{version}"
    return f"{kind}{suffix}.json".lower()


# -- the OpenAPI v2 spec of Kubernetes ----------------------------------------------------


def _definition(name: str, spec: Schema, refs: set[str]) -> Schema:
    if name.endswith(".api.resource.Quantity"):
        return dict(_QUANTITY)
    return convert(spec, refs)


def standalone(root: str, definitions: dict[str, Schema], gvk: dict[str, str]) -> Schema:
    """The kind's schema with every definition it reaches, transitively."""
    refs: set[str] = set()
    schema = as_resource(
        _definition(root, definitions[root], refs), gvk["group"], gvk["version"], gvk["kind"]
    )
    copied: dict[str, Schema] = {}
    todo = sorted(refs)
    while todo:
        name = todo.pop()
        if name in copied:
            continue
        found: set[str] = set()
        copied[name] = _definition(name, definitions[name], found)
        todo.extend(sorted(found - copied.keys()))
    schema["definitions"] = dict(sorted(copied.items()))
    return schema


def from_openapi(swagger_path: Path) -> Iterable[tuple[str, Schema]]:
    definitions: dict[str, Schema] = json.loads(swagger_path.read_text())["definitions"]
    for name, spec in sorted(definitions.items()):
        for gvk in spec.get("x-kubernetes-group-version-kind", []):
            target = file_name(gvk["group"], gvk["version"], gvk["kind"])
            yield target, standalone(name, definitions, gvk)


# -- CustomResourceDefinitions ------------------------------------------------------------


def from_crds(paths: Iterable[Path]) -> Iterable[tuple[str, Schema]]:
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = convert(version["schema"]["openAPIV3Schema"], set())
                kind = spec["names"]["kind"]
                target = file_name(spec["group"], version["name"], kind)
                yield target, as_resource(schema, spec["group"], version["name"], kind)


def write(schemas: Iterable[tuple[str, Schema]], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    for target, schema in schemas:
        # One file name for two groups sharing a first label: the first one keeps it.
        if target not in written:
            written.add(target)
            (out / target).write_text(json.dumps(schema, separators=(",", ":")))
    print(f"k8s_schemas: {len(written)} schemas written to {out}")
    return len(written)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "openapi":
        count = write(from_openapi(Path(argv[1])), Path(argv[2]))
    elif len(argv) >= 3 and argv[0] == "crd":
        count = write(from_crds(Path(p) for p in argv[2:]), Path(argv[1]))
    else:
        sys.exit(__doc__)
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

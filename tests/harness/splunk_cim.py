"""Splunk's CIM data model definitions, as Splunk ships them to test add-ons.

pytest-splunk-addon (Splunk's add-on test tool, Apache-2.0, on PyPI) carries every CIM data
model as JSON (`pytest_splunk_addon/data_models/*.json`: datasets, their tag constraints, their
fields with required/optional and expected values). Its wheel is downloaded once with pip into
``.cache/splunk-cim`` and read in place: not installed, so its pytest plugin stays out of our
test runs.

    python tests/harness/splunk_cim.py resolve     # download the wheel (install step)
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE = "pytest-splunk-addon"
VERSION = "7.0.5"  # the newest that installs on Python 3.11 (8.x needs 3.13)
REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "splunk-cim"
WHEEL = CACHE / f"pytest_splunk_addon-{VERSION}-py3-none-any.whl"
MODELS = "pytest_splunk_addon/data_models/"


def resolve() -> Path:
    """The wheel, downloaded from PyPI if not there yet."""
    if not WHEEL.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "--dest", str(CACHE), f"{PACKAGE}=={VERSION}"],
            check=True,
        )  # fmt: skip
    return WHEEL


@cache
def data_model(name: str) -> dict[str, Any]:
    """One CIM data model, e.g. ``Intrusion_Detection``, as Splunk's JSON definition."""
    with zipfile.ZipFile(resolve()) as wheel:
        model: dict[str, Any] = json.loads(wheel.read(f"{MODELS}{name}.json"))
    return model


def datasets(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dataset of a model, child datasets included (they inherit their parent's fields)."""
    out: list[dict[str, Any]] = []

    def walk(dataset: dict[str, Any], inherited: list[dict[str, Any]]) -> None:
        fields = [*inherited, *dataset.get("fields", [])]
        out.append({**dataset, "fields": fields})
        for child in dataset.get("child_dataset", []):
            walk(child, fields)

    for dataset in model["objects"]:
        walk(dataset, [])
    return out


if __name__ == "__main__":
    if sys.argv[1:] != ["resolve"]:
        sys.exit(__doc__)
    print(resolve())

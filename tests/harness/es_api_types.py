"""Elasticsearch's own request types, to type-check deploy/elasticsearch without a cluster.

The official JavaScript client (@elastic/elasticsearch, Apache-2.0) ships the request and
response types generated from Elasticsearch's API specification: every processor with its
parameters, every mapping type with its own. Each file becomes a TypeScript object literal of
its request type (`IngestPutPipelineRequest`, `ClusterPutComponentTemplateRequest`,
`IndicesPutIndexTemplateRequest`), and `tsc --strict` rejects an unknown key (excess property
check), a wrong value type or an unknown field type. Installed with npm into
``.cache/es-api-types`` once.

    python tests/harness/es_api_types.py resolve     # npm install (install step)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "es-api-types"
# The client of the ECS version the alerts carry (8.11), and a TypeScript it compiles with.
PACKAGES = {"@elastic/elasticsearch": "8.11.1", "typescript": "5.4.5"}
TSC = CACHE / "node_modules" / "typescript" / "bin" / "tsc"


def resolve() -> Path:
    if not TSC.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        manifest = {"private": True, "dependencies": PACKAGES}
        (CACHE / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm (Node.js) is needed to type-check deploy/elasticsearch")
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=CACHE,
                       check=True)  # fmt: skip
    return TSC


def type_check(requests: list[tuple[str, dict[str, Any]]]) -> subprocess.CompletedProcess[str]:
    """Compile one `const` per (estypes request type, request body); tsc's verdict."""
    tsc = resolve()
    lines = ["import type { estypes } from '@elastic/elasticsearch'"]
    for n, (request_type, body) in enumerate(requests):
        lines.append(f"export const r{n}: estypes.{request_type} = {json.dumps(body, indent=1)}")
    # Inside the cache folder, so the import resolves to its node_modules.
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        source = Path(work) / "requests.ts"
        source.write_text("\n".join(lines) + "\n")
        return subprocess.run(
            ["node", str(tsc), "--strict", "--noEmit", "--skipLibCheck", "--target", "es2020",
             "--module", "commonjs", "--moduleResolution", "node", str(source)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:] != ["resolve"]:
        sys.exit(__doc__)
    print(resolve())

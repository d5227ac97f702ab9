"""Dead bytes of an image: files a layer adds that a later layer deletes or replaces.

Such bytes are shipped and stored in every copy of the image but never seen in a container
(the classic case: wheels copied in one layer, installed and ``rm``-ed in the next). Read from
the layer tarballs of an OCI directory (``podman save --format oci-dir``), whiteouts included.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"  # this directory's earlier contents are all hidden


@dataclass
class Layer:
    digest: str
    files: dict[str, int] = field(default_factory=dict)  # path -> bytes (regular files)
    deleted: set[str] = field(default_factory=set)  # whiteouts: path and all below it
    opaque: set[str] = field(default_factory=set)  # directories reset by this layer

    @property
    def size_bytes(self) -> int:
        return sum(self.files.values())

    def hides(self, path: str) -> bool:
        """Whether this layer deletes or replaces ``path`` of an earlier layer."""
        if path in self.files:
            return True
        parents = [str(p) for p in PurePosixPath(path).parents]
        return path in self.deleted or any(p in self.deleted or p in self.opaque for p in parents)


def _normal(name: str) -> str:
    return str(PurePosixPath("/", name))


def read_layers(oci_dir: Path) -> list[Layer]:
    """The image's layers, base first, from an OCI image layout directory."""
    blobs = oci_dir / "blobs"

    def blob(digest: str) -> Path:
        algorithm, hex_digest = digest.split(":", 1)
        return blobs / algorithm / hex_digest

    index = json.loads((oci_dir / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    layers = []
    for descriptor in manifest["layers"]:
        layer = Layer(descriptor["digest"])
        with tarfile.open(blob(descriptor["digest"]), "r:*") as tar:
            for member in tar:
                path = PurePosixPath(_normal(member.name))
                if path.name == _OPAQUE:
                    layer.opaque.add(str(path.parent))
                elif path.name.startswith(_WHITEOUT):
                    layer.deleted.add(str(path.parent / path.name[len(_WHITEOUT) :]))
                elif member.isfile():
                    layer.files[str(path)] = member.size
        layers.append(layer)
    return layers


def dead_bytes(layers: list[Layer]) -> dict[str, int]:
    """Per layer digest, the bytes of its files that a later layer hides."""
    dead: dict[str, int] = {}
    for i, layer in enumerate(layers):
        later = layers[i + 1 :]
        dead[layer.digest] = sum(
            size for path, size in layer.files.items() if any(other.hides(path) for other in later)
        )
    return dead

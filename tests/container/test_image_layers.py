"""The dead-layer check (tests/harness/image_layers.py) on small OCI layouts made here: it finds
the classic dead layer (wheels copied, installed, deleted) and passes a clean image."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.harness.image_layers import dead_bytes, read_layers


def _layer(files: dict[str, int]) -> bytes:
    """A layer tarball: path -> size (a size of -1 is an empty marker, e.g. a whiteout)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, size in files.items():
            info = tarfile.TarInfo(path)
            info.size = max(size, 0)
            tar.addfile(info, io.BytesIO(b"x" * info.size))
    return out.getvalue()


def _oci(root: Path, layers: list[dict[str, int]]) -> Path:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    manifest = {"layers": [{"digest": put(_layer(files))} for files in layers]}
    index = {"manifests": [{"digest": put(json.dumps(manifest).encode())}]}
    (root / "index.json").write_text(json.dumps(index))
    return root


def test_wheels_deleted_by_a_later_layer_are_dead(tmp_path: Path) -> None:
    layers = read_layers(
        _oci(
            tmp_path,
            [
                {"usr/bin/python3": 500},
                {"wheels/numba.whl": 4000, "wheels/numpy.whl": 3000},
                {"opt/venv/numba.py": 700, "wheels/.wh..wh..opq": -1, ".wh.wheels": -1},
            ],
        )
    )
    dead = dead_bytes(layers)
    assert [dead[layer.digest] for layer in layers] == [0, 7000, 0]


def test_overwritten_and_opaque_directories_count_too(tmp_path: Path) -> None:
    layers = read_layers(
        _oci(
            tmp_path,
            [
                {"etc/passwd": 100, "srv/data/a": 50, "srv/keep": 5},
                {"etc/passwd": 110, "srv/data/.wh..wh..opq": -1, "srv/data/b": 1},
            ],
        )
    )
    dead = dead_bytes(layers)
    assert [dead[layer.digest] for layer in layers] == [150, 0]


def test_a_clean_image_has_no_dead_bytes(tmp_path: Path) -> None:
    layers = read_layers(_oci(tmp_path, [{"usr/bin/python3": 500}, {"opt/venv/x.py": 9}]))
    assert sum(dead_bytes(layers).values()) == 0
    assert [layer.size_bytes for layer in layers] == [500, 9]

"""Where the labelled real captures (``../shared/data``, read-only, beside the repository) are.

A clean clone somewhere else (CI clones the repository before testing it) has no sibling
``shared`` folder, but its ``origin`` remote is the directory it was cloned from, which does.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV_VAR = "SHARED_DATA_DIR"
SHARED_DATA = Path("..") / "shared" / "data"  # relative to the repository root
REPO_ROOT = Path(__file__).resolve().parents[1]


def _origin_dir(repo_root: Path) -> Path | None:
    try:
        url = subprocess.run(
            ["git", "-C", str(repo_root), "config", "--get", "remote.origin.url"],
            capture_output=True, text=True, check=False, timeout=10,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return None
    if not url or "://" in url or ":" in url.split("/")[0]:
        return None  # a network remote: no local sibling to look at
    origin = (repo_root / url).resolve()
    return origin if origin.is_dir() else None


def find_shared_data(repo_root: Path = REPO_ROOT) -> Path | None:
    """``$SHARED_DATA_DIR``, else ``../shared/data`` beside the repository or beside
    the local repository it was cloned from; None if there is none."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    roots = [repo_root]
    origin = _origin_dir(repo_root)
    if origin is not None:
        roots.append(origin)
    for root in roots:
        candidate = (root / SHARED_DATA).resolve()
        if candidate.is_dir():
            return candidate
    return None

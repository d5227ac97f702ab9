"""podman for the container tests, set up for this kind of machine, and the image they test.

Everything this machine needs beyond a normal one lives here, not in the Dockerfile: podman's
own storage under .cache/containers (git-ignored; apart from any other podman user), the
cgroupfs cgroup manager and a file events log (no systemd), host networking for the build
(no CNI bridge needed), a Debian base image made with mmdebstrap (no image registry is
reachable), and the host's CA bundle handed to pip as a build secret.

    python tests/harness/container.py build   # base (once) + image; prints the image size
    python tests/harness/container.py podman images   # any podman command, same storage
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".cache" / "containers"
BASE_IMAGE = "localhost/beaconwatch-base:bookworm"
IMAGE = "localhost/beaconwatch:test"
# Debian's python3 is 3.11 in bookworm; ca-certificates for pip's TLS, passwd for useradd.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's system bundle
BUILD_TIMEOUT_S = 1200.0


class ContainerToolError(RuntimeError):
    """podman or mmdebstrap is missing, or one of its commands failed."""


def _write_config() -> dict[str, str]:
    STATE.mkdir(parents=True, exist_ok=True)
    # podman raises a container's open-file and process limits to 1048576 and more by default,
    # which this sandbox refuses even to root (runc's setrlimit fails above what its own parent
    # holds: 32768 processes here): modest fixed limits, plenty for the service.
    ulimits = '"nofile=8192:8192", "nproc=4096:4096"'
    storage = STATE / "storage.conf"
    storage.write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{STATE / "storage"}"\n'
        f'runroot = "{STATE / "run"}"\n'
    )
    engine = STATE / "containers.conf"
    engine.write_text(
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{STATE / "events.log"}"\n'
        'runtime = "runc"\n'  # crun refuses hybrid cgroups (v1 + a v2 mount)
        f'tmp_dir = "{STATE / "tmp"}"\n'
        "[containers]\n"
        f"default_ulimits = [{ulimits}]\n"
    )
    return {"CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_CONF": str(engine)}


def podman_env() -> dict[str, str]:
    """The environment every podman command of the tests runs with."""
    if shutil.which("podman") is None:
        raise ContainerToolError(
            "podman not found: run tests/harness/install-container-tools.sh (make test-container)"
        )
    return {**os.environ, **_write_config()}


def podman(
    *args: str, check: bool = True, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``podman args...`` with the tests' storage; output captured as text."""
    proc = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if check and proc.returncode != 0:
        raise ContainerToolError(
            f"podman {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def ensure_base_image() -> str:
    """The Debian bookworm base (python3 + venv), made with mmdebstrap and imported, once per
    storage (a fresh CI clone makes it once per run: about 30 s)."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    if shutil.which("mmdebstrap") is None:
        raise ContainerToolError(
            "mmdebstrap not found: run tests/harness/install-container-tools.sh"
        )
    tarball = STATE / "base.tar"
    # Without a mirror argument mmdebstrap uses the host's apt sources: the mirror CI reaches.
    subprocess.run(
        [
            "mmdebstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
            "--aptopt=Acquire::Languages \"none\"",
            "--aptopt=APT::Install-Recommends \"false\"",
            # /usr merged by mmdebstrap's hook, not by the usrmerge package (50 MB of perl).
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "bookworm", str(tarball),
        ],
        check=True, capture_output=True, timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    try:
        podman("import", str(tarball), BASE_IMAGE, timeout_s=300)
    finally:
        tarball.unlink(missing_ok=True)
    return BASE_IMAGE


@dataclass(frozen=True)
class BuiltImage:
    name: str
    base: str
    build_s: float  # 0 when the image was already there (same storage, same session)
    size_bytes: int


def build_image(base: str | None = None, *, name: str = IMAGE) -> BuiltImage:
    """Build the Dockerfile at the repo root on ``base`` (default: the mmdebstrap base).

    docker format, since the OCI image format has no HEALTHCHECK; host networking, since the
    build needs only PyPI; the host's CA bundle as the pip_cert secret (never in a layer)."""
    base = base or ensure_base_image()
    args = ["build", "--format", "docker", "--network", "host", "--layers"]
    args += ["--build-arg", f"BASE={base}", "--tag", name]
    if CA_BUNDLE.is_file():
        args += ["--secret", f"id=pip_cert,src={CA_BUNDLE}"]
    started_s = time.monotonic()
    podman(*args, str(REPO), timeout_s=BUILD_TIMEOUT_S)
    build_s = time.monotonic() - started_s
    size = int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())
    return BuiltImage(name, base, build_s, size)


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        image = build_image()
        print(
            f"{image.name} on {image.base}: {image.size_bytes / 1e6:.0f} MB, "
            f"built in {image.build_s:.0f} s"
        )
        return 0
    if argv[:1] == ["podman"]:
        return subprocess.run(["podman", *argv[1:]], env=podman_env(), check=False).returncode
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

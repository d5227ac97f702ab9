"""Container fixtures: the image built from the repo's Dockerfile (tests/harness/container.py),
the embedded broker, and the service image running against it as it would in production:
host network, read-only root file system, a tmpfs at /tmp only, the image's own (non-root)
user, its default command, configured from the environment."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from beaconwatch.embedded.tansu import EmbeddedBroker, create_topics, free_port
from tests.harness.container import BuiltImage, build_image, podman

READY_LIMIT_S = 10.0  # the bound from container start to /readyz 200
INPUT_TOPIC, INPUT_PARTITIONS = "flows", 3  # the image config's input topic
GIVE_UP_S = 120.0  # how long a slow start is still waited for, to report how slow it was
# Tansu answers a JoinGroup after half the session timeout: a short one keeps starts fast.
FAST_GROUP = {
    "BEACONWATCH_KAFKA__SESSION_TIMEOUT_MS": "6000",
    "BEACONWATCH_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
}


@pytest.fixture(scope="session")
def image() -> BuiltImage:
    built = build_image()
    print(f"\nimage {built.name}: {built.size_bytes / 1e6:.0f} MB, built in {built.build_s:.0f} s")
    return built


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def http_status(url: str, timeout_s: float = 1.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@dataclass
class ServiceContainer:
    name: str
    metrics_port: int
    ready_s: float  # from `podman run` to the first /readyz 200 (container creation included)

    def exec(self, *command: str, check: bool = False) -> tuple[int, str]:
        proc = podman("exec", self.name, *command, check=check)
        return proc.returncode, proc.stdout + proc.stderr

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr


def _wait_ready(name: str, url: str, started_s: float) -> float:
    while (elapsed_s := time.monotonic() - started_s) < GIVE_UP_S:
        if http_status(url) == 200:
            return elapsed_s
        if podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip() != "true":
            raise AssertionError(f"container exited before ready:\n{podman('logs', name).stderr}")
        time.sleep(0.1)
    raise AssertionError(f"/readyz not 200 after {GIVE_UP_S:.0f} s")


@pytest.fixture(scope="module")
def service(image: BuiltImage, broker: EmbeddedBroker) -> Iterator[ServiceContainer]:
    """The image's default command against the broker; ready. Removed (logs shown) after."""
    name = f"beaconwatch-test-{uuid.uuid4().hex[:8]}"
    # The collectors' topic exists before the service starts, as in production.
    asyncio.run(create_topics(broker.bootstrap_servers, {INPUT_TOPIC: INPUT_PARTITIONS}))
    port = free_port()
    env = {
        "BEACONWATCH_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "BEACONWATCH_METRICS__HOST": "127.0.0.1",
        "BEACONWATCH_METRICS__PORT": str(port),  # not the image's 9108: the health check follows
        **FAST_GROUP,
    }
    args = ["run", "--detach", "--name", name, "--network", "host"]
    # Read-only root; /tmp is the one writable place (numba's kernel cache), nothing else.
    args += ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=64m,mode=1777"]
    # No systemd here to run health-check timers: the test runs the check itself.
    args += ["--health-interval", "disable"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    started_s = time.monotonic()
    podman(*args, image.name)
    running = ServiceContainer(name, port, ready_s=-1.0)
    try:
        running.ready_s = _wait_ready(name, f"http://127.0.0.1:{port}/readyz", started_s)
        print(f"\ncontainer ready in {running.ready_s:.1f} s (metrics port {port})")
        yield running
    finally:
        print(f"\n--- logs of {name} ---\n{running.logs()[-4000:]}")
        podman("rm", "--force", "--time", "5", name, check=False)

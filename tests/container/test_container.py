"""The service image (Dockerfile) built and run for real with podman: simulated traffic with
planted beacons through the embedded broker, their alerts read back from the alerts topic;
non-root, read-only root, ready within 10 s on the kernels compiled at build time, a health
check that follows the configured port, no dead layer. `make test-container` runs this."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from beaconwatch.cli.report import beacon_pair
from beaconwatch.cli.simulate import produce
from beaconwatch.embedded.tansu import EmbeddedBroker, free_port
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from tests.container.conftest import INPUT_TOPIC, READY_LIMIT_S, ServiceContainer
from tests.harness.container import BuiltImage, podman
from tests.harness.image_layers import dead_bytes, read_layers

# The image build (a fixture) takes minutes on a fresh machine: PyPI downloads, numba compiling.
pytestmark = pytest.mark.timeout(900)

# The traffic of tests/integration/test_cli_simulate_service.py: two hours, four beacons.
SPEC = SimulationSpec(seed=9, start_ms=1_700_000_000_000, duration_s=7200.0, hosts=150, beacons=4)
ALERTS_TOPIC = "beaconwatch.alerts"  # the image config's
KERNEL_CACHE = "/tmp/numba-cache"  # NUMBA_CACHE_DIR in the image
IMAGE_KERNELS = "/opt/beaconwatch/numba-cache"  # compiled at build time
DEAD_BYTES_ALLOWED = 64 * 1024  # useradd rewrites /etc/passwd, group, shadow... of the base


async def _alerted_pairs(
    bootstrap: str, want: set[tuple[str, str, int, int]], timeout_s: float
) -> set[tuple[str, str, int, int]]:
    """Pairs of every alert on the alerts topic, once ``want`` are all in (or at the timeout)
    and a short quiet poll more, so extra alerts show up as a failure."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    pairs: set[tuple[str, str, int, int]] = set()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        partitions: set[int] = set()
        while not partitions and asyncio.get_running_loop().time() < deadline:
            partitions = consumer.partitions_for_topic(ALERTS_TOPIC) or set()
            if not partitions:
                await consumer.topics()  # refreshes metadata; the service creates the topic
                await asyncio.sleep(0.2)
        tps = [TopicPartition(ALERTS_TOPIC, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        quiet_polls = 0
        while quiet_polls < 10 and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    ecs = orjson.loads(record.value)
                    pairs.add(
                        (
                            ecs["source"]["ip"],
                            ecs["destination"]["ip"],
                            int(ecs["destination"]["port"]),
                            int(ecs["network"]["iana_number"]),
                        )
                    )
            quiet_polls = quiet_polls + 1 if want <= pairs and not batch else 0
        return pairs
    finally:
        await consumer.stop()


async def test_planted_beacons_are_alerted_from_the_container(
    service: ServiceContainer, broker: EmbeddedBroker
) -> None:
    bootstrap = broker.bootstrap_servers
    sim = TrafficSimulator(SPEC)
    produced = await produce(sim, bootstrap, INPUT_TOPIC)
    planted = {beacon_pair(b) for b in sim.planted}
    assert produced > 10_000 and len(planted) == 4
    alerted = await _alerted_pairs(bootstrap, planted, timeout_s=120.0)
    assert alerted == planted, service.logs()[-3000:]


def test_ready_within_the_limit_on_kernels_from_the_image(service: ServiceContainer) -> None:
    assert service.ready_s <= READY_LIMIT_S
    # The kernels came from the image: the cache holds what the build compiled, and nothing
    # was compiled since the container copied it (after start-up and a stream of traffic).
    code, image_kernels = service.exec("find", IMAGE_KERNELS, "-name", "*.nbi")
    assert code == 0 and image_kernels.count(".nbi") > 20, image_kernels
    code, copied = service.exec("find", KERNEL_CACHE, "-name", "*.nbi")
    assert code == 0 and copied.count(".nbi") == image_kernels.count(".nbi"), copied
    code, compiled = service.exec("find", KERNEL_CACHE, "-newer", f"{KERNEL_CACHE}/.seeded")
    assert code == 0 and compiled.strip() == "", f"compiled at run time:\n{compiled}"


def test_runs_as_non_root_on_a_read_only_root(service: ServiceContainer) -> None:
    assert service.inspect("{{.Config.User}}") == "10001:10001"  # the image's, not ours
    assert service.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    code, uid = service.exec("id", "-u")
    assert (code, uid.strip()) == (0, "10001")
    users = podman("top", service.name, "user").stdout.split()[1:]  # every process
    assert users and set(users) <= {"beaconwatch", "10001"}, users
    code, out = service.exec("sh", "-c", "echo x > /opt/beaconwatch/probe")
    assert code != 0 and "Read-only file system" in out, out


def test_health_check_follows_the_configured_port(service: ServiceContainer) -> None:
    assert service.metrics_port != 9108  # the image's default port is not the one in use
    test = orjson.loads(service.inspect("{{json .Config.Healthcheck.Test}}"))
    assert "beaconwatch.healthcheck" in test, test
    # The image's HEALTHCHECK, run the way podman runs it on its timer.
    proc = podman("healthcheck", "run", service.name, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The same command told another (free) port fails: it probes the configured one.
    command = [part for part in test if part not in ("CMD", "CMD-SHELL")]
    elsewhere = f"BEACONWATCH_METRICS__PORT={free_port()}"
    proc = podman("exec", "--env", elsewhere, service.name, *command, check=False)
    assert proc.returncode == 1 and "healthz" in proc.stderr, proc.stderr


def test_stops_gracefully(service: ServiceContainer) -> None:
    podman("stop", "--time", "30", service.name, timeout_s=60)
    assert service.inspect("{{.State.ExitCode}}") == "0", service.logs()[-3000:]


def test_read_only_root_without_tmpfs_is_a_clear_error(image: BuiltImage) -> None:
    args = ["run", "--rm", "--read-only", "--read-only-tmpfs=false", "--no-healthcheck"]
    proc = podman(*args, image.name, "--version", check=False)
    assert proc.returncode == 1
    assert "NUMBA_CACHE_DIR=/tmp/numba-cache is not writable" in proc.stderr, proc.stderr


def test_no_dead_layer(image: BuiltImage, tmp_path: Path) -> None:
    oci = tmp_path / "oci"
    podman("save", "--format", "oci-dir", "--output", str(oci), image.name, timeout_s=600)
    try:
        layers = read_layers(oci)
    finally:
        shutil.rmtree(oci)
    dead = dead_bytes(layers)
    sizes = ", ".join(f"{layer.size_bytes / 1e6:.1f}" for layer in layers)
    print(f"\nlayers (MB of files): {sizes}; dead bytes: {sum(dead.values())}")
    assert len(layers) >= 3  # base, user, venv, ...: the check saw the image's own layers
    assert all(n <= DEAD_BYTES_ALLOWED for n in dead.values()), dead

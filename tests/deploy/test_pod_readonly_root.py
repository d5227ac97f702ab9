"""The Deployment's container, run for real the way its securityContext runs it: the real
`beaconwatch run` with the manifest's argv and environment (the ConfigMap's config, validated
by the service's own start-up) on a read-only root with only a /tmp tmpfs writable
(tests/harness/readonly-root.sh) and no capabilities, against a real broker. It must pass its
probes, detect the planted beacons (numba kernels compiled into the /tmp cache) and stop on
SIGTERM, its partitions checkpointed, within the pod's terminationGracePeriodSeconds.

What differs from the cluster: the broker (the embedded one, PLAINTEXT), topic names and
partitions, a free metrics port, and root without capabilities instead of uid 10001 (our
machines' interpreter lives in root's home, which uid 10001 cannot enter). Kubernetes itself
cannot run here: no container runtime."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from beaconwatch.embedded.tansu import create_topics
from tests.deploy import policy
from tests.deploy.manifests import REPO, deployed
from tests.harness.brokers import BrokerUnderTest, broker_under_test
from tests.integration.conftest import FAST_GROUP, end_offsets, produce
from tests.integration.test_checkpoints import BEACONS, flows

pytestmark = pytest.mark.integration

READONLY_ROOT = REPO / "tests" / "harness" / "readonly-root.sh"


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerUnderTest]:
    with broker_under_test() as b:
        yield b


@pytest.fixture()
def run_dir() -> Iterator[Path]:
    """Outside /tmp, which the sandbox replaces by an empty tmpfs; git-ignored."""
    path = REPO / ".cache" / "deploy-tests" / uuid.uuid4().hex[:10]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening yet


async def wait_for(url: str, timeout_s: float, proc: asyncio.subprocess.Process) -> float:
    """Seconds until ``url`` answers 200; fails if the process dies first."""
    started = time.monotonic()
    while (await asyncio.to_thread(get, url))[0] != 200:
        assert proc.returncode is None, f"the service exited with {proc.returncode}"
        assert time.monotonic() - started < timeout_s, f"{url} not 200 in {timeout_s} s"
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def counter(metrics_text: str, name: str) -> float:
    """A counter summed over its labels (one series per worker)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == f"{name}_total"
    )


@pytest.mark.timeout(600)
async def test_the_pod_runs_on_a_read_only_root_and_stops_in_its_grace_period(
    broker: BrokerUnderTest, run_dir: Path
) -> None:
    m = deployed()
    start = policy.start_up(m)
    container = policy.the_container(m)
    pod = m.one("Deployment")["spec"]["template"]["spec"]
    tag = run_dir.name
    records = flows(0, 12, seed=7)  # 12 check-ins of each beacon: enough to alert
    await create_topics(broker.bootstrap_servers, {f"flows-{tag}": 2})
    await produce(broker, f"flows-{tag}", records)

    config = run_dir / "beaconwatch.toml"
    config.write_text(policy.config_file_text(m, container, start.args.config))
    args = list(container["args"])
    args[args.index("--config") + 1] = str(config)
    port = free_port()
    cluster = {  # what this machine's broker and test isolation need instead
        "KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA__SECURITY_PROTOCOL": "PLAINTEXT",
        "KAFKA__CREATE_TOPICS": "true",
        "KAFKA__TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA__IDEMPOTENT_PRODUCER": "false",  # the embedded broker has none
        "KAFKA__INPUT_TOPICS": f'["flows-{tag}"]',
        "KAFKA__ALERTS_TOPIC": f"alerts-{tag}",
        "KAFKA__DEAD_LETTER_TOPIC": f"dlq-{tag}",
        "KAFKA__GROUP_ID": f"group-{tag}",
        "KAFKA__INTERNAL_TOPIC": f"internal-{tag}",
        "KAFKA__INTERNAL_TOPIC_PARTITIONS": "4",
        "KAFKA__STATE_TOPIC": f"state-{tag}",
        "KAFKA__STATE_TOPIC_PARTITIONS": "2",
        "KAFKA__POLL_TIMEOUT_MS": "100",
        "KAFKA__FETCH_MAX_WAIT_MS": "100",
        "KAFKA__SESSION_TIMEOUT_MS": str(FAST_GROUP["session_timeout_ms"]),
        "KAFKA__HEARTBEAT_INTERVAL_MS": str(FAST_GROUP["heartbeat_interval_ms"]),
        "METRICS__HOST": "127.0.0.1",
        "METRICS__PORT": str(port),
    }
    env = {
        **os.environ,
        **policy.container_env(m, container),
        **{f"BEACONWATCH_{key}": value for key, value in cluster.items()},
    }
    # As in the image: kernels compiled before the pod starts (the image's build runs
    # warm_kernels), copied into the pod's NUMBA_CACHE_DIR on its /tmp emptyDir at start.
    seed = REPO / ".cache" / "numba-seed"
    warmed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "beaconwatch.warm_kernels"],
        env={**os.environ, "NUMBA_CACHE_DIR": str(seed)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert warmed.returncode == 0, warmed.stderr
    env["READONLY_ROOT_SEED"] = f"{seed}:{env['NUMBA_CACHE_DIR']}"
    log = (run_dir / "service.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        str(READONLY_ROOT), sys.executable, "-m", "beaconwatch", *args,
        cwd=REPO, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        startup = container["startupProbe"]
        budget_s = startup["periodSeconds"] * startup["failureThreshold"]
        healthy_s = await wait_for(base + startup["httpGet"]["path"], budget_s, proc)
        ready_s = await wait_for(base + container["readinessProbe"]["httpGet"]["path"], 120, proc)
        deadline = time.monotonic() + 120
        while True:  # every record read, the beacons alerted
            _, text = await asyncio.to_thread(get, base + "/metrics")
            consumed = counter(text, "beaconwatch_flows_consumed")
            alerts = sum((await end_offsets(broker, f"alerts-{tag}")).values())
            if consumed >= len(records) and alerts >= len(BEACONS):
                break
            assert time.monotonic() < deadline, f"{consumed} flows read, {alerts} alerts"
            await asyncio.sleep(1.0)
        assert (await asyncio.to_thread(get, base + "/healthz"))[0] == 200

        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        grace_s = pod["terminationGracePeriodSeconds"]
        assert await asyncio.wait_for(proc.wait(), grace_s) == 0
        stop_s = time.monotonic() - stopping
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        output = (run_dir / "service.log").read_text(errors="replace")
        print(output)  # pytest shows it when the test fails
    assert "Read-only file system" not in output
    # The shutdown checkpoint of every partition reached the state topic.
    assert sum((await end_offsets(broker, f"state-{tag}")).values()) > 0
    print(
        f"\nread-only root pod: healthy after {healthy_s:.1f} s, ready after {ready_s:.1f} s "
        f"more, stopped {stop_s:.1f} s after SIGTERM (grace {grace_s} s)"
    )


IMPORT_KERNELS = "import beaconwatch.runtime.service, beaconwatch.core.pipeline; print('imported')"


@pytest.mark.parametrize("drop", [None, "NUMBA_CACHE_DIR"])
def test_the_pods_environment_lets_numba_cache_on_a_read_only_root(drop: str | None) -> None:
    """numba's cached kernels need a writable cache directory at import: the pod's
    NUMBA_CACHE_DIR on the /tmp emptyDir. Without it the service cannot even start."""
    m = deployed()
    pod_env = policy.container_env(m, policy.the_container(m))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "BEACONWATCH_"))}
    env |= {k: v for k, v in pod_env.items() if k != drop}
    result = subprocess.run(
        [str(READONLY_ROOT), sys.executable, "-c", IMPORT_KERNELS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if drop is None:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "imported"
    else:
        assert result.returncode != 0
        assert "cannot cache function" in result.stderr

"""Apache Kafka for tests: a single-node KRaft broker from Maven Central's artifacts.

Maven resolves the broker's jars (``apache-kafka.pom.xml`` next to this file) into
``.cache/apache-kafka/<version>/lib`` once; each broker then gets a fresh temporary data
directory, is formatted with Kafka's own StorageTool and runs on free loopback ports with the
machine's JDK (``$JAVA_HOME/bin/java``, else ``java`` on PATH).

    python tests/harness/apache_kafka.py resolve        # fetch the jars (install step)
    python tests/harness/apache_kafka.py start [--port N]  # a broker until Ctrl-C

In tests: ``with ApacheKafkaBroker() as broker: ...broker.bootstrap_servers``. With
``secure=SecureListeners(...)`` the broker also listens on SSL with client certificates
required (mTLS) and on SASL_SSL with PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER (Kafka's
unsecured JWT validator: test only); ``broker.address("SSL")`` says where.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from beaconwatch.embedded.tansu import (
    BrokerStartError,
    free_port,
    stop_process,
    wait_until_ready,
)

KAFKA_VERSION = "4.1.1"
REPO = Path(__file__).resolve().parents[2]
POM = Path(__file__).with_name("apache-kafka.pom.xml")
CACHE = REPO / ".cache" / "apache-kafka"

# Single node, so every internal topic has one replica. No initial rebalance delay: tests start
# consumers one by one and should not wait 3 s for more members that never come. The log
# cleaner wakes often so a compacted topic is compacted within a test's patience.
BASE_CONFIG: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "num.partitions": "1",
    "auto.create.topics.enable": "true",
    "log.cleaner.backoff.ms": "200",
}

LOG4J2_CONFIG = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = info
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = info
"""


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


@dataclass(frozen=True)
class SecureListeners:
    """The broker's side of TLS and SASL (PEM files, e.g. from tests/harness/tls.py)."""

    keystore: Path  # broker key (PKCS#8, unencrypted) + certificate chain
    truststore: Path  # CA certificates that sign the clients' certificates
    users: Mapping[str, str] = field(default_factory=dict)  # SASL user -> password
    # OAUTHBEARER tokens checked against an OpenID Connect provider's keys (signature, exp,
    # issuer, audience: Kafka's OAuthBearerValidatorCallbackHandler), not the unsecured
    # test validator: (jwks url, issuer, audience).
    oidc: tuple[str, str, str] | None = None

    def config(self) -> dict[str, str]:
        plain_users = "".join(f' user_{u}="{p}"' for u, p in self.users.items())
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.truststore),
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};"
            ),
            **{
                f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
                for m in SASL_MECHANISMS
                if m.startswith("SCRAM")
            },
            # Without oidc: unsigned JWTs ({"alg":"none"}), Kafka's default validator, test only.
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": (
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
            ),
            **self._oidc_config(),
        }

    def _oidc_config(self) -> dict[str, str]:
        if self.oidc is None:
            return {}
        jwks_url, issuer, audience = self.oidc
        return {
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class": (
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
            ),
            "sasl.oauthbearer.jwks.endpoint.url": jwks_url,
            "sasl.oauthbearer.expected.issuer": issuer,
            "sasl.oauthbearer.expected.audience": audience,
        }

    def jvm_options(self) -> list[str]:
        # Kafka >= 4.0 fetches only from URLs named in this system property.
        if self.oidc is None:
            return []
        return [f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={self.oidc[0]}"]

    def scram_arguments(self) -> list[str]:
        """StorageTool ``format`` arguments that create the SCRAM users (KRaft has no
        ZooKeeper to add them to later)."""
        return [
            f"--add-scram={m}=[name={u},password={p}]"
            for m in SASL_MECHANISMS
            if m.startswith("SCRAM")
            for u, p in self.users.items()
        ]


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerStartError("Apache Kafka needs a JDK >= 17: no java on PATH or JAVA_HOME")
    return found


def resolve(version: str = KAFKA_VERSION) -> Path:
    """The directory of Apache Kafka ``version``'s jars, resolved by Maven on first use."""
    lib = CACHE / version / "lib"
    if (lib / ".complete").exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerStartError(
            "Apache Kafka's jars are not in .cache/ and Maven (mvn) is not on PATH: "
            "run tests/harness/install-e2e-tools.sh"
        )
    staging = CACHE / version / f"lib.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-Dkafka.version={version}", f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
        raise BrokerStartError(
            f"Maven could not resolve Apache Kafka {version}:\n{done.stdout}\n{done.stderr}"
        )
    (staging / ".complete").touch()
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)  # atomic: a half-copied lib is never taken for a complete one
    return lib


class ApacheKafkaBroker:
    """A single-node KRaft Apache Kafka subprocess on loopback ports; a context manager."""

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        version: str = KAFKA_VERSION,
        config: Mapping[str, str] | None = None,
        secure: SecureListeners | None = None,
        heap_mb: int = 512,
        startup_timeout_s: float = 120.0,
        stop_grace_s: float = 15.0,
    ) -> None:
        self.host = host
        self.version = version
        self._requested_port = port
        self.port: int | None = None
        self._secure = secure
        self._config = {**BASE_CONFIG, **(secure.config() if secure else {}), **(config or {})}
        self._listener_ports: dict[str, int] = {}
        self._heap_mb = heap_mb
        self._startup_timeout_s = startup_timeout_s
        self._stop_grace_s = stop_grace_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._command: list[str] = []  # the broker's java command line, for restart()

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"{self.host}:{self.port}"

    def address(self, listener: str) -> str:
        """host:port of a listener: PLAINTEXT, or SSL / SASL_SSL with ``secure``."""
        if listener == "PLAINTEXT":
            return self.bootstrap_servers
        if listener not in self._listener_ports:
            raise RuntimeError(f"no {listener} listener (started with secure=...?)")
        return f"{self.host}:{self._listener_ports[listener]}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        return None if self._workdir is None else self._workdir / "broker.log"

    def start(self) -> ApacheKafkaBroker:
        if self._proc is not None:
            raise RuntimeError("broker already started")
        lib = resolve(self.version)
        java = java_binary()
        self._workdir = Path(tempfile.mkdtemp(prefix="beaconwatch-apache-kafka-"))
        port = self._requested_port if self._requested_port is not None else free_port(self.host)
        controller_port = free_port(self.host)
        properties = self._write_config(port, controller_port)
        classpath = f"{lib}{os.sep}*"
        log4j = self._workdir / "log4j2.properties"
        log4j.write_text(LOG4J2_CONFIG.format(log_path=self._workdir / "broker.log"))
        jvm = [
            java, f"-Xmx{self._heap_mb}m", f"-Xms{min(self._heap_mb, 256)}m",
            "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath,
            *(self._secure.jvm_options() if self._secure else []),
        ]  # fmt: skip
        cluster_id = _cluster_id()
        formatted = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                f"--config={properties}",
                *(self._secure.scram_arguments() if self._secure else []),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if formatted.returncode != 0:
            raise BrokerStartError(
                f"kafka-storage format failed:\n{formatted.stdout}\n{formatted.stderr}"
            )
        self._command = [*jvm, "kafka.Kafka", str(properties)]
        self._spawn()
        self.port = port
        try:
            self._wait_ready()
        except BrokerStartError:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        assert self._workdir is not None
        with (self._workdir / "stdout.log").open("ab") as out:
            self._proc = subprocess.Popen(
                self._command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    def crash(self) -> None:
        """kill -9 the broker, keeping its data, ports and cluster id: an outage that
        `restart` ends."""
        if self._proc is None:
            raise RuntimeError("broker not running")
        self._proc.kill()
        self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Start the broker again after `crash`, on the same ports with the same data."""
        if self._proc is not None or not self._command:
            raise RuntimeError("restart() follows crash()")
        self._spawn()
        self._wait_ready()

    def _write_config(self, port: int, controller_port: int) -> Path:
        assert self._workdir is not None
        ports = {"PLAINTEXT": port}
        if self._secure is not None:
            self._listener_ports = {name: free_port(self.host) for name in ("SSL", "SASL_SSL")}
            ports.update(self._listener_ports)
        advertised = ",".join(f"{name}://{self.host}:{p}" for name, p in ports.items())
        protocols = ",".join(f"{name}:{name}" for name in ports)
        config = {
            **self._config,
            "listener.security.protocol.map": f"{protocols},CONTROLLER:PLAINTEXT",
            "listeners": f"{advertised},CONTROLLER://{self.host}:{controller_port}",
            "advertised.listeners": advertised,
            "controller.quorum.voters": f"1@{self.host}:{controller_port}",
            "log.dirs": str(self._workdir / "data"),
        }
        path = self._workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
        return path

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.port is not None
        wait_until_ready(
            self._proc, self.host, self.port, self._startup_timeout_s, self.log_tail, poll_s=0.2
        )

    def record_batches(self, topic: str, partition: int = 0) -> list[dict[str, str]]:
        """The record batches on disk for one partition, as Kafka's DumpLogSegments prints
        them (``baseOffset``, ``producerId``, ``baseSequence``, ...), oldest segment first.
        The broker's own view: what a producer or a compaction really left in the log."""
        assert self._workdir is not None, "broker not started"
        segments = sorted((self._workdir / "data" / f"{topic}-{partition}").glob("*.log"))
        if not segments:
            return []
        dumped = subprocess.run(
            [java_binary(), "-cp", f"{resolve(self.version)}{os.sep}*",
             "kafka.tools.DumpLogSegments", "--files", ",".join(map(str, segments))],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        batches: list[dict[str, str]] = []
        for line in dumped.stdout.splitlines():
            if line.startswith("baseOffset:"):
                words = line.replace(": ", ":").split()
                batches.append(dict(w.split(":", 1) for w in words if ":" in w))
        return batches

    def log_tail(self, lines: int = 30) -> str:
        if self._workdir is None:
            return "(no broker log)"
        text: list[str] = []
        for name in ("stdout.log", "broker.log"):
            path = self._workdir / name
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "broker log tail:\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, self._stop_grace_s)  # SIGTERM: like kafka-server-stop
        self.port = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> ApacheKafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).
    It may start with "-", hence the ``--cluster-id=`` form on the command line."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["resolve", "start"])
    parser.add_argument("--version", default=KAFKA_VERSION, help="Apache Kafka version")
    parser.add_argument("--port", type=int, default=None, help="broker port (default: free)")
    args = parser.parse_args(argv)
    if args.command == "resolve":
        print(f"Apache Kafka {args.version}: {resolve(args.version)}")
        return 0
    with ApacheKafkaBroker(args.port, version=args.version) as broker:
        print(f"Apache Kafka {args.version} on {broker.bootstrap_servers} (Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            while broker.running:
                time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

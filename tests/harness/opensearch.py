"""OpenSearch for tests: a single node from Maven Central's artifacts, to run deploy/elasticsearch.

No Elasticsearch distribution is served by the registries these machines reach; OpenSearch
(the Apache-2.0 fork of Elasticsearch 7.10) is: its minimal integ-test distribution plus the
jars of three modules (ingest-common: the processors; lang-painless: `if` conditions;
lang-mustache: `{{{field}}}` templates), laid out as modules with their descriptors here.
Maven resolves them (``opensearch.pom.xml``) into ``.cache/opensearch/<version>`` once; each
node gets fresh temporary data, runs on free loopback ports with the machine's JDK, and as
``nobody`` when started by root (OpenSearch refuses to run as root).

    python tests/harness/opensearch.py resolve            # fetch and lay out (install step)
    python tests/harness/opensearch.py start              # a node until Ctrl-C

In tests: ``with OpenSearchNode() as node: ...node.url``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from types import TracebackType

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from beaconwatch.embedded.tansu import free_port

VERSION = "2.19.6"
REPO = Path(__file__).resolve().parents[2]
POM = Path(__file__).with_name("opensearch.pom.xml")
CACHE = REPO / ".cache" / "opensearch" / VERSION
HOME = CACHE / "home"
START_TIMEOUT_S = 120.0

# module -> (plugin class, extended plugins, jar name prefixes, security policy grants)
MODULES: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "lang-painless": (
        "org.opensearch.painless.PainlessPlugin", "",
        ("lang-painless", "opensearch-scripting-painless-spi", "antlr4-runtime", "asm",
         "asm-util", "asm-tree", "asm-commons", "asm-analysis"),
        ('java.lang.RuntimePermission "createClassLoader"',
         'java.lang.RuntimePermission "getClassLoader"'),
    ),
    "ingest-common": (
        "org.opensearch.ingest.common.IngestCommonPlugin", "lang-painless",
        ("ingest-common", "opensearch-grok", "opensearch-dissect", "joni", "jcodings"),
        (),
    ),
    "lang-mustache": (
        "org.opensearch.script.mustache.MustachePlugin", "",
        ("lang-mustache-client", "compiler"),
        ('java.lang.RuntimePermission "accessDeclaredMembers"',),
    ),
}  # fmt: skip


class OpenSearchStartError(RuntimeError):
    pass


def resolve() -> Path:
    """The distribution with its modules laid out, fetched and built once."""
    if (HOME / "modules" / "lang-mustache" / "plugin-descriptor.properties").exists():
        return HOME
    jars = CACHE / "jars"
    subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={jars}"],
        check=True,
    )  # fmt: skip
    shutil.rmtree(HOME, ignore_errors=True)
    with zipfile.ZipFile(jars / f"opensearch-{VERSION}.zip") as dist:
        dist.extractall(CACHE)
    (CACHE / f"opensearch-{VERSION}").rename(HOME)
    for name in ("bin/opensearch", "bin/opensearch-env"):  # zip drops the exec bits
        (HOME / name).chmod(0o755)
    for module, (classname, extended, prefixes, grants) in MODULES.items():
        folder = HOME / "modules" / module
        folder.mkdir(parents=True)
        for prefix in prefixes:
            (jar,) = jars.glob(f"{prefix}-[0-9]*.jar")
            shutil.copy2(jar, folder)
        (folder / "plugin-descriptor.properties").write_text(
            f"description={module}\nversion={VERSION}\nname={module}\nclassname={classname}\n"
            f"java.version=11\nopensearch.version={VERSION}\nextended.plugins={extended}\n"
            "has.native.controller=false\n"
        )
        if grants:
            lines = "".join(f"  permission {g};\n" for g in grants)
            (folder / "plugin-security.policy").write_text(f"grant {{\n{lines}}};\n")
    return HOME


def java_home() -> str:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java is None:
        raise OpenSearchStartError("no JDK: set JAVA_HOME or put java on PATH")
    return str(Path(java).resolve().parents[1])


class OpenSearchNode:
    """A single-node OpenSearch on free loopback ports; stopped and deleted on exit."""

    def __init__(self) -> None:
        self.home = resolve()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._work = Path(tempfile.mkdtemp(prefix="beaconwatch-opensearch-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OpenSearchNode:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    def start(self) -> None:
        work = self._work
        shutil.copytree(self.home / "config", work / "config")
        for name in ("data", "logs"):
            (work / name).mkdir()
        home = self.home
        if os.geteuid() == 0:  # nobody may not reach the cache (a checkout under /root)
            home = Path(shutil.copytree(self.home, work / "home", symlinks=True))
        command = [
            str(home / "bin" / "opensearch"),
            "-E", "discovery.type=single-node", "-E", "network.host=127.0.0.1",
            "-E", f"http.port={self.port}", "-E", f"transport.port={free_port()}",
            "-E", f"path.data={work / 'data'}", "-E", f"path.logs={work / 'logs'}",
            # A nearly full disk on a shared machine must not keep the test's shards unassigned.
            "-E", "cluster.routing.allocation.disk.threshold_enabled=false",
        ]  # fmt: skip
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for path in [work, *work.rglob("*")]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
            command = ["runuser", "-u", "nobody", "--", *command]
        env = {
            **os.environ,
            "OPENSEARCH_JAVA_HOME": java_home(),
            "OPENSEARCH_PATH_CONF": str(work / "config"),
            "OPENSEARCH_JAVA_OPTS": "-Xms256m -Xmx256m",  # 2 cores, shared: keep it small
        }
        log = (work / "stdout.log").open("wb")
        # Its own process group: stop() ends runuser and the JVM under it together.
        self._proc = subprocess.Popen(command, cwd=work, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise OpenSearchStartError(f"OpenSearch exited:\n{self.log_tail()}")
            health = f"{self.url}/_cluster/health"
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(health, timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.5)
        self.stop()
        raise OpenSearchStartError(f"OpenSearch not up in {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        path = self._work / "stdout.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._proc = None
        shutil.rmtree(self._work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["resolve"]:
        print(f"OpenSearch {VERSION}: {resolve()}")
    elif sys.argv[1:2] == ["start"]:
        with OpenSearchNode() as node:
            print(f"OpenSearch {VERSION} at {node.url} (Ctrl-C stops)")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    else:
        sys.exit(__doc__)

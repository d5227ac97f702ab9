"""An OpenID Connect provider for the Kafka OAUTHBEARER tests: panva's oidc-provider (npm),
run by Node.js from ``oidc/server.mjs``. It grants one client access tokens by the client-
credentials grant, RS256-signed JWTs for the audience ``urn:kafka``, and publishes its keys,
which Apache Kafka's JWKS validator checks them against.

    python tests/harness/oidc.py install   # npm ci into .cache/oidc-provider (install step)

In tests: ``with OidcProvider(client_id, secret) as idp: ...idp.token_endpoint``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from beaconwatch.embedded.tansu import BrokerStartError, free_port, stop_process

SOURCE = Path(__file__).with_name("oidc")  # server.mjs, package.json, package-lock.json
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "oidc-provider"
AUDIENCE = "urn:kafka"


def install() -> Path:
    """The directory holding oidc-provider's node_modules (npm ci of the committed lock
    file), installed again only when the lock changed."""
    lock = (SOURCE / "package-lock.json").read_bytes()
    marker = CACHE / ".installed-lock"
    if marker.exists() and marker.read_bytes() == lock:
        return CACHE
    npm = shutil.which("npm")
    if npm is None:
        raise BrokerStartError("the OIDC provider of the OAUTHBEARER tests needs Node.js and npm")
    CACHE.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(SOURCE / name, CACHE / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=CACHE, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BrokerStartError(f"npm ci of oidc-provider failed:\n{done.stdout}\n{done.stderr}")
    marker.write_bytes(lock)
    return CACHE


class OidcProvider:
    """The provider as a subprocess on a free loopback port; a context manager."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_ttl_s: int = 300,
        startup_timeout_s: float = 30.0,
    ):
        self.client_id = client_id
        self.token_ttl_s = token_ttl_s
        self._secret = client_secret
        self._startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # Its stderr goes to a file, not a pipe, which would fill up and stop it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  # closed by stop()

    @property
    def issuer(self) -> str:
        if self.port is None:
            raise RuntimeError("provider not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def start(self) -> OidcProvider:
        directory = install()
        node = shutil.which("node")
        if node is None:
            raise BrokerStartError("the OIDC provider of the OAUTHBEARER tests needs Node.js")
        # Node resolves imports next to the script: the server runs beside node_modules.
        shutil.copy(SOURCE / "server.mjs", directory / "server.mjs")
        self.port = free_port()
        self._proc = subprocess.Popen(
            [node, "server.mjs", str(self.port), self.client_id],
            cwd=directory,
            env={
                **os.environ,
                "OIDC_CLIENT_SECRET": self._secret,
                "OIDC_TOKEN_TTL_S": str(self.token_ttl_s),
            },
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")
                raise BrokerStartError(f"the OIDC provider exited:\n{err}")
            try:
                with urllib.request.urlopen(f"{self.issuer}/jwks", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BrokerStartError(f"the OIDC provider did not answer in {self._startup_timeout_s} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, 5.0)
        self._log.close()

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python tests/harness/oidc.py install")
    print(f"oidc-provider: {install()}")

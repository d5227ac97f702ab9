"""Why a Kafka connection fails, in one line an operator can act on.

aiokafka's bootstrap only logs each broker's error and raises "Unable to bootstrap"; the
pre-flight check (`beaconwatch run`) dials the first bootstrap server once more itself to
learn the cause: an untrusted certificate, a hostname the certificate does not name, a broker
that wants a client certificate, a SASL login refused. No secret is ever in the line.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed

from beaconwatch.config import KafkaConfig
from beaconwatch.runtime.kafka_options import client_options
from beaconwatch.runtime.oauth_token import TokenError


async def connection_problem(kafka: KafkaConfig, timeout_s: float = 15.0) -> str | None:
    """The reason one connection to the first bootstrap server fails, or None if it works."""
    options = client_options(kafka)
    options.pop("bootstrap_servers")
    options.pop("retry_backoff_ms")  # a client option, not a connection's
    host, port, _ = collect_hosts(kafka.bootstrap_servers, randomize=False)[0]
    try:
        conn = await asyncio.wait_for(
            create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **options),
            timeout_s,
        )
    except (OSError, KafkaError, TimeoutError) as exc:
        return _scrubbed(explain(exc, kafka), options)
    conn.close()
    return None


def explain(exc: BaseException, kafka: KafkaConfig) -> str:
    """``exc`` from connecting with ``kafka``'s settings, as one line naming what to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc.reason)
        if "hostname" in detail.lower() or "ip address mismatch" in detail.lower():
            return (
                f"TLS: the broker's certificate does not name the host dialled ({detail}); "
                "dial a name the certificate holds (or set kafka.ssl_check_hostname = false)"
            )
        trusted = kafka.ssl_cafile or "the system trust store"
        return (
            f"TLS: the broker's certificate is not trusted ({detail}); kafka.ssl_cafile "
            f"({trusted}) must hold the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}{_certificate_hint(kafka)}"
    if isinstance(exc, SaslAuthenticationFailed):
        who = f"as {kafka.sasl_username}"
        if kafka.sasl_mechanism == "OAUTHBEARER":
            source = kafka.sasl_oauth_token_file or kafka.sasl_oauth_token_endpoint
            who = f"with the token from {source}"
        message = str(exc.args[0]) if exc.args else exc.description  # the broker's words
        return f"SASL {kafka.sasl_mechanism or 'PLAIN'} login {who} refused: {message}"
    if isinstance(exc, TokenError):
        return str(exc)
    if isinstance(exc, KafkaConnectionError) and kafka.security_protocol == "SSL":
        # TLS 1.3: a broker that requires a client certificate closes the connection after
        # the handshake, so the client only sees the connection closed.
        return f"the broker closed the connection{_certificate_hint(kafka)}"
    if isinstance(exc, OSError | TimeoutError | KafkaConnectionError):
        return "no broker answered"  # refused, unknown host, silence: the address is wrong
    return str(exc).removeprefix(f"{type(exc).__name__}: ") or type(exc).__name__


def _certificate_hint(kafka: KafkaConfig) -> str:
    if kafka.ssl_certfile:
        return " (is kafka.ssl_certfile's certificate signed by a CA the broker trusts?)"
    return (
        " (a listener with ssl.client.auth=required needs a client certificate: "
        "kafka.ssl_certfile and kafka.ssl_keyfile)"
    )


def _scrubbed(line: str, options: dict[str, Any]) -> str:
    """``line`` with any secret of ``options`` masked: brokers word their own errors."""
    for key, value in options.items():
        if "password" in key and isinstance(value, str) and value:
            line = line.replace(value, "***")
    return line

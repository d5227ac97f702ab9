"""``[kafka]`` security settings: TLS (CA file, client certificate and key, hostname check) and
SASL (PLAIN, SCRAM, OAUTHBEARER), checked at start-up so a missing file or a key its password
does not open is one config error naming the key, never showing a secret."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

TLS_PROTOCOLS = ("SSL", "SASL_SSL")


class KafkaSecurity(BaseModel):
    """The security part of ``[kafka]`` (KafkaConfig inherits it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # TLS (SSL, SASL_SSL). Without ssl_cafile the system trust store verifies the broker.
    ssl_cafile: str | None = None  # PEM: the CA certificates that sign the brokers'
    ssl_certfile: str | None = None  # PEM: client certificate (mTLS), chain after it
    ssl_keyfile: str | None = None  # PEM: its private key (else inside ssl_certfile)
    ssl_key_password: SecretStr | None = None  # for an encrypted ssl_keyfile
    ssl_check_hostname: bool = True  # the broker's certificate must name the host dialled
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None  # never in logs, reprs or config errors
    # OAUTHBEARER: a file holding the token (a JWT), read at every connection, so a token the
    # platform rotates in place (a Kubernetes projected service account token) is picked up.
    sasl_oauth_token_file: str | None = None
    # ...or tokens fetched from an OpenID Connect token endpoint with the client-credentials
    # grant (client_secret_basic), again before each one expires. https (http on loopback).
    sasl_oauth_token_endpoint: str | None = None
    sasl_oauth_client_id: str | None = None
    sasl_oauth_client_secret: SecretStr | None = None
    sasl_oauth_scope: str | None = None  # space-separated; unset = the provider's default

    @field_validator("sasl_password", "ssl_key_password", "sasl_oauth_client_secret", mode="before")
    @classmethod
    def _secret_as_text(cls, value: object) -> object:
        # A secret is text whatever it looks like: 12345 in TOML is an integer.
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_oauth_token_file")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is not None:
            path = Path(value)
            if path.is_dir():
                raise ValueError(f"a directory, not a file: {value}")
            if not path.is_file():
                raise ValueError(f"file not found: {value}")
            if not os.access(path, os.R_OK):
                raise ValueError(f"file not readable by this process: {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        tls = self.security_protocol in TLS_PROTOCOLS
        tls_keys = [k for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, k)]
        if tls_keys and not tls:
            raise ValueError(
                f"{', '.join(tls_keys)} set, but security_protocol = {self.security_protocol} "
                "does not use TLS (SSL or SASL_SSL)"
            )
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("ssl_keyfile needs ssl_certfile (the certificate of that key)")
        if self.ssl_key_password is not None and not self.ssl_certfile:
            raise ValueError("ssl_key_password needs ssl_certfile and ssl_keyfile")
        if self.security_protocol.startswith("SASL"):
            self._check_sasl()
        if tls:
            tls_context(self)  # a key its password does not open fails here, not at connect
        return self

    def _check_sasl(self) -> None:
        mechanism = self.sasl_mechanism or "PLAIN"
        if mechanism == "OAUTHBEARER":
            self._check_oauth()
        elif not self.sasl_username or self.sasl_password is None:
            raise ValueError(f"sasl_mechanism = {mechanism} needs sasl_username and sasl_password")

    def _check_oauth(self) -> None:
        if bool(self.sasl_oauth_token_file) == bool(self.sasl_oauth_token_endpoint):
            raise ValueError(
                "sasl_mechanism = OAUTHBEARER needs sasl_oauth_token_file or "
                "sasl_oauth_token_endpoint (one of them)"
            )
        if self.sasl_oauth_token_endpoint:
            if not self.sasl_oauth_client_id or self.sasl_oauth_client_secret is None:
                raise ValueError(
                    "sasl_oauth_token_endpoint needs sasl_oauth_client_id and "
                    "sasl_oauth_client_secret"
                )
            url = urlsplit(self.sasl_oauth_token_endpoint)
            loopback = url.hostname in ("localhost", "127.0.0.1", "::1")
            if not url.hostname or url.scheme not in ("https", *(("http",) if loopback else ())):
                raise ValueError(
                    "sasl_oauth_token_endpoint must be an https:// URL (http:// only on loopback)"
                )


def tls_context(security: KafkaSecurity) -> ssl.SSLContext:
    """The client TLS context: verifies the broker (against ssl_cafile alone, else the system
    trust store; its hostname unless ssl_check_hostname = false) and presents the client
    certificate, if any. Raises ValueError naming the setting whose file does not load."""
    try:
        # With ssl_cafile only its CAs are trusted, as a Java client's trust store is.
        context = ssl.create_default_context(cafile=security.ssl_cafile)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"ssl_cafile {security.ssl_cafile}: no usable PEM CA certificate ({_reason(exc)})"
        ) from None
    context.check_hostname = security.ssl_check_hostname  # verify_mode stays CERT_REQUIRED
    if security.ssl_certfile:
        secret = security.ssl_key_password
        # Never None: OpenSSL would ask for the password of an encrypted key on the terminal.
        password = secret.get_secret_value() if secret is not None else ""
        try:
            context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile, lambda: password)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"ssl_certfile {security.ssl_certfile} / ssl_keyfile {security.ssl_keyfile}: "
                f"cannot load the client certificate and key ({_reason(exc)}; an encrypted key "
                "needs the right ssl_key_password)"
            ) from None
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return type(exc).__name__

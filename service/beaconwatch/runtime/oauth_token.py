"""OAUTHBEARER tokens for aiokafka: read from a file at every connection (platforms rotate such
files in place: a Kubernetes projected service account token is replaced before it expires),
or fetched from an OpenID Connect token endpoint with the client-credentials grant and fetched
again when most of its lifetime has passed. Neither the token nor the client secret is ever
in a message or repr."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from aiokafka.abc import AbstractTokenProvider
from pydantic import SecretStr

# A token is fetched anew once this share of its lifetime has passed, so a connection made
# just before it expires still authenticates.
_RENEW_AT_LIFETIME_SHARE = 0.8
_DEFAULT_LIFETIME_S = 300.0  # when the endpoint does not say (expires_in is optional)


class TokenError(OSError):
    """No token to be had: an OSError, so aiokafka treats it as a failed connection (and
    retries) rather than a crash."""


class TokenFileError(TokenError):
    pass


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    async def token(self) -> str:
        return await asyncio.to_thread(self.read)

    def read(self) -> str:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TokenFileError(
                f"kafka.sasl_oauth_token_file {self.path}: {exc.strerror}"
            ) from None
        if not token:
            raise TokenFileError(f"kafka.sasl_oauth_token_file {self.path} is empty")
        return token

    def __repr__(self) -> str:  # the path, never the token
        return f"FileTokenProvider({str(self.path)!r})"


class ClientCredentialsTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Access tokens from ``endpoint`` (RFC 6749 4.4, client_secret_basic)."""

    def __init__(
        self,
        endpoint: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._timeout_s = timeout_s
        self._token: str | None = None
        self._renew_at = 0.0  # time.monotonic()
        self._lock = asyncio.Lock()  # connections made together share one fetch

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                token, lifetime_s = await asyncio.to_thread(self.fetch)
                self._token = token
                self._renew_at = time.monotonic() + lifetime_s * _RENEW_AT_LIFETIME_SHARE
            return self._token

    def fetch(self) -> tuple[str, float]:
        """(access token, lifetime in seconds) from the endpoint."""
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        # RFC 6749 2.3.1: id and secret are form-encoded before they are joined.
        pair = f"{quote(self.client_id)}:{quote(self._secret.get_secret_value())}"
        request = Request(
            self.endpoint,
            data=urlencode(form).encode(),
            headers={
                "Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        where = f"kafka.sasl_oauth_token_endpoint {self.endpoint}"
        try:
            with urlopen(
                request, timeout=self._timeout_s, context=ssl.create_default_context()
            ) as r:
                answer = json.loads(r.read())
        except HTTPError as exc:
            raise TokenError(f"{where} refused: HTTP {exc.code} {_oauth_error(exc)}") from None
        except (URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise TokenError(f"{where} not reachable: {reason}") from None
        except ValueError:
            raise TokenError(f"{where} answered something other than JSON") from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError(f"{where} answered without an access_token")
        lifetime_s = answer.get("expires_in")
        if not isinstance(lifetime_s, int | float) or lifetime_s <= 0:
            lifetime_s = _DEFAULT_LIFETIME_S
        return token, float(lifetime_s)

    def __repr__(self) -> str:  # never the secret or the token
        return f"ClientCredentialsTokenProvider({self.endpoint!r}, client_id={self.client_id!r})"


def _oauth_error(exc: HTTPError) -> str:
    """The OAuth error of an error answer (RFC 6749 5.2): "invalid_client (...)"."""
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        return str(exc.reason)
    if not isinstance(body, dict) or "error" not in body:
        return str(exc.reason)
    description = body.get("error_description")
    return f"{body['error']}" + (f" ({description})" if description else "")

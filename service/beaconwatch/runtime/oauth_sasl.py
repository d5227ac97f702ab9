"""A refused OAUTHBEARER token must fail the connection, as RFC 7628 (3.2.2) has it.

A broker that refuses a token answers the client's first message with an error challenge
(``{"status":"invalid_token"}``) and fails the login only once the client acknowledges it
with ``%x01``. aiokafka (0.12-0.14) ignores the challenge and takes the connection for
authenticated: with an expired token the pre-flight check passed and the service met an empty
cluster. The Java client, sarama (IBM/sarama#1428) and others send the ``%x01``; so does this
authenticator, which `install` puts in place of aiokafka's own.
"""

from __future__ import annotations

from typing import Any

from aiokafka import conn
from aiokafka.errors import SaslAuthenticationFailed


class _AcknowledgingOAuthAuthenticator(conn.OAuthAuthenticator):  # type: ignore[misc]
    _challenge: bytes | None = None

    async def step(self, payload: bytes | None) -> tuple[bytes, bool] | None:
        if self._challenge is not None:  # the broker let the acknowledgement through
            raise SaslAuthenticationFailed(
                f"token refused: {self._challenge.decode(errors='replace')}"
            )
        if self._token_sent and payload:
            self._challenge = bytes(payload)
            return b"\x01", True  # the broker now fails the login with its own message
        result: tuple[bytes, bool] | None = await super().step(payload)
        return result


def _authenticator_oauth(self: Any) -> _AcknowledgingOAuthAuthenticator:
    return _AcknowledgingOAuthAuthenticator(
        sasl_oauth_token_provider=self._sasl_oauth_token_provider
    )


def install() -> None:
    """Make every aiokafka connection of this process acknowledge OAUTHBEARER refusals."""
    conn.AIOKafkaConnection.authenticator_oauth = _authenticator_oauth

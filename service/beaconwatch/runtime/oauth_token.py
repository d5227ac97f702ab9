"""OAUTHBEARER tokens for aiokafka, read from a file at every connection: platforms rotate
such files in place (a Kubernetes projected service account token is replaced before it
expires), so the newest token is what each new connection presents."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka.abc import AbstractTokenProvider


class TokenFileError(OSError):
    """The token file cannot be read: an OSError, so aiokafka treats it as a failed
    connection (and retries) rather than a crash."""


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

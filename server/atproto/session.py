"""An account session on a PDS, for writing to the account's repository.

The session logs in with ``com.atproto.server.createSession`` (identifier + app password), calls
with its access token, and when the PDS says that token expired or is no longer accepted it
refreshes the session with ``com.atproto.server.refreshSession`` — or, when the refresh token is
spent too, logs in again — and retries the call once. Every new pair of tokens is handed to
``on_tokens`` so that the caller can keep it (sealed) for the next run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from server.atproto.client import PdsClient, PdsError, XrpcError

CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
# Answers that mean "this token will not do": log in again (or refresh) and retry.
_STALE_TOKEN_ERRORS = {"ExpiredToken", "InvalidToken", "AuthRequired", "AuthenticationRequired"}


@dataclass(frozen=True, slots=True)
class Tokens:
    access: str
    refresh: str


@dataclass(frozen=True, slots=True)
class Login:
    """How to log in as the account: its DID, the identifier it logs in with, its app password."""

    did: str
    identifier: str
    password: str


class AccountSession:
    def __init__(
        self,
        client: PdsClient,
        pds_url: str,
        login: Login,
        tokens: Tokens | None,
        on_tokens: Callable[[Tokens], Awaitable[None]],
    ) -> None:
        self._client = client
        self.pds_url = pds_url
        self._login = login
        self._tokens = tokens
        self._on_tokens = on_tokens

    async def procedure(self, nsid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Call ``nsid`` as the account, renewing the session once if the PDS refuses its token."""
        if self._tokens is None:
            await self.log_in()
        try:
            return await self._client.procedure(self.pds_url, nsid, body, token=self._access())
        except XrpcError as exc:
            if not _stale(exc):
                raise
        await self._renew()
        return await self._client.procedure(self.pds_url, nsid, body, token=self._access())

    async def log_in(self) -> None:
        answer = await self._client.procedure(
            self.pds_url,
            CREATE_SESSION,
            {"identifier": self._login.identifier, "password": self._login.password},
        )
        if answer.get("did") != self._login.did:
            raise PdsError(
                f"the app password logs into {answer.get('did')!r}, not {self._login.did}", transient=False
            )
        await self._keep(answer)

    async def _renew(self) -> None:
        assert self._tokens is not None
        try:
            answer = await self._client.procedure(
                self.pds_url, REFRESH_SESSION, None, token=self._tokens.refresh
            )
        except XrpcError as exc:
            if exc.transient:
                raise
            await self.log_in()  # the refresh token is spent too
            return
        await self._keep(answer)

    async def _keep(self, answer: Mapping[str, Any]) -> None:
        access, refresh = answer.get("accessJwt"), answer.get("refreshJwt")
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise PdsError("the PDS answered a session without tokens", transient=True)
        self._tokens = Tokens(access, refresh)
        await self._on_tokens(self._tokens)

    def _access(self) -> str:
        assert self._tokens is not None
        return self._tokens.access


def _stale(exc: XrpcError) -> bool:
    return exc.status == 401 or exc.error in _STALE_TOKEN_ERRORS

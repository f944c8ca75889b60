"""DID resolution for caller auth: a local folder of documents, ``did:web`` and ``did:plc``.

Documents fetched over HTTP are cached (failures too, briefly), concurrent resolutions of one DID
share a single request, and every fetch is bounded in time and size. Fetches go through
:mod:`server.outbound` (public addresses only unless the client passed in allows private ones), and
every transport failure or timeout reads the same. A document from the local
folder takes precedence over the network, so that development and tests run offline through the
same code path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

from server.auth.multikey import MultikeyError, PublicKey, decode_multikey
from server.outbound import UNREACHABLE, OutboundPolicy, outbound_client

log = logging.getLogger(__name__)

DidDocument = dict[str, Any]

_PLC_DID = re.compile(r"did:plc:[a-z2-7]{24}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_WEB_HOST = re.compile(rf"(?P<name>(?:{_LABEL}\.)*{_LABEL})(?::(?P<port>[0-9]{{1,5}}))?")
_MAX_HOST_LENGTH = 253
_MAX_CACHE_ENTRIES = 10_000
_ACCEPT = "application/did+ld+json, application/did+json, application/json"


class DidResolutionError(Exception):
    """A DID could not be resolved to a usable document or key."""


@dataclass(frozen=True)
class _Entry:
    document: DidDocument | None  # None: the resolution failed with ``error``
    error: str
    fetched_at: float
    expires_at: float


class DidResolver:
    """Resolves DIDs to their documents, and documents to their atproto signing key.

    Returned documents are shared with the cache: callers must not modify them.
    """

    def __init__(
        self,
        local_docs_dir: Path | None,
        plc_url: str = "https://plc.directory",
        http: httpx.AsyncClient | None = None,
        *,
        cache_ttl: float = 3600,
        web_scheme: str = "https",
        clock: Callable[[], float] = time.monotonic,
        negative_cache_ttl: float = 60,
        min_refresh_interval: float = 5,
        timeout: float = 3,
        max_document_bytes: int = 256 * 1024,
    ) -> None:
        """``min_refresh_interval``: a ``fresh`` resolution reuses a fetch younger than this, so
        that a stream of badly signed tokens cannot turn into a stream of upstream requests.
        Without ``http``, the resolver makes its own :func:`~server.outbound.outbound_client` with
        the default (public addresses only) policy."""
        self._local_dir = local_docs_dir
        self._plc_url = plc_url.rstrip("/")
        self._http = http
        self._owns_http = http is None
        self._cache_ttl = cache_ttl
        self._web_scheme = web_scheme
        self._clock = clock
        self._negative_ttl = negative_cache_ttl
        self._min_refresh = min_refresh_interval
        self._timeout = timeout
        self._max_bytes = max_document_bytes
        self._local: dict[str, DidDocument] | None = None
        self._local_stamp: int | None = None
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[DidDocument]] = {}

    async def aclose(self) -> None:
        """Close the HTTP client if this resolver created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def resolve(self, did: str, *, fresh: bool = False) -> DidDocument:
        """The DID document of ``did``; ``fresh`` reloads the local folder and bypasses the cache."""
        local = self._local_documents(reload=fresh)
        if did in local:
            return local[did]
        entry = self._cache.get(did)
        now = self._clock()
        if (
            entry is not None
            and now < entry.expires_at
            and (not fresh or now - entry.fetched_at < self._min_refresh)
        ):
            if entry.document is None:
                raise DidResolutionError(entry.error)
            return entry.document
        task = self._inflight.get(did)
        if task is None:
            task = asyncio.create_task(self._fetch_and_store(did))
            self._inflight[did] = task
            task.add_done_callback(lambda done: self._forget(did, done))
        return await asyncio.shield(task)

    async def signing_key(self, did: str, *, fresh: bool = False) -> PublicKey:
        """The atproto signing key of ``did``: its ``#atproto`` Multikey verification method."""
        document = await self.resolve(did, fresh=fresh)
        methods = document.get("verificationMethod")
        if not isinstance(methods, list):
            raise DidResolutionError(f"the DID document of {did} has no verificationMethod list")
        for method in methods:
            if isinstance(method, dict) and method.get("id") in ("#atproto", f"{did}#atproto"):
                return _multikey_of(did, method)
        raise DidResolutionError(f"the DID document of {did} has no #atproto verification method")

    def _forget(self, did: str, task: asyncio.Task[DidDocument]) -> None:
        if self._inflight.get(did) is task:
            del self._inflight[did]
        if not task.cancelled():
            task.exception()  # retrieved here so that an unawaited failure is not reported

    def _local_documents(self, *, reload: bool) -> dict[str, DidDocument]:
        """The folder's documents, read again when asked to or when files were added or removed
        (the folder's modification time changed)."""
        if self._local_dir is None:
            return {}
        try:
            stamp = self._local_dir.stat().st_mtime_ns
        except OSError:
            stamp = None
        if self._local is None or reload or stamp != self._local_stamp:
            self._local = _load_folder(self._local_dir)
            self._local_stamp = stamp
        return self._local

    async def _fetch_and_store(self, did: str) -> DidDocument:
        fetched_at = self._clock()
        try:
            document = await self._fetch(did)
        except DidResolutionError as exc:
            self._store(did, _Entry(None, str(exc), fetched_at, fetched_at + self._negative_ttl))
            raise
        self._store(did, _Entry(document, "", fetched_at, fetched_at + self._cache_ttl))
        return document

    def _store(self, did: str, entry: _Entry) -> None:
        self._cache.pop(did, None)
        if len(self._cache) >= _MAX_CACHE_ENTRIES:
            del self._cache[next(iter(self._cache))]
        self._cache[did] = entry

    async def _fetch(self, did: str) -> DidDocument:
        url = self._document_url(did)
        if self._http is None:
            self._http = outbound_client(OutboundPolicy())
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.stream(
                    "GET",
                    url,
                    headers={"accept": _ACCEPT},
                    timeout=self._timeout,
                    follow_redirects=False,
                ) as response:
                    if response.status_code in (404, 410):
                        raise DidResolutionError(f"{did} was not found ({response.status_code})")
                    if response.status_code != 200:
                        raise DidResolutionError(
                            f"fetching the DID document of {did} failed with HTTP {response.status_code}"
                        )
                    body = await self._read_capped(did, response)
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL):
            raise DidResolutionError(f"the DID document host of {did} {UNREACHABLE}") from None
        document = _parse_document(body)
        if document is None:
            raise DidResolutionError(f"the DID document of {did} is not a JSON object")
        if document.get("id") != did:
            raise DidResolutionError(f"the DID document served for {did} names another id")
        return document

    async def _read_capped(self, did: str, response: httpx.Response) -> bytes:
        too_large = DidResolutionError(f"the DID document of {did} exceeds {self._max_bytes} bytes")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise too_large
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self._max_bytes:
                raise too_large
        return bytes(body)

    def _document_url(self, did: str) -> str:
        if did.startswith("did:plc:"):
            if not _PLC_DID.fullmatch(did):
                raise DidResolutionError("malformed did:plc identifier")
            return f"{self._plc_url}/{did}"
        if did.startswith("did:web:"):
            return f"{self._web_scheme}://{_web_host(did)}/.well-known/did.json"
        raise DidResolutionError("unsupported DID method (only did:plc and did:web resolve)")


def _web_host(did: str) -> str:
    """The ``host[:port]`` of a host-level ``did:web`` (the port is written ``%3A``)."""
    ident = did.removeprefix("did:web:")
    if ":" in ident:
        raise DidResolutionError("did:web identifiers with a path are not supported")
    host = re.sub("%3[Aa]", ":", ident, count=1)
    match = _WEB_HOST.fullmatch(host)
    if (
        match is None
        or len(match["name"]) > _MAX_HOST_LENGTH
        or (match["port"] is not None and not 0 < int(match["port"]) < 65536)
    ):
        raise DidResolutionError("malformed did:web host")
    return host


@lru_cache(maxsize=4096)
def _decoded(multibase: str) -> PublicKey:
    """Keys are decoded (and their curve point checked) once, not on every verified token."""
    return decode_multikey(multibase)


def _multikey_of(did: str, method: dict[str, Any]) -> PublicKey:
    multibase = method.get("publicKeyMultibase")
    if method.get("type") != "Multikey" or not isinstance(multibase, str):
        raise DidResolutionError(f"the #atproto key of {did} is not a Multikey")
    try:
        return _decoded(multibase)
    except MultikeyError as exc:
        raise DidResolutionError(f"the #atproto key of {did} is invalid: {exc}") from exc


def _parse_document(data: bytes) -> DidDocument | None:
    """The JSON object in ``data``, or None when it is not one."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _load_folder(folder: Path) -> dict[str, DidDocument]:
    """Every ``*.json`` DID document in ``folder``, by its ``id``; unusable files are skipped."""
    documents: dict[str, DidDocument] = {}
    if not folder.is_dir():
        log.warning("the DID document folder %s does not exist", folder)
        return documents
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError as exc:
        log.warning("cannot list the DID document folder %s: %s", folder, exc)
        return documents
    for path in paths:
        try:
            document = _parse_document(path.read_bytes())
        except OSError as exc:
            log.warning("cannot read DID document %s: %s", path, exc)
            continue
        did = document.get("id") if document is not None else None
        if document is None or not isinstance(did, str):
            log.warning("skipping %s: not a DID document with a string id", path)
            continue
        if did in documents:
            log.warning("%s redefines %s; the later file wins", path, did)
        documents[did] = document
    return documents

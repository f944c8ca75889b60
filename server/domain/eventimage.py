"""An event's image served from this service's own origin: the event's ``imageUrl`` fetched through
the outbound client (public addresses only, bounded in time and size), checked to be a PNG, JPEG,
WebP or GIF image by its declared type and by its first bytes, and kept in memory for a while.

The pages' policy loads images from this origin only, so a third-party image reaches a buyer only
this way. A failure (refused address, non-image, oversized answer, timeout) is remembered for a
shorter while, so a page's visitors cannot make the service call the host again and again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx

from server.outbound import OutboundPolicy, outbound_client

IMAGE_MAX_BYTES = 2 * 1024 * 1024
IMAGE_TIMEOUT_SECONDS = 10.0
IMAGE_TTL_SECONDS = 3600.0
FAILURE_TTL_SECONDS = 300.0
CACHE_MAX_ENTRIES = 256
CACHE_MAX_BYTES = 32 * 1024 * 1024
MAX_URL_LENGTH = 2048
MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class Image:
    content: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class _Entry:
    image: Image | None
    expires: float

    @property
    def size(self) -> int:
        return len(self.image.content) if self.image else 0


def sniff(content: bytes) -> str | None:
    """The image type the first bytes say, among the four served."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(content) >= 12 and content.startswith(b"RIFF") and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def declared_type(header: str | None) -> str | None:
    media_type = (header or "").split(";", 1)[0].strip().lower()
    media_type = _ALIASES.get(media_type, media_type)
    return media_type if media_type in MEDIA_TYPES else None


def usable_url(url: str | None, *, allow_http: bool) -> bool:
    """An absolute https URL (http too when ``allow_http``) naming a host and no credentials."""
    if not url or len(url) > MAX_URL_LENGTH:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return False
    schemes = ("https", "http") if allow_http else ("https",)
    return parts.scheme in schemes and bool(parts.hostname) and "@" not in parts.netloc


def version(url: str) -> str:
    """A short tag of the URL, so a page names a new address when the image changes."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class EventImages:
    """Fetches, checks and caches event images (one per server process)."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        allow_http: bool = False,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = replace(
            policy,
            max_response_bytes=min(policy.max_response_bytes, IMAGE_MAX_BYTES),
            total_timeout_seconds=min(policy.total_timeout_seconds, IMAGE_TIMEOUT_SECONDS),
        )
        self.allow_http = allow_http
        self._client = client or outbound_client(self.policy)
        self._clock = clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._cached_bytes = 0
        self._in_flight: dict[str, asyncio.Task[Image | None]] = {}
        self.fetches = 0

    async def aclose(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        await self._client.aclose()

    def showable(self, url: str | None) -> bool:
        """Whether a page should name the image: a usable URL not known to fail now."""
        if not usable_url(url, allow_http=self.allow_http):
            return False
        assert url is not None
        entry = self._fresh(url)
        return entry is None or entry.image is not None

    async def get(self, url: str | None) -> Image | None:
        """The image at ``url``, from the cache or fetched now (one fetch per URL at a time)."""
        if not usable_url(url, allow_http=self.allow_http):
            return None
        assert url is not None
        entry = self._fresh(url)
        if entry is not None:
            self._cache.move_to_end(url)
            return entry.image
        task = self._in_flight.get(url)
        if task is None:
            task = asyncio.ensure_future(self._fetch_and_keep(url))
            self._in_flight[url] = task
            task.add_done_callback(lambda _: self._in_flight.pop(url, None))
        return await asyncio.shield(task)

    def _fresh(self, url: str) -> _Entry | None:
        entry = self._cache.get(url)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._forget(url)
            return None
        return entry

    def _forget(self, url: str) -> None:
        entry = self._cache.pop(url, None)
        if entry is not None:
            self._cached_bytes -= entry.size

    async def _fetch_and_keep(self, url: str) -> Image | None:
        image = await self._fetch(url)
        ttl = IMAGE_TTL_SECONDS if image is not None else FAILURE_TTL_SECONDS
        self._forget(url)
        entry = _Entry(image, self._clock() + ttl)
        self._cache[url] = entry
        self._cached_bytes += entry.size
        while len(self._cache) > CACHE_MAX_ENTRIES or self._cached_bytes > CACHE_MAX_BYTES:
            self._forget(next(iter(self._cache)))
        return image

    async def _fetch(self, url: str) -> Image | None:
        self.fetches += 1
        limit = self.policy.max_response_bytes
        headers = {
            "accept": ", ".join(MEDIA_TYPES),
            "accept-encoding": "identity",
            "user-agent": "AtmosphereTickets (event image)",
        }
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                media_type = declared_type(response.headers.get("content-type"))
                if response.status_code != 200 or media_type is None:
                    return None
                if int(response.headers.get("content-length") or 0) > limit:
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        return None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError):
            return None
        content = bytes(body)
        return Image(content, media_type) if content and sniff(content) == media_type else None

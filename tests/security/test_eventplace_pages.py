"""Attacks through the event's place and image: markup in a record's location, and an image URL
that is not an image, is too large, or points at this machine (fetched only where the settings
allow private addresses, as the test harness does; never with the defaults)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Harness, running_harness
from support.catalog import ORGANIZER as CATALOG_ORGANIZER
from support.catalog import event_input
from support.imagehost import ImageHost, small_png
from support.pds import CALENDAR, ORGANIZER, LocalPds, calendar_event, uri_of
from support.storefront import event_path

from server.domain.eventimage import IMAGE_MAX_BYTES, sniff

pytestmark = pytest.mark.usefixtures("database_url")
PNG = small_png()


@pytest.fixture
def host() -> Iterator[ImageHost]:
    server = ImageHost().start()
    yield server
    server.stop()


async def test_markup_in_a_location_is_text(harness: Harness, pds: LocalPds) -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    locations = [{"$type": "community.lexicon.location.address", "country": "DE", "name": evil}]
    pds.put(ORGANIZER, CALENDAR, "3kevilplace01", calendar_event(locations=locations))
    await harness.app.ok(
        "createTicketEvent",
        {"organizerDid": ORGANIZER, "event": {"uri": uri_of("3kevilplace01")}, "status": "active"},
    )
    page = await harness.app.http.get(f"{harness.server.url}/p/{ORGANIZER}/e/3kevilplace01")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;, DE" in page.text
    )


async def _event_with_image(harness: Harness, image_url: str, title: str = "Harbour Lights") -> str:
    body = {**event_input(title), "imageUrl": image_url}
    out = await harness.app.ok(
        "createTicketEvent", {"organizerDid": CATALOG_ORGANIZER, "event": body, "status": "active"}
    )
    return harness.server.url + event_path(out["event"]["uri"])


def _image_src(page: str) -> str | None:
    found = re.search(r'<img class="event-image" src="([^"]+)" alt="([^"]+)">', page)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_the_image_is_served_from_this_origin(harness: Harness, host: ImageHost) -> None:
    url = await _event_with_image(harness, host.serve("/poster.png", PNG), "Harbour <Lights>")
    page = await harness.app.http.get(url)
    src = _image_src(page.text)
    assert src is not None and src.startswith(url.removeprefix(harness.server.url) + "/image?v=")
    assert 'alt="Harbour &lt;Lights&gt;"' in page.text
    assert "img-src 'self' data:" in page.headers["content-security-policy"]
    assert host.requests == []  # the page itself fetches nothing

    image = await harness.app.http.get(harness.server.url + src)
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "max-age=86400" in image.headers["cache-control"]
    again = await harness.app.http.get(url + "/image")
    assert again.content == PNG and host.requests == ["/poster.png"]  # cached


NOT_IMAGES = [
    ("html", b"<html><script>alert(1)</script></html>", "text/html", True),
    ("html declared as png", b"<html><script>alert(1)</script></html>", "image/png", True),
    (
        "svg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "image/svg+xml",
        True,
    ),
    ("png declared as gif", PNG, "image/gif", True),
    ("too large", PNG + b"\x00" * IMAGE_MAX_BYTES, "image/png", True),
    ("too large, no length", PNG + b"\x00" * IMAGE_MAX_BYTES, "image/png", False),
    ("empty", b"", "image/png", True),
]


@pytest.mark.parametrize(("case", "body", "kind", "length"), NOT_IMAGES, ids=[c[0] for c in NOT_IMAGES])
async def test_what_is_not_an_acceptable_image_is_a_404(
    harness: Harness, host: ImageHost, case: str, body: bytes, kind: str, length: bool
) -> None:
    url = await _event_with_image(harness, host.serve("/bad", body, kind, length=length))
    assert _image_src((await harness.app.http.get(url)).text) is not None
    image = await harness.app.http.get(url + "/image")
    assert image.status_code == 404, case
    assert image.headers["content-type"].startswith("text/html")
    assert not body or body[:20] not in image.content
    # The page still renders, now without the image; the failure is remembered, not fetched again.
    page = await harness.app.http.get(url)
    assert page.status_code == 200 and _image_src(page.text) is None
    assert (await harness.app.http.get(url + "/image")).status_code == 404
    assert host.requests == ["/bad"]


async def test_an_event_without_an_image_or_an_unreachable_one(harness: Harness, host: ImageHost) -> None:
    plain = await _event_with_image(harness, host.serve("/missing", b"gone", "text/plain", status=404))
    assert (await harness.app.http.get(plain + "/image")).status_code == 404
    redirect = await _event_with_image(harness, host.serve("/moved", PNG, status=302))
    assert (await harness.app.http.get(redirect + "/image")).status_code == 404
    out = await harness.app.ok(
        "createTicketEvent",
        {"organizerDid": CATALOG_ORGANIZER, "event": event_input("No image"), "status": "active"},
    )
    url = harness.server.url + event_path(out["event"]["uri"])
    assert _image_src((await harness.app.http.get(url)).text) is None
    assert (await harness.app.http.get(url + "/image")).status_code == 404
    assert (await harness.app.http.get(url + "x/image")).status_code == 404


async def test_with_default_settings_a_loopback_image_is_never_fetched(
    database_url: str, tmp_path: Path, host: ImageHost
) -> None:
    host.serve("/poster.png", PNG)
    async with running_harness(database_url, tmp_path, outbound_allow_private=False) as h:
        for image_url in (
            host.url("/poster.png"),
            host.url("/poster.png", scheme="https"),
            host.url("/poster.png", scheme="https", host="localhost"),
            host.url("/poster.png", scheme="https", host="[::ffff:127.0.0.1]"),
        ):
            url = await _event_with_image(h, image_url)
            image = await h.app.http.get(url + "/image")
            assert image.status_code == 404, image_url
            assert _image_src((await h.app.http.get(url)).text) is None
    assert host.connections == 0 and host.requests == []


def test_the_magic_bytes_of_each_type() -> None:
    assert sniff(PNG) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff(b"GIF89a...") == sniff(b"GIF87a...") == "image/gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"RIFF\x00\x00\x00\x00AVI ") is None
    assert sniff(b"<svg") is None and sniff(b"") is None

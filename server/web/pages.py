"""The HTML shell of every page the service serves to people, under a strict Content-Security-Policy:
our own stylesheet and scripts only (no inline script or style, no third-party origin), forms posting
to this service (and, where a page sends the buyer on, to that one origin)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get

from server.domain.exports.rules import price

STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {"tickets.css": "text/css", "event.js": "text/javascript"}


def origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(form_targets: Iterable[str | None] = ()) -> str:
    """The policy of every page; ``form_targets``: URLs a form of the page may lead to (a form
    submission's redirects are held to ``form-action`` too)."""
    targets = sorted({o for url in form_targets if url and (o := origin(url))})
    return "; ".join(
        [
            "default-src 'none'",
            "style-src 'self'",
            "script-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action " + " ".join(["'self'", *targets]),
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def headers(form_targets: Iterable[str | None] = ()) -> dict[str, str]:
    return {
        "content-security-policy": content_security_policy(form_targets),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }


def money(amount: int, currency: str) -> str:
    return f"{price(amount, currency)} {currency.upper()}"


def page(
    title: str,
    body: str,
    status: int = 200,
    *,
    scripts: Iterable[str] = (),
    refresh_seconds: int | None = None,
    form_targets: Iterable[str | None] = (),
) -> Response[str]:
    """A whole document: ``body`` is already escaped HTML."""
    refresh = (
        f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds is not None else ""
    )
    script_tags = "".join(f'<script src="/static/{html.escape(s)}" defer></script>' for s in scripts)
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="/static/tickets.css">{script_tags}</head>
<body><main>{body}</main></body></html>"""
    return Response(document, status_code=status, media_type="text/html", headers=headers(form_targets))


def not_found(what: str) -> Response[str]:
    return page(f"{what} not found", f"<h1>{html.escape(what)} not found</h1>", 404)


@get("/static/{name:str}")
async def static_file(request: Request[Any, Any, Any]) -> Response[Any]:
    """Our stylesheet and scripts (a fixed list: no path from the request reaches the disk)."""
    name = request.path_params["name"]
    media_type = _STATIC_TYPES.get(name)
    if media_type is None:
        return not_found("File")
    return Response(
        (STATIC / name).read_bytes(),
        media_type=media_type,
        headers={**headers(), "cache-control": "public, max-age=3600"},
    )

"""``tickets console link``: the operator prints a one-time sign-in link to the console, for one
organizer or for every organizer, with how long it works."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import Harness
from support.catalog import ORGANIZER, active_event

from server.cli.console import duration_ms
from server.cli.main import build_parser


async def test_the_operator_prints_a_link_that_signs_in_once(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    event = await active_event(harness.app)
    parser = build_parser()

    async def link(*argv: str) -> str:
        args = parser.parse_args(["console", "link", *argv])
        await asyncio.to_thread(args.func, args, harness.settings)
        (printed,) = capsys.readouterr().out.splitlines()
        return printed

    printed = await link("--organizer", ORGANIZER, "--expires", "5m")
    assert printed.startswith(f"{harness.settings.public_url.rstrip('/')}/console/signin/")
    served = printed.replace(harness.settings.public_url.rstrip("/"), harness.server.url)
    async with httpx.AsyncClient(base_url=harness.server.url) as browser:
        assert (await browser.post(served)).status_code == 303
        assert event["title"] in (await browser.get("/console/")).text
        assert (await browser.post(served)).status_code == 403

    with pytest.raises(SystemExit, match="--organizer DID"):
        await link()
    with pytest.raises(SystemExit, match="takes a DID"):
        await link("--organizer", "someone@example.com")


def test_link_lifetimes() -> None:
    assert [duration_ms(t) for t in ("90s", "15m", "2h", "1d")] == [90_000, 900_000, 7_200_000, 86_400_000]
    for wrong in ("15", "0m", "-1h", "1w", "8d"):
        with pytest.raises(SystemExit):
            duration_ms(wrong)

"""The publishing worker: in every server process, brings due publications up to date."""

from __future__ import annotations

import asyncio
import logging

from server.atproto.client import PdsError
from server.auth.did import DidResolutionError
from server.domain.errors import DomainError
from server.domain.publishing.service import Publisher

log = logging.getLogger("tickets.publishing")

BATCH = 10


async def run_publish_worker(publisher: Publisher, poll_interval_s: float) -> None:
    """Forever: claim due publications and publish them one after the other; when none is due,
    look again after ``poll_interval_s``. A failure is recorded on its publication and retried
    after a backoff; an unexpected one after the claim's lease."""
    while True:
        try:
            due = await publisher.claim_due(BATCH)
        except Exception:
            log.exception("claiming publications failed; retrying")
            due = []
        for event_id, version in due:
            try:
                await publisher.run(event_id, version)
            except (DomainError, PdsError, DidResolutionError) as exc:
                log.warning("publishing %s failed: %s", event_id, getattr(exc, "message", exc))
            except Exception:
                log.exception("publishing %s failed", event_id)
        if not due:
            await asyncio.sleep(poll_interval_s)

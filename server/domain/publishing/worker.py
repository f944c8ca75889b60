"""The publishing worker: in every server process, brings due publications up to date."""

from __future__ import annotations

import asyncio
import logging

from server.atproto.client import PdsError
from server.auth.did import DidResolutionError
from server.domain.publishing.service import Publisher
from server.errors import DomainError

log = logging.getLogger("tickets.publishing")

BATCH = 10


async def run_publish_worker(publisher: Publisher, poll_interval_s: float) -> None:
    """Forever: claim due publications and publish them one after the other; when none is due,
    look again after ``poll_interval_s``. A failure is recorded on its publication and retried
    after a backoff; an unexpected one after the claim's lease. Cancelled, it gives back the claims
    it has not finished."""
    while True:
        try:
            due = await publisher.claim_due(BATCH)
        except Exception:
            log.exception("claiming publications failed; retrying")
            due = []
        published = 0
        for done, (event_id, version) in enumerate(due):
            try:
                await publisher.run(event_id, version)
                published += 1
            except (DomainError, PdsError, DidResolutionError) as exc:
                log.warning("publishing %s failed: %s", event_id, getattr(exc, "message", exc))
            except asyncio.CancelledError:
                await _give_back(publisher, [event_id for event_id, _ in due[done:]])
                raise
            except Exception:
                log.exception("publishing %s failed", event_id)
        if due:
            log.info("publishing: %d of %d event(s) published", published, len(due))
        else:
            await asyncio.sleep(poll_interval_s)


async def _give_back(publisher: Publisher, event_ids: list[str]) -> None:
    try:
        await publisher.give_back(event_ids)
    except Exception:
        log.exception(
            "giving back %d publication claim(s) failed; they return after their lease", len(event_ids)
        )

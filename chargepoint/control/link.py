"""The CSMS link and the queue of transaction messages, as the control surfaces show them.

Split from :mod:`chargepoint.control.service` because it is one subject of its
own: is the station online, since when is it not, what went wrong and when is
the next attempt (the link's outage record, ``connection.Outage``); what is
waiting to be delivered; and the technician's "try again now". Times of the
link are real wall-clock times (the network's), ages of queued messages are on
the station's clock, the one their timestamps were made with.
"""

from __future__ import annotations

from typing import Any

from chargepoint.connection import Link
from chargepoint.core.events import ActivityChanged, MeterSample, TransactionStarted, TransactionStopped
from chargepoint.core.storage.outbox import Entry, Outbox, event_time

#: Queued messages listed by ``queue`` (the queue may hold thousands while offline).
QUEUE_LISTED = 200

#: The station's words for the queued message kinds.
KINDS = {TransactionStarted: "start", MeterSample: "sample", TransactionStopped: "stop",
         ActivityChanged: "activity"}


def outage_json(link: Link) -> dict[str, Any]:
    """Offline since when, the last error and how often in a row, the next attempt."""
    o = link.outage
    offline = not link.connected.is_set()
    wait = link.next_attempt_in()
    return {"offline_since": o.since if offline else None,
            "link_error": o.last_error if offline else None,
            "error_repeats": o.repeats if offline else 0,
            "attempts": o.attempts if offline else 0,
            "next_attempt_in_s": None if wait is None else round(wait, 1)}


def message_json(entry: Entry, outbox: Outbox, now: float) -> dict[str, Any]:
    event = entry.event
    return {"seq": entry.seq, "kind": KINDS.get(type(event), type(event).__name__),
            "local_id": event.local_id, "remote_id": outbox.remote_id(event.local_id),
            "connector": event.evse_id, "age_s": round(now - event_time(event), 1)}


def queue_messages(outbox: Outbox, now: float, limit: int = QUEUE_LISTED) -> list[dict[str, Any]]:
    """The oldest ``limit`` waiting messages, oldest first."""
    return [message_json(entry, outbox, now) for entry in outbox.entries(limit)]


async def reconnect(link: Link, *, healthy: bool, force: bool = False) -> dict[str, Any]:
    """Connect to the CSMS again now, without waiting for the backoff.

    A healthy link (connected, BootNotification accepted) is left alone unless
    ``force``: dropping it costs the CSMS a new boot and loses nothing that a
    retry would gain.
    """
    if healthy and not force:
        return {"was_connected": True, "status": "healthy"}
    was_connected = await link.retry_now()
    return {"was_connected": was_connected, "status": "reconnecting"}

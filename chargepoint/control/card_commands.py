"""The control protocol's card commands: the owner's cards of a station without a CSMS.

``cards`` lists them (and, with a CSMS, says that the CSMS decides and how
large its local authorization list is); ``cards_add``, ``cards_remove`` and
``cards_import`` change them, only while the station runs standalone: with a
CSMS the OCPP local list is the CSMS's and the owner's cards are not used, so
editing them would change nothing that matters and is refused with the reason
(see core/cards.py). An import is all or nothing: one bad card refuses the
whole batch, naming it. A card added under a tag already listed is refused
unless ``rename`` says to replace its name and expiry (a typo in a tag must not
silently rename somebody's card); an expiry in the past is refused there (such a
card could never charge; an imported list may keep expired cards on purpose).
"""

from __future__ import annotations

import math
from typing import Any

from chargepoint.control.commands import AUDITED, command
from chargepoint.control.errors import ControlError
from chargepoint.control.service import StationService
from chargepoint.core.cards import CARDS_MAX, Card, CardError, LocalCards, checked, utc
from chargepoint.core.storage.store import StoreError

AUDITED.update({"cards_add", "cards_remove", "cards_import"})


def _cards(s: StationService) -> LocalCards:
    cards = s.daemon.cards
    if cards is None:
        raise ControlError("refused", "this daemon keeps no cards")
    return cards  # type: ignore[no-any-return]


def _owner_only(s: StationService) -> LocalCards:
    """The cards, if they are the station's to edit: only without a CSMS."""
    if not s.config.ocpp.standalone:
        auth = s.station.authorization
        raise ControlError(
            "refused", f"a CSMS is configured (ocpp.csms_url = {s.config.ocpp.csms_url}): it decides who may "
                       f"charge, with its own OCPP local authorization list (version {auth.list_version}, "
                       f"{len(auth.local_list)} card(s)), which only the CSMS changes. The local cards are "
                       "kept but not used while a CSMS is configured; remove ocpp.csms_url to use them.")
    return _cards(s)


def card_json(card: Card, now: float) -> dict[str, Any]:
    return {"id_tag": card.id_tag, "name": card.name, "expiry": card.expiry, "added_at": card.added_at,
            "expired": card.expired(now)}


def _card_args(s: StationService, raw: Any) -> Card:
    if not isinstance(raw, dict):
        raise ControlError("bad_request", "a card must be an object with id_tag, name and expiry")
    id_tag, name, expiry = raw.get("id_tag"), raw.get("name"), raw.get("expiry")
    if not isinstance(id_tag, str) or not isinstance(name, str):
        raise ControlError("bad_request", "id_tag and name must be strings")
    if expiry is not None and (isinstance(expiry, bool) or not isinstance(expiry, int | float)
                               or not math.isfinite(expiry)):
        raise ControlError("bad_request",
                           f"card {id_tag}: expiry must be epoch seconds or null, not {expiry!r}")
    try:
        return checked(id_tag, name, None if expiry is None else float(expiry), s.clock.time())
    except CardError as exc:
        raise ControlError("bad_request", str(exc)) from None


async def _put(s: StationService, cards: LocalCards, batch: list[Card]) -> list[Card]:
    try:
        return await cards.put(batch)
    except CardError as exc:
        raise ControlError("refused", str(exc)) from None
    except StoreError as exc:
        raise ControlError("failed", f"the cards cannot be stored: {exc}") from None


@command("cards")
async def _list(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    cards, now = _cards(s), s.clock.time()
    auth = s.station.authorization
    return {"standalone": s.config.ocpp.standalone, "csms_url": s.config.ocpp.csms_url,
            "in_use": s.config.ocpp.standalone, "free_vend": s.config.station.free_vend,
            "cards": [card_json(c, now) for c in cards.all()],
            "ocpp_list": {"version": auth.list_version, "entries": len(auth.local_list)}}


@command("cards_add")
async def _add(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    cards = _owner_only(s)
    new = _card_args(s, args)
    if new.expiry is not None and new.expiry <= s.clock.time():
        raise ControlError("bad_request", f"card {new.id_tag}: the expiry {utc(new.expiry)} is in the past: "
                                          "the card could never charge")
    listed = cards.get(new.id_tag)
    if listed is not None and not args.get("rename", False):
        raise ControlError("refused", f"card {listed.id_tag} is already on the list as {listed.name!r}: "
                                      "add it with rename to give it the new name and expiry")
    (card,) = await _put(s, cards, [new])
    return {"card": card_json(card, s.clock.time()), "renamed": listed is not None,
            "was": card_json(listed, s.clock.time()) if listed is not None else None}


@command("cards_remove")
async def _remove(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    cards = _owner_only(s)
    id_tag = args.get("id_tag")
    if not isinstance(id_tag, str):
        raise ControlError("bad_request", "id_tag must be a string")
    try:
        card = await cards.remove(id_tag)
    except StoreError as exc:
        raise ControlError("failed", f"the card cannot be removed: {exc}") from None
    if card is None:
        raise ControlError("refused", f"no card {id_tag} on the local card list")
    return {"card": card_json(card, s.clock.time())}


@command("cards_import")
async def _import(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    cards = _owner_only(s)
    raw = args.get("cards")
    if not isinstance(raw, list) or not raw or len(raw) > CARDS_MAX:
        raise ControlError("bad_request", f"cards must be a list of 1 to {CARDS_MAX} cards")
    batch = [_card_args(s, entry) for entry in raw]
    tags = [c.id_tag for c in batch]
    twice = sorted({t for t in tags if tags.count(t) > 1})
    if twice:
        raise ControlError("bad_request", f"card {twice[0]} is listed more than once")
    new = sum(1 for t in tags if cards.get(t) is None)
    await _put(s, cards, batch)
    return {"imported": len(batch), "added": new, "updated": len(batch) - new, "total": len(cards.cards)}

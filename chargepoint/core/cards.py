"""The station owner's cards: who may charge at a station without a CSMS.

A home or small-site station has no operator backend, so its owner keeps the
list of cards (a name, the card's identifier, an optional expiry) with
``chargepoint cards``. It is a list of its own, next to OCPP's two memories
(authorization.py), because they have different owners: the OCPP local
authorization list is the CSMS's (versioned, replaced whole by SendLocalList,
never changed by the station), these cards are the owner's. Exactly one of
them decides, by configuration:

* without ``ocpp.csms_url`` (standalone) the cards decide (``CardAuthorization``):
  a card on the list and not expired is accepted; any other is refused, with
  a log line saying why. Free vend, if on, still starts a session on plug-in.
* with a CSMS, the CSMS decides (with its local list and the cache, as OCPP
  says); the owner's cards are kept, untouched and unused, so they apply again
  if the station goes back to standalone, and the CLI refuses to edit them,
  saying the CSMS manages authorization.

The cards also name the sessions: a transaction records the name of its card
when it begins (outbox.py), so the history (and its CSV export) says whose car
charged. Expiry is compared with the station's injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from chargepoint.core.authorization import Entry, LocalAuthorization
from chargepoint.core.events import AuthResult, AuthStatus, IdToken
from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store
from hal.clock import Clock

log = logging.getLogger(__name__)

#: An identifier as OCPP 1.6 carries it (idTag: at most 20 characters).
TAG_MAX = 20
NAME_MAX = 64
#: Most cards kept (a home or a small site; the control API lists them all in one answer).
CARDS_MAX = 1000


def utc(epoch: float) -> str:
    """An expiry as a log line says it: ``2027-01-31T23:00:00Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class CardError(ValueError):
    """A card that cannot be added as given; the message says which and why."""


@dataclass(frozen=True)
class Card:
    id_tag: str
    name: str
    #: Epoch seconds after which the card is refused; None = never.
    expiry: float | None = None
    added_at: float = 0.0

    def expired(self, now: float) -> bool:
        return self.expiry is not None and self.expiry <= now


def checked(id_tag: str, name: str, expiry: float | None, added_at: float) -> Card:
    """A card from what a person typed, or ``CardError`` naming the problem."""
    tag = id_tag.strip()
    if not tag or len(tag) > TAG_MAX or any(ch.isspace() for ch in tag):
        raise CardError(f"card {id_tag!r}: the tag must be 1 to {TAG_MAX} characters without spaces")
    label = name.strip()
    if not label or len(label) > NAME_MAX:
        raise CardError(f"card {tag}: the name must be 1 to {NAME_MAX} characters")
    return Card(tag, label, expiry, added_at)


class LocalCards:
    """The owner's cards, in memory for lookups and in the state database."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.store: Store | None = None
        self.cards: dict[str, Card] = {}

    async def attach(self, store: Store) -> None:
        self.store = store
        self.cards = await store.call(_load, store)

    def get(self, id_tag: str) -> Card | None:
        return self.cards.get(id_tag)

    def all(self) -> list[Card]:
        return sorted(self.cards.values(), key=lambda c: (c.name.lower(), c.id_tag))

    async def put(self, cards: Iterable[Card]) -> list[Card]:
        """Add or replace cards, all or none (a tag already there gets the new name and expiry)."""
        batch = {c.id_tag: c for c in cards}
        if len(set(self.cards) | set(batch)) > CARDS_MAX:
            raise CardError(f"at most {CARDS_MAX} cards")
        if self.store is not None:
            await self.store.call(_save, self.store, list(batch.values()))
        self.cards.update(batch)
        for card in batch.values():
            log.info("card %s (%s) on the local card list%s", card.id_tag, card.name,
                     "" if card.expiry is None else f", expires {utc(card.expiry)}")
        return list(batch.values())

    async def remove(self, id_tag: str) -> Card | None:
        card = self.cards.get(id_tag)
        if card is None:
            return None
        if self.store is not None:
            await self.store.call(_delete, self.store, id_tag)
        del self.cards[id_tag]
        log.info("card %s (%s) removed from the local card list", card.id_tag, card.name)
        return card


class CardAuthorization(LocalAuthorization):
    """Standalone: the owner's cards decide; the OCPP list and cache are kept but not asked.

    A ``LocalAuthorization`` so the station uses it unchanged; the OCPP memories it
    loads stay in the database for a CSMS configured again later.
    """

    def __init__(self, settings: Settings, clock: Clock, cards: LocalCards) -> None:
        super().__init__(settings, clock)
        self.cards = cards

    def known(self, id_tag: str) -> Entry | None:
        card = self.cards.get(id_tag)
        return None if card is None else Entry(AuthStatus.ACCEPTED, card.expiry)

    async def authorize(self, token: IdToken,
                        ask_csms: Callable[[IdToken], Awaitable[AuthResult]] | None) -> AuthResult:
        now = self.clock.time()
        card = self.cards.get(token.value)
        if card is None:
            log.info("card %s refused: not on the local card list (chargepoint cards add)", token.value)
            return AuthResult(AuthStatus.INVALID)
        if card.expired(now):
            log.info("card %s (%s) refused: expired %s", card.id_tag, card.name, utc(card.expiry or now))
            return AuthResult(AuthStatus.EXPIRED, None, card.expiry)
        log.info("card %s (%s) accepted from the local card list", card.id_tag, card.name)
        return AuthResult(AuthStatus.ACCEPTED, None, card.expiry)


# ------------------------------------------------- database (store thread)
def _load(store: Store) -> dict[str, Card]:
    return {tag: Card(tag, name, expiry, added_at) for tag, name, expiry, added_at in
            store.db.execute("SELECT id_tag, name, expiry, added_at FROM cards")}


def _save(store: Store, cards: list[Card]) -> None:
    with store.db as db:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO cards (id_tag, name, expiry, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id_tag) DO UPDATE SET name = excluded.name, expiry = excluded.expiry",
            [(c.id_tag, c.name, c.expiry, c.added_at) for c in cards])


def _delete(store: Store, id_tag: str) -> None:
    store.db.execute("DELETE FROM cards WHERE id_tag = ?", (id_tag,))

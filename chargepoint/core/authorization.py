"""Who may charge when the CSMS is slow or unreachable: the local list and the cache.

OCPP gives a station two memories of identifiers. The local authorization
list is the operator's: sent whole or as differences, versioned, never changed
by the station. The authorization cache is the station's own: every answer the
CSMS gives about an identifier (Authorize, StartTransaction, StopTransaction)
is remembered with its expiry. The settings decide how they are used:
``local_pre_authorize`` (start at once for a known, valid card),
``local_authorize_offline`` (accept known, valid cards while offline),
``offline_tx_for_unknown_id`` (accept cards nobody knows while offline). The
list wins over the cache. Identifiers are looked up by their value: OCPP 1.6
carries no token type, and a card is the same card whatever it was used for.

Both live in memory for speed and in the state database so they survive a
restart; writes go through the store's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chargepoint.core.events import AuthResult, AuthStatus, IdToken
from chargepoint.core.settings import LOCAL_LIST_MAX_LENGTH, Settings
from chargepoint.core.storage.store import Store
from hal.clock import Clock

log = logging.getLogger(__name__)

SEND_LOCAL_LIST_MAX_LENGTH = LOCAL_LIST_MAX_LENGTH


class ListUpdate(StrEnum):
    ACCEPTED = "accepted"
    FAILED = "failed"
    VERSION_MISMATCH = "version_mismatch"


@dataclass(frozen=True)
class Entry:
    status: AuthStatus
    expiry: float | None = None
    group_id: str | None = None

    def valid_at(self, now: float) -> bool:
        return self.status == AuthStatus.ACCEPTED and (self.expiry is None or self.expiry > now)

    def as_result(self, now: float) -> AuthResult:
        if self.status == AuthStatus.ACCEPTED and self.expiry is not None and self.expiry <= now:
            return AuthResult(AuthStatus.EXPIRED, self.group_id, self.expiry)
        return AuthResult(self.status, self.group_id, self.expiry)


def parse_expiry(text: str | None) -> float | None:
    """An expiry date as OCPP writes it (ISO 8601) as epoch seconds."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LocalAuthorization:
    """The local authorization list and the authorization cache."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.store: Store | None = None
        self.list_version = 0
        self.local_list: dict[str, Entry] = {}
        self.cache: dict[str, Entry] = {}

    async def attach(self, store: Store) -> None:
        """Load what the database holds and persist changes from now on."""
        self.store = store
        self.list_version, self.local_list, self.cache = await store.call(_load, store)

    # ------------------------------------------------------------ deciding
    def known(self, id_tag: str) -> Entry | None:
        """What the local list (if enabled) or else the cache (if enabled) says."""
        if self.settings.current.local_list_enabled and id_tag in self.local_list:
            return self.local_list[id_tag]
        if self.settings.current.auth_cache_enabled and id_tag in self.cache:
            return self.cache[id_tag]
        return None

    async def authorize(self, token: IdToken,
                        ask_csms: Callable[[IdToken], Awaitable[AuthResult]] | None) -> AuthResult:
        """Decide on an identifier, asking the CSMS where the settings say so."""
        now = self.clock.time()
        id_tag = token.value
        entry = self.known(id_tag)
        if entry is not None and entry.valid_at(now) and self.settings.current.local_pre_authorize:
            log.info("card %s accepted locally (local pre-authorization)", id_tag)
            return entry.as_result(now)
        result = AuthResult(AuthStatus.UNKNOWN)
        if ask_csms is not None:
            result = await ask_csms(token)
        if result.status != AuthStatus.UNKNOWN:
            await self.remember(id_tag, result)
            return result
        # The CSMS could not be asked.
        if entry is not None:
            if self.settings.current.local_authorize_offline:
                decided = entry.as_result(now)
                log.info("card %s: offline, %s locally (local authorization offline)", id_tag,
                         decided.status.value)
                return decided
            return result
        if self.settings.current.offline_tx_for_unknown_id:
            log.info("card %s: offline and unknown, accepted (offline transactions for unknown ids)",
                     id_tag)
            return AuthResult(AuthStatus.ACCEPTED)
        return result

    # -------------------------------------------------------------- cache
    async def remember(self, id_tag: str, result: AuthResult) -> None:
        """Keep the CSMS's answer about ``id_tag`` in the cache (if enabled).

        Identifiers on the local list are the list's business and not cached.
        """
        if result.status == AuthStatus.UNKNOWN or not self.settings.current.auth_cache_enabled:
            return
        if id_tag in self.local_list:
            return
        entry = Entry(result.status, result.expiry, result.group_id)
        if self.cache.get(id_tag) == entry:
            return
        self.cache[id_tag] = entry
        if self.store is not None:
            await self.store.call(_save_cache, self.store, id_tag, entry, self.clock.time())

    async def clear_cache(self) -> None:
        self.cache.clear()
        if self.store is not None:
            await self.store.call(_clear_cache, self.store)

    # --------------------------------------------------------- local list
    async def update_list(self, version: int, full: bool,
                          entries: list[tuple[str, Entry | None]]) -> ListUpdate:
        """Apply a local list update from the CSMS.

        A full update replaces the list; a differential one adds or changes
        entries with an Entry and removes those without.
        """
        if len(entries) > SEND_LOCAL_LIST_MAX_LENGTH:
            return ListUpdate.FAILED
        if not full and version <= self.list_version:
            return ListUpdate.VERSION_MISMATCH
        updated = {} if full else dict(self.local_list)
        for id_tag, entry in entries:
            if entry is None:
                updated.pop(id_tag, None)
            else:
                updated[id_tag] = entry
        if len(updated) > LOCAL_LIST_MAX_LENGTH:
            return ListUpdate.FAILED
        if self.store is not None:
            await self.store.call(_save_list, self.store, version, updated)
        self.local_list, self.list_version = updated, version
        for id_tag in updated:
            self.cache.pop(id_tag, None)
        log.info("local authorization list version %d: %d entries (%s update)", version,
                 len(updated), "full" if full else "differential")
        return ListUpdate.ACCEPTED


# ------------------------------------------------- database (store thread)
def _entry(status: str, expiry: float | None, parent: str | None) -> Entry:
    return Entry(AuthStatus.parse(status), expiry, parent)


def _load(store: Store) -> tuple[int, dict[str, Entry], dict[str, Entry]]:
    db = store.db
    row = db.execute("SELECT value FROM meta WHERE name = 'auth_list_version'").fetchone()
    local = {tag: _entry(*rest) for tag, *rest in
             db.execute("SELECT id_tag, status, expiry, parent_id_tag FROM auth_list")}
    cache = {tag: _entry(*rest) for tag, *rest in
             db.execute("SELECT id_tag, status, expiry, parent_id_tag FROM auth_cache")}
    return (int(row[0]) if row else 0), local, cache


def _save_cache(store: Store, id_tag: str, entry: Entry, now: float) -> None:
    store.db.execute(
        "INSERT INTO auth_cache (id_tag, status, expiry, parent_id_tag, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(id_tag) DO UPDATE SET status = excluded.status, expiry = excluded.expiry, "
        "parent_id_tag = excluded.parent_id_tag, updated_at = excluded.updated_at",
        (id_tag, entry.status.value, entry.expiry, entry.group_id, now))


def _clear_cache(store: Store) -> None:
    store.db.execute("DELETE FROM auth_cache")


def _save_list(store: Store, version: int, entries: dict[str, Entry]) -> None:
    with store.db as db:
        db.execute("BEGIN")
        db.execute("DELETE FROM auth_list")
        db.executemany("INSERT INTO auth_list (id_tag, status, expiry, parent_id_tag) VALUES (?, ?, ?, ?)",
                       [(tag, e.status.value, e.expiry, e.group_id) for tag, e in entries.items()])
        db.execute("DELETE FROM auth_cache WHERE id_tag IN (SELECT id_tag FROM auth_list)")
        db.execute("INSERT INTO meta (name, value) VALUES ('auth_list_version', ?) "
                   "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (str(version),))

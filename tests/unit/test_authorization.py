"""Local list and cache decide as the settings say; both survive a restart."""

from __future__ import annotations

import pytest

from chargepoint.config import parse
from chargepoint.core.authorization import Entry, ListUpdate, LocalAuthorization, parse_expiry
from chargepoint.core.events import AuthResult, AuthStatus, IdToken
from chargepoint.core.settings import SetResult, Settings
from chargepoint.core.storage.store import Store
from hal.clock import ManualClock

NOW = 1_700_000_000.0


def make(**settings: str) -> LocalAuthorization:
    store = Settings(parse({"station": {"identity": "X"}, "ocpp": {"csms_url": "ws://h"}}))
    for key, value in settings.items():
        assert store.set(key, value) == SetResult.ACCEPTED, key
    return LocalAuthorization(store, ManualClock(0.0, wall_start=NOW))


def csms_says(status: AuthStatus, calls: list[str]):
    async def ask(token: IdToken) -> AuthResult:
        calls.append(token.value)
        return AuthResult(status)
    return ask


def card(value: str) -> IdToken:
    return IdToken(value)


async def offline(token: IdToken) -> AuthResult:
    return AuthResult(AuthStatus.UNKNOWN)


async def test_online_answers_are_cached_and_used_offline():
    auth = make(local_authorize_offline="true")
    calls: list[str] = []
    accepted, blocked = csms_says(AuthStatus.ACCEPTED, calls), csms_says(AuthStatus.BLOCKED, calls)
    assert (await auth.authorize(card("A"), accepted)).status == AuthStatus.ACCEPTED
    assert (await auth.authorize(card("B"), blocked)).status == AuthStatus.BLOCKED
    assert (await auth.authorize(card("A"), offline)).status == AuthStatus.ACCEPTED
    assert (await auth.authorize(card("B"), offline)).status == AuthStatus.BLOCKED
    assert (await auth.authorize(card("C"), offline)).status == AuthStatus.UNKNOWN


async def test_offline_without_local_authorization_refuses_known_cards():
    auth = make(local_authorize_offline="false")
    await auth.authorize(card("A"), csms_says(AuthStatus.ACCEPTED, []))
    assert (await auth.authorize(card("A"), offline)).status == AuthStatus.UNKNOWN


async def test_pre_authorize_skips_the_csms_for_valid_known_cards():
    auth = make(local_pre_authorize="true")
    calls: list[str] = []
    await auth.authorize(card("A"), csms_says(AuthStatus.ACCEPTED, calls))
    blocked = csms_says(AuthStatus.BLOCKED, calls)
    assert (await auth.authorize(card("A"), blocked)).status == AuthStatus.ACCEPTED
    assert calls == ["A"], "the second tap was decided locally"


async def test_expired_entries_are_not_accepted():
    auth = make(local_pre_authorize="true", local_authorize_offline="true")
    await auth.update_list(1, True, [("OLD", Entry(AuthStatus.ACCEPTED, NOW - 1)),
                                     ("NEW", Entry(AuthStatus.ACCEPTED, NOW + 3600))])
    assert (await auth.authorize(card("OLD"), offline)).status == AuthStatus.EXPIRED
    assert (await auth.authorize(card("NEW"), offline)).status == AuthStatus.ACCEPTED


async def test_unknown_cards_offline_follow_allow_offline_tx_for_unknown_id():
    auth = make(offline_tx_for_unknown_id="true", local_authorize_offline="true")
    await auth.update_list(1, True, [("BAD", Entry(AuthStatus.BLOCKED))])
    assert (await auth.authorize(card("STRANGER"), offline)).status == AuthStatus.ACCEPTED
    bad = await auth.authorize(card("BAD"), offline)
    assert bad.status == AuthStatus.BLOCKED, "known cards stay refused"


async def test_the_list_wins_over_the_cache_and_is_not_cached():
    auth = make(local_authorize_offline="true")
    await auth.authorize(card("A"), csms_says(AuthStatus.ACCEPTED, []))
    await auth.update_list(1, True, [("A", Entry(AuthStatus.BLOCKED))])
    assert "A" not in auth.cache
    assert (await auth.authorize(card("A"), offline)).status == AuthStatus.BLOCKED
    await auth.remember("A", AuthResult(AuthStatus.ACCEPTED))
    assert "A" not in auth.cache


async def test_disabled_list_and_cache_are_not_consulted():
    auth = make(local_authorize_offline="true", local_list_enabled="false", auth_cache_enabled="false")
    await auth.update_list(1, True, [("L", Entry(AuthStatus.ACCEPTED))])
    await auth.authorize(card("C"), csms_says(AuthStatus.ACCEPTED, []))
    assert auth.cache == {}
    assert (await auth.authorize(card("L"), offline)).status == AuthStatus.UNKNOWN


async def test_differential_updates_and_version_checks():
    auth = make()
    assert await auth.update_list(3, True, [("A", Entry(AuthStatus.ACCEPTED)),
                                            ("B", Entry(AuthStatus.ACCEPTED))]) \
        == ListUpdate.ACCEPTED
    c = ("C", Entry(AuthStatus.ACCEPTED))
    assert await auth.update_list(3, False, [c]) == ListUpdate.VERSION_MISMATCH
    assert await auth.update_list(4, False, [c, ("A", None)]) == ListUpdate.ACCEPTED
    assert sorted(auth.local_list) == ["B", "C"] and auth.list_version == 4
    assert await auth.update_list(1, True, []) == ListUpdate.ACCEPTED, "a full update may set any version"
    assert auth.local_list == {} and auth.list_version == 1
    too_many = [(f"T{i}", Entry(AuthStatus.ACCEPTED)) for i in range(10_001)]
    assert await auth.update_list(2, True, too_many) == ListUpdate.FAILED


async def test_list_and_cache_survive_a_restart(tmp_path):
    store = await Store.open(tmp_path)
    auth = make()
    await auth.attach(store)
    await auth.update_list(7, True, [("L", Entry(AuthStatus.ACCEPTED, NOW + 60, "P"))])
    await auth.authorize(card("C"), csms_says(AuthStatus.BLOCKED, []))
    await store.close()

    store = await Store.open(tmp_path)
    again = make()
    await again.attach(store)
    assert again.list_version == 7
    assert again.local_list == {"L": Entry(AuthStatus.ACCEPTED, NOW + 60, "P")}
    assert again.cache == {"C": Entry(AuthStatus.BLOCKED)}
    await again.clear_cache()
    await store.close()
    store = await Store.open(tmp_path)
    third = make()
    await third.attach(store)
    assert third.cache == {}
    await store.close()


@pytest.mark.parametrize(("text", "epoch"), [("2023-11-14T22:13:20Z", 1_700_000_000.0),
                                             ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
                                             (None, None)])
def test_parse_expiry(text, epoch):
    assert parse_expiry(text) == epoch

"""Network profiles in slots: stored as settings, never a lower security profile, tried in priority order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chargepoint.config import parse
from chargepoint.core.security.network_profiles import NetworkProfile, NetworkProfiles
from chargepoint.core.settings import SetResult, Settings

KEY = "00112233445566778899aabbccddeeff"


def make_settings(**ocpp: object) -> Settings:
    return Settings(parse({"station": {"identity": "CP-1"},
                           "ocpp": {"csms_url": "ws://csms.example/ocpp", **ocpp}}))


@pytest.fixture
def profiles() -> NetworkProfiles:
    return NetworkProfiles(make_settings(security_profile=1, authorization_key=KEY))


NEW = NetworkProfile(slot=1, url="ws://new.example/ocpp", security_profile=1, message_timeout_s=30,
                     details={"interface": "Wired0"})


def test_the_file_connection_is_slot_0_and_first_until_the_csms_says_otherwise(profiles):
    [only] = profiles.in_priority()
    assert (only.slot, only.url, only.security_profile, only.message_timeout_s) == (
        0, "ws://csms.example/ocpp", 1, 30)
    assert profiles.attempts == 3


def test_a_stored_profile_is_tried_in_the_order_the_priority_gives(profiles):
    assert profiles.store(NEW) is None
    assert profiles.profile(1) == NEW
    assert profiles.settings.set("network_priority", "1,0") is SetResult.ACCEPTED
    assert [p.slot for p in profiles.in_priority()] == [1, 0]
    # Slot 0 ends the list even when the CSMS left it out.
    profiles.settings.set("network_priority", "1")
    assert [p.slot for p in profiles.in_priority()] == [1, 0]


def test_the_priority_may_only_name_slots_with_a_profile(profiles):
    assert profiles.settings.set("network_priority", "2,0") is SetResult.REJECTED
    assert profiles.settings.refusal("network_priority", "2,0") == \
        "network_priority lists slot(s) without a profile: 2"
    assert profiles.settings.get("network_priority") == "0"


@pytest.mark.parametrize(("change", "reason"), [
    ({"security_profile": 0}, "downgrading is not allowed"),
    ({"security_profile": 4}, "not supported"),
    ({"security_profile": 3}, "profile 3 needs a wss:// URL"),
    ({"security_profile": 2}, "needs a wss:// URL"),
    ({"url": "wss://new.example/ocpp"}, "a ws:// URL"),
    ({"url": "http://new.example"}, "not a ws:// or wss:// URL"),
    ({"slot": 0}, "configuration file's connection"),
    ({"slot": 4}, "is not one of 1, 2, 3"),
    ({"message_timeout_s": 0}, "at least 1 s"),
])
def test_a_profile_the_station_cannot_use_is_refused_and_nothing_is_stored(profiles, change, reason):
    assert reason in (profiles.store(replace(NEW, **change)) or "")
    assert profiles.slots() == [0]


def test_basic_auth_profiles_need_a_password():
    profiles = NetworkProfiles(make_settings())
    assert "needs a Basic auth password" in profiles.store(NEW)
    assert profiles.store(replace(NEW, security_profile=0)) is None


def test_profiles_survive_a_restart_as_settings(profiles):
    profiles.store(replace(NEW, slot=2, url="wss://tls.example/ocpp", security_profile=2))
    profiles.settings.set("network_priority", "2,0")
    stored = {name: profiles.settings.as_text(name) for name in ("network_profiles", "network_priority")}
    restarted = make_settings(security_profile=1, authorization_key=KEY)
    restarted.restore(stored)
    again = NetworkProfiles(restarted)
    assert [(p.slot, p.url, p.security_profile) for p in again.in_priority()] == [
        (2, "wss://tls.example/ocpp", 2), (0, "ws://csms.example/ocpp", 1)]
    assert restarted.definitions["network_profiles"].secret  # a profile may hold a VPN/APN password


def test_connecting_through_a_profile_raises_the_security_profile_never_lowers_it(profiles):
    profiles.store(replace(NEW, slot=2, url="wss://tls.example/ocpp", security_profile=2))
    profiles.connected(2)
    assert profiles.settings.get("security_profile") == 2
    profiles.connected(0)  # the file's connection now also reads profile 2: nothing goes down
    assert profiles.settings.get("security_profile") == 2
    assert "downgrading" in profiles.store(NEW)

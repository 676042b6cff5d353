"""The 2.0.1 adapter's parts that need no connection: translation, boot reasons, message numbers,
the versions offered."""

from __future__ import annotations

import pytest

from chargepoint.config import ConfigError, parse
from chargepoint.core import boot
from chargepoint.core.boot import BootReason
from chargepoint.core.events import (
    Activity,
    ActivityChanged,
    AuthStatus,
    IdToken,
    ReadingContext,
    StatusChanged,
    StopReason,
    TokenType,
    TransactionStarted,
)
from chargepoint.core.storage import outbox as outbox_module
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import Store
from chargepoint.protocol import registry
from chargepoint.protocol.v201 import translate


@pytest.mark.parametrize(("facts", "word"), [
    ({}, "Available"),
    ({"plugged": True}, "Occupied"),
    ({"plugged": True, "activity": Activity.CHARGING}, "Occupied"),
    ({"activity": Activity.SUSPENDED_EV}, "Occupied"),  # the EV left, the transaction is kept
    ({"activity": Activity.AUTHORIZED}, "Available"),  # waiting for the EV: still free to plug
    ({"operative": False}, "Unavailable"),
    ({"operative": False, "plugged": True, "activity": Activity.CHARGING}, "Occupied"),
    ({"fault": "rcd", "plugged": True}, "Faulted"),
    ({"reserved": True}, "Reserved"),
    ({"reserved": True, "plugged": True}, "Reserved"),  # an EV without the reserved card changes nothing
    ({"reserved": True, "plugged": True, "activity": Activity.CHARGING}, "Occupied"),
    ({"reserved": True, "operative": False}, "Unavailable"),
])
def test_connector_status_has_five_words(facts: dict, word: str) -> None:
    assert translate.connector_status(StatusChanged(1, 0.0, **facts)).value == word


@pytest.mark.parametrize(("facts", "state"), [
    ({"plugged": True, "activity": Activity.CHARGING}, "Charging"),
    ({"plugged": True, "activity": Activity.STARTING}, "EVConnected"),
    ({"plugged": True, "activity": Activity.SUSPENDED_EV}, "SuspendedEV"),
    ({"plugged": False, "activity": Activity.SUSPENDED_EV}, "Idle"),
    ({"plugged": True, "activity": Activity.SUSPENDED_EVSE}, "SuspendedEVSE"),
    ({"plugged": False}, "Idle"),
])
def test_charging_state(facts: dict, state: str) -> None:
    assert translate.charging_state(StatusChanged(1, 0.0, **facts)).value == state


def test_every_stop_reason_has_a_201_reason_and_trigger() -> None:
    for reason in StopReason:
        assert translate.stopped_reason(reason).value
        assert translate.stop_trigger(reason).value
    assert translate.stopped_reason(StopReason.DEAUTHORIZED).value == "DeAuthorized"
    assert translate.stopped_reason(StopReason.HARD_RESET).value == "ImmediateReset"
    assert translate.stopped_reason(StopReason.UNLOCK_COMMAND).value == "Other"
    assert translate.stop_trigger(StopReason.REMOTE).value == "RemoteStop"
    assert translate.sample_trigger(ReadingContext.CLOCK).value == "MeterValueClock"


def test_id_tokens_and_token_info_both_ways() -> None:
    for kind in TokenType:
        token = IdToken("ABC", kind)
        assert translate.token_of(translate.id_token(token)) == token
    result = translate.auth_result({"status": "Accepted", "cacheExpiryDateTime": "2030-01-01T00:00:00Z",
                                    "groupIdToken": {"idToken": "G1", "type": "Central"}})
    assert (result.status, result.group_id) == (AuthStatus.ACCEPTED, "G1") and result.expiry == 1893456000.0
    assert translate.auth_result(translate.id_token_info(result)) == result
    snake = translate.auth_result({"status": "NotAtThisTime",
                                   "group_id_token": {"id_token": "G2", "type": "Local"}})
    assert (snake.status, snake.group_id) == (AuthStatus.NOT_AT_THIS_TIME, "G2")


async def test_boot_reason_follows_how_the_previous_run_ended(tmp_path, monkeypatch) -> None:
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("machine-boot-1\n")
    monkeypatch.setattr(boot, "BOOT_ID_FILE", boot_id)

    async def next_reason(ended: BootReason | None | str) -> BootReason:
        store = await Store.open(tmp_path / "state")
        try:
            reason = await store.call(boot.begin_run, store)
            if ended != "killed":
                await store.call(boot.end_run, store, ended)
        finally:
            await store.close()
        return reason

    assert await next_reason(None) == BootReason.POWER_UP  # a new station
    assert await next_reason(BootReason.REMOTE_RESET) == BootReason.POWER_UP  # stopped cleanly before
    assert await next_reason("killed") == BootReason.REMOTE_RESET
    assert await next_reason(None) == BootReason.WATCHDOG  # killed, the machine ran on
    assert await next_reason(BootReason.APPLICATION_ERROR) == BootReason.POWER_UP
    assert await next_reason("killed") == BootReason.APPLICATION_ERROR
    boot_id.write_text("machine-boot-2\n")  # killed with the machine: a power cut
    assert await next_reason(None) == BootReason.POWER_UP


async def test_answered_messages_per_transaction_survive_a_restart(tmp_path) -> None:
    """The count a 2.0.1 seqNo is made of: kept on disk with each answer, gone with the transaction."""
    store = await Store.open(tmp_path)
    outbox = Outbox()
    await outbox.attach(store)
    started = TransactionStarted(1, "tx1", IdToken("A"), 0.0, 1.0)
    await outbox.put(started)
    entry = await outbox.wait_head()
    await outbox.acknowledge(entry, remote_id="tx1")
    assert outbox.answered("tx1") == 1
    await store.close()

    store = await Store.open(tmp_path)
    again = Outbox()
    await again.attach(store)
    assert again.answered("tx1") == 1 and again.answered("other") == 0
    again.forget("tx1")
    assert again.answered("tx1") == 0
    await store.close()


def test_versions_offered_default_order_and_errors() -> None:
    base = {"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://x"}}
    assert parse(base).ocpp.versions == ("2.1", "2.0.1", "1.6")
    assert tuple(registry.VERSIONS) == ("1.6", "2.0.1", "2.1")
    assert set(parse(base).ocpp.versions) == set(registry.VERSIONS)
    only16 = parse({**base, "ocpp": {"csms_url": "ws://x", "versions": ["1.6"]}})
    assert only16.ocpp.versions == ("1.6",) and only16.ocpp.version == "1.6"
    assert parse({**base, "ocpp": {"csms_url": "ws://x", "version": "1.6"}}).ocpp.versions == ("1.6",)
    for versions, reason in (([], "at least one"), (["1.6", "1.6"], "twice"), (["2.2"], "unknown value")):
        with pytest.raises(ConfigError, match=reason):
            parse({**base, "ocpp": {"csms_url": "ws://x", "versions": versions}})
    with pytest.raises(ConfigError, match="either version or versions"):
        parse({**base, "ocpp": {"csms_url": "ws://x", "version": "1.6", "versions": ["1.6"]}})


def test_activity_changes_are_queued_as_neutral_events_and_read_back() -> None:
    event = ActivityChanged(1, "tx9", Activity.SUSPENDED_EVSE, True, 12.5)
    assert outbox_module.decode(outbox_module.encode(event)) == event
    state = StatusChanged(1, 0.0, activity=event.activity, plugged=event.plugged)
    assert translate.charging_state(state).value == "SuspendedEVSE"

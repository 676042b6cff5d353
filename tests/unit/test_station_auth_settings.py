"""The station reads its own authorization settings: whichever OCPP version asked, the rule is one.

``authorize_remote_start`` (1.6 AuthorizeRemoteTxRequests, 2.0.1 AuthorizeRemoteStart) decides
whether a remote start asks the CSMS first; ``stop_tx_on_invalid_id`` (StopTransactionOnInvalidId,
StopTxOnInvalidId) whether a refused identifier ends its transaction. The adapters pass neither.
"""

from __future__ import annotations

from chargepoint.core.events import Activity, AuthResult, AuthStatus, StopReason
from tests.unit.test_station import REMOTE, Bench, bench  # noqa: F401 - the station rig's fixture


async def test_a_remote_start_asks_the_csms_first_when_the_setting_says_so(bench: Bench) -> None:  # noqa: F811
    rig = await bench.rig()
    rig.auth_answer = AuthStatus.BLOCKED
    assert rig.station.remote_start(REMOTE, 1).accepted  # the setting's default: no question
    assert rig.auth_calls == [] and rig.status.activity == Activity.AUTHORIZED

    rig2 = await bench.rig()
    rig2.auth_answer = AuthStatus.BLOCKED
    rig2.settings.set("authorize_remote_start", "true")
    assert rig2.station.remote_start(REMOTE, 1).accepted
    await rig2.run(1.0)
    assert rig2.auth_calls == ["REMOTE"], "asked because the setting says so"
    assert rig2.station.view(1).session is None, "refused by the CSMS: nothing begins"


async def test_a_refused_identifier_ends_its_transaction_as_the_setting_says(bench: Bench) -> None:  # noqa: F811
    rig = await bench.rig()
    started = await rig.charge()
    rig.settings.set("stop_tx_on_invalid_id", "false")
    rig.station.transaction_authorized(started.local_id, AuthResult(AuthStatus.BLOCKED))
    await rig.run(2.0)
    assert rig.stopped == [], "kept open: the operator's setting"

    other = await bench.rig()
    begun = await other.charge()
    other.station.transaction_authorized(begun.local_id, AuthResult(AuthStatus.BLOCKED))  # default: true
    await other.run_until(lambda: other.stopped, 2.0, "TransactionStopped")
    assert other.stopped[0].reason == StopReason.DEAUTHORIZED

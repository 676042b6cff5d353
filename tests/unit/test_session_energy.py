"""Each session's energy from the sun and its final cost, kept for the history across a restart
(a real state database); the sun's counter is the energy manager's."""

from __future__ import annotations

from chargepoint.core.energy.session_energy import KEPT, RunningSession, SessionLedger, solar_share
from chargepoint.core.storage.store import Store


async def test_a_sessions_solar_energy_is_the_counter_over_it_and_is_kept_with_its_cost(tmp_path):
    store = await Store.open(tmp_path)
    try:
        ledger = SessionLedger()
        await ledger.attach(store)
        ledger.update({1: None, 2: None}, {1: 500.0})
        ledger.update({1: RunningSession("A", None), 2: None}, {1: 700.0})
        ledger.update({1: RunningSession("A", '{"total":["1.00","1.19"]}'), 2: None}, {1: 1500.0})
        assert ledger.solar_wh(1, {1: 1500.0}) == 800.0 and ledger.solar_wh(2, {}) is None
        # A new session on the same connector ends the first one (a transaction ended, the next began).
        ledger.update({1: RunningSession("B", None), 2: None}, {1: 1600.0})
        assert ledger.of("A") == {"solar_wh": 900.0, "cost": '{"total":["1.00","1.19"]}'}
        ledger.update({1: None, 2: None}, {1: 1650.0})
        assert ledger.of("B") == {"solar_wh": 50.0, "cost": None}
    finally:
        await store.close()
    store = await Store.open(tmp_path)
    try:
        again = SessionLedger()
        await again.attach(store)
        assert again.of("A") == {"solar_wh": 900.0, "cost": '{"total":["1.00","1.19"]}'}
        assert list(again.finished) == ["A", "B"]
    finally:
        await store.close()


def test_the_ledger_keeps_as_many_sessions_as_the_history_and_the_share_is_bounded():
    ledger = SessionLedger()
    for n in range(KEPT + 5):
        ledger.update({1: RunningSession(str(n), None)}, {1: float(n)})
    assert len(ledger.finished) == KEPT and ledger.of("0") is None and ledger.of(str(KEPT + 3)) is not None
    assert solar_share(300.0, 1000.0) == 0.3 and solar_share(1200.0, 1000.0) == 1.0
    assert solar_share(None, 1000.0) is None and solar_share(10.0, 0.0) is None

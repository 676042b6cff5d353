"""The run's registration: once per run and CSMS, whoever asked for the BootNotification; true reasons."""

from __future__ import annotations

from chargepoint.core.boot import BootReason, Registration


def test_a_reconnect_after_registration_is_not_a_boot() -> None:
    run = Registration(BootReason.REMOTE_RESET)
    assert run.must_boot("2.0.1") and run.reason(triggered=False) == BootReason.REMOTE_RESET
    assert run.reason(triggered=True) == BootReason.TRIGGERED  # the CSMS asked: that is the reason
    run.accepted("2.0.1")
    assert not run.must_boot("2.0.1")
    assert run.must_boot("2.0.1", boot_on_reconnect=True)  # a protocol that wants one per connection
    assert run.must_boot("1.6")  # another CSMS protocol has not registered this run
    assert run.reason(triggered=False) == BootReason.REMOTE_RESET  # still the start's true reason

"""A 1.6 CSMS without the security extension answers SecurityEventNotification with NotImplemented.

The station asks it once per connection and then sends it no more security
events; every event stays in the security log, unsent, for a CSMS that takes
them. Nothing is resent forever.
"""

from __future__ import annotations

from chargepoint.core.security.security_log import SecurityEvent
from tests.integration.conftest import running, station_config, until
from tests.integration.peers import RawCsms


async def round_trip(csms: RawCsms) -> None:
    """A CALL answered: what the station was sending before it has had its chance."""
    assert (await csms.call("GetConfiguration", {"key": ["HeartbeatInterval"]}))[0] == 3


async def test_a_csms_that_does_not_implement_security_events_is_asked_once_per_connection(tmp_path):
    async with RawCsms() as csms:  # answers every action it does not serve with NotImplemented
        async with running(station_config(csms.url, str(tmp_path / "state"))) as daemon:
            log = daemon.security.log
            await csms.wait_for("SecurityEventNotification", connection=1)
            await until(lambda: log.declined, 10, "the CSMS's refusal noted")
            for _ in range(3):
                await csms.send("this is not json")  # each one a security event (InvalidMessages)
            await round_trip(csms)  # frames are read in order: the three events are recorded by now
            # A sender that went on would have taken the wake-up (it clears it before each round).
            assert log.recorded.is_set(), "no sender woke for the new events"
            assert len(csms.of("SecurityEventNotification", connection=1)) == 1

            await csms.sockets[0].close()  # a new connection asks again, once
            await csms.wait_for("SecurityEventNotification", connection=2)
            await round_trip(csms)
            await until(lambda: log.declined, 10, "the refusal noted on the new connection")
            await round_trip(csms)
            assert len(csms.of("SecurityEventNotification", connection=2)) == 1

            kept = await log.entries()
            assert [e.kind for e in kept].count(SecurityEvent.INVALID_MESSAGES) == 3
            assert not any(e.sent for e in kept), "kept unsent, for a CSMS that takes them"

"""The safety loop's outputs: the contactor coil, the pilot PWM, and the heartbeat.

Writes are skipped when nothing changes (the loop runs a hundred times a
second), except ``write_safe``, which writes both unconditionally: the hardware
may not be in the state we believe. A failing pilot must not keep the
contactor from opening, so each safe write is guarded on its own.

The heartbeat is pulsed once per completed step for the hardware watchdog
(``hal.interfaces.Heartbeat``); an output that fails is given up, and the
watchdog then drops the coil: the fail-safe direction.
"""

from __future__ import annotations

import logging

from hal.interfaces import Contactor, Heartbeat, Pilot, ShuntTrip

log = logging.getLogger(__name__)

#: Duty that means "no PWM": a steady +12 V.
PWM_OFF = 100.0
#: How long the shunt-trip relay is energised when the contactor has welded.
SHUNT_TRIP_PULSE_S = 1.0


class Outputs:
    """Contactor and PWM as commanded, with the times the timing rules need."""

    def __init__(self, pilot: Pilot, contactor: Contactor, name: str, now: float,
                 heartbeat: Heartbeat | None = None, shunt_trip: ShuntTrip | None = None) -> None:
        self._pilot = pilot
        self._contactor = contactor
        self._heartbeat = heartbeat
        self._shunt_trip = shunt_trip
        #: While the shunt-trip relay is energised: until when (monotonic seconds).
        self.tripping_until: float | None = None
        self.name = name
        self.closed = False
        self.duty = PWM_OFF
        #: Current announced by the PWM; 0 when no PWM.
        self.offered_a = 0.0
        #: When the contactor was last switched (the auxiliary contact's settle time counts from it).
        self.switched_at = now
        #: When the PWM last went off (the 6 s forced-open rule counts from it).
        self.pwm_off_since = now

    def set_contactor(self, closed: bool, now: float) -> None:
        if closed == self.closed:
            return
        # Record first: a trip callback re-entering from inside the write must have the last word.
        self.closed = closed
        self.switched_at = now
        self._contactor.set_closed(closed)

    def set_pwm(self, duty: float, offered_a: float, now: float) -> None:
        if duty == self.duty:
            return
        self.duty = duty
        self.offered_a = offered_a
        if duty == PWM_OFF:
            self.pwm_off_since = now
        self._pilot.set_pwm(duty)

    def beat(self) -> bool:
        """One heartbeat edge; False if there is no heartbeat (any more)."""
        if self._heartbeat is None:
            return False
        try:
            self._heartbeat.beat()
        except Exception:
            log.exception("%s: heartbeat output failed; the hardware watchdog will open the contactor",
                          self.name)
            self._heartbeat = None
            return False
        return True

    def trip_breaker(self, now: float) -> None:
        """Energise the shunt release for a pulse: the contactor cannot open, the breaker must."""
        if self._shunt_trip is None:
            return
        log.critical("%s: tripping the supply breaker through its shunt release", self.name)
        self.tripping_until = now + SHUNT_TRIP_PULSE_S
        self._shunt_trip.set_energised(True)

    def end_breaker_pulse(self, now: float) -> None:
        if self.tripping_until is not None and now >= self.tripping_until and self._shunt_trip is not None:
            self.tripping_until = None
            self._shunt_trip.set_energised(False)

    def stop_heartbeat(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            try:
                heartbeat.close()
            except Exception:
                log.exception("%s: could not stop the heartbeat", self.name)

    def write_safe(self, now: float) -> None:
        """Contactor open, then pilot steady +12 V, written whatever we believe they are."""
        try:
            self._contactor.set_closed(False)
        except Exception:
            log.exception("%s: could not command the contactor open", self.name)
        if self.closed:
            self.closed = False
            self.switched_at = now
        try:
            self._pilot.set_pwm(PWM_OFF)
        except Exception:
            log.exception("%s: could not set the pilot to 100 %%", self.name)
        if self.duty != PWM_OFF:
            self.duty = PWM_OFF
            self.pwm_off_since = now
        self.offered_a = 0.0

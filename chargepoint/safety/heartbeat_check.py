"""The heartbeat circuit's check before every session: pulses charge G, and G falls without them.

The heartbeat (hardware.md, "Hardware fail-safe") only helps if it works: an
open bleed resistor (R61a or R61b) or an open R62 would hold the contactor's
relay for much longer after the loop stops, and a shorted Q4 would remove the
interlock altogether, each without a sign. The board reads Q4's gate G back on
an ADC input and Q4's drain on a GPIO, so before every session, with the
contactor still open and its output low, the safety loop checks the circuit as
a technician would with a scope:

1. *pulsing* for ``PULSE_S`` (the loop beats as always), ending on a falling
   GPIO16 edge, which is the edge that charges G;
2. *quiet*: no beats, the pin resting low (with the buffer's output high: the
   case in which an open R62 keeps charge behind C60). The first reading must
   show G risen (``GATE_RISEN_V`` or more, and no more than the +12 V rail can
   make) and Q4 conducting; G must then fall below ``GATE_LOW_V`` within
   ``FALL_LIMIT_S`` of the charging edge;
3. *settle*: no beats until G is below ``GATE_OFF_V``, where no 2N7002
   conducts; Q4's drain must then show it off, else Q4 is shorted.

Readings come once per step, so the moment G crosses 1 V lies between two
readings: it is interpolated on G's exponential decay. A loop that was late (the
first reading more than ``RISE_READ_S`` after the edge, or two readings further
apart than ``MAX_GAP_S`` around the limit) cannot tell, and the check starts
again instead of failing; ``MAX_RESTARTS`` restarts in a row are a fault of
their own. A failed check is the connector's ``heartbeat`` fault (latched): the
contactor may not close until a technician has repaired the circuit and cleared
it. The check keeps time on the read-back's clock (``HeartbeatReadback.monotonic``),
the one the circuit's timing is judged by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from hal.interfaces import HeartbeatReadback

#: How long the loop pulses before the quiet phase (several charging edges at any allowed step).
PULSE_S = 0.05
#: G right after the pulses: at least this (a healthy pump makes 7-9 V) ...
GATE_RISEN_V = 5.0
#: ... read at most this long after the charging edge (a healthy G is still above 5.3 V then, with
#: C61 10 % low); a later reading starts the check again.
RISE_READ_S = 0.02
#: ... and no more than the +12 V rail can make (more means a broken read-back divider).
GATE_MAX_V = 12.0
#: G must fall below this ...
GATE_LOW_V = 1.0
#: ... within this long of the last charging edge (healthy parts: 95-110 ms; R61a or R61b
#: open: 160 ms or more; R62 open: 300 ms or more).
FALL_LIMIT_S = 0.13
#: Below this no 2N7002 conducts, hot or not: Q4's drain must then read off.
GATE_OFF_V = 0.3
#: G must reach GATE_OFF_V within this long of the edge.
SETTLE_LIMIT_S = 0.5
#: Readings further apart than this around the limit cannot decide; the check starts again ...
MAX_GAP_S = 0.05
#: ... but not for ever: a loop that is this often too late to decide cannot keep the pump charged
#: either (or its heartbeat output has failed), and that is a fault of its own.
MAX_RESTARTS = 20


@dataclass
class CheckReport:
    """The check's last words as the daemon mirrors them from the supervisor (``report`` as below)."""

    report: str | None = None


class Phase(Enum):
    IDLE = "idle"
    PULSING = "pulsing"
    QUIET = "quiet"
    SETTLE = "settle"


class HeartbeatCheck:
    """One connector's check, stepped by its safety loop (outside the loop's lock: it reads the ADC)."""

    def __init__(self, readback: HeartbeatReadback | None) -> None:
        self._readback = readback
        self.phase = Phase.IDLE
        #: Passed for this session (always, for a board without the read-back).
        self.passed = readback is None
        #: What the last check found, in a technician's words (None before the first): what
        #: ``chargepoint selftest`` reports, and with a failure the fault's log line.
        self.report: str | None = None if readback is not None else \
            "not checked before sessions: no read-back of the circuit (board.heartbeat.gate_channel)"
        self._started = 0.0
        #: The heartbeat pin's level and when it last changed, on the read-back's clock (the pump
        #: charges on the pin's falling edges).
        self._pin_high = False
        self._edge_at = 0.0
        self._beat_at = 0.0
        self._risen_v = 0.0
        self._last: tuple[float, float] | None = None  # (seconds after the edge, G) of the last reading
        self._fell_s: float | None = None
        self._restarts = 0

    @property
    def beating(self) -> bool:
        """Whether the loop beats now (not while the check listens to G falling)."""
        return self.phase not in (Phase.QUIET, Phase.SETTLE)

    def beaten(self) -> None:
        """The loop has just toggled the heartbeat pin."""
        self._pin_high = not self._pin_high
        if self._readback is not None:
            self._beat_at = self._readback.monotonic()

    def new_session(self) -> None:
        """The EV left: the next one gets its own check."""
        self.passed = self._readback is None
        self.phase = Phase.IDLE
        self._restarts = 0

    def step(self, wanted: bool) -> str | None:
        """Advance the check; returns why it failed (once), else None.

        ``wanted``: an EV is plugged in, the contactor is open and nothing is faulted.
        """
        if self._readback is None or self.passed:
            return None
        now = self._readback.monotonic()
        if not wanted:
            self.phase = Phase.IDLE
            return None
        if self.phase is Phase.IDLE:
            self.phase, self._started = Phase.PULSING, now
            return None
        if self.phase is Phase.PULSING:
            if now - self._started < PULSE_S:
                return None
            if now - self._beat_at > MAX_GAP_S:  # no recent edge: a late loop, or a failed output
                return self._restart()
            if self._pin_high:
                return None
            self.phase, self._edge_at, self._last, self._fell_s = Phase.QUIET, self._beat_at, None, None
            return self._risen(now)
        gate = self._readback.gate_v()
        after = now - self._edge_at
        if self.phase is Phase.QUIET:
            return self._falling(after, gate)
        return self._settled(after, gate)

    def _risen(self, now: float) -> str | None:
        gate = self._readback.gate_v() if self._readback is not None else 0.0
        after = now - self._edge_at
        if after > RISE_READ_S:  # the loop was late after the edge: G has decayed, check again
            return self._restart()
        self._risen_v, self._last = gate, (after, gate)
        if gate < GATE_RISEN_V:
            return self._fail(f"G reads {gate:.1f} V after the pulses, less than {GATE_RISEN_V:g} V: the "
                              "pump does not charge (buffer Q5-Q7, C60, D60/D61, C61 shorted, or R68 open)")
        if gate > GATE_MAX_V:
            return self._fail(f"G reads {gate:.1f} V, more than the +12 V rail can make: the read-back "
                              "divider is broken (R69 open)")
        if self._readback is not None and self._readback.interlock_conducting() is False:
            return self._fail(f"Q4 does not conduct with G at {gate:.1f} V (Q4 open or its drain read-back "
                              "broken)")
        return None

    def _falling(self, after: float, gate: float) -> str | None:
        last = self._last
        self._last = (after, gate)
        if gate >= GATE_LOW_V:
            if after >= FALL_LIMIT_S:
                return self._fail(self._slow(f"G still reads {gate:.2f} V {after * 1000:.0f} ms after "
                                             "the last pulse"))
            return None
        if after <= FALL_LIMIT_S:
            crossed = after
        elif last is None or last[1] < GATE_LOW_V or after - last[0] > MAX_GAP_S:
            return self._restart()  # the loop was late: this reading cannot decide, check again
        else:
            t0, g0 = last
            crossed = t0 + (after - t0) * math.log(g0 / GATE_LOW_V) / math.log(g0 / max(gate, 1e-3))
            if crossed > FALL_LIMIT_S:
                return self._fail(self._slow(f"G fell below {GATE_LOW_V:g} V only {crossed * 1000:.0f} ms "
                                             "after the last pulse"))
        self._fell_s = crossed
        self.phase = Phase.SETTLE
        return self._settled(after, gate)

    def _settled(self, after: float, gate: float) -> str | None:
        if gate >= GATE_OFF_V:
            if after >= SETTLE_LIMIT_S:
                return self._fail(self._slow(f"G still reads {gate:.2f} V {after * 1000:.0f} ms after the "
                                             "last pulse"))
            return None
        if self._readback is not None and self._readback.interlock_conducting():
            return self._fail(f"Q4 conducts with G at {gate:.2f} V and no pulses: Q4 (or its drain "
                              "read-back) is shorted, so the heartbeat no longer opens the contactor")
        self.phase, self.passed, self._restarts = Phase.IDLE, True, 0
        fell = self._fell_s if self._fell_s is not None else after
        self.report = (f"check passed before the last session: G {self._risen_v:.1f} V with pulses, "
                       f"below {GATE_LOW_V:g} V {fell * 1000:.0f} ms after them "
                       f"(limit {FALL_LIMIT_S * 1000:.0f} ms), Q4 off")
        return None

    def _restart(self) -> str | None:
        self.phase = Phase.IDLE
        self._restarts += 1
        if self._restarts <= MAX_RESTARTS:
            return None
        return self._fail(f"the safety loop's readings came too late to judge G {self._restarts} times "
                          "in a row (steps too slow, or the heartbeat output failed): the pump cannot be "
                          "checked, nor kept charged")

    def _slow(self, what: str) -> str:
        return (f"{what} (limit {FALL_LIMIT_S * 1000:.0f} ms to {GATE_LOW_V:g} V): the contactor's relay "
                "would hold too long after the loop stops (R61a/R61b or R62 open, C61 too large)")

    def _fail(self, why: str) -> str:
        self.phase, self._restarts = Phase.IDLE, 0
        self.report = f"check FAILED: {why}; no charging until repaired and cleared (chargepoint fault clear)"
        return why

"""What the safety loop reports and how it is set up: faults, status snapshots, configuration.

Kept apart from the loop itself (``evse.py``) so that the station, the control
surfaces and the tests can speak of a fault or a status without touching the
code that drives the hardware.

Fault policy (see ``EvseFault``):

* RCD, emergency stop, welded contactor and contactor mismatch are *latched*:
  they stay until ``clear_faults`` (a technician, after inspection), or for the
  RCD an automatic reclose when the configuration permits it.
* Pilot out of band, state E (short), state D without ventilation, PP out of
  band and an internal error hold while the condition is present and clear
  only once the pilot reads A or B, so charging never resumes straight from a
  fault without the EV passing through the normal B -> C sequence.
* A missing diode can only be seen while PWM runs, and PWM stops because of
  it, so the diode fault holds until the EV is unplugged (state A).
* Before each session (after plug-in, before the contactor first closes) the
  RCD's self-test must pass (``FaultInputs.self_test``: the test output is
  pulsed and the trip must be seen); a failed test is an RCD fault. Then the
  heartbeat circuit's check (``heartbeat_check.py``); a failed one is the
  latched ``heartbeat`` fault.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from chargepoint.safety.iec61851 import CpState, PilotBands

log = logging.getLogger(__name__)


class EvseFault(StrEnum):
    RCD = "rcd"
    EMERGENCY_STOP = "emergency_stop"
    DIODE = "diode"
    PILOT = "pilot"  # reading outside every band, or state F read back
    SHORT = "short"  # state E
    CONTACTOR_MISMATCH = "contactor_mismatch"
    WELDED = "welded"
    VENTILATION = "ventilation"  # state D without ventilation
    PROXIMITY = "proximity"  # PP out of band
    INTERNAL = "internal"  # step() raised: hardware access failed or a bug
    #: The heartbeat circuit failed its check before a session (heartbeat_check.py): it would not
    #: open the contactor in time, or at all, if the loop stopped.
    HEARTBEAT = "heartbeat"
    #: The daemon's view only: the safety supervisor is not answering on its channel (its own
    #: process is gone; the hardware heartbeat has dropped the contactor).
    SUPERVISOR = "supervisor"


#: Cleared only by ``clear_faults`` (or, for RCD, an automatic reclose).
LATCHED_FAULTS = frozenset(
    {EvseFault.RCD, EvseFault.EMERGENCY_STOP, EvseFault.WELDED, EvseFault.CONTACTOR_MISMATCH,
     EvseFault.HEARTBEAT}
)
#: Cleared once their condition is gone and the pilot reads A or B.
CLEARED_IN_A_OR_B = frozenset(
    {EvseFault.PILOT, EvseFault.SHORT, EvseFault.VENTILATION, EvseFault.INTERNAL}
)
PLUGGED = frozenset({CpState.B, CpState.C, CpState.D})


def trip_fault(name: str) -> EvseFault:
    """Map a FaultInputs name to a fault; an unknown input is treated as an emergency stop,
    the conservative choice: it opens the contactor and needs a technician to clear."""
    if name == EvseFault.RCD.value:
        return EvseFault.RCD
    if name != EvseFault.EMERGENCY_STOP.value:
        log.warning("unknown fault input %r treated as an emergency stop", name)
    return EvseFault.EMERGENCY_STOP


@dataclass(frozen=True)
class EvseStatus:
    cp_state: CpState | None  # None: pilot reading outside every band
    pwm_duty: float  # 100.0 = steady +12 V, no PWM
    offered_a: float  # current announced by the PWM; 0 when no PWM
    contactor_closed: bool  # as commanded
    contactor_feedback: bool | None  # auxiliary contact; None if not wired
    faults: frozenset[EvseFault]
    cable_max_a: float | None  # PP rating; None for a tethered cable / no PP
    binding_limit: str  # name of the binding limit claim ("" if none)
    charging_allowed: bool  # the station's permission (allow/stop)
    timestamp: float  # clock.monotonic() of the step that produced it
    #: Phases the EV gets through the phase contactor; None: no phase contactor (the wiring decides).
    phases: int | None = None


@dataclass(frozen=True)
class EvseConfig:
    tick_s: float = 0.01
    #: The sleep between steps while no EV is connected and nothing timed runs (pace.py); never below tick_s.
    idle_tick_s: float = 0.1
    #: Time the auxiliary contact gets to follow a command before a mismatch is a fault.
    contactor_settle_s: float = 0.2
    #: IEC 61851-1: after PWM goes off, open at the latest this long after even if the EV stays in C.
    pwm_off_contactor_timeout_s: float = 6.0
    ventilation_available: bool = False
    #: Automatic RCD reclose attempts; 0 = manual clear only (some countries forbid reclosing).
    rcd_auto_reclose_attempts: int = 0
    rcd_reclose_delay_s: float = 60.0
    diode_check: bool = True
    #: How far the negative plateau may be from -12 V under PWM before the diode counts as missing.
    diode_tolerance_v: float = 1.5
    bands: PilotBands = PilotBands()
    hysteresis_v: float = 0.4
    #: Consecutive samples before a new pilot state (or a diode fault) is believed.
    debounce_samples: int = 2

"""How long the safety loop sleeps between two steps.

``tick_s`` whenever a rule has a deadline; ``idle_tick_s`` only when none can
start without the loop seeing it first: no EV (state A), the contactor
commanded open and not reading closed, no technician's output test, no
shunt-trip pulse, no phase switch under way. A plug-in is then seen up to
``idle_tick_s`` later, which no rule times, and the heartbeat keeps an edge
every step, far inside the pilot gate's 0.5 s (K1 is off anyway). An idle
station is most of a station's life, and at 100 steps a second its loop was
most of the supervisor's CPU (bench/README.md, footprint).
"""

from __future__ import annotations

from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.outputs import Outputs
from chargepoint.safety.status import EvseConfig


def idle(cp_state: CpState | None, out: Outputs, feedback: bool | None, testing: bool,
         switching: bool) -> bool:
    """Nothing connected and nothing timed running: the slow pace is safe."""
    return (cp_state is CpState.A and not out.closed and feedback is not True and not testing
            and out.tripping_until is None and not switching)


def pause_s(config: EvseConfig, *, confirming: bool, idle: bool) -> float:
    """None while a new pilot state awaits its confirming samples (the debounce still needs
    independent readings, but an unplug is acted on in one conversion, not one tick); else the pace."""
    if confirming:
        return 0.0
    return max(config.tick_s, config.idle_tick_s) if idle else config.tick_s

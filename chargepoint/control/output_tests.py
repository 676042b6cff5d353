"""The technician's output tests: click the relay, step the pilot, with no EV connected.

The tests do not touch the hal: they ask the safety loop for an *output test*
(``EvseController.begin_output_test``), which it applies only while no EV is
connected, nothing is faulted and no session is active, ends by itself when
that changes or after a hold time, and during which it keeps watching the
contactor's auxiliary contact: a contactor that does not follow is latched as a
fault, as in normal use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from chargepoint.config import SafetyConfig
from chargepoint.core.events import IdToken
from chargepoint.safety.iec61851 import CpState
from hal.clock import Clock

if TYPE_CHECKING:  # the daemon holds the supervisor's proxy of it; the loop runs there
    from chargepoint.safety.evse import EvseController

PASS, FAIL, SKIP = "pass", "fail", "skip"
#: How far the pilot plateaus may be from +/-12 V in the pilot test.
PILOT_TOLERANCE_V = 1.5
#: PWM steps of the pilot test: steady +12 V, then PWM over the current range.
PILOT_DUTIES = (100.0, 10.0, 50.0, 90.0)


class TestRefused(Exception):
    """An output test that cannot run or was ended by the safety loop; the message says why."""


@dataclass(frozen=True)
class TestTarget:
    """The connector a test runs on: its safety loop, and the station's session there now."""

    evse_id: int
    evse: EvseController
    session: Callable[[], IdToken | None]


def output_test_refusal(c: TestTarget) -> str | None:
    """Why an output test cannot run on ``c`` now, or None (the safety loop checks again)."""
    session = c.session()
    if session is not None:
        return f"a session for {session} is active; stop it first (chargepoint stop)"
    status = c.evse.status
    if status.cp_state is None:
        return "the pilot reads no valid state; an output test needs state A (no EV)"
    if status.cp_state is not CpState.A:
        return f"an EV is connected (state {status.cp_state.value}); unplug it first"
    if status.faults:
        return (f"faulted ({', '.join(sorted(f.value for f in status.faults))}); "
                "clear the fault first (chargepoint fault clear)")
    return None


async def poll(clock: Clock, timeout_s: float, condition: Callable[[], bool]) -> bool:
    deadline = clock.monotonic() + timeout_s
    while not condition():
        if clock.monotonic() > deadline:
            return False
        await clock.sleep(0.01)
    return True


def _ended(c: TestTarget) -> TestRefused:
    return TestRefused("the safety loop ended the test: " + (output_test_refusal(c) or "hold time over"))


async def relay_test(c: TestTarget, clock: Clock, safety: SafetyConfig) -> dict[str, Any]:
    """Close and open the contactor with no EV, checking the auxiliary contact each way."""
    evse = c.evse
    settle = safety.contactor_settle_s
    timeout = 3 * settle + 0.5
    steps: list[dict[str, Any]] = []
    try:
        for closed in (True, False):
            refusal = await asyncio.to_thread(partial(evse.begin_output_test, contactor=closed,
                                                      hold_s=timeout + 1.0))
            if refusal:
                raise TestRefused(refusal)
            started = clock.monotonic()

            def followed(closed: bool = closed, started: float = started) -> bool:
                if not evse.output_test_active:
                    raise _ended(c)
                status = evse.status
                if status.contactor_closed != closed:
                    return False
                if status.contactor_feedback is None:  # no aux contact: give the click its time
                    return clock.monotonic() - started >= settle
                return status.contactor_feedback == closed

            ok = await poll(clock, timeout, followed)
            feedback = evse.status.contactor_feedback
            steps.append({"command": "close" if closed else "open", "feedback": feedback,
                          "after_s": round(clock.monotonic() - started, 3),
                          "ok": ok and feedback is not None})
            if not ok:
                break
    finally:
        evse.end_output_test()
    if any(step["feedback"] is None for step in steps) and all(s["ok"] or s["feedback"] is None
                                                               for s in steps):
        result, detail = SKIP, ("the relay was switched, but no auxiliary contact is wired: "
                                "its contacts cannot be checked")
    elif all(step["ok"] for step in steps) and len(steps) == 2:
        result, detail = PASS, ("the auxiliary contact followed the coil both ways ("
                                + ", ".join(f"{s['command']} {s['after_s']:.2f} s" for s in steps) + ")")
    else:
        bad = steps[-1]
        shown = "closed" if bad["feedback"] else "open"
        result = FAIL
        detail = (f"commanded {bad['command']}, the auxiliary contact still reads {shown} after "
                  f"{bad['after_s']:.2f} s")
        faults = sorted(f.value for f in evse.status.faults)
        if faults:
            detail += f"; the safety loop latched {', '.join(faults)}: inspect, then chargepoint fault clear"
    return {"connector": c.evse_id, "result": result, "detail": detail, "steps": steps}


async def pilot_test(c: TestTarget, clock: Clock, safety: SafetyConfig) -> dict[str, Any]:
    """Step the PWM with no EV and read back the pilot's plateaus at each step."""
    evse = c.evse
    settle = max(0.1, 5 * safety.tick_s)
    steps: list[dict[str, Any]] = []
    try:
        for duty in PILOT_DUTIES:
            refusal = await asyncio.to_thread(partial(evse.begin_output_test, duty=duty, hold_s=10.0))
            if refusal:
                raise TestRefused(refusal)

            def driving(duty: float = duty) -> bool:
                if not evse.output_test_active:
                    raise _ended(c)
                return evse.status.pwm_duty == duty

            if not await poll(clock, 2.0, driving):
                raise TestRefused(f"the safety loop did not drive {duty:g} % within 2 s")
            since = evse.last_step_monotonic
            # Levels are measured with the previous step's output: let a few steps pass.
            await poll(clock, settle + 1.0, lambda since=since: evse.last_step_monotonic >= since + settle)
            refresh = getattr(evse, "refresh", None)  # the supervisor's loop: ask it for the reading now
            if refresh is not None:
                await asyncio.to_thread(refresh)
            levels = evse.pilot_levels
            if levels is None:
                raise TestRefused("the safety loop has not read the pilot")
            steady = duty >= 100.0
            low_target = 12.0 if steady else -12.0
            high_ok = abs(levels.high_v - 12.0) <= PILOT_TOLERANCE_V
            low_ok = abs(levels.low_v - low_target) <= PILOT_TOLERANCE_V
            steps.append({"duty": duty, "high_v": round(levels.high_v, 2), "low_v": round(levels.low_v, 2),
                          "expect": "+12 V steady" if steady else "+12 V / -12 V PWM",
                          "ok": high_ok and low_ok})
    finally:
        evse.end_output_test()
    failed = [s for s in steps if not s["ok"]]
    if not failed:
        return {"connector": c.evse_id, "result": PASS, "steps": steps,
                "detail": "pilot reads +12 V steady and +12/-12 V under PWM at "
                          + ", ".join(f"{s['duty']:g} %" for s in steps[1:])}
    s = failed[0]
    if abs(s["high_v"] - 12.0) > PILOT_TOLERANCE_V:
        why = f"the positive plateau reads {s['high_v']:+.1f} V, not +12 V"
    elif s["duty"] >= 100.0:
        why = f"the negative peak reads {s['low_v']:+.1f} V with a steady +12 V output"
    else:
        why = (f"the negative half reads {s['low_v']:+.1f} V, not -12 V: the -12 V path or the negative "
               "peak detector is faulty, so a missing EV diode could not be detected")
    return {"connector": c.evse_id, "result": FAIL, "steps": steps, "detail": f"at {s['duty']:g} %: {why}"}

"""The board bring-up tool: read the pilot, proximity, contactor feedback and inputs.

``python -m chargepoint.backends.raspberrypi.bringup FILE`` with the daemon stopped
(both cannot hold the pins); the checklist in hardware.md runs it.

``--contactor-test`` does not switch the coil itself: it runs the station's own
safety loop over the board and asks it for an output test, which the loop
grants only in state A (no EV), with nothing faulted, exactly as for
``chargepoint relay test``. With an EV (or anything else) connected the test is
refused with the reason and the coil is never energised.

``--heartbeat-test`` runs the check the safety loop makes before every session
(``chargepoint/safety/heartbeat_check.py``) once, with the contactor's output
left low: pulses, then G read back falling, then Q4's drain.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

from chargepoint.config import Config, ConfigError, load
from chargepoint.safety.evse import EvseController
from chargepoint.safety.heartbeat_check import HeartbeatCheck
from chargepoint.safety.iec61851 import PilotClassifier, ProximityError, cable_ampacity
from chargepoint.safety.limits import LimitClaims
from chargepoint.supervisor.board import (
    Parts,
    contactor_device,
    fault_inputs,
    heartbeat_output,
    heartbeat_readback,
    pilot_device,
)
from chargepoint.supervisor.hardware import evse_config
from hal.clock import Clock, RealClock

#: How long --contactor-test keeps the contactor closed (and half of it to open again).
CONTACTOR_TEST_S = 1.0
#: Safety-loop steps before the test is asked for: the pilot state must be confirmed first.
SETTLE_STEPS = 10


def contactor_test(config: Config, pilot: Any, contactor: Any, inputs: Any, clock: Clock,
                   say: Callable[[str], None], heartbeat: Any = None) -> bool:
    """Close and open the contactor through the safety loop's output test.

    True if the auxiliary contact followed both ways; False (said why) if refused or not.
    """
    board = config.board
    assert board is not None
    c = board.classification
    safety = evse_config(config, bands=c.bands, hysteresis_v=c.hysteresis_v,
                         debounce_samples=c.debounce_samples, diode_tolerance_v=c.diode_tolerance_v)
    # The loop pulses the heartbeat: without it the board's watchdog circuit holds KM1 open.
    loop = EvseController(pilot, contactor, inputs, clock, LimitClaims(), safety, name="bring-up",
                          heartbeat=heartbeat)

    def run(seconds: float) -> None:
        end = clock.monotonic() + seconds
        while True:
            loop.step()
            if clock.monotonic() >= end:
                return
            clock.sleep_blocking(safety.tick_s)

    try:
        for _ in range(SETTLE_STEPS):
            loop.step()
            clock.sleep_blocking(safety.tick_s)
        before = loop.status.contactor_feedback
        refusal = loop.begin_output_test(contactor=True, hold_s=CONTACTOR_TEST_S + 1.0)
        if refusal:
            say(f"contactor test refused: {refusal}")
            return False
        say(f"closing the contactor for {CONTACTOR_TEST_S:g} s (through the safety loop's output test)")
        run(CONTACTOR_TEST_S)
        test_ran = loop.output_test_active
        closed = loop.status.contactor_feedback
        loop.end_output_test()
        run(CONTACTOR_TEST_S / 2)
        after = loop.status.contactor_feedback
        if not test_ran:
            say("contactor test ended early by the safety loop (state or fault changed)")
            return False
        ok = (before, closed, after) == (False, True, False)
        say(f"aux contact: before {before}, closed {closed}, after {after}: {'OK' if ok else 'MISMATCH'}")
        faults = sorted(f.value for f in loop.status.faults)
        if faults:
            say(f"the safety loop latched {', '.join(faults)}")
        return ok
    finally:
        loop.close()


#: How long --heartbeat-test may take (the check itself takes about 0.25 s).
HEARTBEAT_TEST_S = 3.0
#: The loop's pace while it pulses for the test (the reference board's step).
HEARTBEAT_STEP_S = 0.006


def heartbeat_test(board: Any, pilot: Any, clock: Clock, say: Callable[[str], None], *,
                   pin_factory: Any = None, sleep: Callable[[float], None] | None = None) -> bool:
    """The pre-session heartbeat check, once, as the safety loop makes it (GPIO17 stays low)."""
    sleep = sleep or clock.sleep_blocking
    heartbeat = heartbeat_output(board, pin_factory)
    readback = heartbeat_readback(board, pilot, pin_factory, clock)
    try:
        if heartbeat is None or readback is None:
            say("heartbeat test: needs [board.heartbeat] with gate_channel")
            return False
        check = HeartbeatCheck(readback)
        end = clock.monotonic() + HEARTBEAT_TEST_S
        while clock.monotonic() < end:
            failed = check.step(True)
            if failed is not None or check.passed:
                say(f"heartbeat test: {check.report}")
                return check.passed
            if check.beating:
                heartbeat.beat()
                check.beaten()
            sleep(HEARTBEAT_STEP_S)
        say(f"heartbeat test: no result within {HEARTBEAT_TEST_S:g} s")
        return False
    finally:
        for part in (heartbeat, readback):
            if part is not None:
                part.close()


def _bring_up(argv: list[str] | None = None) -> int:
    """Read the board's inputs for bring-up (see hardware.md).

    Stop the daemon first (``systemctl stop chargepoint``): both cannot hold the pins.
    """
    parser = argparse.ArgumentParser(prog="python -m chargepoint.backends.raspberrypi.bringup",
                                     description=_bring_up.__doc__)
    parser.add_argument("config", help="the station's configuration file")
    parser.add_argument("--duty", type=float, default=100.0,
                        help="pilot duty cycle to drive while reading (100 = steady +12 V, 0 = -12 V)")
    parser.add_argument("--count", type=int, default=0, help="readings to take (0 = until Ctrl-C)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between readings")
    parser.add_argument("--contactor-test", action="store_true",
                        help="close the contactor for 1 s through the safety loop and check the "
                             "auxiliary contact; only with no EV connected (state A), as chargepoint "
                             "relay test (mains!)")
    parser.add_argument("--rcm-test", action="store_true", help="pulse the RCM's test input once")
    parser.add_argument("--heartbeat-test", action="store_true",
                        help="check the heartbeat circuit once, as before every session: G must rise "
                             "with pulses and fall below 1 V within 130 ms without them, and Q4 stop "
                             "conducting (the contactor's output stays low)")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"configuration rejected: {exc}")
        return 2
    board = config.board
    if board is None:
        print(f"{args.config}: no [board] section")
        return 2
    clock = RealClock()
    parts = Parts()
    pilot: Any = None
    contactor: Any = None
    code = 0
    try:
        pilot = parts.add(pilot_device(board, clock, None, None, None, time.sleep))
        contactor = parts.add(contactor_device(board, None))
        inputs = parts.add(fault_inputs(board, None))
        if args.rcm_test:
            print("RCM self-test:", "passed" if inputs.self_test() else "FAILED (no trip seen)")
        if args.heartbeat_test and not heartbeat_test(board, pilot, clock,
                                                      lambda text: print(text, flush=True)):
            code = 1
        if args.contactor_test and not contactor_test(
                config, pilot, contactor, inputs, clock, lambda text: print(text, flush=True),
                heartbeat=heartbeat_output(board, None)):
            code = 1
        pilot.set_pwm(args.duty)
        c = board.classification
        classifier = PilotClassifier(c.bands, c.hysteresis_v, 1)
        taken = 0
        while args.count == 0 or taken < args.count:
            levels = pilot.read()
            state = classifier.classify(levels)
            ohms = pilot.read_proximity_ohms()
            try:
                amps = cable_ampacity(ohms)
                cable = "tethered" if ohms is None else f"{ohms:.0f} ohm = {amps:g} A"
            except ProximityError:
                cable = "open" if ohms is None or math.isinf(ohms) else f"{ohms:.0f} ohm = out of band"
            aux = contactor.feedback()
            print(f"CP {levels.high_v:+6.2f} V / {levels.low_v:+6.2f} V  state {state or '?'}  "
                  f"PP {cable}  aux {'-' if aux is None else ('closed' if aux else 'open')}  "
                  f"inputs {','.join(sorted(inputs.active())) or 'ok'}", flush=True)
            taken += 1
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"hardware error: {exc}")
        return 1
    finally:
        try:
            if contactor is not None:
                contactor.set_closed(False)
            if pilot is not None:
                pilot.set_pwm(100.0)
        finally:
            parts.close()
    return code


if __name__ == "__main__":
    raise SystemExit(_bring_up())

"""The board bring-up tool: read the pilot, proximity, contactor feedback and inputs.

``python -m chargepoint.backends.raspberrypi.bringup FILE`` with the daemon stopped
(both cannot hold the pins); the checklist in hardware.md runs it.
"""

from __future__ import annotations

import time
from typing import Any

from chargepoint.backends.raspberrypi.build import Parts, contactor_device, fault_inputs, pilot_device
from chargepoint.config import ConfigError

#: How long --contactor-test keeps the contactor closed (and half of it to open again).
CONTACTOR_TEST_S = 1.0


def _bring_up(argv: list[str] | None = None) -> int:
    """Read the board's inputs for bring-up (see hardware.md).

    Stop the daemon first (``systemctl stop chargepoint``): both cannot hold the pins.
    """
    import argparse
    import math

    from chargepoint.config import load
    from chargepoint.safety.iec61851 import PilotClassifier, ProximityError, cable_ampacity
    from hal.clock import RealClock

    parser = argparse.ArgumentParser(prog="python -m chargepoint.backends.raspberrypi.bringup",
                                     description=_bring_up.__doc__)
    parser.add_argument("config", help="the station's configuration file")
    parser.add_argument("--duty", type=float, default=100.0,
                        help="pilot duty cycle to drive while reading (100 = steady +12 V, 0 = -12 V)")
    parser.add_argument("--count", type=int, default=0, help="readings to take (0 = until Ctrl-C)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between readings")
    parser.add_argument("--contactor-test", action="store_true",
                        help="close the contactor for 1 s and check the auxiliary contact (mains!)")
    parser.add_argument("--rcm-test", action="store_true", help="pulse the RCM's test input once")
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
    try:
        pilot = parts.add(pilot_device(board, clock, None, None, None, time.sleep))
        contactor = parts.add(contactor_device(board, None))
        inputs = parts.add(fault_inputs(board, None))
        pilot.set_pwm(args.duty)
        if args.rcm_test:
            print("RCM self-test:", "passed" if inputs.self_test() else "FAILED (no trip seen)")
        if args.contactor_test:
            print(f"closing the contactor for {CONTACTOR_TEST_S:g} s")
            before = contactor.feedback()
            contactor.set_closed(True)
            time.sleep(CONTACTOR_TEST_S)
            closed = contactor.feedback()
            contactor.set_closed(False)
            time.sleep(CONTACTOR_TEST_S / 2)
            after = contactor.feedback()
            verdict = "OK" if (before, closed, after) == (False, True, False) else "MISMATCH"
            print(f"aux contact: before {before}, closed {closed}, after {after}: {verdict}")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(_bring_up())

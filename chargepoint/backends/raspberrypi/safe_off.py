"""``chargepoint safe-off``: put the board's outputs in their safe state, with no daemon running.

Run by the systemd unit after the daemon stops for any reason (``ExecStopPost=``:
a crash, a kill by the watchdog, a stop) and by ``chargepoint run`` before
anything else, so the contactor coil is released and the pilot shows "EVSE not
available" however the previous process ended. It writes the outputs directly
(gpiozero, sysfs) and needs nothing from the station: no database, no network,
and of the configuration only ``[board]`` (``config.safety_view.load_board_view``).
Each output is handled on its own, so one that fails does not keep the others
from being made safe; the hardware watchdog (hardware.md) covers the time until
this runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chargepoint.config.board import BoardConfig
from hal.pi.pwm import SYSFS_PWM_ROOT


def make_safe(board: BoardConfig, *, pin_factory: Any = None, sysfs_root: Path | str | None = None,
              sleep: Callable[[float], None] = time.sleep) -> list[tuple[str, bool, str]]:
    """Contactor coil off, heartbeat stopped, shunt-trip relay released, RCM test input released,
    pilot PWM to a steady low (-12 V, state F: "EVSE not available", as after a reboot).

    A process killed during the RCM self-test leaves the test input driven: the RCM then reads
    tripped and the station cannot charge until something releases it, so it is released here.
    Returns (output, done, detail) for each, in that order: the coil first.
    """
    results = [_output_low("contactor coil", board.contactor.pin, board.contactor.active_high, pin_factory)]
    if board.heartbeat is not None:
        results.append(_output_low("heartbeat", board.heartbeat.pin, True, pin_factory))
    if board.shunt_trip is not None:
        results.append(_output_low("shunt trip", board.shunt_trip.pin, board.shunt_trip.active_high,
                                   pin_factory))
    if board.phase_contactor is not None:
        results.append(_output_low("phase contactor", board.phase_contactor.pin,
                                   board.phase_contactor.active_high, pin_factory))
    if board.rcd is not None and board.rcd.test_pin is not None:
        results.append(_output_low("RCM test", board.rcd.test_pin, board.rcd.test_active_high, pin_factory))
    results.append(_pilot_off(board, pin_factory, sysfs_root, sleep))
    return results


def _output_low(what: str, pin: int, active_high: bool, pin_factory: Any) -> tuple[str, bool, str]:
    try:
        from gpiozero import OutputDevice

        OutputDevice(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory).close()
    except Exception as exc:  # noqa: BLE001 - reported, and the other outputs still handled
        return what, False, f"GPIO{pin}: {exc}"
    return what, True, f"GPIO{pin} inactive"


def _pilot_off(board: BoardConfig, pin_factory: Any, sysfs_root: Path | str | None,
               sleep: Callable[[float], None]) -> tuple[str, bool, str]:
    p = board.pwm
    try:
        if p.backend == "sysfs":
            from hal.pi.pwm import SysfsPwm

            pwm: Any = SysfsPwm(p.chip, p.channel, root=sysfs_root or SYSFS_PWM_ROOT, inverted=p.inverted,
                                sleep=sleep)
            pwm.close()  # a steady low: -12 V, "EVSE not available"
            where = str(pwm.path)
        else:
            from gpiozero import OutputDevice

            OutputDevice(p.gpio, active_high=not p.inverted, initial_value=False,
                         pin_factory=pin_factory).close()
            where = f"GPIO{p.gpio}"
    except Exception as exc:  # noqa: BLE001 - reported
        return "pilot PWM", False, str(exc)
    return "pilot PWM", True, f"{where} steady low (-12 V, state F)"

"""The control pilot's 1 kHz PWM on a Raspberry Pi.

Two backends with one small interface (:class:`PwmOutput`):

* :class:`SysfsPwm`: the SoC's hardware PWM through the kernel's sysfs
  interface (``/sys/class/pwm/pwmchipN/pwmM``). The period is 1,000,000 ns and
  the duty cycle is written in nanoseconds, so the resolution is far better
  than the 0.1 % IEC 61851 asks for (the PWM block's own clock limits it to
  10-20 ns on a Pi 4/5). This is what a station uses.
* :class:`GpioZeroPwm`: gpiozero's ``PWMOutputDevice``. On a Pi this is
  software-timed by lgpio with 1 % steps and jitter: for development on a
  bench only. It logs a warning saying so when it is built.

Duty cycles are always rounded *down* to the backend's step, so the current an
EV reads from the pilot is never more than the current the safety loop
offered (IEC 61851 duty grows with current in every range).

The chip number of the RP1 PWM block on a Pi 5 has changed between kernel
releases (``pwmchip2`` on early Bookworm kernels), so a chip can also be named
by its device-tree node (:data:`PWM_DEVICES`) and is then looked up by the
``device`` link of each ``pwmchipN``.

Blocking file writes: call from the safety-loop thread, never from asyncio.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: 1 kHz pilot.
PERIOD_NS = 1_000_000
#: Where the kernel puts PWM chips.
SYSFS_PWM_ROOT = Path("/sys/class/pwm")

#: Device-tree node of the PWM block that drives the 40-pin header, per model.
PWM_DEVICES = {
    "pi3": "3f20c000.pwm",
    "pi4": "fe20c000.pwm",
    "pi5": "1f00098000.pwm",  # RP1 PWM0
}

#: Hardware PWM channel of each header GPIO, per model (with the ``pwm`` overlay).
PWM_CHANNELS = {
    "pi3": {12: 0, 13: 1, 18: 0, 19: 1},
    "pi4": {12: 0, 13: 1, 18: 0, 19: 1},
    "pi5": {12: 0, 13: 1, 18: 2, 19: 3},
}


class PwmError(OSError):
    """The PWM channel cannot be found, exported or configured."""


class PwmOutput(Protocol):
    """A 1 kHz PWM output. 0 % is a steady low, 100 % a steady high level."""

    def set_duty(self, percent: float) -> None: ...

    def close(self) -> None: ...


def floor_step(percent: float, step: float) -> float:
    """``percent`` rounded down to a multiple of ``step`` (float noise forgiven)."""
    return math.floor(percent / step + 1e-9) * step


def find_pwmchip(root: Path | str, device: str) -> int:
    """The number N of the ``pwmchipN`` whose device node is named ``device``."""
    root = Path(root)
    found = []
    for chip in sorted(root.glob("pwmchip*")):
        try:
            target = os.path.realpath(chip / "device")
        except OSError:
            continue
        if Path(target).name == device:
            found.append(int(chip.name.removeprefix("pwmchip")))
    if not found:
        names = ", ".join(sorted(p.name for p in root.glob("pwmchip*"))) or "none"
        raise PwmError(f"no PWM chip for device {device!r} under {root} (chips: {names}); "
                       "is the pwm overlay loaded in /boot/firmware/config.txt?")
    return found[0]


class SysfsPwm:
    """One hardware PWM channel through sysfs.

    ``chip`` is the N of ``pwmchipN`` or a device-node name such as
    ``"1f00098000.pwm"``. ``inverted`` is for boards whose driver stage inverts
    (the duty written is then ``period - duty``); the reference board does not.
    ``sleep`` waits for udev after an export and is injectable for tests.
    """

    def __init__(
        self,
        chip: int | str,
        channel: int,
        *,
        root: Path | str = SYSFS_PWM_ROOT,
        period_ns: int = PERIOD_NS,
        inverted: bool = False,
        export_timeout_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        root = Path(root)
        number = chip if isinstance(chip, int) else find_pwmchip(root, chip)
        self._chip_dir = root / f"pwmchip{number}"
        if not self._chip_dir.is_dir():
            raise PwmError(f"{self._chip_dir} does not exist: is the pwm overlay loaded "
                           "(dtoverlay=pwm in /boot/firmware/config.txt)?")
        npwm = self._read_int(self._chip_dir / "npwm", default=None)
        if npwm is not None and not 0 <= channel < npwm:
            raise PwmError(f"{self._chip_dir} has channels 0..{npwm - 1}, not {channel}")
        self.period_ns = period_ns
        self.inverted = inverted
        self._dir = self._chip_dir / f"pwm{channel}"
        self._sleep = sleep
        self._last_ns: int | None = None
        self._export(channel, export_timeout_s)
        self._configure()

    @property
    def path(self) -> Path:
        return self._dir

    # -- setup ------------------------------------------------------------------------------

    def _export(self, channel: int, timeout_s: float) -> None:
        if not self._dir.is_dir():
            self._write(self._chip_dir / "export", str(channel))
        # After an export udev changes the group of the new files; until it has,
        # writes fail with EACCES. Wait for it, bounded.
        waited = 0.0
        step = 0.01
        while True:
            if self._dir.is_dir() and os.access(self._dir / "duty_cycle", os.W_OK):
                return
            if waited >= timeout_s:
                raise PwmError(f"{self._dir} did not become writable within {timeout_s} s "
                               "(is the user in group gpio?)")
            self._sleep(step)
            waited += step

    def _configure(self) -> None:
        # duty_cycle may never exceed period: zero it first, then set the period.
        current_period = self._read_int(self._dir / "period", default=0)
        if current_period != self.period_ns:
            self._write(self._dir / "duty_cycle", "0")
            self._write(self._dir / "period", str(self.period_ns))
        polarity = self._dir / "polarity"
        if polarity.exists() and polarity.read_text().strip() not in ("", "normal"):
            raise PwmError(f"{polarity} is not 'normal'; use the board's 'inverted' setting instead")
        # Start at a steady high (100 %): +12 V, not allowed to charge.
        self.set_duty(100.0)
        self._write(self._dir / "enable", "1")

    # -- output -----------------------------------------------------------------------------

    def set_duty(self, percent: float) -> None:
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"duty cycle {percent!r} is outside 0..100 %")
        ns = min(self.period_ns, math.floor(percent * self.period_ns / 100.0 + 1e-6))
        if self.inverted:
            ns = self.period_ns - ns
        if ns != self._last_ns:
            self._write(self._dir / "duty_cycle", str(ns))
            self._last_ns = ns

    @property
    def duty_ns(self) -> int | None:
        """The duty cycle last written, in ns (after inversion)."""
        return self._last_ns

    def close(self) -> None:
        """Leave the output at a steady low: on the reference board -12 V, state F
        ("EVSE not available"), which is what an EV should see while no
        controller runs. The channel stays exported and enabled."""
        try:
            self.set_duty(0.0)
        except OSError:
            log.exception("could not set %s to 0 %% on close", self._dir)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _write(path: Path, text: str) -> None:
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as exc:
            raise PwmError(exc.errno, f"cannot write {text!r} to {path}: {exc.strerror}") from exc

    @staticmethod
    def _read_int(path: Path, default: Any) -> Any:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return default


class GpioZeroPwm:
    """gpiozero's PWMOutputDevice as the pilot PWM: development only.

    On a Raspberry Pi gpiozero's PWM is software-timed (lgpio) with 1 % steps
    and jitter, which IEC 61851 does not allow for a station (0.1 % or better,
    a clean 1 kHz). Duty cycles are rounded down to whole percent.
    """

    STEP_PERCENT = 1.0

    def __init__(self, gpio: int, *, frequency_hz: float = 1000.0, inverted: bool = False,
                 pin_factory: Any = None) -> None:
        from gpiozero import PWMOutputDevice

        log.warning("pilot PWM on GPIO%d through gpiozero: software-timed with 1 %% steps, "
                    "for development only; use the sysfs hardware PWM on a station", gpio)
        self._device = PWMOutputDevice(gpio, active_high=not inverted, initial_value=1.0,
                                       frequency=frequency_hz, pin_factory=pin_factory)
        self._last: float | None = None

    def set_duty(self, percent: float) -> None:
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"duty cycle {percent!r} is outside 0..100 %")
        value = floor_step(percent, self.STEP_PERCENT) / 100.0
        if value != self._last:
            self._device.value = value
            self._last = value

    @property
    def value(self) -> float:
        return float(self._device.value)

    def close(self) -> None:
        try:
            self._device.value = 0.0
        finally:
            self._device.close()

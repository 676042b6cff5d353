"""Burst sampling of the control pilot with an MCP3008 on SPI (through gpiozero).

The second pilot front end, for boards without peak detectors: the Pi cannot
sample synchronously with its own PWM, so it reads the (scaled, offset) pilot
many times in a row and keeps the largest and smallest sample. With hardware
SPI one sample takes a few tens of microseconds, so the default burst of 64
samples spans several 1 ms PWM periods and hits both plateaus at every duty
cycle the station uses (10 % or more: at least 100 us high).

Returns ADC volts; scaling to pilot volts belongs to the board (see
``hal.pi.pilot``). Blocking: call from the safety-loop thread.
"""

from __future__ import annotations

import threading
from typing import Any

#: MCP3008 codes: 10 bits, code = 1024 * Vin / Vref.
CODES = 1024


class Mcp3008Burst:
    """Pilot (burst min/max) and proximity (single sample) on one MCP3008."""

    def __init__(
        self,
        cp_channel: int = 0,
        pp_channel: int | None = 1,
        *,
        v_ref: float = 3.3,
        burst_samples: int = 64,
        spi_port: int = 0,
        spi_device: int = 0,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import MCP3008

        if burst_samples < 2:
            raise ValueError("burst_samples must be at least 2")
        if pp_channel == cp_channel:
            raise ValueError("the pilot and the proximity pilot need different channels")
        self.v_ref = v_ref
        self.burst_samples = burst_samples
        spi = {"port": spi_port, "device": spi_device, "pin_factory": pin_factory}
        self._cp = MCP3008(channel=cp_channel, max_voltage=v_ref, **spi)
        try:
            self._pp = None if pp_channel is None else MCP3008(channel=pp_channel, max_voltage=v_ref, **spi)
        except Exception:
            self._cp.close()
            raise
        self._spi = spi
        self._lock = threading.Lock()
        self._burst_low: float | None = None
        self._aux: dict[int, Any] = {}

    def _volts(self, code: int) -> float:
        return code * self.v_ref / CODES

    def read_cp(self) -> tuple[float, float]:
        """(largest, smallest) pilot sample of one burst, in ADC volts."""
        with self._lock:
            codes = [self._cp.raw_value for _ in range(self.burst_samples)]
        return self._volts(max(codes)), self._volts(min(codes))

    def read_cp_high(self) -> float:
        """The largest sample of one burst (a burst is what finds the plateau); its smallest is
        kept for ``read_cp_low``, which a burst already saw."""
        high, self._burst_low = self.read_cp()
        return high

    def read_cp_low(self) -> float:
        """The smallest sample of the last ``read_cp_high`` burst (a new burst before any)."""
        low, self._burst_low = self._burst_low, None
        return self.read_cp()[1] if low is None else low

    def read_pp(self) -> float | None:
        """The proximity pilot in ADC volts; None if no PP channel is wired."""
        if self._pp is None:
            return None
        with self._lock:
            return self._volts(self._pp.raw_value)

    def read_aux(self, channel: int) -> float:
        """One sample of another channel in volts (the heartbeat's gate read-back)."""
        from gpiozero import MCP3008

        with self._lock:
            device = self._aux.get(channel)
            if device is None:
                device = self._aux[channel] = MCP3008(channel=channel, max_voltage=self.v_ref, **self._spi)
            return self._volts(device.raw_value)

    def close(self) -> None:
        self._cp.close()
        if self._pp is not None:
            self._pp.close()
        for device in self._aux.values():
            device.close()

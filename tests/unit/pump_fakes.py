"""The reference board's heartbeat circuit at the Raspberry Pi boundary, for the Pi tests and benches.

:class:`HeartbeatCircuit` is the board's charge pump (``hal.sim.heartbeat.ChargePump``)
behind the heartbeat GPIO of a gpiozero ``MockFactory`` whose pins are
``pi_fakes.HookedPin``, read back as the board reads it: G on an ADC input
(through ``pi_fakes.PilotModel.aux``) via R68/R69, Q4's drain on a GPIO.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gpiozero.pins.mock import MockFactory

from hal.sim.heartbeat import ChargePump, PumpParts
from tests.unit.pi_fakes import PilotModel


class HeartbeatCircuit:
    """The reference board's heartbeat pump behind the heartbeat GPIO, as the board reads it back.

    Each edge the driver writes to the heartbeat pin reaches the pump at the clock's
    time; :meth:`ain3_volts` is G through R68/R69 (attach it to the ADC model), and
    Q4's drain GPIO is driven low while Q4 conducts, updated on every edge and every
    read of G. ``coil_enabled`` says whether Q4 lets K1's coil current through.
    """

    def __init__(self, factory: MockFactory, heartbeat_pin: int, drain_pin: int | None,
                 monotonic: Callable[[], float], *, parts: PumpParts | None = None,
                 rail_v: float = 3.3) -> None:
        self.monotonic = monotonic
        self.pump = ChargePump(parts, now=monotonic())
        self.rail_v = rail_v
        self.drain = None if drain_pin is None else factory.pin(drain_pin)
        factory.pin(heartbeat_pin).hooks.append(self._edge)
        self._update_drain()

    @classmethod
    def attach(cls, factory: MockFactory, board: Any, model: PilotModel, monotonic: Callable[[], float],
               **kwargs: Any) -> HeartbeatCircuit:
        """The circuit of ``board.heartbeat``, its G on the model's ADC input ``gate_channel``."""
        hb = board.heartbeat
        circuit = cls(factory, hb.pin, hb.drain_pin, monotonic, **kwargs)
        if hb.gate_channel is not None:
            model.aux[hb.gate_channel] = circuit.ain3_volts
        return circuit

    def _edge(self, value: Any) -> None:
        self.pump.gpio(bool(value), self.monotonic())
        self._update_drain()

    def gate_v(self) -> float:
        return self.pump.gate_v(self.monotonic())

    def ain3_volts(self) -> float:
        """G through the divider as built (R68 or R69 may have failed open), at most the level the
        ADC's input diodes clamp it to."""
        parts = self.pump.parts
        if math.isinf(parts.r68_ohms):
            share = 0.0
        elif math.isinf(parts.r69_ohms):
            share = 1.0
        else:
            share = parts.r69_ohms / (parts.r68_ohms + parts.r69_ohms)
        volts = min(self.gate_v() * share, self.rail_v + 0.3)
        self._update_drain()
        return volts

    @property
    def coil_enabled(self) -> bool:
        return self.pump.q4_conducting(self.monotonic())

    def _update_drain(self) -> None:
        if self.drain is None:
            return
        if self.pump.q4_conducting(self.monotonic()):
            self.drain.drive_low()
        else:
            self.drain.drive_high()

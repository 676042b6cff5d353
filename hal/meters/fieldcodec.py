"""One quantity's registers: where a field is, and the codec to and from its value.

Split from :mod:`hal.meters.registermap` because the conversion between raw
registers and canonical values is a job of its own, with its own care (decimal
arithmetic so that 2305 x 0.1 V reads 230.5, the shortest decimal for a
float32, clamping integers when encoding). The read plan decodes with it, the
simulated meter (:mod:`hal.meters.simdevice`) encodes with it.

pymodbus is imported on first use only (``convert_from_registers`` and
``convert_to_registers``), so that listing and validating maps, as the
configuration checker does, never loads it. Import these names from
:mod:`hal.meters.registermap`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from hal.meters.quantities import QUANTITIES, TYPES, UNITS


@dataclass(frozen=True)
class Field:
    """One quantity in a meter's registers."""

    quantity: str
    function: int
    address: int
    type: str
    word_order: str
    scale: float
    unit: str
    #: The register contents (as an unsigned bit pattern, the way manuals print it in hex)
    #: by which the meter says "no data" for this quantity, e.g. ABB's 0x7FFF for an int16;
    #: such a value decodes as None, never as a number. None: the type has no marker.
    no_data: int | None = None

    @property
    def count(self) -> int:
        return TYPES[self.type][0]

    @property
    def end(self) -> int:
        """First address after this field."""
        return self.address + self.count

    @property
    def factor(self) -> float:
        """Raw register value to canonical unit."""
        return self.scale * UNITS[QUANTITIES[self.quantity]][self.unit]

    @property
    def resolution(self) -> float:
        """The smallest step of the canonical value (0 for floats: relative)."""
        return 0.0 if TYPES[self.type][2] else abs(self.factor)


@cache
def _codec() -> Any:
    from pymodbus.client.mixin import ModbusClientMixin

    return ModbusClientMixin


def decode_field(f: Field, registers: Sequence[int]) -> float | None:
    """One field's value in its quantity's canonical unit.

    The arithmetic is decimal, so that 2305 x 0.1 V reads 230.5 and not
    230.50000000000003; a float32 is taken as the shortest decimal that the
    meter's float stands for (230.1, not 230.10000610351562).
    """
    codec = _codec()
    raw = codec.convert_from_registers(list(registers), data_type=codec.DATATYPE[f.type.upper()],
                                       word_order=f.word_order)
    if f.no_data is not None and raw_pattern(f, int(raw)) == f.no_data:
        return None  # the meter's own "no data": a number here would be a lie (32.767 as a PF)
    if TYPES[f.type][2]:
        if not math.isfinite(raw):
            return None
        return float(Decimal(_shortest_float32(raw)) * _decimal_factor(f))
    return float(Decimal(int(raw)) * _decimal_factor(f))


def raw_pattern(f: Field, raw: int) -> int:
    """An integer field's raw value as its unsigned bit pattern (0x7FFF, 0xFFFFFFFF, ...)."""
    return raw & ((1 << (16 * f.count)) - 1)


def _shortest_float32(value: float) -> str:
    """The shortest decimal text that rounds to the same float32 as ``value``."""
    target = struct.pack(">f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack(">f", float(text)) == target:
            return text
    return repr(value)


def _decimal_factor(f: Field) -> Decimal:
    return Decimal(repr(f.scale)) * Decimal(repr(UNITS[QUANTITIES[f.quantity]][f.unit]))


def encode_field(f: Field, value: float | None) -> list[int]:
    """The registers that hold ``value`` (canonical unit) in the meter's format.

    None is written as the field's "no data" marker where the map declares one, else as zero.
    """
    codec = _codec()
    count, signed, is_float = TYPES[f.type]
    if value is None and f.no_data is not None:
        return _marker_registers(f)
    if value is None:
        value = 0.0
    raw: float | int = value / f.factor
    if not is_float:
        bits = 16 * count
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        raw = min(max(round(raw), low), high)
    return list(codec.convert_to_registers(raw, data_type=codec.DATATYPE[f.type.upper()],
                                           word_order=f.word_order))


def _marker_registers(f: Field) -> list[int]:
    """The registers of the field's "no data" marker, in the meter's word order."""
    assert f.no_data is not None
    words = [(f.no_data >> (16 * i)) & 0xFFFF for i in reversed(range(f.count))]  # high word first
    return words if f.word_order == "big" else words[::-1]

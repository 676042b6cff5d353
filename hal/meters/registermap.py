"""Register maps: which register holds which quantity, in which format.

A meter model is described by data, a TOML file, not by code: one decoder
serves every meter. A map names, for each quantity it supplies, the function
code (3 holding / 4 input registers), the address, the data type, the word
order, a scale and the unit the scaled value is in; the decoder turns the
registers into canonical units (Wh, W, A, V, Hz, plain ratio). The same table
also encodes values into registers, which is how the simulated Modbus meter
(:mod:`hal.meters.simdevice`) holds a model's register layout.

Reads are planned from the map: fields with the same function code are merged
into as few requests as the meter allows. Two fields share a request if they
are adjacent, or if every register between them lies inside a ``readable``
span the map declares (registers the datasheet defines without holes), and the
request stays within the meter's ``max_registers``. A meter that rejects reads
of undefined registers (exception 02) thus never sees one.

A map file (the shipped ones in ``hal/meters/maps`` are the examples)::

    model = "my-meter"              # the name to configure it by
    title = "Maker M3"              # shown by ``chargepoint meter``
    max_registers = 80              # per request, as the meter's manual allows
    readable = [                    # optional: runs of defined registers
      { function = 4, first = 0x0000, last = 0x002B },
    ]
    [defaults]                      # optional: shared by every register below
    function = 4                    # 3 = holding, 4 = input registers
    type = "float32"                # int16 uint16 int32 uint32 int64 uint64 float32
    word_order = "big"              # "big": high word first; "little": low word first
    [registers]                     # quantity = { address, unit, [scale, type, ...] }
    energy_import = { address = 0x0048, unit = "kWh" }   # required
    voltage_l1 = { address = 0x0000, unit = "V" }
    power = { address = 0x0034, type = "int32", scale = 0.1, unit = "W" }

Quantities: energy_import, energy_export (Wh/kWh), power, power_l1..3 (W/kW),
current_l1..3 (A/mA), voltage_l1..3 (V), frequency (Hz), power_factor and
power_factor_l1..3 (unit ""). A value is ``raw x scale`` in ``unit``.

This module imports nothing heavy at import time (the configuration checker
lists and validates maps without loading pymodbus); the codec uses pymodbus's
``convert_from_registers``/``convert_to_registers`` on first use.
"""

from __future__ import annotations

import math
import struct
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from hal.interfaces import Measurand, MeterReading

#: What each quantity measures, which fixes the units its field may be given in.
QUANTITIES: dict[str, str] = {
    "energy_import": "energy",
    "energy_export": "energy",
    "power": "power",
    "power_l1": "power",
    "power_l2": "power",
    "power_l3": "power",
    "current_l1": "current",
    "current_l2": "current",
    "current_l3": "current",
    "voltage_l1": "voltage",
    "voltage_l2": "voltage",
    "voltage_l3": "voltage",
    "frequency": "frequency",
    "power_factor": "ratio",
    "power_factor_l1": "ratio",
    "power_factor_l2": "ratio",
    "power_factor_l3": "ratio",
}

#: Units a map may state per kind, with the factor to the canonical unit (first).
UNITS: dict[str, dict[str, float]] = {
    "energy": {"Wh": 1.0, "kWh": 1000.0},
    "power": {"W": 1.0, "kW": 1000.0},
    "current": {"A": 1.0, "mA": 0.001},
    "voltage": {"V": 1.0},
    "frequency": {"Hz": 1.0},
    "ratio": {"": 1.0},
}

CANONICAL_UNIT = {kind: next(iter(units)) for kind, units in UNITS.items()}

#: The OCPP measurand and phase each quantity is reported as.
MEASURANDS: dict[str, tuple[Measurand, str | None]] = {
    "energy_import": (Measurand.ENERGY_IMPORT, None),
    "energy_export": (Measurand.ENERGY_EXPORT, None),
    "power": (Measurand.POWER_IMPORT, None),
    "power_l1": (Measurand.POWER_IMPORT, "L1"),
    "power_l2": (Measurand.POWER_IMPORT, "L2"),
    "power_l3": (Measurand.POWER_IMPORT, "L3"),
    "current_l1": (Measurand.CURRENT_IMPORT, "L1"),
    "current_l2": (Measurand.CURRENT_IMPORT, "L2"),
    "current_l3": (Measurand.CURRENT_IMPORT, "L3"),
    "voltage_l1": (Measurand.VOLTAGE, "L1-N"),
    "voltage_l2": (Measurand.VOLTAGE, "L2-N"),
    "voltage_l3": (Measurand.VOLTAGE, "L3-N"),
    "frequency": (Measurand.FREQUENCY, None),
    "power_factor": (Measurand.POWER_FACTOR, None),
    "power_factor_l1": (Measurand.POWER_FACTOR, "L1"),
    "power_factor_l2": (Measurand.POWER_FACTOR, "L2"),
    "power_factor_l3": (Measurand.POWER_FACTOR, "L3"),
}

#: Data types: registers taken, signed, float. Names as pymodbus's DATATYPE.
TYPES: dict[str, tuple[int, bool, bool]] = {
    "int16": (1, True, False),
    "uint16": (1, False, False),
    "int32": (2, True, False),
    "uint32": (2, False, False),
    "int64": (4, True, False),
    "uint64": (4, False, False),
    "float32": (2, True, True),
}

FUNCTIONS = {3: "holding registers", 4: "input registers"}
#: The protocol's ceiling for one read request (FC03/FC04).
PROTOCOL_MAX_REGISTERS = 125

MAPS_PACKAGE = "hal.meters.maps"


class MapError(Exception):
    """A register map that cannot be used, with where and why."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        super().__init__(f"{source}: {key}: {reason}")


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


@dataclass(frozen=True)
class Request:
    """One read request of a plan: a contiguous register range."""

    function: int
    address: int
    count: int
    fields: tuple[Field, ...]

    def frame_bytes(self) -> tuple[int, int]:
        """RTU request and normal response length in bytes (with address and CRC)."""
        return 8, 5 + 2 * self.count


@dataclass(frozen=True)
class Span:
    function: int
    first: int
    last: int

    def covers(self, function: int, first: int, last: int) -> bool:
        return function == self.function and self.first <= first and last <= self.last


@dataclass(frozen=True)
class RegisterMap:
    """A meter model's register layout and the read plan that follows from it."""

    model: str
    title: str
    source: str
    max_registers: int
    fields: tuple[Field, ...]
    readable: tuple[Span, ...] = ()
    aliases: tuple[str, ...] = ()

    def field(self, quantity: str) -> Field | None:
        return next((f for f in self.fields if f.quantity == quantity), None)

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(f.quantity for f in self.fields)

    # ------------------------------------------------------------ planning
    def plan(self) -> tuple[Request, ...]:
        """The fewest requests that read every field (cached per map)."""
        return _plan(self)

    def _mergeable(self, function: int, first: int, gap_start: int, gap_end: int, last: int) -> bool:
        if last - first + 1 > self.max_registers:
            return False
        if gap_start == gap_end:
            return True
        return any(span.covers(function, gap_start, gap_end - 1) for span in self.readable)

    # ------------------------------------------------------------- codec
    def decode(self, responses: Sequence[Sequence[int]]) -> dict[str, float | None]:
        """Values in canonical units from the registers of each planned request.

        A float register holding NaN or infinity decodes as None (not
        measured); everything else is a number.
        """
        plan = self.plan()
        if len(responses) != len(plan):
            raise ValueError(f"{len(responses)} responses for a plan of {len(plan)} requests")
        values: dict[str, float | None] = {}
        for request, registers in zip(plan, responses, strict=True):
            if len(registers) != request.count:
                raise ValueError(f"request at {request.address:#06x} returned {len(registers)} "
                                 f"registers, not {request.count}")
            for f in request.fields:
                offset = f.address - request.address
                values[f.quantity] = decode_field(f, registers[offset:offset + f.count])
        return values

    def encode(self, values: Mapping[str, float | None]) -> dict[tuple[int, int], list[int]]:
        """Registers per (function, address) holding ``values`` in this meter's format.

        Quantities missing from ``values`` (or None) are written as zero.
        """
        return {(f.function, f.address): encode_field(f, values.get(f.quantity))
                for f in self.fields}


@cache
def _plan(register_map: RegisterMap) -> tuple[Request, ...]:
    requests: list[Request] = []
    by_function: dict[int, list[Field]] = {}
    for f in register_map.fields:
        by_function.setdefault(f.function, []).append(f)
    for function in sorted(by_function):
        group: list[Field] = []
        for f in sorted(by_function[function], key=lambda f: f.address):
            if group:
                first, end = group[0].address, max(g.end for g in group)
                if register_map._mergeable(function, first, end, f.address, f.end - 1):
                    group.append(f)
                    continue
                requests.append(_request(function, group))
            group = [f]
        if group:
            requests.append(_request(function, group))
    return tuple(requests)


def _request(function: int, group: list[Field]) -> Request:
    first = group[0].address
    return Request(function, first, max(f.end for f in group) - first, tuple(group))


# ------------------------------------------------------------------ codec
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
    if TYPES[f.type][2]:
        if not math.isfinite(raw):
            return None
        return float(Decimal(_shortest_float32(raw)) * _decimal_factor(f))
    return float(Decimal(int(raw)) * _decimal_factor(f))


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
    """The registers that hold ``value`` (canonical unit) in the meter's format."""
    codec = _codec()
    count, signed, is_float = TYPES[f.type]
    if value is None:
        value = 0.0
    raw: float | int = value / f.factor
    if not is_float:
        bits = 16 * count
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        raw = min(max(round(raw), low), high)
    return list(codec.convert_to_registers(raw, data_type=codec.DATATYPE[f.type.upper()],
                                           word_order=f.word_order))


# --------------------------------------------------------------- readings
def to_reading(values: Mapping[str, float | None], timestamp: float) -> MeterReading:
    """A :class:`MeterReading` from decoded values (energy_import must be there).

    The total power is the meter's own total where it reports one, else the
    sum of the phases when all three are known.
    """
    energy = values.get("energy_import")
    if energy is None:
        raise ValueError("no import energy in the decoded values")
    power = values.get("power")
    phases = [values.get(f"power_l{n}") for n in (1, 2, 3)]
    if power is None and all(p is not None for p in phases):
        power = sum(p for p in phases if p is not None)
    return MeterReading(
        timestamp=timestamp,
        energy_import_wh=energy,
        energy_export_wh=values.get("energy_export"),
        power_w=power,
        currents_a=(values.get("current_l1"), values.get("current_l2"), values.get("current_l3")),
        voltages_v=(values.get("voltage_l1"), values.get("voltage_l2"), values.get("voltage_l3")),
        frequency_hz=values.get("frequency"),
        power_factor=values.get("power_factor"),
    )


def reading_values(reading: MeterReading) -> dict[str, float | None]:
    """The quantities a :class:`MeterReading` carries, by quantity name.

    Per-phase power is derived as voltage x current x power factor (1 when
    unknown) where the reading has both, as a simulated meter would measure it.
    """
    values: dict[str, float | None] = {
        "energy_import": reading.energy_import_wh,
        "energy_export": reading.energy_export_wh,
        "power": reading.power_w,
        "frequency": reading.frequency_hz,
        "power_factor": reading.power_factor,
    }
    pf = reading.power_factor if reading.power_factor is not None else 1.0
    for n, (amps, volts) in enumerate(zip(reading.currents_a, reading.voltages_v, strict=True), 1):
        values[f"current_l{n}"] = amps
        values[f"voltage_l{n}"] = volts
        values[f"power_factor_l{n}"] = reading.power_factor
        values[f"power_l{n}"] = None if amps is None or volts is None else amps * volts * pf
    return values


# ---------------------------------------------------------------- loading
def shipped_models() -> dict[str, str]:
    """Model name (and alias) -> file name of every map shipped in the package."""
    models: dict[str, str] = {}
    for entry in sorted(resources.files(MAPS_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            register_map = _load_shipped(entry.name)
            for name in (register_map.model, *register_map.aliases):
                models[name] = entry.name
    return models


@cache
def _load_shipped(file_name: str) -> RegisterMap:
    text = resources.files(MAPS_PACKAGE).joinpath(file_name).read_text(encoding="utf-8")
    return parse_map(text, f"{MAPS_PACKAGE}/{file_name}")


def load_map(model: str = "", path: str | Path | None = None) -> RegisterMap:
    """A shipped map by model name, or a user map from ``path``."""
    if path:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise MapError(source, "-", f"cannot be read: {exc.strerror or exc}") from None
        return parse_map(text, source)
    models = shipped_models()
    if model not in models:
        raise MapError("<shipped maps>", "model",
                       f"unknown meter model {model!r}; shipped: {', '.join(sorted(models))}")
    return _load_shipped(models[model])


def parse_map(text: str, source: str = "<map>") -> RegisterMap:
    """Validate a map document; every mistake names the key and the reason."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MapError(source, "-", f"not valid TOML: {exc}") from None
    known = {"model", "title", "aliases", "max_registers", "defaults", "readable", "registers"}
    for key in data:
        if key not in known:
            raise MapError(source, key, f"unknown key; known: {', '.join(sorted(known))}")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise MapError(source, "model", "is required: the model's name")
    title = data.get("title", model)
    aliases = data.get("aliases", [])
    if not isinstance(title, str):
        raise MapError(source, "title", "must be a string")
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise MapError(source, "aliases", "must be a list of names")
    max_registers = data.get("max_registers", PROTOCOL_MAX_REGISTERS)
    if isinstance(max_registers, bool) or not isinstance(max_registers, int) \
            or not 1 <= max_registers <= PROTOCOL_MAX_REGISTERS:
        raise MapError(source, "max_registers", f"must be a whole number 1-{PROTOCOL_MAX_REGISTERS}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise MapError(source, "defaults", "must be a table")
    for key in defaults:
        if key not in ("function", "type", "word_order", "scale"):
            raise MapError(source, f"defaults.{key}", "unknown key; known: function, type, word_order, scale")
    registers = data.get("registers")
    if not isinstance(registers, dict) or not registers:
        raise MapError(source, "registers", "is required: a table of quantity = { address = ... }")
    fields = tuple(_field(source, name, spec, defaults) for name, spec in registers.items())
    if not any(f.quantity == "energy_import" for f in fields):
        raise MapError(source, "registers.energy_import",
                       "is required: transactions are billed from the import register")
    for f in fields:
        if f.count > max_registers:
            raise MapError(source, f"registers.{f.quantity}", "does not fit in max_registers")
    _check_overlaps(source, fields)
    readable = _spans(source, data.get("readable", []))
    return RegisterMap(model, title, source, max_registers, fields, readable, tuple(aliases))


def _field(source: str, name: str, spec: Any, defaults: dict[str, Any]) -> Field:
    key = f"registers.{name}"
    if name not in QUANTITIES:
        raise MapError(source, key, f"unknown quantity; known: {', '.join(QUANTITIES)}")
    if not isinstance(spec, dict):
        raise MapError(source, key, "must be a table { address = ..., unit = ... }")
    for k in spec:
        if k not in ("address", "function", "type", "word_order", "scale", "unit"):
            raise MapError(source, f"{key}.{k}",
                           "unknown key; known: address, function, type, word_order, scale, unit")
    merged = {**defaults, **spec}
    address = merged.get("address")
    if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 0xFFFF:
        raise MapError(source, f"{key}.address", "is required: a register address 0-0xFFFF")
    function = merged.get("function", 4)
    if function not in FUNCTIONS or isinstance(function, bool):
        raise MapError(source, f"{key}.function", "must be 3 (holding) or 4 (input registers)")
    type_ = merged.get("type", "float32")
    if type_ not in TYPES:
        raise MapError(source, f"{key}.type", f"unknown type {type_!r}; known: {', '.join(TYPES)}")
    word_order = merged.get("word_order", "big")
    if word_order not in ("big", "little"):
        raise MapError(source, f"{key}.word_order",
                       "must be 'big' (high word first) or 'little' (low word first)")
    scale = merged.get("scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale == 0 \
            or not math.isfinite(scale):
        raise MapError(source, f"{key}.scale", "must be a non-zero number")
    kind = QUANTITIES[name]
    unit = merged.get("unit")
    if unit not in UNITS[kind]:
        allowed = ", ".join(repr(u) for u in UNITS[kind])
        raise MapError(source, f"{key}.unit", f"is required; a {kind} is given in {allowed}")
    if address + TYPES[type_][0] > 0x10000:
        raise MapError(source, f"{key}.address", "runs past the last register")
    return Field(name, function, address, type_, word_order, float(scale), unit)


def _check_overlaps(source: str, fields: tuple[Field, ...]) -> None:
    ordered = sorted(fields, key=lambda f: (f.function, f.address))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.function == b.function and b.address < a.end:
            raise MapError(source, f"registers.{b.quantity}",
                           f"overlaps {a.quantity} at {a.address:#06x}")


def _spans(source: str, raw: Any) -> tuple[Span, ...]:
    if not isinstance(raw, list):
        raise MapError(source, "readable", "must be a list of { function, first, last }")
    spans = []
    for index, item in enumerate(raw):
        key = f"readable[{index}]"
        if not isinstance(item, dict) or set(item) - {"function", "first", "last"}:
            raise MapError(source, key, "must be { function = 3|4, first = ADDR, last = ADDR }")
        function, first, last = item.get("function", 4), item.get("first"), item.get("last")
        if function not in FUNCTIONS:
            raise MapError(source, f"{key}.function", "must be 3 or 4")
        if not isinstance(first, int) or not isinstance(last, int) or not 0 <= first <= last <= 0xFFFF:
            raise MapError(source, key, "first and last must be addresses with first <= last")
        spans.append(Span(function, first, last))
    return tuple(spans)

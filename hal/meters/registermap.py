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
    power_factor = { address = 0x0040, type = "int16", scale = 0.001, unit = "", no_data = 0x7FFF }

``no_data`` (integer types only) is the register contents by which the meter
says it has no value for the quantity, written as the manual prints it (the
unsigned bit pattern: 0x7FFF for an int16, 0xFFFFFFFF for a uint32); such a
reading decodes as no value instead of a number like 32.767.

Quantities: energy_import, energy_export (Wh/kWh), power, power_l1..3 (W/kW),
current_l1..3 (A/mA), voltage_l1..3 (V), frequency (Hz), power_factor and
power_factor_l1..3 (unit ""). A value is ``raw x scale`` in ``unit``.

This module reads and validates map files and is the one way in: the rest
of the register-map code lives next to it, one job per module, and is
re-exported here (``from hal.meters.registermap import ...``):

* :mod:`hal.meters.quantities`: the quantities, units, data types and
  function codes a map is written in;
* :mod:`hal.meters.fieldcodec`: :class:`Field` and the codec between a
  field's registers and its value;
* :mod:`hal.meters.registerlayout`: :class:`RegisterMap` and its read plan;
* :mod:`hal.meters.readings`: :func:`to_reading` and :func:`reading_values`.

None of them imports anything heavy at import time (the configuration checker
lists and validates maps without loading pymodbus); the codec uses pymodbus's
``convert_from_registers``/``convert_to_registers`` on first use.
"""

from __future__ import annotations

import math
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from hal.meters.fieldcodec import Field, decode_field, encode_field
from hal.meters.quantities import (
    CANONICAL_UNIT,
    FUNCTIONS,
    MEASURANDS,
    PROTOCOL_MAX_REGISTERS,
    QUANTITIES,
    TYPES,
    UNITS,
)
from hal.meters.readings import reading_values, to_reading
from hal.meters.registerlayout import RegisterMap, Request, Span

__all__ = [
    "CANONICAL_UNIT",
    "FUNCTIONS",
    "MAPS_PACKAGE",
    "MEASURANDS",
    "PROTOCOL_MAX_REGISTERS",
    "QUANTITIES",
    "TYPES",
    "UNITS",
    "Field",
    "MapError",
    "RegisterMap",
    "Request",
    "Span",
    "decode_field",
    "encode_field",
    "load_map",
    "parse_map",
    "reading_values",
    "shipped_models",
    "to_reading",
]

MAPS_PACKAGE = "hal.meters.maps"


class MapError(Exception):
    """A register map that cannot be used, with where and why."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        super().__init__(f"{source}: {key}: {reason}")


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
        if k not in ("address", "function", "type", "word_order", "scale", "unit", "no_data"):
            raise MapError(source, f"{key}.{k}",
                           "unknown key; known: address, function, type, word_order, scale, unit, no_data")
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
    no_data = spec.get("no_data")
    if no_data is not None:
        count, _signed, is_float = TYPES[type_]
        if is_float:
            raise MapError(source, f"{key}.no_data", "only for integer types (a float says NaN)")
        top = (1 << (16 * count)) - 1
        if isinstance(no_data, bool) or not isinstance(no_data, int) or not 0 <= no_data <= top:
            raise MapError(source, f"{key}.no_data",
                           f"must be the register contents as an unsigned number (0 to {top:#x})")
    return Field(name, function, address, type_, word_order, float(scale), unit, no_data)


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

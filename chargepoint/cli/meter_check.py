"""``chargepoint meter``: read an energy meter directly, without the daemon.

For commissioning: is the meter wired, addressed and set up the way the
configuration says, and does the register map decode sensible numbers? The
command talks to the meter through the same driver the station uses (one
register map, one decoder) and prints every quantity with the OCPP measurand
it is reported as, as a table or as JSON; ``--watch`` reads again and again.
Like the station, it tells a failure by its kind (no answer, CRC error,
exception response, ...), which is usually enough to find the fault.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chargepoint.protocol.common.measurands import DIRECTED
from hal.interfaces import MeterFailure
from hal.meters.bus import BusSettings, ModbusBus
from hal.meters.modbus_meter import ModbusMeter
from hal.meters.registermap import (
    CANONICAL_UNIT,
    MEASURANDS,
    QUANTITIES,
    RegisterMap,
    load_map,
    shipped_models,
)


@dataclass(frozen=True)
class MeterTarget:
    """Which meter to read and how."""

    register_map: RegisterMap
    bus: BusSettings
    unit_id: int
    retries: int = 1


def models_text() -> str:
    lines = []
    models = shipped_models()
    seen: dict[str, list[str]] = {}
    for name, file_name in models.items():
        seen.setdefault(file_name, []).append(name)
    for names in seen.values():
        register_map = load_map(names[0])
        aliases = [n for n in names if n != register_map.model]
        also = f" (also: {', '.join(aliases)})" if aliases else ""
        lines.append(f"{register_map.model:<12} {register_map.title}{also}, "
                     f"{len(register_map.fields)} quantities in {len(register_map.plan())} request(s)")
    return "\n".join(sorted(lines))


def rows(values: dict[str, float | None]) -> list[dict[str, Any]]:
    """One row per quantity the map has, in the vocabulary's order, as the station reports it over OCPP.

    A power or current flowing out of the EV is its export measurand with a positive value
    (``Power.Active.Export``, ``Current.Export``; a phase by its own power where the meter has it),
    as on the wire (``chargepoint.protocol.common.measurands``); ``values`` keeps the meter's signs.
    """
    out = []
    for quantity in QUANTITIES:
        if quantity not in values:
            continue
        measurand, phase = MEASURANDS[quantity]
        name, value = measurand.value, values[quantity]
        kind = next((k for k, (imported, _) in DIRECTED.items() if imported == name), None)
        if kind is not None and _exporting(values, phase):
            name = DIRECTED[kind][1]
            value = abs(value) if value is not None else None
        out.append({"quantity": quantity, "value": value,
                    "unit": CANONICAL_UNIT[QUANTITIES[quantity]], "measurand": name, "phase": phase})
    return out


def _exporting(values: dict[str, float | None], phase: str | None) -> bool:
    """Whether the meter reads energy flowing out of the EV: on ``phase`` by its own power if read."""
    signed = values.get(f"power_{phase.lower()}") if phase else None
    if signed is None:
        signed = values.get("power")
    return signed is not None and signed < 0


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def table(target: MeterTarget, values: dict[str, float | None], elapsed_s: float,
          note: str = "") -> str:
    lines = [f"{target.register_map.title} ({target.register_map.model}), unit {target.unit_id} "
             f"on {target.bus.describe()}: {len(target.register_map.plan())} request(s) in "
             f"{elapsed_s * 1000:.0f} ms"]
    if note:
        lines.append(note)
    lines.append(f"{'quantity':<16} {'value':>14} {'unit':<4}  {'OCPP measurand':<30} phase")
    for row in rows(values):
        lines.append(f"{row['quantity']:<16} {_number(row['value']):>14} {row['unit']:<4}  "
                     f"{row['measurand']:<30} {row['phase'] or ''}".rstrip())
    return "\n".join(lines)


#: What to check per failure kind, for a serial line (RS-485) and for Modbus TCP.
RTU_HINTS = {
    "no_answer": "check the unit id, the A/B wiring, baud rate and parity",
    "crc": "check termination, cable and grounding; baud rate and parity",
    "timeout": "answers are cut short: check baud rate, parity and the cable",
    "exception_response": "the meter refused the request: is this the right model/map?",
    "disconnected": "check the port and that no other program holds it",
    "implausible": "the meter answered, but the values cannot be right",
}
TCP_HINTS = {
    "no_answer": "check the unit id (a gateway forwards to the meter with that address) and that "
                 "the meter is powered; the TCP connection itself is up",
    "timeout": "answers are cut short: check the network and the gateway",
    "exception_response": "the meter refused the request: is this the right model/map? (exception 10/11: "
                          "the gateway cannot reach the meter)",
    "disconnected": "check the host and TCP port, that the meter or gateway is on the network and "
                    "that Modbus TCP is enabled on it",
    "implausible": "the meter answered, but the values cannot be right",
}
#: Serial ports that could not be opened: the detail already says what to do.
PORT_HINTS = {
    "missing": "plug in the RS-485 adapter, or configure meter.port as the adapter's path",
    "permission": "the station's user must be in the group that owns the port (see above)",
}


def failure_text(target: MeterTarget, failure: MeterFailure) -> str:
    """The failure in words, with what to check on this transport."""
    kind = failure.kind.value
    hints = RTU_HINTS if target.bus.transport == "rtu" else TCP_HINTS
    hint = PORT_HINTS.get(failure.extra.get("cause", "")) or hints.get(kind, "")
    return (f"{target.register_map.model} unit {target.unit_id} on {target.bus.describe()}: "
            f"{kind}: {failure.detail}" + (f"\n  hint: {hint}" if hint else ""))


def as_json(target: MeterTarget, result: dict[str, float | None] | MeterFailure, elapsed_s: float,
            implausible: str | None = None) -> str:
    doc: dict[str, Any] = {"model": target.register_map.model, "unit_id": target.unit_id,
                           "bus": target.bus.describe(), "time": time.time(),
                           "elapsed_s": round(elapsed_s, 4)}
    if isinstance(result, MeterFailure):
        doc.update(ok=False, failure={"kind": result.kind.value, "detail": result.detail,
                                      **({"extra": result.extra} if result.extra else {})})
    else:
        doc.update(ok=implausible is None, values=result, measurands=rows(result))
        if implausible:
            doc["implausible"] = implausible
    return json.dumps(doc)


async def check_meter(target: MeterTarget, *, json_output: bool = False, watch: bool = False,
                      interval_s: float = 2.0, count: int | None = None,
                      out: Callable[[str], None] = print) -> bool:
    """Read the meter once (or every ``interval_s`` with ``watch``); True if the last read worked."""
    meter = ModbusMeter(ModbusBus(target.bus), target.register_map, target.unit_id,
                        retries=target.retries, name=f"{target.register_map.model}#{target.unit_id}")
    clear = watch and not json_output and sys.stdout.isatty()
    ok = False
    reads = 0
    try:
        while True:
            started = time.monotonic()
            result = await meter.read_values()
            elapsed = time.monotonic() - started
            reads += 1
            implausible = None
            if not isinstance(result, MeterFailure):
                implausible = meter.guard.check(result.get("energy_import"), time.monotonic())
            ok = not isinstance(result, MeterFailure) and implausible is None
            if json_output:
                out(as_json(target, result, elapsed, implausible))
            else:
                if clear:
                    out("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S"))
                elif watch and reads > 1:
                    out("")
                if isinstance(result, MeterFailure):
                    out(failure_text(target, result))
                else:
                    note = f"IMPLAUSIBLE: {implausible}" if implausible else ""
                    out(table(target, result, elapsed, note))
            if not watch or (count is not None and reads >= count):
                return ok
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    finally:
        await meter.close()

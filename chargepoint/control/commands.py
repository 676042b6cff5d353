"""The control protocol's commands: check the arguments, ask the station service, return JSON.

Each command is a small function of the service and the request's ``args``;
what it may see and do is the service's (``service.py``), so this module holds
no station logic. ``AUDITED`` commands change something and are logged with who
asked.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import chargepoint
from chargepoint.config.model import SOLAR_MODES
from chargepoint.control import security_commands
from chargepoint.control.errors import ControlError
from chargepoint.control.output_tests import pilot_test, relay_test
from chargepoint.control.service import StationService
from chargepoint.core.energy.plan_runner import PlanError
from chargepoint.supervisor.sim import act_on_world
from chargepoint.supervisor.wire import WireError

PROTOCOL_VERSION = 1

Handler = Callable[[StationService, dict[str, Any]], Awaitable[Any]]
COMMANDS: dict[str, Handler] = {}
#: Commands that change something: logged with who asked.
AUDITED = {"start", "stop", "unlock", "availability", "config_set", "config_reset", "fault_clear",
           "relay_test", "pilot_test", "selftest", "sim", "limit", "mode", "plan", "reconnect",
           *security_commands.AUDITED}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn
    return register


def integer(args: dict[str, Any], name: str, default: int | None) -> int | None:
    value = args.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError("bad_request", f"{name} must be a whole number, not {value!r}")
    return value


def _connector(args: dict[str, Any], default: int | None = 1) -> int:
    value = integer(args, "connector", default)
    if value is None:
        raise ControlError("bad_request", "connector is required")
    return value


@command("hello")
async def _hello(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return {"protocol": PROTOCOL_VERSION, "version": chargepoint.__version__,
            "identity": s.config.station.identity, "commands": sorted(COMMANDS)}


@command("status")
async def _status(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    out = s.status(integer(args, "connector", None))
    out["maintenance"] = maintenance_json(s)
    return out


def maintenance_json(s: StationService) -> dict[str, Any]:
    """A firmware update or diagnostics upload in progress (or how the last one ended)."""
    firmware, diagnostics = s.services.firmware, s.services.diagnostics
    out: dict[str, Any] = {"firmware": None, "diagnostics": None}
    if firmware is not None and firmware.state.status.value != "idle":
        f = firmware.state
        out["firmware"] = {"status": f.status.value, "in_progress": f.in_progress, "location": f.location,
                           "version": f.version, "detail": f.detail}
    if diagnostics is not None and diagnostics.state.status.value != "idle":
        d = diagnostics.state
        out["diagnostics"] = {"status": d.status.value, "file_name": d.file_name, "detail": d.detail}
    return out


@command("sessions")
async def _sessions(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await s.sessions(integer(args, "limit", 20) or 20)


@command("start")
async def _start(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return s.start(args.get("id_tag"), integer(args, "connector", None), bool(args.get("authorize", False)))


@command("stop")
async def _stop(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await s.stop(integer(args, "connector", None))


@command("unlock")
async def _unlock(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await s.unlock(_connector(args))


@command("availability")
async def _availability(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    operative = args.get("operative")
    if operative is not None and not isinstance(operative, bool):
        raise ControlError("bad_request", "operative must be true or false")
    return s.availability(integer(args, "connector", 0) or 0, operative)


@command("limit")
async def _limit(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    """The operator's limit: ``amps`` a number (A), or null to clear it."""
    amps = args.get("amps")
    if amps is not None and (isinstance(amps, bool) or not isinstance(amps, int | float)):
        raise ControlError("bad_request", f"amps must be a number or null, not {amps!r}")
    return await s.limit(integer(args, "connector", None), None if amps is None else float(amps))


@command("mode")
async def _mode(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    """The solar mode: ``mode`` (fast, pv, minpv, off) sets it, kept across restarts; without, it is shown."""
    mode = args.get("mode")
    energy = s.energy
    if mode is not None:
        if mode not in SOLAR_MODES:
            raise ControlError("bad_request", f"mode must be one of {', '.join(SOLAR_MODES)}, not {mode!r}")
        if energy is None:
            raise ControlError("refused", "solar modes need the grid meter: set load.enabled = true and "
                                          f"[load.meter] in {s.config.source}")
        await energy.set_mode(mode)
    if energy is None:
        return {"mode": "fast", "grid_meter": False, "energy": None}
    return {"mode": energy.mode, "grid_meter": True, "energy": energy.status()}


@command("plan")
async def _plan(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    """A connector's departure plan: ``energy_kwh`` and ``deadline`` (epoch seconds) set it, ``clear``
    removes it; without either it is shown."""
    energy = s.energy
    evse_id = s.evse_id(_connector(args))
    kwh, deadline, clear = args.get("energy_kwh"), args.get("deadline"), args.get("clear", False)
    if energy is None:
        if kwh is None and not clear:
            return {"connector": evse_id, "grid_meter": False, "plan": None}
        raise ControlError("refused", "a departure plan needs the grid meter: set load.enabled = true and "
                                      f"[load.meter] in {s.config.source}")
    if clear:
        await energy.plans.clear(evse_id)
    elif kwh is not None or deadline is not None:
        for name, value in (("energy_kwh", kwh), ("deadline", deadline)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ControlError("bad_request", f"{name} must be a number, not {value!r}")
        try:
            await energy.plans.set(evse_id, float(kwh) * 1000, float(deadline), s.clock.time())
        except PlanError as exc:
            raise ControlError("bad_request", str(exc)) from None
    load = next(c for c in energy.connector_loads() if c.evse_id == evse_id)
    return {"connector": evse_id, "grid_meter": True, "plan": energy.plans.status(load, s.clock.time()),
            "mode": energy.mode}


@command("config_get")
async def _config_get(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    keys = args.get("keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ControlError("bad_request", "keys must be a list of names")
    return s.config_get(keys)


@command("config_set")
async def _config_set(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    key, value = args.get("key"), args.get("value")
    if not isinstance(key, str) or not isinstance(value, str):
        raise ControlError("bad_request", "key and value must be strings")
    return s.config_set(key, value)


@command("config_reset")
async def _config_reset(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    key = args.get("key")
    if not isinstance(key, str):
        raise ControlError("bad_request", "key must be a string")
    return s.config_reset(key)


@command("queue")
async def _queue(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return s.queue_list()


@command("reconnect")
async def _reconnect(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await s.reconnect(force=args.get("force") is True)


@command("logs")
async def _logs(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    kind = args.get("kind", "all")
    if kind not in ("all", "events", "frames"):
        raise ControlError("bad_request", "kind must be all, events or frames")
    limit = integer(args, "limit", 50) or 0
    since = integer(args, "since", 0) or 0
    entries = s.recorder.select(kind=kind, since=since, limit=limit)
    return {"entries": [{k: v for k, v in e.items() if k != "levelno"} for e in entries]}


@command("fault_clear")
async def _fault_clear(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await s.fault_clear(_connector(args))


@command("relay_test")
async def _relay_test(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await s.exclusive_test(_connector(args), lambda t: relay_test(t, s.clock, s.config.safety))


@command("pilot_test")
async def _pilot_test(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await s.exclusive_test(_connector(args), lambda t: pilot_test(t, s.clock, s.config.safety))


@command("selftest")
async def _selftest(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    busy = [evse_id for evse_id in s.station.connectors if evse_id in s.testing]
    if busy:
        raise ControlError("busy", f"a test is already running on connector {busy[0]}")
    # The commissioning test's checks load when a technician runs it, not with the daemon (months
    # resident), and in a worker thread: an import reads files, which the event loop never waits for.
    selftest = await asyncio.to_thread(importlib.import_module, "chargepoint.control.selftest")

    s.testing.update(s.station.connectors)
    try:
        report = await selftest.run(s, s.connection_status())
    finally:
        s.testing.difference_update(s.station.connectors)
    await asyncio.to_thread(_keep_report, Path(s.config.station.state_dir) / "selftest.json", report)
    return report


def _keep_report(path: Path, report: dict[str, Any]) -> None:
    """The last self-test report, for the diagnostics archive; a disk that refuses it loses only that."""
    try:
        path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    except OSError:
        pass


@command("sim")
async def _sim(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    """The simulated EV and card reader, for commissioning the sim station and for demos."""
    worlds = s.daemon.worlds
    if not worlds:
        raise ControlError("refused", "only on the simulated hardware (hal.backend = \"sim\")")
    action = args.get("action")
    evse_id = s.evse_id(_connector(args))
    world = worlds[evse_id]
    if action == "card":
        id_tag = args.get("id_tag")
        if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= 20:
            raise ControlError("bad_request", "id_tag must be 1 to 20 characters")
        # The station has one reader (connector 1's world holds it); the station picks the connector.
        reader = s.daemon.card_reader
        if reader is None or not hasattr(reader, "tap"):
            raise ControlError("refused", "this station has no simulated card reader")
        reader.tap(id_tag)
        return {"connector": evse_id, "action": action}
    if action not in ("plug", "unplug", "trip", "release"):
        raise ControlError("bad_request", "action must be plug, unplug, card, trip or release")
    name = args.get("input", "rcd")
    if name not in ("rcd", "emergency_stop"):
        raise ControlError("bad_request", "input must be rcd or emergency_stop")
    fields = {"input": name, "hold": bool(args.get("hold"))}
    # The simulation is the supervisor's hardware (a request on its channel), or in this process.
    try:
        if hasattr(world, "act"):
            state = await asyncio.to_thread(world.act, action, **fields)
        else:
            state = await asyncio.to_thread(act_on_world, evse_id, world, {"action": action, **fields})
    except WireError as exc:
        raise ControlError("refused", exc.message) from None
    result: dict[str, Any] = {"connector": evse_id, "action": action, "ev_state": state["ev_state"]}
    if action in ("trip", "release"):
        # What is true now: which conditions are still there, which inputs are latched (fault clear).
        result.update(input=name, held=state["held"], latched=state["latched"])
    return result


COMMANDS.update(security_commands.COMMANDS)

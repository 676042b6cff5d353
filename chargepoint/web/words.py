"""The dashboard's events in plain words: the log's lines, as a homeowner would say them.

The log is written for technicians (``chargepoint.control.server: control:
mode by uid 0 (pid 5446) {"mode":"pv"}``); the page shows the same events as
sentences (``Solar mode: PV``) and leaves out what only a technician needs:
the audit line of a command (the line saying what the command did follows
it), the sockets being opened at start. Warnings and errors are always
shown, in the log's own words when no rule knows them, so nothing that went
wrong is hidden. The rules are data: a pattern on the text and what to say.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]]

MODES = {"fast": "Fast", "pv": "PV", "minpv": "Min+PV", "off": "Off"}
REASONS = {"local": "stopped here", "ev_disconnected": "car unplugged", "remote": "stopped remotely",
           "power_loss": "power cut", "reboot": "restart", "deauthorized": "card no longer valid",
           "emergency_stop": "emergency stop", "stopped_by_ev": "stopped by the car"}


def _kwh(wh: str) -> str:
    return f"{float(wh) / 1000:.2f} kWh"


def _amps(text: str) -> str:
    return "no limit" if text in ("None", "none") else f"{float(text):g} A"


_RULES: list[Rule] = [(re.compile(pattern), say) for pattern, say in (
    # Audit lines of commands: what the command did is logged next, in its own words.
    (r"^(control|web): \w+ by ", lambda m: None),
    (r"^MQTT command \w+( on connector \d+)?: done$", lambda m: None),
    (r"^control socket .* ready", lambda m: None),
    (r"^group \S+ does not exist", lambda m: None),
    (r"^web dashboard on ", lambda m: None),
    (r"^Modbus bus \S+ open$", lambda m: None),
    (r"^state database .* (created|opened)", lambda m: None),
    (r"^display: ", lambda m: None),
    (r"^security event (\w+)$", lambda m: f"Security event: {m[1].replace('_', ' ')}"),
    (r"^web: login from ", lambda m: "Someone logged in to this page"),
    (r"^station (\S+) running with (\d+) connector", lambda m: f"Station {m[1]} started"),
    (r"^station stopped( for a restart)?", lambda m: "Station restarting" if m[1] else "Station stopped"),
    (r"^no CSMS configured", lambda m: None),
    (r"^connector (\d+): EV plugged in$", lambda m: f"Connector {m[1]}: car plugged in"),
    (r"^connector (\d+): EV unplugged$", lambda m: f"Connector {m[1]}: car unplugged"),
    (r"^connector (\d+): transaction \S+ started at",
     lambda m: f"Connector {m[1]}: charging session started"),
    (r"^connector (\d+): transaction \S+ stopped \((\w+)\), (\d+) Wh delivered",
     lambda m: f"Connector {m[1]}: session ended ({REASONS.get(m[2], m[2].replace('_', ' '))}), "
               f"{_kwh(m[3])} charged"),
    (r"^connector (\d+): session for ", lambda m: None),
    (r"^connector (\d+): (idle|starting|authorized|finishing)(, inoperative)?$", lambda m: None),
    (r"^connector (\d+): suspended ev$", lambda m: f"Connector {m[1]}: the car is not taking power"),
    (r"^connector (\d+): suspended evse$", lambda m: f"Connector {m[1]}: paused by the station"),
    (r"^connector (\d+): charging$", lambda m: f"Connector {m[1]}: charging"),
    (r"^connector (\d+): (operative|inoperative)$",
     lambda m: f"Connector {m[1]}: {'available' if m[2] == 'operative' else 'made unavailable'}"),
    (r"^connector (\d+): operator limit (cleared|[\d.]+ A)$",
     lambda m: f"Connector {m[1]}: {'limit removed' if m[2] == 'cleared' else 'limit set to ' + m[2]}"),
    (r"^connector (\d+): paused by (\w+) \(([\d.]+) A\)",
     lambda m: f"Connector {m[1]}: paused by {m[2].replace('_', ' ')}"),
    (r"^connector (\d+): (\w+) allows charging again \((.*)\)",
     lambda m: f"Connector {m[1]}: {m[2].replace('_', ' ')} allows charging again ({m[3]})"),
    (r"^solar mode (\w+)$", lambda m: f"Charging mode: {MODES.get(m[1], m[1])}"),
    (r"^card (\S+) presented$", lambda m: None),
    (r"^card \S+ \((.*)\) accepted from the local card list$", lambda m: f"Card “{m[1]}” accepted"),
    (r"^card \S+ \((.*)\) on the local card list", lambda m: f"Card “{m[1]}” may charge"),
    (r"^card \S+ \((.*)\) removed from the local card list$", lambda m: f"Card “{m[1]}” removed"),
    (r"^card (\S+) refused: not on the local card list", lambda m: f"Unknown card {m[1]} refused"),
    (r"^card \S+ \((.*)\) refused: expired", lambda m: f"Card “{m[1]}” refused: expired"),
)]


def plain(level: str, text: str) -> str | None:
    """The event as the page says it, or None to leave it out (only INFO lines are ever left out)."""
    for pattern, say in _RULES:
        match = pattern.search(text)
        if match is not None:
            said = say(match)
            if said is None and level in ("INFO", "DEBUG"):
                return None
            return said or _sentence(text)
    return _sentence(text)


def _sentence(text: str) -> str:
    """A line no rule knows: its first letter up, nothing else changed."""
    return text[:1].upper() + text[1:]


def events(entries: list[dict[str, Any]], shown: int) -> list[dict[str, Any]]:
    """The newest ``shown`` events in plain words, oldest first, with their time and level."""
    out = []
    for entry in entries:
        text = plain(entry["level"], entry["text"])
        if text is not None:
            out.append({"time": entry["time"], "level": entry["level"], "text": text})
    return out[-shown:]

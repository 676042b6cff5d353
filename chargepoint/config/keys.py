"""The file's keys as the technician's ``config get`` shows them: dotted, as written in the file.

Every key the loader accepts (``[board]`` aside, which ``hardware.md`` and
``examples/raspberrypi.toml`` describe) with the value the daemon uses, and
whether the file sets it or the default applies: ``config get
simulation.tethered`` answers like any other key, never "Unknown".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chargepoint.config.model import Config

#: Sections shown key by key (the board profile is not).
SECTIONS = ("station", "ocpp", "simulation", "meter", "safety", "control", "mqtt", "web",
            "load", "solar", "house")


def set_in_file(data: dict[str, Any]) -> frozenset[str]:
    """The dotted keys a parsed TOML document sets (``connectors[0].max_current_a`` for a connector)."""
    keys = set()
    for section, value in data.items():
        if section == "board":
            continue
        if isinstance(value, list):
            keys.update(f"{section}[{i}].{k}" for i, table in enumerate(value) if isinstance(table, dict)
                        for k in table)
        elif isinstance(value, dict):
            keys.update(f"{section}.{k}" for k in value if not isinstance(value[k], dict))
            # A table inside a section ([load.meter]): its keys, dotted once more.
            keys.update(f"{section}.{k}.{kk}" for k in value if isinstance(value[k], dict) for kk in value[k])
    return frozenset(keys)


def file_values(config: Config) -> dict[str, Any]:
    """Every file key with the value in use (lists as lists), in file order."""
    flat: dict[str, Any] = {}
    for section in SECTIONS:
        for name, value in dataclasses.asdict(getattr(config, section)).items():
            if section == "simulation" and name == "cable_ohms":
                flat["simulation.tethered"] = value is None
            if isinstance(value, dict):  # a table inside the section ([load.meter])
                flat.update({f"{section}.{name}.{k}": v for k, v in value.items()})
                continue
            flat[f"{section}.{name}"] = list(value) if isinstance(value, tuple) else value
        if section == "station":
            flat["hal.backend"] = config.hal_backend
    for connector in config.connectors:
        for name, value in dataclasses.asdict(connector).items():
            if name != "id":
                flat[f"connectors[{connector.id - 1}].{name}"] = value
    return flat


def origin(config: Config, key: str) -> str:
    """``file`` if the file sets ``key``, else ``default``."""
    return "file" if key in config.file_keys else "default"

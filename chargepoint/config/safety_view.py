"""The safety supervisor's view of the configuration file: only what keeps the hardware safe.

The supervisor (``chargepoint supervise``) and ``chargepoint safe-off`` must
start whatever else the file holds: a newer firmware's key under ``[ocpp]``, a
section this release does not know, a daemon setting the daemon itself would
refuse. So they read only their own keys and ignore the rest unvalidated;
what they do read is checked as strictly as the daemon checks it, through the
same parse functions (unknown keys inside ``[safety]``, ``[board]``,
``[simulation]`` and ``[[connectors]]`` are refused with the likely key), so
one value never means two things in the two processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chargepoint.config.board import BoardConfig
from chargepoint.config.keys import set_in_file
from chargepoint.config.loader import (
    board_section,
    check_raspberrypi,
    check_step_budget,
    connectors_section,
    hal_backend,
    read_toml,
    simulation_section,
    station_section,
)
from chargepoint.config.meter_parse import parse_meter
from chargepoint.config.model import Config, OcppConfig
from chargepoint.config.reader import Reader, table
from chargepoint.config.safety_parse import parse_safety

#: The ``[station]`` keys the supervisor reads: the rating, where state lives, what the EV plugs into.
STATION_KEYS = ("max_current_a", "state_dir", "connector_type")
#: The ``[meter]`` keys it reads: the kind of meter and its model.
METER_KEYS = ("kind", "model")
#: The sections it reads whole.
WHOLE_SECTIONS = ("safety", "simulation", "board", "connectors")
#: ``[station]`` must name an identity; the supervisor has no use for it.
NO_IDENTITY = "-"


def _pick(file: str, data: dict[str, Any], section: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The named keys of ``[section]`` that the file sets (the section must still be a table)."""
    values = table(file, data, section)
    return {key: values[key] for key in keys if key in values}


def _meter_keys(file: str, data: dict[str, Any]) -> dict[str, Any]:
    """``METER_KEYS`` of ``[meter]``; with a register map of one's own (``map_file``, not read here)
    the model is not checked, as the daemon's loader does not check it then."""
    keys = _pick(file, data, "meter", METER_KEYS)
    if table(file, data, "meter").get("map_file"):
        keys.pop("model", None)
    return keys


def _backend(file: str, data: dict[str, Any]) -> str:
    """``hal.backend`` alone: other ``[hal]`` keys are not the supervisor's."""
    return hal_backend(Reader(file, table(file, data, "hal"), "hal"))


def parse_safety_view(data: dict[str, Any], file: str = "<config>") -> Config:
    """The supervisor's part of a parsed TOML document, as a ``Config`` whose other sections are defaults.

    Reads ``hal.backend``, ``[board]``, ``[safety]``, ``[simulation]``, ``[[connectors]]``,
    ``STATION_KEYS`` of ``[station]`` and ``METER_KEYS`` of ``[meter]``, and refuses a safety
    step too long for the heartbeat as the daemon's loader does.
    """
    backend = _backend(file, data)
    read = {name: data[name] for name in WHOLE_SECTIONS if name in data}
    read.update(station=_pick(file, data, "station", STATION_KEYS),
                meter=_meter_keys(file, data), hal=_pick(file, data, "hal", ("backend",)))
    station = station_section(file, {"station": {"identity": NO_IDENTITY, **read["station"]}})
    config = Config(
        station=station,
        ocpp=OcppConfig(),
        connectors=connectors_section(file, read, station),
        hal_backend=backend,
        simulation=simulation_section(file, read),
        meter=parse_meter(file, read),
        safety=parse_safety(file, read),
        board=board_section(file, read, backend),
        source=file,
        file_keys=set_in_file(read),
    )
    check_raspberrypi(file, config)
    check_step_budget(file, config.safety, config.board)
    return config


def load_safety_view(path: str | Path) -> Config:
    """Read ``path`` as the safety supervisor does (``parse_safety_view``); ConfigError names file, key
    and reason."""
    return parse_safety_view(read_toml(path), str(path))


def load_board_view(path: str | Path) -> tuple[str, BoardConfig | None]:
    """``hal.backend`` and ``[board]`` of ``path``, nothing else: what ``chargepoint safe-off`` needs.

    No step budget and no other section: whatever is wrong elsewhere, the outputs must still be
    driven safe; a broken ``[board]`` value is a ConfigError naming file, key and reason.
    """
    file = str(path)
    data = read_toml(path)
    backend = _backend(file, data)
    return backend, board_section(file, data, backend)

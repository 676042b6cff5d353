"""The OCPP versions this station speaks, each as an adapter with its own words.

The daemon offers every registered version's subprotocol and builds the
adapter of the one the CSMS selects; the local control surfaces use the same
entry to show settings and statuses in the words of the version spoken (the
configuration keys a technician knows from the operator's portal).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chargepoint.core.events import StatusChanged
from chargepoint.core.settings import Settings
from chargepoint.protocol import v21, v201
from chargepoint.protocol.v16 import adapter as v16
from chargepoint.protocol.v16 import keys as v16_keys
from chargepoint.protocol.v16 import translate as v16_translate
from chargepoint.protocol.v201 import variables as v201_vars


@dataclass(frozen=True)
class Version:
    name: str
    subprotocol: str
    #: ``adapter(ws, station, outbox, settings, config, clock, **hooks)`` -> a session with ``run()``.
    adapter: Callable[..., Any]
    #: ``catalogue(settings, evse_count)``: the version's view of the settings; None: it has none
    #: of its own (the local surfaces keep showing the settings in the words they had).
    catalogue: Callable[[Settings, int], Any] | None
    #: The connector status as this version says it.
    status_word: Callable[[StatusChanged], str]
    #: Names whose values a recorded frame must not show (passwords).
    secret_names: tuple[str, ...] = ()
    #: The neutral setting a name of this version stands for (a 1.6 key), or None.
    setting_of: Callable[[str], str | None] = lambda name: None


def _v16_status(status: StatusChanged) -> str:
    return v16_translate.connector_status(status).value


def _v201_adapter(*args: Any, **kwargs: Any) -> Any:
    from chargepoint.protocol.v201.adapter import V201Adapter  # see ``load``

    return V201Adapter(*args, **kwargs)


def _v21_adapter(*args: Any, **kwargs: Any) -> Any:
    from chargepoint.protocol.v21.adapter import V21Adapter  # see ``load``

    return V21Adapter(*args, **kwargs)


def _v201_catalogue(settings: Settings, evse_count: int) -> Any:
    from chargepoint.protocol.v201.device_model import VariableCatalogue  # see ``load``

    return VariableCatalogue(settings, evse_count)


def _v201_status(status: StatusChanged) -> str:
    """The connector status, with the charging state while a connector is occupied."""
    from chargepoint.protocol.v201 import translate as v201_translate  # see ``load``

    word = v201_translate.connector_status(status).value
    if word != "Occupied":
        return word
    return f"{word} ({v201_translate.charging_state(status).value})"


VERSIONS: dict[str, Version] = {
    v16.VERSION: Version(v16.VERSION, v16.SUBPROTOCOL, v16.V16Adapter, v16_keys.KeyCatalogue, _v16_status,
                         secret_names=v16_keys.SECRET_KEYS, setting_of=v16_keys.SETTING_KEYS.get),
}

# OCPP 2.0.1: the device model's view of the settings. Its names (``variables``) are known whatever is
# offered, to mask passwords and read any version's names; the model itself loads where 2.0.1 is.
VERSIONS[v201.VERSION] = Version(v201.VERSION, v201.SUBPROTOCOL, _v201_adapter, _v201_catalogue,
                                 _v201_status, secret_names=tuple(v201_vars.SECRET_VARIABLES),
                                 setting_of=v201_vars.SETTING_VARIABLES.get)
# OCPP 2.1 extends 2.0.1: the same device model and connector words.
VERSIONS[v21.VERSION] = Version(v21.VERSION, v21.SUBPROTOCOL, _v21_adapter, _v201_catalogue,
                                _v201_status, secret_names=tuple(v201_vars.SECRET_VARIABLES),
                                setting_of=v201_vars.SETTING_VARIABLES.get)


def version(name: str) -> Version:
    """The registered version ``name`` ("1.6"); KeyError names the known ones."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise KeyError(f"OCPP {name} is not supported; this station speaks {', '.join(VERSIONS)}") from None


#: The modules of a version that are loaded only where it is offered (importing the ``ocpp``
#: library's 2.0.1 part takes a good part of a second on a Pi; the device model stays resident for
#: the daemon's life: a 1.6-only station and every CLI command are spared them).
_MODULES = {v201.VERSION: ("chargepoint.protocol.v201.device_model", "chargepoint.protocol.v201.adapter"),
            v21.VERSION: ("chargepoint.protocol.v201.device_model", "chargepoint.protocol.v21.adapter")}


def load(name: str) -> None:
    """Import what version ``name`` needs to speak (blocking: call it from a worker thread)."""
    for module in _MODULES.get(name, ()):
        importlib.import_module(module)


def by_subprotocol(subprotocol: str) -> Version | None:
    return next((v for v in VERSIONS.values() if v.subprotocol == subprotocol), None)

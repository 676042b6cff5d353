"""The house's rules that a reader can check mechanically, checked on every run.

The layer contracts are import-linter's (``make test`` runs ``lint-imports``);
these are the rest: modules stay small, and the core thinks in no OCPP version's
words, so that a second version is an adapter and nothing else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ocpp.v16 import enums

from chargepoint.protocol.v16.keys import SETTING_KEYS, KeyCatalogue

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "chargepoint"
V16 = PACKAGE / "protocol" / "v16"
V201 = PACKAGE / "protocol" / "v201"
#: The 1.6 enumerations the core used to copy; their values stay in the 1.6 adapter.
VERSION_ENUMS = ("ChargePointStatus", "Reason", "ChargePointErrorCode", "AuthorizationStatus",
                 "ReadingContext", "RegistrationStatus", "ConfigurationStatus")
#: Where the station's own words live (the local surfaces' protocol has words of its own).
NEUTRAL = ("core", "safety", "config", "backends", "app")


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _key_names() -> set[str]:
    from chargepoint.config import parse
    from chargepoint.core.settings import Settings

    settings = Settings(parse({"station": {"identity": "X"}, "ocpp": {"csms_url": "ws://h"}}))
    return set(SETTING_KEYS) | set(KeyCatalogue(settings, 1).readonly)


@pytest.mark.parametrize("path", _modules(PACKAGE) + _modules(ROOT / "hal"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_500_lines(path: Path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 500, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"


def _v201_words() -> set[str]:
    """2.0.1 variable names: several are spelt as 1.6 keys and are 2.0.1 words in the 2.0.1 adapter."""
    from chargepoint.protocol.v201.variables import VARIABLES

    return {v.name for v in VARIABLES}


def test_no_16_key_name_outside_the_16_adapter():
    keys = _key_names()
    v201_words = _v201_words()
    found = [f"{path.relative_to(ROOT)}:{line}: {key}"
             for path in _modules(PACKAGE) if V16 not in path.parents
             for line, text in _strings(path) for key in keys if key in text
             if not (V201 in path.parents and text in v201_words)]
    assert not found, "1.6 key names belong to chargepoint/protocol/v16:\n" + "\n".join(found)


def test_no_16_enumeration_in_the_neutral_packages():
    words = {m.value for name in VERSION_ENUMS for m in getattr(enums, name)}
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}"
             for package in NEUTRAL for path in _modules(PACKAGE / package)
             for line, text in _strings(path) if text in words]
    assert not found, "1.6 enumeration values belong to chargepoint/protocol/v16:\n" + "\n".join(found)


def test_only_the_protocol_package_imports_ocpp():
    offenders = []
    for path in _modules(PACKAGE) + _modules(ROOT / "hal"):
        if PACKAGE / "protocol" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "ocpp"]
    assert not offenders, offenders


def _foreign_private_attributes(path: Path) -> list[str]:
    """``other._name`` where ``other`` is not ``self``/``cls``: another object's private attribute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_simulation_touches_no_other_objects_private_attributes():
    """The world and its parts (EV, pilot, contactor, meter ...) meet only through public methods,
    so each part's state has one owner and the lock rules stay readable."""
    found = [hit for path in sorted((ROOT / "hal" / "sim").glob("*.py"))
             for hit in _foreign_private_attributes(path)]
    assert not found, "go through a public method of the world or the part:\n" + "\n".join(found)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_imports(path: Path) -> list[str]:
    """``from chargepoint.x import _name`` (or ``from .x import _name``): another module's private name."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            source, names = "", [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            dotted = f"{source}.{name}" if source else name
            if dotted.split(".")[0] == "chargepoint" and any(map(_private, dotted.split("."))):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {dotted}")
    return found


def test_no_module_imports_another_modules_private_names():
    """A name another module needs is part of its interface: it gets a public name, or moves."""
    found = [hit for path in _modules(PACKAGE) for hit in _private_imports(path)]
    assert not found, "make the name public or move it:\n" + "\n".join(found)


def test_each_ocpp_block_is_an_object_over_a_typed_context_not_a_mixin_of_the_peer():
    """The peers carry the Core handlers only (their bases: the robustness layer, the library's
    charge point, and for 2.1 the 2.0.1 peer); every other block is a ``Block`` the adapter
    builds over itself and routes to the peer, and each adapter's blocks answer distinct actions."""
    from ocpp.routing import create_route_map

    from chargepoint.protocol.common.block import Block
    from chargepoint.protocol.common.peer import RobustPeer
    from chargepoint.protocol.v16.adapter import V16Adapter
    from chargepoint.protocol.v16.peer import Peer16
    from chargepoint.protocol.v21.adapter import V21Adapter
    from chargepoint.protocol.v21.peer import V21Peer
    from chargepoint.protocol.v201.adapter import V201Adapter
    from chargepoint.protocol.v201.peer import RobustV201Peer, V201Peer

    for peer in (Peer16, RobustV201Peer, V201Peer, V21Peer):
        ours = [base for base in peer.__mro__ if base.__module__.startswith("chargepoint.")]
        assert all(issubclass(base, RobustPeer) for base in ours), (peer, ours)
    for adapter in (V16Adapter, V201Adapter, V21Adapter):
        assert adapter.block_types and all(issubclass(b, Block) for b in adapter.block_types)
        actions = [action for b in adapter.block_types for action, route in create_route_map(b).items()
                   if "_on_action" in route]
        assert len(actions) == len(set(actions)), f"{adapter.__name__}: two blocks answer one action"
    # No handler class anywhere is typed "adapter: Any" (the mixins' mark).
    for path in _modules(PACKAGE / "protocol"):
        assert "    adapter: Any\n" not in path.read_text(encoding="utf-8"), path


def test_the_station_holds_none_of_the_services_built_around_it():
    """Charging profiles, certificates, firmware, diagnostics and the display are built after the
    station and handed over in one ``Services`` (core/services.py): no slot on the station starts as
    None for the daemon to fill later, and nothing reaches a service through the station."""
    from dataclasses import fields

    from chargepoint.core.services import Services

    names = {f.name for f in fields(Services)}
    station = ast.parse((PACKAGE / "core" / "station.py").read_text(encoding="utf-8"))
    assigned = {node.attr for node in ast.walk(station)
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name) and node.value.id == "self"}
    assert not names & assigned, names & assigned
    for path in _modules(PACKAGE):
        text = path.read_text(encoding="utf-8")
        reached = [n for n in names if f"station.{n}" in text]
        assert not reached, f"{path.relative_to(ROOT)} reaches {reached} through the station"

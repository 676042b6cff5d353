"""The hardware backends: one registry per process side, the names the configuration accepts.

A backend is chosen by name from a registry line (``"module:function"``), imported
only when chosen; these tests keep the registries and the configuration agreeing,
keep each line inside its own process's package (a lazy import is invisible to
import-linter, so the supervisor's contract is checked here), and check in a fresh
interpreter that choosing one backend loads nothing of another.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chargepoint.backends import BACKENDS
from chargepoint.config import HAL_BACKENDS
from chargepoint.supervisor.backends import SAFETY_BACKENDS, load_builder

ROOT = Path(__file__).parents[2]
#: Each process side's registry, and the package its lines must stay in.
SIDES = {"daemon": (BACKENDS, "chargepoint.backends."),
         "supervisor": (SAFETY_BACKENDS, "chargepoint.supervisor.")}


def test_the_configuration_and_both_registries_name_the_same_backends():
    assert set(BACKENDS) == set(HAL_BACKENDS)
    assert set(SAFETY_BACKENDS) == set(HAL_BACKENDS)


@pytest.mark.parametrize("side", SIDES)
def test_every_line_names_a_function_of_its_own_process(side: str):
    registry, package = SIDES[side]
    for name, target in registry.items():
        module, colon, function = target.partition(":")
        assert colon and function, f"{name}: {target!r} is not 'module:function'"
        assert module.startswith(package), f"{name}: {module} is outside {package[:-1]}"
        assert callable(load_builder(registry, name))


def test_an_unknown_backend_is_refused_with_the_names_there_are():
    with pytest.raises(ValueError, match=r"unknown hal backend 'pi3'; available: sim, raspberrypi"):
        load_builder(SAFETY_BACKENDS, "pi3")


#: A fresh interpreter resolves (and, for the simulation, builds) one backend, then prints
#: which modules of the others it loaded.
PROBE = """
import sys, tempfile
from chargepoint.config import parse
from {module} import {registry} as registry
from chargepoint.supervisor.backends import load_builder

builder = load_builder(registry, {name!r})
if {name!r} == "sim":
    state = tempfile.mkdtemp()
    config = parse({{"station": {{"identity": "X", "state_dir": state}}, "ocpp": {{"csms_url": "ws://h"}},
                    "meter": {{"kind": "sim"}}}})
    builder(config).close()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {{"gpiozero", "lgpio", "pymodbus"}}
                or m == "hal.sim" or m.startswith("hal.sim."))
print(" ".join(loaded))
"""


@pytest.mark.parametrize(("side", "name", "foreign"), [
    ("daemon", "sim", ("gpiozero", "lgpio")),
    ("daemon", "raspberrypi", ("hal.sim",)),
    ("supervisor", "sim", ("gpiozero", "lgpio")),
    ("supervisor", "raspberrypi", ("hal.sim", "pymodbus")),
])
def test_a_backend_loads_nothing_of_another(side: str, name: str, foreign: tuple[str, ...]):
    module = {"daemon": "chargepoint.backends", "supervisor": "chargepoint.supervisor.backends"}[side]
    registry = {"daemon": "BACKENDS", "supervisor": "SAFETY_BACKENDS"}[side]
    code = textwrap.dedent(PROBE.format(module=module, registry=registry, name=name))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in foreign or m.startswith(foreign)], loaded

"""pyproject.toml declares what the product imports, in the form current setuptools reads without warnings."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Import name -> distribution name where the two differ.
DISTRIBUTION = {"serial": "pyserial", "prometheus_client": "prometheus-client", "paho": "paho-mqtt"}


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for package in ("chargepoint", "hal"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"chargepoint", "hal", "__future__"}


def _declared() -> set[str]:
    """What a plain ``pip install chargepoint`` brings: the product imports nothing from a test extra."""
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in PYPROJECT["project"]["dependencies"]}


#: Imported only where the extra of the same name is installed (gpiozero's pin factory on a Pi).
OPTIONAL = {"lgpio"}


def test_every_third_party_import_is_a_declared_dependency():
    missing = {DISTRIBUTION.get(name, name) for name in _imported_top_levels()} - _declared() - OPTIONAL
    assert not missing, f"imported but not declared in pyproject.toml's dependencies: {sorted(missing)}"


def test_jsonschema_is_a_runtime_dependency():
    assert any(r.startswith("jsonschema") for r in PYPROJECT["project"]["dependencies"])


def test_license_is_an_spdx_expression():
    # A table ({text = ...}) makes setuptools >= 77 print a deprecation warning on every build.
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert any(r.startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])


def test_the_daemon_loads_cryptography_only_when_it_needs_it():
    """A station without certificates, CSRs or signed firmware never loads the ~13 MiB library."""
    probe = ("import sys, chargepoint.app.daemon, chargepoint.cli.main; "
             "print('cryptography' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stdout + result.stderr


def test_the_daemon_and_the_cli_load_the_libraries_2x_part_only_for_a_2x_link():
    """The ``ocpp`` library's 2.0.1 and 2.1 modules take a good part of a second and several MiB on a
    Pi: a 1.6-only station and every CLI command never import them (the registry loads a version's
    adapter when it is offered; the device model's words need none of the library)."""
    probe = ("import sys, chargepoint.app.daemon, chargepoint.cli.main, chargepoint.protocol.registry; "
             "print(sorted(m for m in sys.modules if m.startswith(('ocpp.v201', 'ocpp.v21'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr

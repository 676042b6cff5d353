"""A pytest plugin: every configuration the daemon refuses during a test run, put to ``check-config``.

Loaded with ``-p tests.check_config_recorder`` and ``CHECK_CONFIG_RECORD=FILE``.
It wraps what ``chargepoint run`` refuses a configuration with: the loader
(``parse``/``load``) and the dashboard's start checks (``check_exposure``,
``tls_context``). Whenever one refuses, at that moment (the state directory as
it is then: a password written later must not change the answer), the same
document is written to a file and ``chargepoint check-config --json`` is run
on it; one JSON line per refusal goes to FILE: what was refused and what
check-config said. ``tests/unit/test_check_config_parity.py`` reads them.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import tempfile
import tomllib
import weakref
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import chargepoint.config as config_package
import chargepoint.config.loader as loader
import chargepoint.web.access as access
import chargepoint.web.server as server
from chargepoint.cli import main
from chargepoint.config.reader import collecting
from tests.toml_text import NotToml, dumps

OUT = os.environ.get("CHECK_CONFIG_RECORD", "")
_numbers = itertools.count()
#: The document each configuration was parsed from (by the Config's id), for the start checks.
_documents: dict[int, tuple[weakref.ref[Any], dict[str, Any], str]] = {}
_checking = False


def _record(entry: dict[str, Any]) -> None:
    with open(OUT, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def _written(data: dict[str, Any], file: str) -> tuple[str, bool]:
    """A file holding ``data``: ``file`` itself if it holds it, else a new one beside it (relative paths
    in the document mean the same there), or in a temporary directory. (path, made here)."""
    original = Path(file)
    try:
        if original.is_file() and tomllib.loads(original.read_text(encoding="utf-8")) == data:
            return file, False
    except (OSError, ValueError):
        pass
    text = dumps(data)
    scratch = Path(tempfile.gettempdir()).resolve()
    beside = original.parent.resolve()
    # Beside the original only in a test's temporary directory: never into the source tree.
    folder = beside if beside.is_dir() and scratch in beside.parents and os.access(beside, os.W_OK) \
        else scratch
    path = folder / f"check-config-{os.getpid()}-{next(_numbers)}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path), True


def _check(refused: Any, data: dict[str, Any] | None, file: str, what: str) -> None:
    """Run check-config on the refused document now; record both answers."""
    global _checking
    entry: dict[str, Any] = {"what": what, "file": file, "key": refused.key, "reason": refused.reason}
    if data is None:
        if Path(file).is_dir():  # run and check-config alike take a file only (click refuses a directory)
            _record({**entry, "skipped": "a directory: refused by click for run and check-config alike"})
            return
        path, made = file, False
    else:
        try:
            path, made = _written(data, file)
        except NotToml as exc:
            _record({**entry, "skipped": str(exc)})
            return
    _checking = True
    try:
        result = CliRunner().invoke(main, ["check-config", "--json", path])
    finally:
        _checking = False
        if made:
            Path(path).unlink(missing_ok=True)
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        answer = {"output": result.output}
    # Paths in the reasons, relative to each file's own directory: the copy's and the original's.
    errors = [{**e, "reason": _relative(e["reason"].replace(path, file), Path(path).parent)}
              for e in answer.get("errors", [])]
    entry["reason"] = _relative(entry["reason"], Path(file).parent)
    _record({**entry, "exit_code": result.exit_code, "errors": errors})


def _relative(reason: str, folder: Path) -> str:
    """``reason`` with paths in ``folder`` written relative to it (a relative key resolves there)."""
    return reason if str(folder) in ("", ".") else reason.replace(f"{folder}/", "")


def _refusing_parse(real: Any) -> Any:
    @functools.wraps(real)
    def parse(data: dict[str, Any], file: str = "<config>") -> Any:
        try:
            config = real(data, file)
        except loader.ConfigError as exc:
            if collecting.get() is None and not _checking:
                _check(exc, data, file, "parse")
            raise
        if collecting.get() is None:
            _documents[id(config)] = (weakref.ref(config), data, file)
        return config
    return parse


def _refusing_read(real: Any) -> Any:
    @functools.wraps(real)
    def read_toml(path: Any) -> Any:
        try:
            return real(path)
        except loader.ConfigError as exc:
            if collecting.get() is None and not _checking:
                _check(exc, None, str(path), "read")
            raise
    return read_toml


def _refusing_start(real: Any, what: str) -> Any:
    @functools.wraps(real)
    def check(config: Any) -> Any:
        try:
            return real(config)
        except loader.ConfigError as exc:
            ref, data, file = _documents.get(id(config), (lambda: None, {}, ""))
            if not _checking and ref() is config:
                _check(exc, data, file, what)
            raise
    return check


if OUT:
    loader.parse = config_package.parse = _refusing_parse(loader.parse)  # type: ignore[assignment]
    loader.read_toml = _refusing_read(loader.read_toml)  # type: ignore[assignment]
    access.check_exposure = server.check_exposure = _refusing_start(  # type: ignore[assignment]
        access.check_exposure, "check_exposure")
    server.tls_context = _refusing_start(server.tls_context, "tls_context")  # type: ignore[assignment]

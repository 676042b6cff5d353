"""A parsed TOML document written back as TOML text (the standard library reads TOML only).

Enough for station configurations: tables, tables inside them, arrays of tables,
and strings, booleans, numbers and lists of them. ``NotToml`` for anything TOML
cannot hold (None, an object), so a caller can tell a document it cannot write.
"""

from __future__ import annotations

import json
import math
from typing import Any


class NotToml(ValueError):
    """The document holds a value TOML has no form for."""


def value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {value_text(v)}" for k, v in value.items()) + "}"
    raise NotToml(f"no TOML form for {type(value).__name__}")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], name: str, table: dict[str, Any], array: bool = False) -> None:
    lines.append(f"[[{name}]]" if array else f"[{name}]")
    nested = []
    for key, value in table.items():
        if isinstance(value, dict) and not array:
            nested.append((key, value))
        else:
            lines.append(f"{json.dumps(str(key))} = {value_text(value)}")
    for key, value in nested:
        _table(lines, f"{name}.{json.dumps(str(key))}", value)


def dumps(document: dict[str, Any]) -> str:
    """``document`` as TOML text that ``tomllib.loads`` reads back equal."""
    lines: list[str] = []
    for key, value in document.items():
        if not isinstance(value, (dict, list)) or (isinstance(value, list) and not _is_table_array(value)):
            lines.insert(0, f"{json.dumps(str(key))} = {value_text(value)}")
    for key, value in document.items():
        if isinstance(value, dict):
            _table(lines, json.dumps(str(key)), value)
        elif _is_table_array(value):
            for entry in value:
                _table(lines, json.dumps(str(key)), entry, array=True)
    return "\n".join(lines) + "\n"

"""Reading one TOML table with checks that name the file, the key and the reason.

Shared by every section parser (the board profile's too), so a technician gets
the same kind of message for any mistake in the file.
"""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """A configuration file that cannot be used, with where and why."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}")


class Reader:
    """Reads one TOML table with type checks that name the offending key."""

    def __init__(self, file: str, table: dict[str, Any], prefix: str) -> None:
        self.file = file
        self.table = table
        self.prefix = prefix
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), reason)

    def _get(self, name: str, default: Any, required: bool) -> Any:
        self.used.add(name)
        if name not in self.table:
            if required:
                raise self.fail(name, "is required")
            return default
        return self.table[name]

    def string(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = self._get(name, default, required)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {type(value).__name__}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, default, False)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {value!r}")
        return value

    def number(
        self, name: str, default: float | None, *, low: float | None = None,
        high: float | None = None, integer: bool = False, optional: bool = False,
    ) -> Any:
        value = self._get(name, default, False)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, not {value!r}")
        if integer and not float(value).is_integer():
            raise self.fail(name, f"must be a whole number, not {value!r}")
        if low is not None and value < low:
            raise self.fail(name, f"must be at least {low:g}, not {value:g}")
        if high is not None and value > high:
            raise self.fail(name, f"must be at most {high:g}, not {value:g}")
        return int(value) if integer else float(value)

    def string_list(self, name: str, default: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(name, list(default), False)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "must be a list of strings")
        for item in value:
            if item not in allowed:
                raise self.fail(name, f"unknown value {item!r}; allowed: {', '.join(allowed)}")
        return tuple(value)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key (misspelt?)")


def table(file: str, data: dict[str, Any], name: str, *, required: bool = False) -> dict[str, Any]:
    if name not in data:
        if required:
            raise ConfigError(file, name, "section is required")
        return {}
    value = data[name]
    if not isinstance(value, dict):
        raise ConfigError(file, name, "must be a table ([" + name + "])")
    return value

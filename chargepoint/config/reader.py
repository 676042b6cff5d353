"""Reading one TOML table with checks that name the file, the key and the reason.

Shared by every section parser (the board profile's too), so a technician gets
the same kind of message for any mistake in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


class ConfigError(Exception):
    """A configuration file that cannot be used, with where and why."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}")


@dataclass
class Collector:
    """Every problem of a file at once, for ``chargepoint check-config``.

    While one is active (``collecting``), a Reader records a key's problem and
    goes on with the key's default instead of raising, so a technician fixes
    the whole file in one round instead of one error per run. ``keys_read``
    names every key the loader looks at (``connectors[N].x`` as
    ``connectors.x``): the keys it accepts.
    """

    errors: list[ConfigError] = field(default_factory=list)
    keys_read: set[str] = field(default_factory=set)
    #: The configuration as far as it could be read (defaults where a section could not be), or None.
    partial: Any = None

    def add(self, error: ConfigError) -> None:
        """Record ``error`` unless its key already has one (a bad value's default may fail a later check)."""
        if all(e.key != error.key for e in self.errors):
            self.errors.append(error)


#: The active collector, if any (see ``Collector``).
collecting: ContextVar[Collector | None] = ContextVar("collecting", default=None)


def report(error: ConfigError) -> None:
    """Raise ``error``, or record it while collecting so the check goes on (a rule across sections)."""
    collector = collecting.get()
    if collector is None:
        raise error
    collector.add(error)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for a misspelt name close to one of ``known``, else ``""``."""
    import difflib  # only when a key is wrong: the daemon that starts never loads it

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


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

    def problem(self, name: str, reason: str, default: Any) -> Any:
        """Raise the problem, or record it and go on with ``default`` while collecting (``Collector``)."""
        error = self.fail(name, reason)
        collector = collecting.get()
        if collector is None:
            raise error
        collector.add(error)
        return default

    def refuse(self, name: str, reason: str) -> None:
        """A value that breaks a rule: raised, or recorded while collecting and the check goes on.

        Going on matters: the section's other keys are still checked (a misspelt key
        after a bad value is named in the same round).
        """
        self.problem(name, reason, None)

    def _get(self, name: str, default: Any, required: bool) -> Any:
        self.used.add(name)
        collector = collecting.get()
        if collector is not None:
            collector.keys_read.add(re.sub(r"\[\d+\]", "", self.key(name)))
        if name not in self.table:
            if required:
                return self.problem(name, "is required", default)
            return default
        return self.table[name]

    def string(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = self._get(name, default, required)
        if not isinstance(value, str):
            return self.problem(name, f"must be a string, not {type(value).__name__}", default)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, default, False)
        if not isinstance(value, bool):
            return self.problem(name, f"must be true or false, not {value!r}", default)
        return value

    def number(
        self, name: str, default: float | None, *, low: float | None = None,
        high: float | None = None, integer: bool = False, optional: bool = False,
    ) -> Any:
        value = self._get(name, default, False)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self.problem(name, f"must be a number, not {value!r}", default)
        if integer and not float(value).is_integer():
            return self.problem(name, f"must be a whole number, not {value!r}", default)
        if low is not None and value < low:
            return self.problem(name, f"must be at least {low:g}, not {value:g}", default)
        if high is not None and value > high:
            return self.problem(name, f"must be at most {high:g}, not {value:g}", default)
        return int(value) if integer else float(value)

    def string_list(self, name: str, default: tuple[str, ...],
                    allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A list of strings; each one of ``allowed`` unless that is None."""
        value = self._get(name, list(default), False)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return self.problem(name, "must be a list of strings", default)
        for item in value:
            if allowed is not None and item not in allowed:
                return self.problem(name, f"unknown value {item!r}; allowed: {', '.join(allowed)}"
                                 + did_you_mean(item, allowed), default)
        return tuple(value)

    def finish(self) -> None:
        """Every key nobody read is unknown: a misspelling, named with the likely key."""
        for name in sorted(set(self.table) - self.used):
            self.problem(name, "unknown key" + (did_you_mean(name, self.used) or " (misspelt?)"), None)


def table(file: str, data: dict[str, Any], name: str, *, required: bool = False) -> dict[str, Any]:
    if name not in data:
        if required:
            raise ConfigError(file, name, "section is required")
        return {}
    value = data[name]
    if not isinstance(value, dict):
        raise ConfigError(file, name, "must be a table ([" + name + "])")
    return value

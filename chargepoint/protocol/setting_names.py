"""Every name a setting answers to: its file key, its neutral name, and each OCPP version's name.

One setting is one value (core/settings.py); the configuration file gives its
first value under a dotted key (``ocpp.meter_value_sample_interval_s``), the
station speaks of it under a neutral name (``sample_interval_s``), OCPP 1.6
calls it by a configuration key and 2.0.1 by a device-model variable
(``SampledDataCtrlr.TxUpdatedInterval``). A technician types whichever
they know, whatever version the CSMS speaks; this index turns any of them into
the setting, and is the one source of README's table of names
(``markdown_table``). It lives beside the registry because it reads the
versions' own tables; the core knows no version's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from chargepoint.core.settings import DEFINITIONS, FILE_KEYS
from chargepoint.protocol import v201
from chargepoint.protocol.v16 import adapter as v16
from chargepoint.protocol.v16 import keys as v16_keys
from chargepoint.protocol.v201 import variables as v201_vars

#: Each version's names for the settings (a 1.6 key the CSMS may only read is a name all the same).
VERSION_NAMES: dict[str, dict[str, str]] = {
    v16.VERSION: {**v16_keys.SETTING_KEYS, **v16_keys.READONLY_SETTING_KEYS},
    v201.VERSION: dict(v201_vars.SETTING_VARIABLES),
}


#: File keys that give a setting's first value in another form than the setting's own: the Basic auth
#: password as text (``basic_auth_password``) beside its octets in hex (``authorization_key``).
TEXT_FILE_KEYS: dict[str, str] = {"ocpp.basic_auth_password": "authorization_key"}


@dataclass(frozen=True)
class Names:
    """One setting's names."""

    setting: str
    #: The configuration file's key for its first value (None: it starts at a fixed value).
    file_key: str | None
    #: Version -> its names for the setting (none: that version does not show it).
    versions: tuple[tuple[str, tuple[str, ...]], ...]
    #: Other file keys for the same value, in another form (TEXT_FILE_KEYS).
    text_file_keys: tuple[str, ...] = ()

    def of(self, version: str) -> tuple[str, ...]:
        return dict(self.versions).get(version, ())

    def all(self) -> tuple[str, ...]:
        """Every name, each once: file key, the key alone, neutral, then the versions' names."""
        texts = [k for key in self.text_file_keys for k in (key, key.rsplit(".", 1)[-1])]
        names = [self.file_key, self.bare_file_key, *texts, self.setting,
                 *(n for _, ns in self.versions for n in ns)]
        return tuple(dict.fromkeys(n for n in names if n))

    @property
    def bare_file_key(self) -> str | None:
        """The file key without its section (``meter_value_sample_interval_s``), as written in the file."""
        return self.file_key.rsplit(".", 1)[-1] if self.file_key else None


@cache
def catalogue() -> tuple[Names, ...]:
    """Every setting's names, in the settings' order."""
    return tuple(
        Names(d.name, FILE_KEYS.get(d.name),
              tuple((version, tuple(sorted(n for n, s in names.items() if s == d.name)))
                    for version, names in VERSION_NAMES.items()),
              tuple(key for key, setting in TEXT_FILE_KEYS.items() if setting == d.name))
        for d in DEFINITIONS)


@cache
def _index() -> dict[str, str]:
    """Any name, in lower case -> its setting (2.0.1 matches names without regard to case; so does this)."""
    index: dict[str, str] = {}
    for names in catalogue():
        for name in names.all():
            index.setdefault(name.lower(), names.setting)
    return index


def setting_for(name: str) -> str | None:
    """The setting ``name`` stands for (file key, neutral name or any version's name), or None."""
    return _index().get(name.strip().lower())


def names_of(setting: str) -> Names:
    return next(n for n in catalogue() if n.setting == setting)


def text_form(name: str) -> str | None:
    """The setting whose value ``name`` takes as text (the file's ``basic_auth_password``), or None."""
    lowered = name.strip().lower()
    return next((setting for key, setting in TEXT_FILE_KEYS.items()
                 if lowered in (key, key.rsplit(".", 1)[-1])), None)


def secret_names() -> frozenset[str]:
    """Every name a password goes by, in lower case: each name of a secret setting, and the names
    the versions keep secret besides (2.0.1's network profile fields)."""
    secret = {d.name for d in DEFINITIONS if d.secret}
    names = [n for names in catalogue() if names.setting in secret for n in names.all()]
    return frozenset(n.lower() for n in (*names, *v16_keys.SECRET_KEYS, *v201_vars.SECRET_VARIABLES))


def every_name() -> list[str]:
    """All the names, for a did-you-mean."""
    return [name for names in catalogue() for name in names.all()]


#: The lines around README's table (``python -m chargepoint.protocol.setting_names README.md`` rewrites it).
TABLE_START = "<!-- setting names: generated by chargepoint.protocol.setting_names.markdown_table -->"
TABLE_END = "<!-- end of setting names -->"


def markdown_table() -> str:
    """README's table: one row per setting with each of its names once."""
    versions = list(VERSION_NAMES)
    # 2.1 extends 2.0.1 with the same device model (the registry gives it 2.0.1's catalogue).
    head = ["setting", "file key",
            *(f"OCPP {v}" + (" and 2.1" if v == v201.VERSION else "") for v in versions)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(*names: str | None) -> str:
        return ", ".join(f"`{n}`" for n in names if n) or "-"

    for names in catalogue():
        cells = [cell(names.setting), cell(names.file_key, *names.text_file_keys),
                 *(cell(*names.of(v)) for v in versions)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def rewrite(text: str) -> str:
    """``text`` (README) with the table between TABLE_START and TABLE_END as the code has it now."""
    start = text.index(TABLE_START) + len(TABLE_START)
    end = text.index(TABLE_END)
    return f"{text[:start]}\n{markdown_table()}\n{text[end:]}"


if __name__ == "__main__":  # after adding or renaming a setting: README's table again
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")

"""``config get/set/reset``: the settings and the file's keys under any of their names.

A technician types the name they know: the file's key (``ocpp.meter_value_sample_interval_s``
or the key alone), the neutral name (``sample_interval_s``), or either OCPP
version's (the 1.6 configuration key, ``SampledDataCtrlr.TxUpdatedInterval``),
whatever version the CSMS speaks. Each names one setting (``protocol.setting_names``)
and gets one answer: shown and changed under the spoken version's name when
that version has one (its value in that version's words, with its rules), else
under the neutral name. A file key with no setting behind it is read-only at
run time: the file is edited and the daemon restarted. Split from the service
because it is one subject of its own.
"""

from __future__ import annotations

from typing import Any, Protocol

from chargepoint.config import Config
from chargepoint.config.keys import file_values, origin
from chargepoint.config.loader import password_text_problem
from chargepoint.config.reader import did_you_mean
from chargepoint.control.errors import ControlError
from chargepoint.core.settings import FILE_KEYS, SetResult, Settings
from chargepoint.protocol import setting_names

#: File settings that are passwords: shown as "(set)" or "", never their value.
FILE_SECRETS = ("authorization_key", "basic_auth_password", "password")
#: A change of a setting no version shows, in the words the versions answer with.
STATUS = {SetResult.ACCEPTED: "Accepted", SetResult.REJECTED: "Rejected",
          SetResult.REBOOT_REQUIRED: "RebootRequired"}


def secret_names(config: Config) -> frozenset[str]:
    """Every name, in lower case, whose value is a password: a setting's under any of its names, and
    the file's password keys (a value given for one is never logged, even when it is refused)."""
    files = {k for key in file_values(config) if key.rsplit(".", 1)[-1] in FILE_SECRETS
             for k in (key, key.rsplit(".", 1)[-1])}
    return setting_names.secret_names() | {k.lower() for k in files}


class Station(Protocol):
    """What the view reads of the station service: the file, the settings, the spoken version's view."""

    config: Config
    settings: Settings
    #: The spoken version's catalogue (1.6 ``KeyCatalogue``, 2.0.1 ``VariableCatalogue``).
    keys: Any


class SettingsView:
    """The settings of one daemon as ``config get/set/reset`` show them."""

    def __init__(self, service: Station) -> None:
        self.s = service

    # ------------------------------------------------------------------ names
    def file_settings(self) -> dict[str, Any]:
        """The configuration file's settings as dotted keys (passwords as "(set)")."""
        flat = file_values(self.s.config)
        for key, value in flat.items():
            if key.rsplit(".", 1)[-1] in FILE_SECRETS:
                flat[key] = "(set)" if value else ""
        return flat

    def _spoken(self, setting: str) -> str | None:
        """The spoken version's name for ``setting``, if it shows it."""
        keys = self.s.keys
        return next((name for name in keys.keys() if keys.info(name).setting == setting), None)

    def resolve(self, name: str) -> tuple[str, str]:
        """What ``name`` stands for: ("key", the version's name), ("setting", neutral name),
        ("file", file key) or ("unknown", name)."""
        keys = self.s.keys
        setting = setting_names.setting_for(name)
        if setting is not None:
            spoken = self._spoken(setting)
            return ("key", spoken) if spoken is not None else ("setting", setting)
        if keys.knows(name):  # a read-only fact of this version (NumberOfConnectors, EVSE[1].Power)
            return "key", keys.info(name).key
        files = self.file_settings()
        if name in files:
            return "file", name
        bare = [key for key in files if key.rsplit(".", 1)[-1] == name]
        if len(bare) == 1:  # a file key without its section, as written in the file
            return "file", bare[0]
        return "unknown", name

    def _unknown(self, name: str) -> ControlError:
        known = [*setting_names.every_name(), *self.s.keys.keys(), *self.file_settings()]
        return ControlError("unknown_key", f"unknown key {name!r}" + (did_you_mean(name, known) or
                            " (chargepoint config get lists them)"))

    # ----------------------------------------------------------------- values
    def _names(self, setting: str | None) -> dict[str, Any] | None:
        if setting is None:
            return None
        names = setting_names.names_of(setting)
        return {"file": names.file_key, "setting": setting, **{v: list(n) for v, n in names.versions}}

    def _origin(self, setting: str, out: dict[str, Any], secret: bool) -> dict[str, Any]:
        """Where the value comes from (set, file or default), and what a reset brings back."""
        settings = self.s.settings
        file_key = FILE_KEYS.get(setting)
        overridden = setting in settings.overridden
        out.update(origin="set" if overridden else origin(self.s.config, file_key) if file_key else "default",
                   file_key=file_key)
        if overridden and not secret:
            out["file_value"] = settings.file_values[setting]
        if overridden:
            out["file_value_origin"] = origin(self.s.config, file_key) if file_key else "default"
        return out

    def key_info(self, key: str) -> dict[str, Any]:
        """A version's name: its value, and where the value comes from."""
        info = self.s.keys.info(key)
        out: dict[str, Any] = {"key": info.key, "source": "ocpp", "readonly": info.readonly,
                               "type": info.kind, "setting": info.setting, "names": self._names(info.setting)}
        if info.secret:
            out.update(value=None, secret=True, set=bool(self.s.settings.get(info.setting)))
        else:
            out["value"] = self.s.keys.typed_value(key)
        if info.setting is None:
            return out
        return self._origin(info.setting, out, info.secret)

    def setting_info(self, setting: str) -> dict[str, Any]:
        """A setting the spoken version does not show, under its neutral name."""
        settings = self.s.settings
        definition = settings.definitions[setting]
        out: dict[str, Any] = {"key": setting, "source": "setting", "readonly": False,
                               "type": definition.kind.__name__, "setting": setting,
                               "names": self._names(setting)}
        if definition.secret:
            out.update(value=None, secret=True, set=bool(settings.get(setting)))
        else:
            out["value"] = settings.get(setting)
        return self._origin(setting, out, definition.secret)

    def file_info(self, key: str, value: Any) -> dict[str, Any]:
        return {"key": key, "source": "file", "readonly": True, "value": value,
                "origin": origin(self.s.config, key)}

    def _info(self, kind: str, name: str) -> dict[str, Any]:
        if kind == "key":
            return self.key_info(name)
        if kind == "setting":
            return self.setting_info(name)
        return self.file_info(name, self.file_settings()[name])

    # --------------------------------------------------------------- commands
    def get(self, names: list[str]) -> dict[str, Any]:
        if not names:
            shown = set()
            found = []
            for key in self.s.keys.keys():
                found.append(self.key_info(key))
                shown.add(found[-1]["setting"])
            found += [self.setting_info(d) for d in self.s.settings.definitions if d not in shown]
            # A setting's file keys: shown as the setting, once.
            behind = {*FILE_KEYS.values(), *setting_names.TEXT_FILE_KEYS}
            found += [self.file_info(k, v) for k, v in self.file_settings().items() if k not in behind]
            return {"keys": found, "unknown": [], "file": self.s.config.source}
        found, unknown = [], []
        for name in names:
            kind, resolved = self.resolve(name)
            if kind == "unknown":
                unknown.append(name)
            else:
                found.append(_asked(self._info(kind, resolved), name))
        return {"keys": found, "unknown": unknown, "file": self.s.config.source}

    def set(self, name: str, value: str) -> dict[str, Any]:
        kind, resolved = self.resolve(name)
        if kind == "unknown":
            raise self._unknown(name)
        if kind == "file":
            raise ControlError("read_only", f"{resolved} is set in the configuration file "
                                            f"{self.s.config.source} and is not changed at run time: edit it "
                                            "there and restart the daemon")
        keys = self.s.keys
        info = keys.info(resolved) if kind == "key" else None
        text_of = setting_names.text_form(name)
        if text_of is not None:
            # The file's text form of the password (basic_auth_password): its rules, stored as its octets.
            problem = password_text_problem(value)
            if problem is not None:
                raise ControlError("rejected", f"{name.strip()}: {problem}; not changed")
            value = value.encode("utf-8").hex()
        if info is not None and text_of is None and not (info.readonly and info.setting is not None):
            refusal = keys.refusal(resolved, value)
            if refusal is not None:
                raise ControlError("rejected", f"{resolved}: {refusal}; not changed")
            status = str(keys.change(resolved, value))
        else:
            # A setting the version does not show, or one it shows read-only to the CSMS (1.6's
            # ReserveConnectorZeroSupported): the technician's all the same, changed as the setting.
            setting = text_of or (info.setting if info is not None else resolved)
            refusal = self.s.settings.refusal(setting, value)
            if refusal is not None:
                raise ControlError("rejected", f"{resolved}: {refusal}; not changed")
            status = STATUS[self.s.settings.set(setting, value)]
        shown = self._info(kind, resolved)
        return _asked({"key": shown["key"], "status": status, "value": shown.get("value"),
                       "setting": shown["setting"]}, name)

    def reset(self, name: str) -> dict[str, Any]:
        """Drop what the CSMS or the CLI set: the file's value (or the default) applies again."""
        kind, resolved = self.resolve(name)
        if kind == "unknown":
            raise self._unknown(name)
        if kind == "file":
            raise ControlError("read_only", f"{resolved} comes from the configuration file "
                                            f"{self.s.config.source}: nothing overrides it")
        setting = resolved if kind == "setting" else self.s.keys.info(resolved).setting
        if setting is None:
            raise ControlError("rejected", f"{resolved} is read-only: nothing overrides it")
        settings = self.s.settings
        was_set = setting in settings.overridden
        refusal = settings.reset_refusal(setting)
        if refusal is not None:
            raise ControlError("rejected", f"{resolved}: {refusal}; not changed")
        result = settings.reset(setting)
        shown = self._info(kind, resolved)
        return _asked({**shown, "was_set": was_set, "reboot_required": result is SetResult.REBOOT_REQUIRED},
                      name)


def _asked(item: dict[str, Any], name: str) -> dict[str, Any]:
    """``asked``: the name typed, when the answer shows another (a script matches its question)."""
    return item if item["key"] == name else {**item, "asked": name}

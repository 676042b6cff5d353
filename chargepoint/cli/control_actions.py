"""The control commands that act on the station: sessions, lock, availability, settings, faults.

Split from :mod:`chargepoint.cli.control_commands` because each of these
changes what the station does or how it is set up (start, stop, unlock,
availability, config get/set, fault clear), where the other commands only read
or test. The commands are registered on ``chargepoint`` by
:func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from chargepoint.cli import render
from chargepoint.cli.control_target import EXIT_FAILED, Target, daemon_command
from chargepoint.cli.options import connector_option


# --------------------------------------------------------------- start/stop
@click.command()
@connector_option(default=None)
@click.option("--id-tag", help="The idTag the session runs under [default: station.free_vend_id_tag].")
@click.option("--authorize", is_flag=True, help="Authorize the idTag first (CSMS, local list, cache).")
@daemon_command
def start(target: Target, connector: int | None, id_tag: str | None, authorize: bool) -> None:
    """Start a local session: the connector charges once an EV is plugged in."""
    result = target.call("start", connector=connector, id_tag=id_tag, authorize=authorize or None)

    def text(r: dict[str, Any]) -> str:
        if r["status"] == "Authorizing":
            return f"Authorizing {r['id_tag']}; the session starts if it is accepted."
        waiting = "; waiting for an EV to be plugged in" if r.get("waiting_for_ev") else ""
        return f"Session for {r['id_tag']} on connector {r['connector']}{waiting}."

    target.show(result, text)


@click.command()
@connector_option(default=None)
@daemon_command
def stop(target: Target, connector: int | None) -> None:
    """Stop the session on a connector (reason Local)."""
    result = target.call("stop", connector=connector)

    def text(r: dict[str, Any]) -> str:
        if r["stopped"] == "session":
            return f"Connector {r['connector']}: the waiting session was cancelled."
        name = render.transaction(r.get("remote_id"), r["local_id"])
        return f"Connector {r['connector']}: transaction {name} stopped, {render.kwh(r['energy_wh'])} kWh."

    target.show(result, text)


@click.command()
@connector_option()
@daemon_command
def unlock(target: Target, connector: int) -> None:
    """Release the plug lock (a running transaction is stopped first)."""
    result = target.call("unlock", connector=connector)
    target.show(result, lambda r: f"Connector {r['connector']}: {r['status']}.")


@click.command()
@click.argument("connector", type=click.IntRange(0, 99), required=False)
@click.argument("state", type=click.Choice(["operative", "inoperative"]), required=False)
@daemon_command
def availability(target: Target, connector: int | None, state: str | None) -> None:
    """Show availability, or make CONNECTOR (0 = all) operative or inoperative."""
    if state is None:
        if connector is not None:
            raise click.UsageError("give the state too: operative or inoperative")
        result = target.call("availability")

        def listing(r: dict[str, Any]) -> str:
            return "\n".join(f"connector {c['id']}: {'operative' if c['operative'] else 'inoperative'}"
                             + (" (changes when the transaction ends)"
                                if c["scheduled_operative"] is not None else "")
                             for c in r["connectors"])

        target.show(result, listing)
        return
    result = target.call("availability", connector=connector, operative=state == "operative")
    target.show(result, lambda r: f"Connector {r['connector'] or 'all'}: {state}: {r['status']}"
                + (" (after the running transaction)" if r["status"] == "Scheduled" else "") + ".")


# ------------------------------------------------------------------- config
@click.group()
def config() -> None:
    """Read and change settings under any of their names; the file's other keys (read-only).

    A setting answers to its file key (ocpp.meter_value_sample_interval_s, or the key alone
    as written in the file), its neutral name (sample_interval_s), its OCPP 1.6 configuration
    key and its 2.0.1 variable (SampledDataCtrlr.TxUpdatedInterval), whatever version the
    CSMS speaks: README's "Setting names" lists them.
    """


def _value_text(item: dict[str, Any]) -> str:
    if item.get("secret"):
        return "(set)" if item.get("set") else "(not set)"
    value = item["value"]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


#: Where a value comes from, in the table's words.
ORIGIN = {"set": "set (CSMS/CLI)", "file": "file", "default": "default"}


def _source_text(item: dict[str, Any]) -> str:
    if item["source"] == "ocpp" and item.get("setting") is None:
        return "station"  # a read-only fact of this station (NumberOfConnectors, ...)
    return ORIGIN.get(item.get("origin", ""), item["source"])


def _overrides_text(item: dict[str, Any]) -> str:
    """The value the override hides: the file's (with its key) or the default."""
    if item.get("origin") != "set":
        return ""
    value = "(hidden)" if item.get("secret") else _value_text({"value": item.get("file_value")})
    where = item.get("file_key")
    if item.get("file_value_origin") == "file":
        return f"file: {where} = {value}"
    return f"default: {value}" + (f" ({where})" if where else "")


@config.command("get")
@click.argument("keys", nargs=-1)
@daemon_command
def config_get(target: Target, keys: tuple[str, ...]) -> None:
    """Show KEYS (any name of a setting, or a file key like station.max_current_a); all without.

    A setting is shown under the name the CSMS's OCPP version gives it (its neutral name if
    that version has none). Each value says where it comes from: set by the CSMS or the CLI
    (it wins over the file, which is shown beside it, until chargepoint config reset KEY), the
    file, or the default.
    """
    result = target.call("config_get", keys=list(keys) or None)

    def text(r: dict[str, Any]) -> Any:
        parts: list[Any] = []
        if r["keys"]:
            table = render.table("key", "value", "source", "overrides", "access")
            for item in r["keys"]:
                render.add_row(table, item["key"], _value_text(item), _source_text(item),
                               _overrides_text(item), "read-only" if item["readonly"] else "rw")
            parts.append(table)
            asked = [f"{item['asked']} is {item['key']}" for item in r["keys"] if item.get("asked")]
            if asked:
                parts.append("(" + "; ".join(asked) + ")")
        if r["unknown"]:
            parts.append(f"Unknown: {', '.join(r['unknown'])}")
        return render.group(*parts)

    target.show(result, text)
    if result["unknown"]:
        sys.exit(EXIT_FAILED)


@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
@daemon_command
def config_set(target: Target, key: str, value: str) -> None:
    """Change a setting (any of its names), validated as a change from the CSMS would be.

    The value wins over the configuration file, also after a restart, until
    chargepoint config reset KEY. A value that starts with '-' is a value (-5), not an option.
    """
    result = target.call("config_set", key=key, value=value)

    def text(r: dict[str, Any]) -> str:
        shown = "set (hidden)" if r["value"] is None else f"= {_value_text(r)}"
        return (f"{r['key']} {shown}: {r['status']}"
                + (" (takes effect after a restart)" if r["status"] == "RebootRequired" else "")
                + (f" (asked as {r['asked']})" if r.get("asked") else ""))

    target.show(result, text)


@config.command("reset")
@click.argument("key")
@daemon_command
def config_reset(target: Target, key: str) -> None:
    """Drop the value the CSMS or the CLI set for KEY: the configuration file's applies again."""
    result = target.call("config_reset", key=key)

    def text(r: dict[str, Any]) -> str:
        value = _value_text(r)  # a secret says only whether it is set
        source = ORIGIN[r["origin"]] + (f" {r['file_key']}" if r.get("file_key") and r["origin"] == "file"
                                        else "")
        if not r["was_set"]:
            return f"{r['key']} was not overridden: {value} ({source})."
        when = "takes effect after a restart" if r["reboot_required"] else "in effect now"
        return f"{r['key']}: override dropped; {value} from the {source} applies again ({when})."

    target.show(result, text)


# ------------------------------------------------------------------- faults
@click.group()
def fault() -> None:
    """Latched faults: welded or mismatching contactor, RCD trip, emergency stop."""


@fault.command("clear")
@connector_option()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@daemon_command
def fault_clear(target: Target, connector: int, yes: bool) -> None:
    """Clear latched faults after inspection (asks first)."""
    if not yes:
        state = target.call("status", connector=connector)["connectors"][0]
        faults = ", ".join(state["faults"]) or "none"
        click.confirm(f"Connector {connector} faults: {faults}. Clear latched faults? Do it only after "
                      "inspecting the contactor and the RCD", abort=True, err=True)
    result = target.call("fault_clear", connector=connector)

    def text(r: dict[str, Any]) -> str:
        if not r["cleared"]:
            return f"Connector {r['connector']}: {r['detail']}."
        left = f"; remaining: {', '.join(r['remaining'])}" if r["remaining"] else ""
        return f"Connector {r['connector']}: cleared {', '.join(r['cleared'])}{left}."

    target.show(result, text)

"""One setting, every name: config get/set/reset answer to its file key, neutral name and both versions'.

A daemon in this process (sim hal) speaking 1.6 or 2.0.1 to a loopback CSMS, asked
through the real CLI over its control socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chargepoint.cli import main
from chargepoint.protocol import setting_names
from tests.integration.conftest import running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.loopback_csms201 import LoopbackCsms201

ROOT = Path(__file__).parents[2]
#: A value each secret setting accepts under every one of its names.
SECRETS = {"authorization_key": "00112233445566778899aabbccddeeff", "network_profiles": "{}"}
LONGEST = "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]"


def cli(sock: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, [*args, "--socket", sock], env=env)


def as_json(sock: str, *args: str, code: int = 0) -> Any:
    result = cli(sock, *args, "--json")
    assert result.exit_code == code, (args, result.output)
    return json.loads(result.stdout)


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


@pytest.fixture(params=["1.6", "2.0.1"])
async def station(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    csms: Any = await (LoopbackCsms().start() if request.param == "1.6" else LoopbackCsms201().start())
    sock = str(tmp_path / "control.sock")
    config = station_config(csms.url, str(tmp_path / "state"), ocpp={"versions": [request.param]},
                            control={"socket": sock})
    try:
        async with running(config) as daemon:
            await until(lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(), 20, "boot")
            yield request.param, sock
    finally:
        await csms.close()


async def test_every_setting_answers_to_each_of_its_names(station: Any, caplog: pytest.LogCaptureFixture):
    version, sock = station
    caplog.set_level(logging.INFO, logger="chargepoint.control")

    def check_all() -> list[str]:
        checked = []
        for names in setting_names.catalogue():
            for name in names.all():
                got = as_json(sock, "config", "get", name)
                assert got["unknown"] == [] and len(got["keys"]) == 1, (name, got)
                item = got["keys"][0]
                assert item["setting"] == names.setting, (name, item)
                assert item["origin"] in ("file", "default", "set"), (name, item)
                spoken = names.of(version)
                # Shown under the version's own name when it has one, else the neutral name.
                assert item["key"] in (spoken or (names.setting,)), (name, item["key"])
                value = SECRETS.get(names.setting) if item.get("secret") else text_of(item["value"])
                changed = as_json(sock, "config", "set", name, value)
                assert changed["status"] in ("Accepted", "RebootRequired"), (name, changed)
                assert changed["setting"] == names.setting and changed["key"] == item["key"]
                reset = as_json(sock, "config", "reset", name)
                assert reset["was_set"] is True and reset["setting"] == names.setting, (name, reset)
                checked.append(name)
        return checked

    checked = await asyncio.to_thread(check_all)
    assert len(checked) >= 3 * len(setting_names.catalogue())
    # The password was given under each of its names: the audit lines never show it.
    audited = [r.getMessage() for r in caplog.records if "control: config_set" in r.getMessage()]
    password_names = setting_names.names_of("authorization_key").all()
    assert sum("(redacted)" in text for text in audited) >= len(password_names)
    assert not any(SECRETS["authorization_key"] in r.getMessage() for r in caplog.records)


async def test_a_live_setting_is_changed_under_its_file_key_and_a_file_key_says_edit_the_file(
        station: Any, caplog: pytest.LogCaptureFixture):
    version, sock = station
    caplog.set_level(logging.INFO, logger="chargepoint.control")

    def run() -> None:
        done = cli(sock, "config", "set", "meter_value_sample_interval_s", "20")
        assert done.exit_code == 0, done.output
        spoken = "MeterValueSampleInterval" if version == "1.6" else "SampledDataCtrlr.TxUpdatedInterval"
        assert done.stdout.strip() == (f"{spoken} = 20: Accepted (asked as meter_value_sample_interval_s)")
        assert as_json(sock, "config", "get", "ocpp.meter_value_sample_interval_s")["keys"][0]["value"] == 20
        other = "HeartbeatInterval" if version == "2.0.1" else "OCPPCommCtrlr.HeartbeatInterval"
        assert as_json(sock, "config", "get", other)["keys"][0]["setting"] == "heartbeat_interval_s"
        assert cli(sock, "config", "reset", "ocpp.meter_value_sample_interval_s").exit_code == 0
        refused = as_json(sock, "config", "set", "station.max_current_a", "10", code=1)["error"]
        assert refused["code"] == "read_only" and "edit it there and restart the daemon" in refused["message"]
        # The password as the file takes it, text: the file's rules, stored as its octets.
        password = as_json(sock, "config", "set", "basic_auth_password", "Operator-Pass_24chars:ok")
        assert (password["setting"], password["value"]) == ("authorization_key", None)
        short = as_json(sock, "config", "set", "ocpp.basic_auth_password", "short", code=1)["error"]
        assert short["message"] == "ocpp.basic_auth_password: must be 16 to 40 characters, not 5; not changed"
        assert as_json(sock, "config", "reset", "ocpp.basic_auth_password")["was_set"] is True
        refused = as_json(sock, "config", "set", "mqtt.password", "hunter2-hunter2", code=1)["error"]
        assert refused["code"] == "read_only"
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert "control: config_set" in logged
        assert "Operator-Pass_24chars:ok" not in logged and "hunter2-hunter2" not in logged
        typo = as_json(sock, "config", "set", "HeartbeatIntervall", "10", code=1)["error"]
        assert typo["code"] == "unknown_key" and "did you mean 'HeartbeatInterval'?" in typo["message"]

    await asyncio.to_thread(run)


async def test_config_tables_fit_the_terminal_and_never_cut_a_name(station: Any):
    version, sock = station

    def run() -> None:
        for columns in ("200", "100", "60"):
            shown = cli(sock, "config", "get", env={"COLUMNS": columns})
            assert shown.exit_code == 0, shown.output
            lines = shown.stdout.splitlines()
            assert all(len(line.rstrip()) <= int(columns) for line in lines), columns
            assert "…" not in shown.stdout and "..." not in shown.stdout
            listed = as_json(sock, "config", "get")["keys"]
            for item in listed:  # every name whole, on a line of its own or a table row's first cell
                whole = rf"^{re.escape(item['key'])}(\s|$)"
                assert re.search(whole, shown.stdout, re.M), (columns, item["key"])
        if version == "2.0.1":
            assert LONGEST in cli(sock, "config", "get", LONGEST, env={"COLUMNS": "60"}).stdout

    await asyncio.to_thread(run)


def test_readme_lists_each_settings_names_once_as_the_code_does():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert setting_names.TABLE_START in readme and setting_names.TABLE_END in readme
    assert setting_names.rewrite(readme) == readme, (
        "README's setting names are not the code's: python -m chargepoint.protocol.setting_names README.md")
    names = [n.lower() for n in setting_names.every_name()]
    assert len(names) == len(set(names)), "a name stands for one setting only"

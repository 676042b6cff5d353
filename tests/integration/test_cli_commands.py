"""The technician's CLI against a running daemon (subprocess, sim hal) over the real control socket.

Every command, its ``--json`` shape, and the error paths: daemon down, a
leftover socket, permission denied, invalid configuration values, refusals.
"""

from __future__ import annotations

import grp
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner

from chargepoint.cli import main
from tests.integration.stranger import cli_as_a_stranger

if TYPE_CHECKING:
    from tests.integration.control_rig import Rig

pytest_plugins = ("tests.integration.control_rig",)  # the rig fixture


def charging(rig: Rig, id_tag: str) -> dict:
    rig.json("sim", "plug")
    rig.wait(lambda: rig.connector()["iec_state"] == "B", "the EV in state B")
    started = rig.json("start", "--id-tag", id_tag)
    assert started == {"connector": 1, "id_tag": id_tag, "status": "Accepted", "waiting_for_ev": False}
    # Charging, and the auxiliary contact has followed the coil (the supervisor reports each change).
    return rig.wait(lambda: (c := rig.connector())["ocpp_status"] == "Charging" and c["contactor"]["feedback"]
                    and c, "Charging")


def test_status_shape_and_text(rig: Rig):
    status = rig.json("status")
    assert set(status) >= {"identity", "version", "hal", "time", "uptime_s", "station_status", "connection",
                           "queue", "watchdog", "connectors", "last_errors"}
    assert status["identity"] == "CP-CLI-1" and status["hal"] == "sim"
    assert status["connection"]["connected"] is True and status["connection"]["boot"] == "accepted"
    assert status["connection"]["ocpp_version"] == "1.6"  # the rig's station offers 1.6 only
    assert status["watchdog"] == {"systemd": True, "failed": None}
    (c,) = status["connectors"]
    assert set(c) == {"id", "ocpp_status", "activity", "error", "operative", "scheduled_operative",
                      "iec_state", "pwm_duty", "offered_a", "contactor", "faults", "cable_max_a", "limit",
                      "session", "meter", "test_running", "reservation", "measured"}
    assert c["measured"] == {"cp_high_v": 12.0, "cp_low_v": 12.0, "pp_ohms": None, "pp_open": False}
    assert c["iec_state"] == "A" and c["pwm_duty"] == 100.0 and c["faults"] == []
    assert c["reservation"] is None and status["reservations"] == []
    assert c["limit"]["binding"] == "station" and c["limit"]["amps"] == 32.0
    assert c["meter"]["available"] is True and c["meter"]["voltages_v"] == [230.0, 230.0, 230.0]
    text = rig.cli("status")
    assert text.exit_code == 0, text.stderr
    assert "Station CP-CLI-1: Available" in text.stdout
    assert "Connector 1: Available, IEC state A" in text.stdout
    assert "BootNotification accepted" in text.stdout
    assert "connected (OCPP 1.6), BootNotification accepted" in text.stdout, "the version spoken"


def test_status_watch_refreshes(rig: Rig):
    result = rig.cli("status", "--watch", "--count", "3", "--interval", "0.2", "--json")
    assert result.exit_code == 0, result.stderr
    snapshots = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(snapshots) == 3
    assert snapshots[0]["uptime_s"] <= snapshots[-1]["uptime_s"]
    text = rig.cli("status", "--watch", "--count", "2", "--interval", "0.2", "--connector", "1")
    assert text.exit_code == 0 and text.stdout.count("Connector 1:") == 2


def test_a_local_session_start_status_queue_stop_and_history(rig: Rig):
    rig.idle()
    c = charging(rig, "TECH-1")
    assert c["session"]["id_tag"] == "TECH-1"
    assert c["contactor"] == {"closed": True, "feedback": True}
    assert c["iec_state"] == "C" and c["offered_a"] == 32.0 and c["limit"]["binding"] in ("cable", "station")
    running = rig.json("sessions")["running"]
    assert [s["id_tag"] for s in running] == ["TECH-1"]
    assert set(running[0]) == {"local_id", "remote_id", "connector", "id_tag", "started_at", "duration_s",
                               "meter_start_wh", "energy_wh", "card_name", "standalone", "cost", "solar_wh",
                               "solar_share"}
    assert running[0]["solar_wh"] is None and running[0]["cost"] is None  # no grid meter, no tariff
    queue = rig.json("queue")
    assert set(queue) == {"length", "oldest_age_s", "head", "thinned", "connected", "standalone", "messages",
                          "not_listed"}
    assert queue["connected"] is True
    rig.wait(lambda: rig.connector()["meter"]["energy_wh"] > c["meter"]["energy_wh"], "energy flowing")
    stopped = rig.json("stop")
    assert stopped["connector"] == 1 and stopped["stopped"] == "transaction" and stopped["energy_wh"] > 0
    rig.json("sim", "unplug")
    history = rig.json("sessions", "--limit", "5")
    assert history["running"] == []
    last = history["finished"][0]
    assert set(last) == {"local_id", "remote_id", "connector", "id_tag", "started_at", "stopped_at",
                         "duration_s", "meter_start_wh", "meter_stop_wh", "energy_wh", "reason", "card_name",
                         "standalone", "cost", "solar_wh", "solar_share"}
    assert last["card_name"] is None and last["standalone"] is False  # with a CSMS, no local card named it
    assert last["id_tag"] == "TECH-1" and last["reason"] == "local" and last["energy_wh"] > 0
    assert last["local_id"] == stopped["local_id"]
    text = rig.cli("sessions")
    assert text.exit_code == 0 and "TECH-1" in text.stdout and "local" in text.stdout


def test_stop_without_a_session_and_start_on_a_busy_connector_are_refused(rig: Rig):
    rig.idle()
    refused = rig.json("stop", code=1)
    assert refused == {"ok": False, "error": {"code": "refused", "message": "no session to stop"}}
    rig.json("start", "--connector", "1", "--id-tag", "WAITING")
    busy = rig.json("start", "--connector", "1", "--id-tag", "OTHER", code=1)
    assert "already has a session for WAITING" in busy["error"]["message"]
    cancelled = rig.json("stop", "--connector", "1")
    assert cancelled["stopped"] == "session"
    nowhere = rig.json("start", "--connector", "7", code=1)
    assert nowhere["error"]["code"] == "no_connector"


def test_availability_and_unlock(rig: Rig):
    rig.idle()
    assert rig.json("availability") == {"connectors": [{"id": 1, "operative": True,
                                                        "scheduled_operative": None}]}
    changed = rig.json("availability", "1", "inoperative")
    assert changed == {"connector": 1, "operative": False, "status": "Accepted"}
    rig.wait(lambda: rig.connector()["ocpp_status"] == "Unavailable", "Unavailable")
    refused = rig.cli("start", "--connector", "1")
    assert refused.exit_code == 1 and "inoperative" in refused.stderr
    assert rig.json("availability", "0", "operative")["status"] == "Accepted"
    rig.wait(lambda: rig.connector()["ocpp_status"] == "Available", "Available")
    assert rig.json("unlock") == {"connector": 1, "status": "Unlocked"}
    usage = rig.cli("availability", "1")
    assert usage.exit_code == 2


def test_config_get_and_set_are_validated(rig: Rig):
    listing = rig.json("config", "get")
    keys = {item["key"]: item for item in listing["keys"]}
    assert keys["HeartbeatInterval"]["source"] == "ocpp" and keys["HeartbeatInterval"]["readonly"] is False
    assert keys["NumberOfConnectors"]["readonly"] is True
    assert keys["AuthorizationKey"]["value"] is None and keys["AuthorizationKey"]["secret"] is True
    assert keys["station.max_current_a"] == {"key": "station.max_current_a", "source": "file",
                                             "readonly": True, "value": 32.0, "origin": "default"}
    assert listing["file"] == str(rig.config)
    some = rig.json("config", "get", "MeterValueSampleInterval", "station.identity", "NoSuchKey", code=1)
    assert [item["key"] for item in some["keys"]] == ["MeterValueSampleInterval", "station.identity"]
    assert some["unknown"] == ["NoSuchKey"]

    for key, value, code, words in [
        ("HeartbeatInterval", "0", "rejected", "must be a whole number from 1 to 86400"),
        ("HeartbeatInterval", "often", "rejected", "must be a whole number"),
        ("StopTransactionOnEVSideDisconnect", "maybe", "rejected", "must be true or false"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus", "rejected", "comma-separated list"),
        ("AuthorizationKey", "xyz", "rejected", "32 to 40 hexadecimal digits"),
        ("SecurityProfile", "2", "rejected", "AuthorizationKey first"),
        ("NumberOfConnectors", "2", "rejected", "read-only"),
        ("station.max_current_a", "10", "read_only", "edit it there and restart"),
        ("NoSuchKey", "1", "unknown_key", "unknown key"),
    ]:
        error = rig.json("config", "set", key, value, code=1)["error"]
        assert error["code"] == code and words in error["message"], (key, error)
    text = rig.cli("config", "set", "HeartbeatInterval", "0")
    assert text.exit_code == 1 and "Error: HeartbeatInterval: must be a whole number" in text.stderr

    assert rig.json("config", "set", "HeartbeatInterval", "120") == {
        "key": "HeartbeatInterval", "status": "Accepted", "value": 120, "setting": "heartbeat_interval_s"}
    secret = rig.json("config", "set", "AuthorizationKey", "00112233445566778899aabbccddeeff")
    assert secret == {"key": "AuthorizationKey", "status": "Accepted", "value": None,
                      "setting": "authorization_key"}
    assert rig.json("config", "get", "HeartbeatInterval")["keys"][0]["value"] == 120
    # The neutral setting name is the same setting, shown under the spoken version's key.
    assert rig.json("config", "set", "heartbeat_interval_s", "150")["key"] == "HeartbeatInterval"
    got = rig.json("config", "get", "heartbeat_interval_s")["keys"][0]
    assert (got["key"], got["setting"], got["value"]) == ("HeartbeatInterval", "heartbeat_interval_s", 150)
    assert rig.json("config", "set", "HeartbeatInterval", "300")["status"] == "Accepted"
    events = rig.json("logs", "--events", "-n", "1000")["entries"]
    assert not any("00112233445566778899aabbccddeeff" in e["text"] for e in events), "the key is never logged"


def test_logs_show_frames_and_events(rig: Rig):
    frames = rig.json("logs", "--frames", "-n", "1000")["entries"]
    assert frames and all(e["kind"] == "frame" for e in frames)
    assert set(frames[0]) == {"seq", "time", "kind", "direction", "text"}
    assert any('"BootNotification"' in e["text"] and e["direction"] == "out" for e in frames)
    events = rig.json("logs", "--events", "-n", "5")["entries"]
    assert 0 < len(events) <= 5
    assert set(events[0]) == {"seq", "time", "kind", "level", "source", "text"}
    text = rig.cli("logs", "-n", "20")
    assert text.exit_code == 0 and ("station -> CSMS" in text.stdout or "INFO" in text.stdout)


def test_fault_clear_asks_first_and_refuses_while_the_cause_persists(rig: Rig):
    rig.idle()
    nothing = rig.json("fault", "clear", "--yes")
    assert nothing["cleared"] == [] and "no latched fault" in nothing["detail"]
    rig.json("sim", "trip", "--hold")  # an RCD that stays tripped
    rig.wait(lambda: rig.connector()["faults"] == ["rcd"], "the RCD fault")
    assert rig.connector()["ocpp_status"] == "Faulted"
    no = rig.cli("fault", "clear", input="n\n")
    assert no.exit_code == 1 and "Aborted" in no.stderr and "rcd" in no.stderr
    assert rig.connector()["faults"] == ["rcd"]
    still = rig.json("fault", "clear", "--yes", code=1)["error"]
    assert still["code"] == "refused" and "still active" in still["message"]
    rig.json("sim", "release")
    yes = rig.cli("fault", "clear", input="y\n")
    assert yes.exit_code == 0, yes.stderr
    assert "cleared rcd" in yes.stdout
    rig.wait(lambda: rig.connector()["ocpp_status"] == "Available", "Available after the clear")
    assert rig.connector()["faults"] == []


def test_relay_and_pilot_tests_with_no_ev(rig: Rig):
    rig.idle()
    relay = rig.json("relay", "test")
    assert relay["result"] == "pass", relay
    assert [(s["command"], s["feedback"], s["ok"]) for s in relay["steps"]] == [
        ("close", True, True), ("open", False, True)]
    pilot = rig.json("pilot", "test")
    assert pilot["result"] == "pass", pilot
    assert [s["duty"] for s in pilot["steps"]] == [100.0, 10.0, 50.0, 90.0]
    assert pilot["steps"][0]["low_v"] == 12.0 and pilot["steps"][1]["low_v"] == -12.0
    assert set(pilot["steps"][0]) == {"duty", "high_v", "low_v", "expect", "ok"}
    text = rig.cli("relay", "test")
    assert text.exit_code == 0 and "PASS" in text.stdout
    # The safety loop's status after the test reaches the station on its next step.
    after = rig.wait(lambda: (c := rig.connector())["pwm_duty"] == 100.0 and c, "the pilot back at +12 V")
    assert after["contactor"]["closed"] is False and not after["test_running"]


def test_relay_and_pilot_tests_are_refused_with_an_ev_connected(rig: Rig):
    rig.idle()
    rig.json("sim", "plug")
    rig.wait(lambda: rig.connector()["iec_state"] == "B", "state B")
    for command in ("relay", "pilot"):
        error = rig.json(command, "test", code=1)["error"]
        assert error["code"] == "refused"
        assert "an EV is connected (state B)" in error["message"]
    assert rig.connector()["contactor"]["closed"] is False
    rig.json("sim", "unplug")


def test_selftest_report(rig: Rig, tmp_path: Path):
    rig.idle()
    report = tmp_path / "selftest.txt"
    result = rig.cli("selftest", "--json", "--report", str(report))
    doc = json.loads(result.stdout)
    assert result.exit_code == (0 if doc["result"] == "pass" else 1)
    assert set(doc) == {"result", "identity", "vendor", "model", "serial_number", "version", "hal",
                        "csms_url", "time", "counts", "checks"}
    checks = {(c["name"], c["connector"]): c for c in doc["checks"]}
    assert set(checks) == {
        ("configuration", None), ("supervisor", None), ("safety_loop", 1), ("meter", 1), ("pilot_state_a", 1),
        ("diode_path", 1), ("relay", 1), ("proximity", 1), ("rcd", 1), ("heartbeat", 1), ("csms_dns", None),
        ("csms_tcp", None), ("csms_tls", None), ("csms_boot", None), ("clock", None), ("disk", None),
        ("database", None), ("certificates", None)}
    assert all(c["status"] in ("pass", "fail", "skip", "warn") and c["detail"] for c in doc["checks"])
    # The simulated station's supervisor answers and steps (not real-time on a laptop: a pass there).
    assert "step p99" in checks[("supervisor", None)]["detail"]
    for name in ("configuration", "supervisor", "csms_dns", "csms_tcp", "csms_boot", "disk", "database"):
        assert checks[(name, None)]["status"] == "pass", checks[(name, None)]
    for name in ("safety_loop", "meter", "pilot_state_a", "proximity"):
        assert checks[(name, 1)]["status"] == "pass", checks[(name, 1)]
    assert checks[("csms_tls", None)] == {"name": "csms_tls", "connector": None, "status": "skip",
                                          "detail": "ws:// URL: no TLS (security profile 0 or 1)"}
    assert checks[("rcd", 1)]["status"] == "skip"
    # The heartbeat circuit is checked before every session: not run yet if this rig has had no
    # session so far, else passed (the simulated circuit is sound).
    heartbeat = checks[("heartbeat", 1)]
    assert (heartbeat["status"], "not run yet" in heartbeat["detail"]) in (("skip", True), ("pass", False)), \
        heartbeat
    assert checks[("relay", 1)]["status"] == "pass" and checks[("diode_path", 1)]["status"] == "pass"
    statuses = [c["status"] for c in doc["checks"]]
    assert doc["counts"] == {s: statuses.count(s) for s in ("pass", "fail", "skip", "warn")}
    text = report.read_text()
    assert text.startswith("chargepoint commissioning self-test\n")
    assert "station     CP-CLI-1" in text and "PASS  meter[1]" in text
    assert f"result      {doc['result'].upper()}" in text
    table = rig.cli("selftest")
    assert "Self-test of CP-CLI-1" in table.stdout and "csms_boot" in table.stdout


def test_sim_card_starts_a_session(rig: Rig):
    rig.idle()
    rig.json("sim", "plug")
    assert rig.json("sim", "card", "CAFE0042")["action"] == "card"
    rig.wait(lambda: (rig.connector()["session"] or {}).get("id_tag") == "CAFE0042", "the card's session")
    rig.json("stop")
    rig.json("sim", "unplug")


# ------------------------------------------------------------------ error paths
def test_daemon_not_running(tmp_path: Path):
    missing = str(tmp_path / "control.sock")
    result = CliRunner().invoke(main, ["status", "--socket", missing])
    assert result.exit_code == 3
    assert "the chargepoint daemon is not running: no control socket at" in result.stderr
    as_json = CliRunner().invoke(main, ["queue", "--json", "--socket", missing])
    assert as_json.exit_code == 3
    assert json.loads(as_json.stdout)["error"]["code"] == "not_running"
    # A socket left behind by a daemon that died: nobody listens.
    short = Path(os.environ.get("TMPDIR", "/tmp")) / f"cp-stale-{os.getpid()}.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(short))
    leftover.close()
    try:
        stale = CliRunner().invoke(main, ["sessions", "--socket", str(short)])
    finally:
        short.unlink()
    assert stale.exit_code == 3 and "nothing answers on" in stale.stderr


def test_permission_denied_says_which_group(rig: Rig):
    mode = os.stat(rig.socket).st_mode & 0o777
    assert mode == 0o660
    if os.geteuid() == 0:
        # root passes every file permission check: ask as the user nobody instead.
        plain = cli_as_a_stranger(["status", "--socket", rig.socket], rig.socket)
        as_json = cli_as_a_stranger(["status", "--json", "--socket", rig.socket], rig.socket)
    else:
        os.chmod(rig.socket, 0)
        try:
            plain = (lambda r: {"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr})(
                CliRunner().invoke(main, ["status", "--socket", rig.socket]))
            as_json = (lambda r: {"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr})(
                CliRunner().invoke(main, ["status", "--json", "--socket", rig.socket]))
        finally:
            os.chmod(rig.socket, mode)
    assert plain["code"] == 3, plain
    assert "permission denied on" in plain["stderr"]
    # --socket alone: the CLI cannot know the configuration, so it names the socket's own group.
    owner = grp.getgrgid(os.stat(rig.socket).st_gid).gr_name
    assert f"add yourself to the group that owns the socket ({owner})" in plain["stderr"]
    assert json.loads(as_json["stdout"])["error"]["code"] == "permission"


def test_invalid_configuration_values_are_named(tmp_path: Path):
    bad = tmp_path / "station.toml"
    bad.write_text('[station]\nidentity = "CP-X"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n'
                   '[control]\nsocket = "control.sock"\n')
    result = CliRunner().invoke(main, ["status", "--config", str(bad)])
    assert result.exit_code == 1
    assert (f"configuration rejected: {bad}: control.socket: must be an absolute path, not 'control.sock'"
            in result.stderr)
    bad.write_text('[station]\nidentity = "CP-X"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n'
                   f'[control]\nsocket = "/run/{"x" * 120}.sock"\ngroup = "tech nicians"\n')
    checked = CliRunner().invoke(main, ["check-config", str(bad)])
    assert checked.exit_code == 1 and "control.socket: must be at most 107 bytes" in checked.stderr
    as_json = CliRunner().invoke(main, ["queue", "--json", "--config", str(bad)])
    assert json.loads(as_json.stdout)["error"]["code"] == "config"
    checked = CliRunner().invoke(main, ["check-config", "--json", str(bad)])
    assert checked.exit_code == 1
    socket_error = {"file": str(bad), "key": "control.socket",
                    "reason": "must be at most 107 bytes long (a Unix socket path)"}
    group_error = {"file": str(bad), "key": "control.group",
                   "reason": "must be a group name (letters, digits, '_', '-', '.'), not 'tech nicians'"}
    assert json.loads(checked.stdout) == {"ok": False, "error": socket_error,
                                          "errors": [socket_error, group_error]}


def test_check_config_lists_every_problem_and_warns_about_example_values(tmp_path: Path):
    bad = tmp_path / "station.toml"
    bad.write_text('[station]\nidentity = "CP-X"\nmax_curent_a = 16\n[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n'
                   'heartbeat_interval_s = 0\n[control]\nsocket = "control.sock"\n')
    checked = CliRunner().invoke(main, ["check-config", str(bad)])
    assert checked.exit_code == 1
    assert f"Error: {bad}: station.max_curent_a: unknown key; did you mean 'max_current_a'?" in checked.stderr
    assert f"Error: {bad}: ocpp.heartbeat_interval_s: must be at least 1, not 0" in checked.stderr
    assert f"Error: {bad}: control.socket: must be an absolute path" in checked.stderr
    assert f"{bad}: 3 problem(s)" in checked.stderr
    as_json = json.loads(CliRunner().invoke(main, ["check-config", "--json", str(bad)]).stdout)
    assert [e["key"] for e in as_json["errors"]] == ["station.max_curent_a", "ocpp.heartbeat_interval_s",
                                                     "control.socket"]
    example = Path(__file__).parents[2] / "examples" / "raspberrypi.toml"
    warned = CliRunner().invoke(main, ["check-config", str(example)])
    assert warned.exit_code == 0, warned.stderr
    assert "OK (CP-0001" in warned.stdout and "3 warning(s)" in warned.stdout
    assert "Warning: " in warned.stderr and "ocpp.csms_url = 'wss://csms.example.com/ocpp' is the example's" \
        in warned.stderr
    as_json = json.loads(CliRunner().invoke(main, ["check-config", "--json", str(example)]).stdout)
    assert as_json["ok"] is True and len(as_json["warnings"]) == 3


def test_the_socket_from_the_configuration_file(rig: Rig):
    result = CliRunner().invoke(main, ["queue", "--json", "--config", str(rig.config)],
                                env={"CHARGEPOINT_SOCKET": None})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["length"] >= 0


def test_the_daemon_never_imports_rich():
    code = ("import sys, chargepoint.cli, chargepoint.app.daemon, chargepoint.control.server, "
            "chargepoint.control.selftest; "
            "print([m for m in sys.modules if m.split('.')[0] == 'rich'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_config_overrides_show_their_source_and_reset_brings_the_file_back(rig: Rig):
    import sqlite3

    base = rig.json("config", "get", "MeterValueSampleInterval", "HeartbeatInterval", "simulation.tethered")
    sample, heartbeat, tethered = base["keys"]
    assert (sample["value"], sample["origin"], sample["file_key"]) == (
        10, "file", "ocpp.meter_value_sample_interval_s")
    assert heartbeat["origin"] in ("default", "set") and "file_value" not in sample
    assert tethered == {"key": "simulation.tethered", "source": "file", "readonly": True, "value": False,
                        "origin": "default"}
    assert rig.json("config", "set", "MeterValueSampleInterval", "20")["status"] == "Accepted"
    got = rig.json("config", "get", "MeterValueSampleInterval")["keys"][0]
    assert (got["value"], got["origin"], got["file_value"]) == (20, "set", 10)
    table = rig.cli("config", "get", "MeterValueSampleInterval")
    assert "set (CSMS/CLI)" in table.stdout
    assert "file: ocpp.meter_value_sample_interval_s = 10" in table.stdout
    assert rig.json("config", "set", "HeartbeatInterval", "120")["status"] == "Accepted"
    beat = rig.json("config", "get", "HeartbeatInterval")["keys"][0]
    assert (beat["origin"], beat["file_value"], beat["file_value_origin"]) == ("set", 300, "default")
    assert "default: 300 (ocpp.heartbeat_interval_s)" in rig.cli("config", "get", "HeartbeatInterval").stdout
    assert "300 from the default applies again" in rig.cli("config", "reset", "HeartbeatInterval").stdout
    database = rig.root / "state" / "chargepoint.sqlite"

    def stored() -> dict[str, str]:
        with sqlite3.connect(database) as db:
            return dict(db.execute("SELECT name, value FROM settings").fetchall())

    rig.wait(lambda: stored().get("sample_interval_s") == "20", "the override stored")
    reset = rig.cli("config", "reset", "MeterValueSampleInterval")
    assert reset.exit_code == 0, reset.stderr
    assert ("MeterValueSampleInterval: override dropped; 10 from the file ocpp.meter_value_sample_interval_s "
            "applies again (in effect now).") in reset.stdout
    rig.wait(lambda: "sample_interval_s" not in stored(), "the override forgotten by the state database")
    again = rig.json("config", "reset", "MeterValueSampleInterval")
    assert again["was_set"] is False and again["origin"] == "file" and again["value"] == 10
    assert rig.json("config", "reset", "NumberOfConnectors", code=1)["error"]["code"] == "rejected"
    assert rig.json("config", "reset", "station.identity", code=1)["error"]["code"] == "read_only"
    assert rig.json("config", "reset", "Nope", code=1)["error"]["code"] == "unknown_key"


def test_config_small_rough_edges(rig: Rig):
    negative = rig.cli("config", "set", "HeartbeatInterval", "-5")
    assert negative.exit_code == 1, negative.output
    assert "Error: HeartbeatInterval: must be a whole number from 1 to 86400; not changed" in negative.stderr
    secret = rig.cli("config", "set", "AuthorizationKey", "00112233445566778899aabbccddeeff")
    assert secret.exit_code == 0 and secret.stdout.strip() == "AuthorizationKey set (hidden): Accepted"
    assert "0011" not in secret.stdout
    unknown = rig.cli("config", "get", "Nope")
    assert unknown.exit_code == 1 and unknown.stdout.strip() == "Unknown: Nope"


def test_one_transaction_has_one_name_in_stop_sessions_and_status(rig: Rig):
    rig.idle()
    c = charging(rig, "TECH-ID")
    tx = c["session"]["transaction"]
    remote = rig.wait(lambda: rig.connector()["session"]["transaction"]["remote_id"], "the CSMS's id")
    name = f"{remote} (local {tx['local_id']})"
    assert f"transaction {name}" in rig.cli("status").stdout
    stopped = rig.cli("stop")
    assert stopped.exit_code == 0 and f"transaction {name} stopped" in stopped.stdout
    assert rig.json("sessions")["finished"][0]["remote_id"] == remote
    assert name in rig.cli("sessions").stdout
    rig.json("sim", "unplug")


def test_status_header_warnings_and_start_reasons_with_a_faulted_connector(rig: Rig):
    rig.idle()
    for _ in range(3):  # the same fault three times: one line, counted
        rig.json("sim", "trip")
        rig.wait(lambda: rig.connector()["faults"] == ["rcd"], "the RCD fault")
        rig.json("fault", "clear", "--yes")
        rig.wait(lambda: rig.connector()["faults"] == [], "cleared")
    rig.json("sim", "trip")
    rig.wait(lambda: rig.connector()["ocpp_status"] == "Faulted", "Faulted")
    status = rig.json("status")
    assert status["worst_connector"] == {"id": 1, "ocpp_status": "Faulted", "severity": 3}
    rcd = [e for e in status["last_errors"] if e["text"] == "connector-1: fault rcd"]
    assert len(rcd) == 1 and rcd[0]["count"] >= 4
    assert len({(e["level"], e["source"], e["text"]) for e in status["last_errors"]}) == \
        len(status["last_errors"])
    text = rig.cli("status").stdout
    assert text.startswith("Station CP-CLI-1: Faulted (")
    assert text.count("connector-1: fault rcd") == 1 and "times, the last shown" in text
    refused = rig.json("start", code=1)["error"]
    assert refused["message"] == "no connector is free: connector 1 is faulted (rcd)"
    rig.json("fault", "clear", "--yes")
    rig.json("availability", "1", "inoperative")
    off = rig.json("start", code=1)["error"]["message"]
    assert off == "no connector is free: connector 1 is inoperative (chargepoint availability 1 operative)"
    rig.idle()


def test_output_tests_log_at_info(rig: Rig):
    rig.idle()
    since = rig.json("logs", "--events", "-n", "1")["entries"][-1]["seq"]
    assert rig.json("relay", "test")["result"] == "pass"
    events = [e for e in rig.json("logs", "--events", "-n", "200")["entries"] if e["seq"] > since]
    tests = [e for e in events if "output test:" in e["text"]]
    assert tests and all(e["level"] == "INFO" for e in tests)


def test_sim_trip_and_release_say_what_is_held_and_latched(rig: Rig):
    rig.idle()
    held = rig.cli("sim", "trip", "--input", "emergency_stop", "--hold")
    assert "emergency_stop tripped and held" in held.stdout
    rcd = rig.cli("sim", "release", "--input", "rcd")
    assert rcd.exit_code == 0
    assert "rcd released" in rcd.stdout and "Still held: emergency_stop" in rcd.stdout
    released = rig.json("sim", "release", "--input", "emergency_stop")
    assert released["held"] == [] and released["latched"] == ["emergency_stop"]
    assert "Latched: emergency_stop" in rig.cli("sim", "release", "--input", "emergency_stop").stdout
    rig.wait(lambda: rig.connector()["faults"] == ["emergency_stop"], "the latched stop")
    rig.json("fault", "clear", "--yes")
    assert "No fault input is held or latched." in rig.cli("sim", "release").stdout
    rig.idle()


def test_logs_of_both_kinds_and_follow(rig: Rig):
    both = rig.json("logs", "--frames", "--events", "-n", "1000")["entries"]
    assert {e["kind"] for e in both} == {"frame", "event"}
    follow = subprocess.Popen([sys.executable, "-m", "chargepoint.cli", "logs", "--follow", "--events",
                               "--json", "-n", "1", "--interval", "0.1", "--socket", rig.socket],
                              stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(follow.stdout.readline())
        rig.json("sim", "plug")  # audited: a new event
        while True:
            entry = json.loads(follow.stdout.readline())
            assert entry["seq"] > first["seq"] and entry["kind"] == "event"
            if '"action":"plug"' in entry["text"]:
                break
    finally:
        follow.terminate()
        follow.wait(10)
    rig.json("sim", "unplug")


def test_json_everywhere_meter_list_and_usage_errors(rig: Rig):
    models = json.loads(CliRunner().invoke(main, ["meter", "--list", "--json"]).stdout)
    assert {"sdm630", "abb-b23", "em340"} <= {m["model"] for m in models}
    assert all(set(m) == {"model", "title", "aliases", "quantities", "requests"} for m in models)
    usage = rig.cli("availability", "1", "--json")
    assert usage.exit_code == 2
    assert json.loads(usage.stdout) == {"ok": False, "error": {
        "code": "usage", "message": "give the state too: operative or inoperative"}}
    bogus = CliRunner().invoke(main, ["status", "--json", "--bogus"])
    assert bogus.exit_code == 2 and json.loads(bogus.stdout)["error"]["code"] == "usage"
    plain = CliRunner().invoke(main, ["status", "--bogus"])
    assert plain.exit_code == 2 and "No such option" in plain.stderr and not plain.stdout

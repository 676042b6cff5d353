"""``chargepoint meter``: a meter read from the command line, without the daemon."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.cli import main
from chargepoint.cli.meter_check import MeterTarget, check_meter
from hal.meters.bus import BusSettings
from hal.meters.registermap import load_map
from hal.meters.simdevice import SimModbusDevice
from tests.integration.meter_rig import VALUES, PtyPair

CHARGEPOINT = str(Path(sys.executable).parent / "chargepoint")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_sim(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "hal.meters.simdevice", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    # It prints one line once it serves; bounded, so a broken start fails the test.
    ready, _, _ = select.select([proc.stdout], [], [], 15.0)
    line = proc.stdout.readline() if ready else ""
    if " on " not in line:
        stop(proc)
        raise AssertionError(f"simulated meter did not start: {line!r}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def test_list_and_usage_errors() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["meter", "--list"])
    assert listed.exit_code == 0
    for model in ("sdm630", "sdm72d-m", "sdm120", "abb-b23", "em340", "orno-we517"):
        assert model in listed.output
    no_model = runner.invoke(main, ["meter", "--port", "/dev/null"])
    assert no_model.exit_code == 2 and "--model" in no_model.output
    both = runner.invoke(main, ["meter", "--model", "sdm630", "--port", "/dev/x", "--host", "h"])
    assert both.exit_code == 2 and "exclude each other" in both.output
    nowhere = runner.invoke(main, ["meter", "--model", "sdm630"])
    assert nowhere.exit_code == 2 and "--port" in nowhere.output


def test_cli_reads_a_tcp_meter_as_json_and_reports_failures() -> None:
    port = free_port()
    sim = spawn_sim("--model", "abb-b23", "--tcp", f"127.0.0.1:{port}", "--unit", "2")
    try:
        ok = subprocess.run([CHARGEPOINT, "meter", "--model", "abb-b23", "--host", "127.0.0.1",
                             "--tcp-port", str(port), "--unit", "2", "--json"],
                            capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        doc = json.loads(ok.stdout)
        assert doc["ok"] and doc["model"] == "abb-b23" and doc["unit_id"] == 2
        assert doc["values"]["energy_import"] >= 1_234_560
        rows = {(r["measurand"], r["phase"]): r for r in doc["measurands"]}
        assert rows[("Voltage", "L1-N")]["value"] == 230.0 and rows[("Voltage", "L1-N")]["unit"] == "V"
        wrong = subprocess.run([CHARGEPOINT, "meter", "--model", "abb-b23", "--host", "127.0.0.1",
                                "--tcp-port", str(port), "--unit", "9", "--timeout", "0.2"],
                               capture_output=True, text=True, timeout=30)
        assert wrong.returncode == 1
        assert "no_answer" in wrong.stdout and "hint: check the unit id" in wrong.stdout
    finally:
        stop(sim)


def test_cli_reads_an_rtu_meter_as_a_table(tmp_path) -> None:
    pair = PtyPair(tmp_path / "ttyUSB0", tmp_path / "meter").start()
    sim = spawn_sim("--model", "sdm630", "--rtu", str(pair.b))
    try:
        table = subprocess.run([CHARGEPOINT, "meter", "--model", "sdm630", "--port", str(pair.a)],
                               capture_output=True, text=True, timeout=30)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].startswith(f"Eastron SDM630 v2 (sdm630), unit 1 on {pair.a} 9600 8N1")
        energy = next(line for line in lines if line.startswith("energy_import"))
        assert "Energy.Active.Import.Register" in energy and " Wh " in energy
        current = next(line for line in lines if line.startswith("current_l2"))
        assert current.split()[1] == "10.667" and current.endswith("L2")
    finally:
        stop(sim)
        pair.stop()


def test_cli_takes_the_meter_from_the_station_configuration(tmp_path) -> None:
    port = free_port()
    config = tmp_path / "chargepoint.toml"
    config.write_text(f"""
[station]
identity = "CP-1"
[ocpp]
csms_url = "ws://127.0.0.1:9000"
[meter]
kind = "modbus"
model = "orno-we517"
transport = "tcp"
host = "127.0.0.1"
tcp_port = {port}
unit_id = 5
[[connectors]]
id = 1
[[connectors]]
id = 2
""")
    sim = spawn_sim("--model", "orno-we517", "--tcp", f"127.0.0.1:{port}", "--unit", "6")
    try:
        result = subprocess.run([CHARGEPOINT, "meter", "--config", str(config), "--connector", "2", "--json"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        doc = json.loads(result.stdout)
        assert doc["unit_id"] == 6 and doc["values"]["power"] == pytest.approx(7360.0)
    finally:
        stop(sim)


async def test_watch_reads_again_and_flags_implausible_values() -> None:
    register_map = load_map("sdm120")
    device = SimModbusDevice(register_map, VALUES, unit_id=1)
    port = await device.serve_tcp()
    target = MeterTarget(register_map, BusSettings("tcp", host="127.0.0.1", tcp_port=port, timeout_s=0.2),
                         1, retries=0)
    lines: list[str] = []

    def out(text: str) -> None:
        lines.append(text)
        device.values["energy_import"] = 0.0  # the register falls back between reads

    try:
        ok = await check_meter(target, json_output=True, watch=True, interval_s=0.01, count=2, out=out)
    finally:
        await device.close()
    docs = [json.loads(line) for line in lines]
    assert docs[0]["ok"] and not docs[1]["ok"] and "backwards" in docs[1]["implausible"]
    assert not ok


# ------------------------------------------- failures in the words of the transport
SERIAL_WORDS = ("A/B", "baud", "parity")


def test_tcp_failures_do_not_talk_about_serial_wiring() -> None:
    port = free_port()  # nothing listens: connection refused
    refused = subprocess.run([CHARGEPOINT, "meter", "--model", "abb-b23", "--host", "127.0.0.1",
                              "--tcp-port", str(port), "--timeout", "0.2"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1
    assert "disconnected" in refused.stdout and "hint: check the host and TCP port" in refused.stdout
    sim = spawn_sim("--model", "abb-b23", "--tcp", f"127.0.0.1:{port}", "--unit", "2")
    try:
        silent = subprocess.run([CHARGEPOINT, "meter", "--model", "abb-b23", "--host", "127.0.0.1",
                                 "--tcp-port", str(port), "--unit", "9", "--timeout", "0.2"],
                                capture_output=True, text=True, timeout=30)
    finally:
        stop(sim)
    assert "no_answer" in silent.stdout and "gateway" in silent.stdout
    for text in (refused.stdout, silent.stdout):
        assert not any(word in text for word in SERIAL_WORDS), text


def test_a_missing_serial_port_is_told_apart_from_a_forbidden_one(tmp_path) -> None:
    from tests.integration.stranger import cli_as_nobody

    pair = PtyPair(tmp_path / "gone0", tmp_path / "gone1").start()
    gone = pair.pts[0] if pair.pts else ""
    pair.stop()  # the pty and its /dev/pts path are gone, as an unplugged USB adapter's
    assert gone and not os.path.exists(gone)
    missing = CliRunner().invoke(main, ["meter", "--model", "sdm630", "--port", gone, "--json"])
    doc = json.loads(missing.stdout)
    assert missing.exit_code == 1 and doc["failure"]["extra"] == {"cause": "missing"}
    assert "no such device" in doc["failure"]["detail"] and "/dev/serial/by-id" in doc["failure"]["detail"]

    pair = PtyPair(tmp_path / "ttyUSB0", tmp_path / "meter").start()
    try:
        device = pair.pts[0] if pair.pts else ""
        mode = os.stat(device).st_mode & 0o777
        os.chmod(device, 0)  # nobody may open it (root still may: the CLI runs as nobody then)
        try:
            args = ["meter", "--model", "sdm630", "--port", device]
            if os.geteuid() == 0:
                forbidden = cli_as_nobody(args)
            else:
                result = CliRunner().invoke(main, args)
                forbidden = {"code": result.exit_code, "stdout": result.stdout}
        finally:
            os.chmod(device, mode)
    finally:
        pair.stop()
    assert forbidden["code"] == 1
    text = forbidden["stdout"]
    assert "permission denied" in text and "usermod -aG" in text and "no such device" not in text
    assert "hint: the station's user must be in the group that owns the port" in text

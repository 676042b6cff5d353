"""Commissioning checks: ``chargepoint selftest``.

Everything here runs inside the daemon, which owns the hardware: the checks
read what the station and the safety loops already know (through the station
service), and the checks that move an output run the output tests of
``output_tests.py``, which go through the safety loop.

Each check passes, fails with the reason, or is skipped with the reason; the
report is JSON-ready (the CLI prints it as a table, as JSON, or as the plain
text report of ``report_text``). This module does not import rich: the daemon
never does.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import chargepoint
from chargepoint.config import Config
from chargepoint.config.placeholders import placeholders
from chargepoint.config.step_budget import STEP_BUDGET_S
from chargepoint.control import security_commands
from chargepoint.control.output_tests import (
    FAIL,
    PASS,
    SKIP,
    TestRefused,
    TestTarget,
    output_test_refusal,
    pilot_test,
    relay_test,
)
from chargepoint.core.views import ConnectorView
from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.status import EvseFault

if TYPE_CHECKING:
    from chargepoint.control.service import StationService

log = logging.getLogger(__name__)

#: Mains limits for the meter's plausibility check: 230 V +/-10 % (EN 50160), 50 +/- 1 Hz.
VOLTAGE_RANGE_V = (207.0, 253.0)
FREQUENCY_RANGE_HZ = (49.0, 51.0)
NETWORK_TIMEOUT_S = 5.0
#: Free space the state directory should have.
DISK_MIN_FREE_BYTES = 50 * 1024 * 1024


#: A check that passed with something to look at (the file still has an example value): not a failure.
WARN = "warn"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    connector: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "connector": self.connector, "status": self.status,
                "detail": self.detail}


# ------------------------------------------------------------------ selftest
async def run(d: StationService, connection: dict[str, Any]) -> dict[str, Any]:
    """Every commissioning check, in the order a technician reads them."""
    checks: list[Check] = [configuration_check(d.config)]
    if d.daemon.supervisor is not None:
        checks.append(supervisor_check(d.daemon.supervisor(), d.config.hal_backend == "raspberrypi",
                                       d.config.safety.tick_s))
    for evse_id in d.station.connectors:
        checks += await _connector_checks(d, d.test_target(evse_id))
    checks += await _csms_checks(d, connection)
    checks.append(await _clock_check())
    checks.append(await _disk_check(d))
    checks.append(await _database_check(d))
    checks.append(Check("certificates", *await security_commands.certificate_check(d.services.security)))
    counts = {status: sum(1 for ch in checks if ch.status == status) for status in (PASS, FAIL, SKIP, WARN)}
    station = d.config.station
    return {
        "result": FAIL if counts[FAIL] else PASS,
        "identity": station.identity, "vendor": station.vendor, "model": station.model,
        "serial_number": station.serial_number, "version": chargepoint.__version__,
        "hal": d.config.hal_backend, "csms_url": d.config.ocpp.csms_url, "time": time.time(),
        "counts": counts, "checks": [ch.as_dict() for ch in checks],
    }


def supervisor_check(s: dict[str, Any], station: bool, tick_s: float = 0.0) -> Check:
    """The safety supervisor answers and steps; on a station it runs real-time with locked memory, and
    with a heartbeat fitted its sleep plus its longest step stays within the charge pump's budget."""
    if not s["connected"]:
        return Check("supervisor", FAIL, f"the safety supervisor does not answer on {s['channel']} "
                                         "(systemctl status chargepoint-safety)")
    if not s.get("loops_alive", True):
        return Check("supervisor", FAIL, "a safety loop of the supervisor has stopped stepping")
    detail = (f"pid {s['pid']}, step p99 <= {s['step_p99_ms']} ms, max {s['step_max_ms']} ms, "
              f"scheduling {s['sched']}, memory {'locked' if s['memory_locked'] else 'not locked'}")
    if station and (s["sched"] != "fifo" or not s["memory_locked"]):
        return Check("supervisor", WARN, detail + ": not real-time (CPUSchedulingPolicy=fifo, LimitMEMLOCK "
                                                  "in chargepoint-safety.service)")
    longest = s.get("step_max_ms")
    if s.get("heartbeat") and longest is not None and tick_s * 1000 + longest > STEP_BUDGET_S * 1000:
        return Check("supervisor", WARN, f"{detail}: tick_s plus the longest step is more than the "
                                         f"{STEP_BUDGET_S * 1000:g} ms between heartbeat edges the charge "
                                         "pump allows; the contactor may drop (hardware.md, Hardware "
                                         "fail-safe)")
    return Check("supervisor", PASS, detail)


def configuration_check(config: Config) -> Check:
    """The file was valid (the daemon runs); a value left from the example files is a warning."""
    summary = (f"{config.source}: {config.station.identity}, {len(config.connectors)} connector(s), "
               f"hal {config.hal_backend}")
    left = placeholders(config)
    if left:
        return Check("configuration", WARN, f"{summary}; " + "; ".join(p.text() for p in left))
    return Check("configuration", PASS, summary)


async def _connector_checks(d: StationService, c: TestTarget) -> list[Check]:
    checks = [await _safety_loop_check(d, c), _meter_check(d, d.station.view(c.evse_id))]
    status = c.evse.status
    refusal = output_test_refusal(c)
    # Pilot in state A: what the safety loop reads now.
    if status.cp_state is CpState.A:
        levels = c.evse.pilot_levels
        shown = f" ({levels.high_v:+.1f} V)" if levels is not None else ""
        checks.append(Check("pilot_state_a", PASS, f"the pilot reads state A{shown}: no EV", c.evse_id))
    elif status.cp_state is None:
        checks.append(Check("pilot_state_a", FAIL, "the pilot reads no valid state (out of every band)",
                            c.evse_id))
    else:
        checks.append(Check("pilot_state_a", SKIP, f"an EV is connected (state {status.cp_state.value})",
                            c.evse_id))
    # The diode path and the relay: output tests, only with no EV and no session.
    if refusal is None:
        try:
            pilot = await pilot_test(c, d.clock, d.config.safety)
            checks.append(Check("diode_path", pilot["result"], pilot["detail"], c.evse_id))
        except TestRefused as exc:
            checks.append(Check("diode_path", SKIP, str(exc), c.evse_id))
        refusal = output_test_refusal(c)
    else:
        checks.append(Check("diode_path", SKIP, refusal, c.evse_id))
    if refusal is None:
        try:
            relay = await relay_test(c, d.clock, d.config.safety)
            checks.append(Check("relay", relay["result"], relay["detail"], c.evse_id))
        except TestRefused as exc:
            checks.append(Check("relay", SKIP, str(exc), c.evse_id))
    else:
        checks.append(Check("relay", SKIP, refusal, c.evse_id))
    checks.append(_pp_check(c))
    checks.append(_rcd_check(c))
    checks.append(heartbeat_check(c))
    return checks


#: Real seconds the safety loop is given to show a step: it steps in real time whatever the
#: simulation's speed, and the supervisor's events reach a busy daemon up to a second apart.
SAFETY_LOOP_WAIT_S = 3.0


async def _safety_loop_check(d: StationService, c: TestTarget) -> Check:
    loop = asyncio.get_running_loop()
    before = c.evse.last_step_monotonic
    deadline = loop.time() + SAFETY_LOOP_WAIT_S
    while c.evse.last_step_monotonic == before:
        if loop.time() > deadline:
            return Check("safety_loop", FAIL, f"{c.evse.name} has not stepped for {SAFETY_LOOP_WAIT_S:g} s",
                         c.evse_id)
        await asyncio.sleep(0.01)
    return Check("safety_loop", PASS, f"{c.evse.name} is stepping", c.evse_id)


def _meter_check(d: StationService, c: ConnectorView) -> Check:
    reading = c.last_reading
    if not c.meter_available:
        said = d.recorder.last_error("chargepoint.core") or "see chargepoint logs"
        return Check("meter", FAIL, f"no valid reading: {c.meter_failures} failed reads in a row ({said})",
                     c.evse_id)
    if reading is None:
        return Check("meter", FAIL, "no reading yet", c.evse_id)
    age = d.clock.time() - reading.timestamp
    limit = max(10.0, 5 * d.config.meter.poll_interval_s)
    if age > limit:
        return Check("meter", FAIL, f"the last reading is {age:.0f} s old", c.evse_id)
    low, high = VOLTAGE_RANGE_V
    volts = [v for v in reading.voltages_v if v is not None]
    problems = [f"L{i + 1} {v:.1f} V" for i, v in enumerate(reading.voltages_v)
                if v is not None and not low <= v <= high]
    freq = reading.frequency_hz
    if freq is not None and not FREQUENCY_RANGE_HZ[0] <= freq <= FREQUENCY_RANGE_HZ[1]:
        problems.append(f"{freq:.2f} Hz")
    shown = "/".join(f"{v:.1f}" for v in volts) + " V" if volts else "no voltages"
    shown += f", {freq:.2f} Hz" if freq is not None else ", no frequency"
    shown += f", {reading.energy_import_wh / 1000:.3f} kWh"
    if not volts:
        return Check("meter", FAIL, f"the meter reports no voltage: {shown}", c.evse_id)
    if problems:
        return Check("meter", FAIL, f"implausible: {', '.join(problems)} (expected {low:.0f}-{high:.0f} V, "
                                    f"{FREQUENCY_RANGE_HZ[0]:.0f}-{FREQUENCY_RANGE_HZ[1]:.0f} Hz)", c.evse_id)
    return Check("meter", PASS, shown, c.evse_id)


def _pp_check(c: TestTarget) -> Check:
    status = c.evse.status
    if EvseFault.PROXIMITY in status.faults:
        return Check("proximity", FAIL, "the PP resistor reads out of every band (a broken cable?)",
                     c.evse_id)
    if status.cable_max_a is not None:
        return Check("proximity", PASS, f"a cable rated {status.cable_max_a:g} A is inserted", c.evse_id)
    if status.cp_state is CpState.A:
        return Check("proximity", PASS, "no cable inserted (or a tethered cable without PP)", c.evse_id)
    return Check("proximity", SKIP, "an EV is connected but PP reads no rating (a tethered cable)", c.evse_id)


def _rcd_check(c: TestTarget) -> Check:
    faults = c.evse.status.faults
    tripped = sorted(f.value for f in faults & {EvseFault.RCD, EvseFault.EMERGENCY_STOP})
    if tripped:
        return Check("rcd", FAIL, f"latched: {', '.join(tripped)} (a trip or a failed self-test); "
                                  "inspect, then chargepoint fault clear", c.evse_id)
    return Check("rcd", SKIP, "the safety loop runs the RCD self-test before every session and latches an "
                              "RCD fault if it fails; no trip is latched now", c.evse_id)


def heartbeat_check(c: TestTarget) -> Check:
    """The heartbeat circuit's check, which the safety loop runs before every session (hardware.md,
    "Hardware fail-safe"): failed and latched, passed last time, or not run yet."""
    report = c.evse.heartbeat_check.report
    if EvseFault.HEARTBEAT in c.evse.status.faults:
        return Check("heartbeat", FAIL, report or "the heartbeat circuit failed its check (latched)",
                     c.evse_id)
    if report is None:
        return Check("heartbeat", SKIP, "not run yet: the safety loop checks the heartbeat circuit before "
                                        "every session, when an EV is plugged in", c.evse_id)
    if report.startswith("check passed"):
        return Check("heartbeat", PASS, report, c.evse_id)
    return Check("heartbeat", SKIP, report, c.evse_id)


async def _csms_checks(d: StationService, connection: dict[str, Any]) -> list[Check]:
    if d.config.ocpp.standalone:
        cards = len(d.daemon.cards.cards) if d.daemon.cards is not None else 0
        if not cards and not d.config.station.free_vend:
            return [Check("csms", WARN, "standalone (no ocpp.csms_url) without free vend and without local "
                                        "cards: nobody can charge; chargepoint cards add NAME TAG")]
        who = "free vend" if d.config.station.free_vend else "cards only"
        return [Check("csms", SKIP, f"standalone: no CSMS configured (ocpp.csms_url); {who}, "
                                    f"{cards} local card(s)")]
    url = urlparse(d.config.ocpp.csms_url)
    host = url.hostname or ""
    secure = url.scheme == "wss"
    port = url.port or (443 if secure else 80)
    loop = asyncio.get_running_loop()
    checks = []
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = sorted({str(info[4][0]) for info in infos})
        checks.append(Check("csms_dns", PASS, f"{host} -> {', '.join(addresses)}"))
    except (OSError, TimeoutError) as exc:
        checks.append(Check("csms_dns", FAIL, f"cannot resolve {host}: {_why(exc)}"))
        checks.append(Check("csms_tcp", SKIP, "the host name did not resolve"))
        checks.append(Check("csms_tls", SKIP, "the host name did not resolve"))
        checks.append(_boot_check(connection))
        return checks
    started = time.monotonic()
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT_S):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        checks.append(Check("csms_tcp", PASS, f"{host}:{port} accepts connections "
                                              f"({(time.monotonic() - started) * 1000:.0f} ms)"))
        tcp_ok = True
    except (OSError, TimeoutError) as exc:
        checks.append(Check("csms_tcp", FAIL, f"{host}:{port}: {_why(exc)}"))
        tcp_ok = False
    if not secure:
        checks.append(Check("csms_tls", SKIP, "ws:// URL: no TLS (security profile 0 or 1)"))
    elif not tcp_ok:
        checks.append(Check("csms_tls", SKIP, "no TCP connection"))
    else:
        checks.append(await _tls_check(d, host, port))
    checks.append(_boot_check(connection))
    return checks


async def _tls_check(d: StationService, host: str, port: int) -> Check:
    from chargepoint.connection import tls_context

    try:
        context = await asyncio.to_thread(tls_context, d.config.ocpp.ca_bundle)
        async with asyncio.timeout(NETWORK_TIMEOUT_S):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
        cert = writer.get_extra_info("peercert") or {}
        writer.close()
    except ssl.SSLCertVerificationError as exc:
        return Check("csms_tls", FAIL, f"certificate not trusted: {exc.verify_message}")
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return Check("csms_tls", FAIL, f"TLS handshake failed: {_why(exc)}")
    not_after = cert.get("notAfter")
    days = None
    if not_after:
        days = (ssl.cert_time_to_seconds(not_after) - time.time()) / 86400
    subject = dict(item[0] for item in cert.get("subject", ()) if item)
    issuer = dict(item[0] for item in cert.get("issuer", ()) if item)
    detail = (f"certificate for {subject.get('commonName', host)} from "
              f"{issuer.get('commonName', issuer.get('organizationName', '?'))} checked against "
              f"{d.config.ocpp.ca_bundle or 'the system CA store'}")
    if days is not None:
        detail += f", valid until {not_after} ({days:.0f} days)"
        if days < 14:
            return Check("csms_tls", FAIL, detail + ": renew it")
    return Check("csms_tls", PASS, detail)


def _boot_check(connection: dict[str, Any]) -> Check:
    if connection["connected"] and connection["boot"] == "accepted":
        return Check("csms_boot", PASS, f"connected, BootNotification accepted "
                                        f"({connection['connections']} connection(s) since start)")
    if connection["connected"]:
        return Check("csms_boot", FAIL, "connected, but the CSMS has not accepted the BootNotification "
                                        "(Pending or Rejected: is the station registered there?)")
    return Check("csms_boot", FAIL, "not connected to the CSMS"
                 + (f": {connection['last_error']}" if connection.get("last_error") else ""))


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {NETWORK_TIMEOUT_S:g} s"
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


#: adjtimex(2) answers TIME_ERROR while the kernel clock is not synchronized.
TIME_ERROR = 5
#: The clock cannot be right before this release was made (2025-01-01).
EARLIEST_PLAUSIBLE = 1735689600


def _kernel_clock_synchronized() -> bool | None:
    """Whether the kernel clock is NTP-synchronized (adjtimex), None if it cannot be asked."""
    import ctypes
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        buffer = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0 only reads
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


async def _clock_check() -> Check:
    now = time.time()
    if now < EARLIEST_PLAUSIBLE:
        return Check("clock", FAIL, f"the clock says {time.strftime('%Y-%m-%d', time.gmtime(now))}: "
                                    "not set (no RTC and no NTP yet?)")
    shown = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    if await asyncio.to_thread(Path("/run/systemd/timesync/synchronized").exists):
        return Check("clock", PASS, f"{shown}, synchronized (systemd-timesyncd)")
    synced = await asyncio.to_thread(_kernel_clock_synchronized)
    if synced is None:
        return Check("clock", SKIP, f"{shown}; whether it is synchronized cannot be told here")
    if synced:
        return Check("clock", PASS, f"{shown}, synchronized (kernel NTP state)")
    return Check("clock", FAIL, f"{shown}, not synchronized: check NTP (timedatectl)")


async def _disk_check(d: StationService) -> Check:
    state_dir = d.config.station.state_dir
    try:
        usage = await asyncio.to_thread(shutil.disk_usage, state_dir)
    except OSError as exc:
        return Check("disk", FAIL, f"{state_dir}: {exc.strerror or exc}")
    free_mb = usage.free / 1024 / 1024
    share = usage.free / usage.total if usage.total else 0.0
    detail = f"{state_dir}: {free_mb:.0f} MiB free ({share:.0%})"
    if usage.free < DISK_MIN_FREE_BYTES or share < 0.05:
        return Check("disk", FAIL, detail + ": too little")
    return Check("disk", PASS, detail)


async def _database_check(d: StationService) -> Check:
    store = d.store
    if store is None:
        return Check("database", FAIL, "the state database is not open")
    try:
        result = await store.call(store.check_integrity)
        version = await store.call(store.schema_version)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return Check("database", FAIL, f"{store.path}: {exc}")
    if result != "ok":
        return Check("database", FAIL, f"{store.path}: integrity check: {result}")
    return Check("database", PASS, f"{store.path}: integrity ok, schema {version}, "
                                   f"{len(d.outbox)} message(s) queued")


# --------------------------------------------------------------------- report
def report_text(report: dict[str, Any]) -> str:
    """The plain text report a technician hands over."""
    lines = [
        "chargepoint commissioning self-test",
        "",
        f"station     {report['identity']} ({report['vendor']} {report['model']}"
        + (f", serial {report['serial_number']}" if report.get("serial_number") else "") + ")",
        f"software    chargepoint {report['version']}, hal {report['hal']}",
        f"CSMS        {report['csms_url'] or 'none (standalone)'}",
        f"date        {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(report['time']))}",
        "",
    ]
    width = max(len(_label(ch)) for ch in report["checks"])
    for ch in report["checks"]:
        lines.append(f"{ch['status'].upper():<5} {_label(ch):<{width}}  {ch['detail']}")
    counts = report["counts"]
    lines += ["", f"result      {report['result'].upper()}: {counts['pass']} passed, "
                  f"{counts['fail']} failed, {counts['skip']} skipped"
                  + (f", {counts['warn']} warning(s)" if counts.get("warn") else "")]
    return "\n".join(lines) + "\n"


def _label(check: dict[str, Any]) -> str:
    return f"{check['name']}[{check['connector']}]" if check.get("connector") else check["name"]

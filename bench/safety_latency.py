"""Safety latency in the supervisor process: CP change seen by the driver -> contactor open, and step time.

Two processes, as on a station: the safety supervisor (bench/pi_supervisor.py:
``chargepoint.supervisor.main.Supervisor`` over the Raspberry Pi board of
examples/raspberrypi.toml, with fakes only at the hardware boundaries, asking
for SCHED_FIFO as its systemd unit grants it, memory locked) and the daemon
(``chargepoint run --config FILE``, attached over the supervisor's channel,
OCPP to a CSMS on loopback, web dashboard and MQTT on). The loads run against
the daemon and the machine; the measurements are taken in the supervisor.

An "EV" thread in the supervisor's process charges (state C, contactor
closed), switches to state B at a random phase of the loop and waits for the
contactor to open, then back to C, and so on. Per event: *seen* is when the
ADC fake hands the driver the first AIN0 conversion that shows B; *open* is
when the coil's GPIO goes low; both ``time.perf_counter()`` in the supervisor.
Besides, the duration of every safety-loop step (what the supervisor's status
reports as step_p99_ms / step_max_ms) per phase.

Phases, in order, on the same two processes:

* quiet: the CSMS only answers what the station sends;
* web: bench/web_load.py reads the dashboard (state, /metrics, live streams,
  streams never read, a login guesser);
* flood: the CSMS sends GetConfiguration and 64 KiB DataTransfer CALLs back to back;
* mqtt / mqtt+cmd (mosquitto installed): the station's feed at its fastest
  interval (0.1 s); then also a client flooding the command topics with
  malformed commands;
* cpu: two CPU-bound processes at normal priority;
* pip: a firmware install: fresh venvs with this checkout's wheel installed
  (``pip install --no-index --no-deps``, offline), one after the other;
* kill: the daemon is SIGKILLed a third of the way through the phase and a new
  one started two thirds through (it reattaches to the charging connector).

``--runs`` repeats the phases on the same processes; the summary is the median
of the runs, with each phase's p99 as a ratio to the quiet phase of its run,
next to the targets (p99 <= 2 ms, longest step <= 10 ms). It asserts nothing.

    .venv/bin/python bench/safety_latency.py                      # 3 runs x 1000 events per phase
    .venv/bin/python bench/safety_latency.py --runs 1 --events 200
    .venv/bin/python bench/safety_latency.py --phases quiet,kill --fifo 0   # without SCHED_FIFO
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loads import (  # noqa: E402
    CpuHogs,
    CsmsProcess,
    FirmwareInstall,
    MeterProcess,
    MqttLoad,
    WebLoad,
    build_wheel,
    child_setup,
    free_port,
    web_login,
)
from bench.pi_supervisor import pi_profile, toml_text  # noqa: E402

IDENTITY = "CP-BENCH"
WEB_PASSWORD = "bench-password"
IEC_LIMIT_MS = 100.0
TARGET_P99_MS = 2.0
TARGET_STEP_MAX_MS = 10.0
PHASES = ("quiet", "web", "flood", "mqtt", "mqtt+cmd", "cpu", "pip", "kill")


def write_config(tmp: Path, args: argparse.Namespace, csms_port: int, meter_port: int,
                 web_port: int, mqtt: dict[str, Any] | None) -> Path:
    data = pi_profile(tmp, IDENTITY)
    data["station"]["free_vend"] = True
    data["ocpp"].update(csms_url=f"ws://127.0.0.1:{csms_port}/ocpp", versions=["1.6"], reconnect_min_s=0.2,
                        reconnect_max_s=1.0)
    data["meter"] = {"kind": "modbus", "model": "sdm630", "transport": "tcp", "host": "127.0.0.1",
                     "tcp_port": meter_port, "unit_id": 1}
    data["safety"]["orphan_grace_s"] = 600.0
    if args.tick is not None:
        data["safety"]["tick_s"] = args.tick
    if args.adc is not None and args.adc != data["board"]["adc"]["type"]:
        data["board"]["adc"].update(type=args.adc, data_rate={"ads1115": 860, "ads1015": 3300}[args.adc])
    data["web"] = {"enabled": True, "port": web_port}
    if mqtt is not None:
        data["mqtt"] = mqtt
    path = tmp / "chargepoint.toml"
    path.write_text(toml_text(data))
    return path


class SupervisorProcess:
    """bench/pi_supervisor.py --probe: one JSON line per request."""

    def __init__(self, config: Path, fifo: int, switch_ms: float | None, log: Path) -> None:
        argv = [sys.executable, str(ROOT / "bench" / "pi_supervisor.py"), "--config", str(config), "--probe",
                "--fifo", str(fifo)]
        if switch_ms is not None:
            argv += ["--switch-interval-ms", str(switch_ms)]
        with log.open("ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         text=True, preexec_fn=child_setup())
        self.log = log
        self.ready = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the supervisor exited:\n{self.log.read_text()[-2000:]}")
        return dict(json.loads(line))

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if answer.get("error"):
            raise RuntimeError(f"supervisor: {command}: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            self.proc.communicate("quit\n", timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class DaemonProcess:
    """``chargepoint run --config FILE`` at normal priority."""

    def __init__(self, config: Path, log: Path) -> None:
        chargepoint = Path(sys.executable).parent / "chargepoint"
        self.argv = [str(chargepoint) if chargepoint.exists() else "chargepoint", "run", "--config",
                     str(config), "--log-level", "warning"]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         preexec_fn=child_setup())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(condition: Any, timeout_s: float, what: str, daemon: DaemonProcess | None = None) -> float:
    """Poll ``condition`` every 10 ms; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
            raise RuntimeError(f"the daemon exited ({daemon.proc.returncode}):\n"
                               f"{daemon.log.read_text()[-2000:]}")
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{what}: not after {timeout_s:g} s")
        time.sleep(0.01)
    return time.monotonic() - started


class Bench:
    """The processes of one bench session and its phases."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.csms = CsmsProcess(args.payload_kb)
        self.meter = MeterProcess()
        self.mqtt: MqttLoad | None = None
        phases = args.phases.split(",")
        if any(p.startswith("mqtt") for p in phases):
            if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
                self.mqtt = MqttLoad(tmp / "broker", f"chargepoint/{IDENTITY}")
            else:
                print("mosquitto not installed: the MQTT phases are left out", flush=True)
        self.phases = [p for p in phases if self.mqtt is not None or not p.startswith("mqtt")]
        self.web_port = free_port()
        self.config = write_config(tmp, args, self.csms.port, self.meter.port, self.web_port,
                                   self.mqtt.settings(args.mqtt_interval) if self.mqtt else None)
        from chargepoint.web.passwords import hash_password, write_hash

        (tmp / "state").mkdir()
        write_hash(tmp / "state", hash_password(WEB_PASSWORD))
        self.wheel = None
        if "pip" in self.phases:
            print("building this checkout's wheel for the firmware-install phase ...", flush=True)
            self.wheel = build_wheel(tmp / "wheel")
        self.supervisor = SupervisorProcess(self.config, args.fifo, args.switch_interval_ms,
                                            tmp / "supervisor.log")
        self.daemon = DaemonProcess(self.config, tmp / "daemon.log")
        self.daemon.start()
        wait_for(lambda: self.csms.stats()["boots"] >= 1, 60, "the daemon's BootNotification", self.daemon)
        self.supervisor.ask("plug")
        time.sleep(0.5)
        self.reattach_s: list[float] = []
        self.cookie = ""

    def events(self, count: int) -> dict[str, Any]:
        self.supervisor.ask(f"events {count}")
        return self.supervisor.ask("wait")

    def phase(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """One phase: the supervisor's measurements and the load's own figures."""
        n = self.args.events
        if name == "quiet":
            return self.events(n), {}
        if name == "web":
            self.cookie = self.cookie or web_login(self.web_port, WEB_PASSWORD)
            web = WebLoad(self.web_port, self.cookie)
            time.sleep(1.0)
            result = self.events(n)
            return result, web.close()
        if name == "flood":
            self.csms.send("flood")
            time.sleep(1.0)
            before, started = self.csms.stats(), time.monotonic()
            result = self.events(n)
            after, elapsed = self.csms.stats(), time.monotonic() - started
            self.csms.send("quiet")
            calls = after["answers"] - before["answers"]
            return result, {"calls_per_s": calls / elapsed, "calls": calls,
                            "mb_per_s": (after["bytes"] - before["bytes"]) / elapsed / 1e6,
                            "callerrors": after["errors"] - before["errors"]}
        if name.startswith("mqtt"):
            assert self.mqtt is not None
            self.mqtt.start(hostile=name == "mqtt+cmd")
            time.sleep(1.0)
            result = self.events(n)
            return result, self.mqtt.stop()
        if name == "cpu":
            hogs = CpuHogs(2)
            time.sleep(1.0)
            result = self.events(n)
            return result, hogs.close()
        if name == "pip":
            assert self.wheel is not None
            install = FirmwareInstall(self.wheel, self.tmp / "firmware")
            time.sleep(1.0)
            result = self.events(n)
            return result, install.close()
        if name == "kill":
            return self.kill_phase(n)
        raise SystemExit(f"unknown phase {name!r}; known: {', '.join(PHASES)}")

    def kill_phase(self, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self.supervisor.ask(f"events {n}")
        wait_for(lambda: self.supervisor.ask("progress")["done"] >= n // 3, 120, "a third of the events")
        self.daemon.kill()
        killed_at = self.supervisor.ask("progress")["done"]
        wait_for(lambda: self.supervisor.ask("progress")["done"] >= 2 * n // 3, 120,
                 "two thirds of the events")
        self.daemon.start()
        restarted_at = self.supervisor.ask("progress")["done"]
        back = wait_for(lambda: self.supervisor.ask("progress")["controller"], 60, "the new daemon attaching",
                        self.daemon)
        self.reattach_s.append(back)
        result = self.supervisor.ask("wait")
        return result, {"killed_after": killed_at, "restarted_after": restarted_at, "reattached_s": back}

    def close(self) -> None:
        for step in (self.daemon.stop, self.supervisor.close, self.csms.close, self.meter.close,
                     self.mqtt.close if self.mqtt else None):
            if step is not None:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - stop the rest all the same
                    print(f"closing: {exc}", file=sys.stderr)


# ------------------------------------------------------------------ figures
def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100.0
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def figures(result: dict[str, Any]) -> dict[str, float]:
    lat, steps = result["latency_ms"], result["step_ms"]
    return {"events": len(lat), "p50": percentile(lat, 50), "p90": percentile(lat, 90),
            "p99": percentile(lat, 99), "max": max(lat, default=float("nan")), "steps": len(steps),
            "step_p50": percentile(steps, 50), "step_p99": percentile(steps, 99),
            "step_max": max(steps, default=float("nan"))}


def load_text(name: str, load: dict[str, Any]) -> str:
    if name == "flood":
        return (f"{load['calls_per_s']:.0f} CALLs/s (GetConfiguration + DataTransfer alternating), "
                f"{load['mb_per_s']:.1f} MB/s, {load['callerrors']} CALLERRORs")
    if name.startswith("mqtt"):
        hostile = f", hostile client sent {load['sent_per_s']:.0f}/s" if name == "mqtt+cmd" else ""
        return (f"station published {load['published_per_s']:.0f} msg/s, answered "
                f"{load['answered_per_s']:.1f} commands/s{hostile}")
    if name == "web":
        total = sum(v for k, v in load.items() if k.startswith("/"))
        return f"{total} requests answered, {load.get('live chunks', 0)} live chunks, " \
               f"{sum(v for k, v in load.items() if k.startswith('login'))} logins refused"
    if name == "pip":
        per = load["s_per_install"]
        return f"{load['installs']} venv + pip installs" + (f", {per:.1f} s each" if per else "") + \
            (f"; ERROR {load['error']}" if load.get("error") else "")
    if name == "kill":
        return (f"SIGKILL after {load['killed_after']} events, new daemon started after "
                f"{load['restarted_after']}, attached {load['reattached_s']:.2f} s later")
    if name == "cpu":
        return f"{load['processes']} CPU-bound processes at nice 0"
    return "-"


def report_run(index: int, rows: dict[str, dict[str, float]], loads: dict[str, str]) -> None:
    print(f"\nrun {index}: contactor-open latency (ms) and step duration (ms) per phase")
    print(f"{'phase':<9}{'events':>7}{'p50':>7}{'p90':>7}{'p99':>7}{'max':>7}{'steps':>8}{'s.p50':>7}"
          f"{'s.p99':>7}{'s.max':>7}  load")
    for name, f in rows.items():
        print(f"{name:<9}{f['events']:>7}{f['p50']:>7.2f}{f['p90']:>7.2f}{f['p99']:>7.2f}{f['max']:>7.2f}"
              f"{f['steps']:>8}{f['step_p50']:>7.2f}{f['step_p99']:>7.2f}{f['step_max']:>7.2f}"
              f"  {loads[name]}")


def report_summary(runs: list[dict[str, dict[str, float]]]) -> None:
    def med(name: str, key: str) -> float:
        return statistics.median(run[name][key] for run in runs if name in run)

    def ratio(name: str) -> float:
        return statistics.median(run[name]["p99"] / run["quiet"]["p99"] for run in runs)

    def verdict(ok: bool) -> str:
        return "yes" if ok else "NO"

    print(f"\nmedians over {len(runs)} run(s) (ms); targets: p99 <= {TARGET_P99_MS:g} ms (of the latency, "
          f"and of the steps), longest step <= {TARGET_STEP_MAX_MS:g} ms; IEC 61851-1 limit "
          f"{IEC_LIMIT_MS:g} ms")
    print(f"{'phase':<9}{'p50':>7}{'p99':>7}{'max':>7}{'p99/quiet':>10}{'s.p50':>7}{'s.p99':>7}{'s.max':>7}"
          f"{'worst s.max':>12}  {'p99<=2':>6} {'s.p99<=2':>8} {'s.max<=10':>9}")
    for name in runs[0]:
        worst = max(run[name]["step_max"] for run in runs)
        q = f"{ratio(name):.2f}x" if "quiet" in runs[0] else "-"
        print(f"{name:<9}{med(name, 'p50'):>7.2f}{med(name, 'p99'):>7.2f}{med(name, 'max'):>7.2f}{q:>10}"
              f"{med(name, 'step_p50'):>7.2f}{med(name, 'step_p99'):>7.2f}{med(name, 'step_max'):>7.2f}"
              f"{worst:>12.2f}  {verdict(med(name, 'p99') <= TARGET_P99_MS):>6} "
              f"{verdict(med(name, 'step_p99') <= TARGET_P99_MS):>8} "
              f"{verdict(worst <= TARGET_STEP_MAX_MS):>9}")


def header(args: argparse.Namespace, info: dict[str, Any], config: Path) -> None:
    board = tomllib.loads(config.read_text())
    adc, safety = board["board"]["adc"], board["safety"]
    print(f"safety latency in the supervisor process ({platform.python_implementation()} "
          f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f})")
    print(f"profile examples/raspberrypi.toml: {adc['type']} at {adc['data_rate']} SPS (conversions in real "
          f"time), tick {safety['tick_s'] * 1000:g} ms; {args.events} events per phase, {args.runs} run(s)")
    fifo = "granted" if info["sched"] == "fifo" else f"NOT granted ({info['sched']})"
    print(f"supervisor: SCHED_FIFO {args.fifo} {fifo} (loop thread fifo: {info['loop_thread_fifo']}), memory "
          f"{'locked' if info['memory_locked'] else 'NOT locked: ' + str(info['mlock_error'])}, "
          f"thread stack {info['thread_stack_bytes'] // 1024 or 8192} KiB, GIL switch interval "
          f"{info['switch_interval_ms']:g} ms, threads {info['threads']}")


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="safety-latency-") as name:
        tmp = Path(name)
        bench = Bench(args, tmp)
        runs: list[dict[str, dict[str, float]]] = []
        patterns: collections.Counter[str] = collections.Counter()
        try:
            header(args, bench.supervisor.ready, bench.config)
            for index in range(1, args.runs + 1):
                rows, loads = {}, {}
                for phase in bench.phases:
                    print(f"run {index}/{args.runs}: {phase} ...", flush=True)
                    result, load = bench.phase(phase)
                    if result.get("error"):
                        raise RuntimeError(f"{phase}: {result['error']}")
                    rows[phase], loads[phase] = figures(result), load_text(phase, load)
                    patterns.update(result.get("conversions_after_seen", {}))
                report_run(index, rows, loads)
                runs.append(rows)
            info = bench.supervisor.ask("info")
        finally:
            bench.close()
    print(f"\nthe supervisor's own status at the end: step_p99_ms {info['step_p99_ms']} (histogram bucket "
          f"bound), step_max_ms {info['step_max_ms']}, gc_longest_ms {info['gc_longest_ms']}, "
          f"{info['steps']} steps")
    total = sum(patterns.values())
    print("conversions between seen and open (AIN0 CP+, AIN1 CP-, AIN2 PP), share of events: " + ", ".join(
        f"{' '.join('AIN' + c for c in k) or 'none'} {v / total:.1%}" for k, v in patterns.most_common(4)))
    report_summary(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="C -> B events per phase")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of all phases (medians)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"in order, of: {', '.join(PHASES)}")
    parser.add_argument("--fifo", type=int, default=40,
                        help="SCHED_FIFO priority the supervisor asks for (its unit's 40); 0: none")
    parser.add_argument("--tick", type=float, default=None, help="safety tick in s (default: the profile's)")
    parser.add_argument("--adc", choices=("ads1115", "ads1015"), default=None,
                        help="the front end's ADC (default: the profile's)")
    parser.add_argument("--payload-kb", type=int, default=64, help="DataTransfer data size in KiB")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="the supervisor's GIL switch interval (default: what the supervisor sets)")
    parser.add_argument("--mqtt-interval", type=float, default=0.1,
                        help="the station's MQTT publish interval (s; 0.1 is the least it takes)")
    args = parser.parse_args()
    if args.events < 3 or args.runs < 1:
        parser.error("--events must be at least 3 and --runs at least 1")
    run(args)


if __name__ == "__main__":
    main()

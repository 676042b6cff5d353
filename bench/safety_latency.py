"""Safety latency on the Raspberry Pi backends: CP change seen by the driver -> contactor-open call.

The daemon runs in this process exactly as on a station -- built by
``chargepoint.backends.raspberrypi`` from examples/raspberrypi.toml, safety loop in its own
thread on the real clock, OCPP on the asyncio loop -- with fakes only at the
hardware boundaries (tests/unit/pi_fakes.py): the sysfs PWM tree, an ADS1115
fake whose conversions take their real time (1/DR), gpiozero's mock pins.

An "EV" thread charges (state C, contactor closed), then switches to state B
and waits for the contactor to open, then back to C, and so on. For each
event two instants are taken with ``time.perf_counter``:

* seen: the ADS1115 fake hands the driver the first conversion of the
  positive peak detector (AIN0) that shows state B;
* open: the coil's GPIO goes low (gpiozero's pin changes, from the safety
  loop's ``set_closed(False)``).

Three phases in the same run, on the same daemon:

* quiet: the CSMS (a subprocess on loopback) only answers what the station sends;
* web: the station's web dashboard (bench/web_load.py, a niced subprocess) is
  read by workers fetching the state and /metrics back to back, by open
  live streams, by live streams that are never read, and by a login guesser;
* flood: the CSMS also sends GetConfiguration and DataTransfer CALLs (each
  with a --payload-kb data string) back to back -- the next as soon as the
  previous is answered, one outstanding CALL as OCPP allows -- so the
  station's event loop parses, validates and answers frames all the time.
  (Until the OCPP Core work answers them, DataTransfer/GetConfiguration may
  come back as CALLERROR NotImplemented: the frames are parsed and answered
  all the same.)

* mqtt (``--mqtt``): the CSMS quiet again; a mosquitto broker on loopback, the station's MQTT
  feed with commands on, the state of every topic republished ``--mqtt-rate`` times a second;
* mqtt+cmd (``--mqtt``): the same, and a hostile client (a subprocess) flooding the command
  topics with malformed commands: a few a second are parsed, refused, logged (rate-limited) and
  answered on the result topic, the rest dropped unread.

Besides the event latency it records the duration of every safety-loop step
(the figure /metrics shows as chargepoint_safety_tick_seconds) per phase.

It prints p50/p90/p99/max per phase, the flood's rate, and the IEC 61851
limit (100 ms) and the project's target (p99 <= 10 ms under load) next to
them. It asserts nothing.

    .venv/bin/python bench/safety_latency.py               # 1000 events per phase
    .venv/bin/python bench/safety_latency.py --events 200  # quicker
    .venv/bin/python bench/safety_latency.py --tick 0.005 --adc ads1015
    .venv/bin/python bench/safety_latency.py --mqtt        # and the MQTT phase (needs mosquitto)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "examples" / "raspberrypi.toml"
IEC_LIMIT_MS = 100.0
TARGET_P99_MS = 10.0
WEB_PASSWORD = "bench-password"

# ------------------------------------------------------------------ the CSMS (subprocess)


def serve_csms(payload_kb: int) -> None:
    """A loopback OCPP 1.6J CSMS on raw JSON frames; flood on/off through stdin."""
    import websockets
    from websockets.asyncio.server import serve

    state = {"flood": False, "calls": 0, "answers": 0, "errors": 0, "bytes": 0}
    ids = itertools.count(1)
    data = "x" * (payload_kb * 1024)

    def result(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": now, "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action in ("Authorize",):
            return {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            return {"transactionId": 1, "idTagInfo": {"status": "Accepted"}}
        if action == "StopTransaction":
            return {"idTagInfo": {"status": "Accepted"}}
        if action == "DataTransfer":
            return {"status": "Accepted"}
        return {}

    async def handler(ws: Any) -> None:
        pending: dict[str, asyncio.Future[Any]] = {}

        async def reader() -> None:
            async for frame in ws:
                message = json.loads(frame)
                if message[0] == 2:
                    await ws.send(json.dumps([3, message[1], result(message[2], message[3])]))
                elif message[1] in pending:
                    pending.pop(message[1]).set_result(message[0])

        async def flooder() -> None:
            for n in itertools.count():
                if not state["flood"]:
                    await asyncio.sleep(0.01)
                    continue
                unique = f"f{next(ids)}"
                if n % 2:
                    call = [2, unique, "GetConfiguration", {}]
                else:
                    call = [2, unique, "DataTransfer", {"vendorId": "bench", "messageId": "flood",
                                                         "data": data}]
                text = json.dumps(call)
                answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                pending[unique] = answer
                await ws.send(text)
                state["calls"] += 1
                state["bytes"] += len(text)
                try:
                    kind = await asyncio.wait_for(answer, 10)
                except TimeoutError:
                    pending.pop(unique, None)
                    continue
                state["answers"] += 1
                state["errors"] += kind == 4

        read = asyncio.ensure_future(reader())
        flood = asyncio.ensure_future(flooder())
        try:
            await read
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            flood.cancel()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"], max_size=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(f"PORT {port}", flush=True)
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                command = line.strip()
                if command in ("", "quit"):
                    return
                if command == "flood":
                    state["flood"] = True
                elif command == "quiet":
                    state["flood"] = False
                elif command == "stats":
                    print("STATS " + json.dumps(state), flush=True)

    asyncio.run(main())


class CsmsProcess:
    def __init__(self, payload_kb: int) -> None:
        # Niced: on a station the CSMS is another machine; here it shares the CPUs and
        # should not take them from the station it is loading.
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-csms", "--payload-kb", str(payload_kb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(10))
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            raise RuntimeError(f"CSMS did not start: {line!r}")
        self.port = int(line.split()[1])

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stats(self) -> dict[str, Any]:
        self.send("stats")
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        return json.loads(line.removeprefix("STATS "))

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)


# ------------------------------------------------------------------ MQTT load (broker, flood: subprocesses)

#: The hostile client stops by itself after this many messages or seconds.
MQTT_FLOOD_MAX = 2_000_000
MQTT_FLOOD_S = 300.0


def mqtt_flood(port: int) -> None:
    """A client publishing malformed commands to the station's command topics, as fast as it can.

    Bounded: it stops at MQTT_FLOOD_MAX messages, after MQTT_FLOOD_S seconds, or when stdin closes.
    """
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-flood")
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    junk = ["{not json", "[1, 2]", '{"id_tag": 5}', "x" * 2000, "maybe", '{"limit": 6}']
    started = time.monotonic()
    for n in range(MQTT_FLOOD_MAX):
        if stop.is_set() or time.monotonic() - started > MQTT_FLOOD_S:
            break
        name = ("start", "stop", "availability")[n % 3]
        client.publish(f"chargepoint/CP-BENCH/connector/1/cmd/{name}", junk[n % len(junk)], qos=0)
        if n % 200 == 199:
            time.sleep(0.005)  # let paho's thread write; the broker drops what a client cannot take
    client.loop_stop()
    client.disconnect()


class MqttLoad:
    """The MQTT phase: a broker, the station's feed publishing at a high rate, a hostile client."""

    def __init__(self, root: Path, rate_hz: float) -> None:
        from tests.mqtt_broker import Mosquitto

        self.broker = Mosquitto(root).start()
        self.rate_hz = rate_hz

    def settings(self) -> dict[str, Any]:
        return {"enabled": True, "host": "127.0.0.1", "port": self.broker.port, "commands": True,
                "reconnect_min_s": 0.2, "reconnect_max_s": 1.0}

    async def phase(self, daemon: Any, station: Station, events: int,
                    hostile: bool) -> tuple[list[float], dict[str, Any]]:
        """``events`` C -> B events under MQTT load (``hostile``: and the command flood); their
        latencies and the load's figures."""
        bridge = daemon.mqtt
        await asyncio.wait_for(bridge.connected.wait(), 10)
        refreshes = [0]
        bridge.watch.after_refresh.append(lambda: refreshes.__setitem__(0, refreshes[0] + 1))

        async def republish() -> None:
            while True:
                bridge.outlet.resend_all()  # every retained topic again, changed or not
                bridge.watch.refresh()
                await asyncio.sleep(1.0 / self.rate_hz)

        flood = subprocess.Popen([sys.executable, __file__, "--mqtt-flood", str(self.broker.port)],
                                 stdin=subprocess.PIPE, preexec_fn=lambda: os.nice(10)) if hostile else None
        load = asyncio.ensure_future(republish())
        commands = bridge.commands
        handled = [0]
        original = commands.handle

        async def counted(*a: Any) -> Any:
            handled[0] += 1
            return await original(*a)

        commands.handle = counted
        await asyncio.sleep(1.0)
        published, refreshed, started = bridge.published, refreshes[0], time.monotonic()
        handled[0], dropped = 0, bridge.commands_dropped
        try:
            latencies = await asyncio.to_thread(station.events, events)
        finally:
            elapsed = time.monotonic() - started
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
            commands.handle = original  # type: ignore[method-assign]
            bridge.watch.after_refresh.clear()
            if flood is not None:
                flood.stdin.close()  # type: ignore[union-attr]
                flood.wait(timeout=10)
        return latencies, {"published_per_s": (bridge.published - published) / elapsed,
                           "refreshes_per_s": (refreshes[0] - refreshed) / elapsed,
                           "handled_per_s": handled[0] / elapsed,
                           "commands_per_s": (handled[0] + bridge.commands_dropped - dropped) / elapsed,
                           "connections": bridge.connections}

    def close(self) -> None:
        self.broker.close()


# ------------------------------------------------------------------ the station on fakes


class Station:
    """The daemon on the Pi backends with fakes, plus the instruments."""

    def __init__(self, tmp: Path, csms_port: int, tick_s: float, adc: str,
                 mqtt: dict[str, Any] | None = None) -> None:
        from chargepoint.backends.raspberrypi.build import build_pi_hardware
        from chargepoint.config import parse
        from hal.clock import RealClock
        from hal.sim import SimWorld
        from tests.unit.pi_fakes import (
            ContactorPhysics,
            FakeAds1x15,
            FakePwmSysfs,
            PilotModel,
            RcmModel,
            SwitchInput,
            mock_factory,
        )

        data = tomllib.loads(EXAMPLE.read_text())
        data["station"].update(identity="CP-BENCH", state_dir=str(tmp / "state"), free_vend=True)
        data["ocpp"].update(csms_url=f"ws://127.0.0.1:{csms_port}/ocpp", reconnect_min_s=0.2,
                            reconnect_max_s=1.0)
        data["safety"]["tick_s"] = tick_s
        data["board"]["rfid"] = {"type": "none"}
        if mqtt is not None:
            data["mqtt"] = mqtt
        self.web_port = free_port()
        data["web"] = {"enabled": True, "port": self.web_port}
        if adc != data["board"]["adc"]["type"]:
            data["board"]["adc"].update(type=adc, data_rate={"ads1115": 860, "ads1015": 3300}[adc])
        self.config = parse(data, "<bench>")
        self.factory = mock_factory()
        self.sysfs = FakePwmSysfs(tmp / "sys")
        self.model = PilotModel(self.sysfs.duty_percent)
        self.bus = FakeAds1x15(self.model.adc_volts, chip=adc, realtime=True)
        clock = RealClock()
        self.hardware = build_pi_hardware(
            self.config, pin_factory=self.factory, i2c_bus=self.bus, sysfs_root=tmp / "sys",
            clock=clock, meter=SimWorld(clock).meter, blocking_sleep=self._sleep)
        board = self.config.board
        self.contactor = ContactorPhysics(self.factory, board.contactor.pin, board.contactor.aux_pin,
                                          clock, settle_s=0)
        RcmModel(self.factory, board.rcd.pin, board.rcd.test_pin)
        SwitchInput(self.factory, board.emergency_stop.pin)
        # instruments
        b_threshold = self.model.divider.to_adc(7.5)  # between C (6 V) and B (9 V)
        self._b_threshold = b_threshold
        self.waiting_for_b = False
        self.seen_at = 0.0
        self.opened_at = 0.0
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.bus.on_conversion_read = self._conversion
        self.factory.pin(board.contactor.pin).hooks.append(self._coil)

    def _sleep(self, seconds: float) -> None:
        if self.sysfs is not None:
            self.sysfs.kernel_sleep(seconds)
        time.sleep(seconds)

    def _conversion(self, channel: int, volts: float) -> None:
        if self.waiting_for_b and channel == 0 and volts > self._b_threshold:
            self.seen_at = time.perf_counter()
            self.waiting_for_b = False

    def _coil(self, value: Any) -> None:
        if value:
            self.closed.set()
        else:
            self.opened_at = time.perf_counter()
            self.opened.set()

    def events(self, count: int, timeout_s: float = 5.0) -> list[float]:
        """``count`` C -> B events; the latencies in ms (runs in a worker thread)."""
        latencies = []
        for _ in range(count):
            if not self.closed.wait(timeout_s):
                raise RuntimeError("the contactor did not close")
            time.sleep(random.uniform(0.0, 0.02))  # any phase of the loop's tick
            self.opened.clear()
            self.waiting_for_b = True
            self.model.set(state="B")
            if not self.opened.wait(timeout_s):
                raise RuntimeError("the contactor did not open")
            latencies.append((self.opened_at - self.seen_at) * 1000.0)
            self.closed.clear()
            self.model.set(state="C")
        return latencies


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StepTimes:
    """Wraps the safety loop's TickTimes (which /metrics reads) and keeps every step's duration (ms)."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.values: list[float] = []

    def observe(self, seconds: float) -> None:
        self.histogram.observe(seconds)
        self.values.append(seconds * 1000.0)

    def snapshot(self) -> tuple[list[int], float]:
        return self.histogram.snapshot()

    def take(self) -> list[float]:
        values, self.values = self.values, []
        return values


class WebLoad:
    """bench/web_load.py as a niced subprocess, logged in with the bench's password."""

    def __init__(self, port: int) -> None:
        import urllib.request

        login = urllib.request.Request(f"http://127.0.0.1:{port}/api/login", method="POST",
                                       data=json.dumps({"password": WEB_PASSWORD}).encode(),
                                       headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(login, timeout=10) as response:
            cookie = response.headers["Set-Cookie"].split(";")[0]
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "web_load.py"), "--port", str(port), "--cookie", cookie],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(10))
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "READY":
            raise RuntimeError(f"web load did not start: {line!r}")

    def close(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        self.proc.wait(timeout=30)
        return json.loads(line.removeprefix("STATS ")) if line.startswith("STATS ") else {}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


async def run(args: argparse.Namespace) -> None:
    from chargepoint.app.daemon import Daemon
    from chargepoint.web.passwords import hash_password, write_hash

    logging.basicConfig(level=logging.ERROR)
    csms = CsmsProcess(args.payload_kb)
    tmp = tempfile.TemporaryDirectory(prefix="safety-latency-")
    mqtt = MqttLoad(Path(tmp.name) / "broker", args.mqtt_rate) if args.mqtt else None
    station = Station(Path(tmp.name), csms.port, args.tick, args.adc, mqtt.settings() if mqtt else None)
    write_hash(station.config.station.state_dir, hash_password(WEB_PASSWORD))
    evse = station.hardware.connectors[0].evse
    steps = StepTimes(evse.tick_times)  # type: ignore[attr-defined]
    evse.tick_times = steps  # type: ignore[attr-defined]
    daemon = Daemon(station.config, station.hardware)
    task = asyncio.ensure_future(daemon.run())
    results: dict[str, list[float]] = {}
    step_results: dict[str, list[float]] = {}
    flood_stats: dict[str, Any] = {}
    mqtt_stats: dict[str, dict[str, Any]] = {}
    web_stats: dict[str, Any] = {}
    try:
        await asyncio.wait_for(daemon.link.connected.wait(), 10)
        station.model.set(state="B")  # plugged in: free vend starts a transaction, PWM comes on
        deadline = time.monotonic() + 10
        while station.sysfs.duty_percent() >= 100.0:
            if time.monotonic() > deadline:
                raise RuntimeError("no PWM: the session did not start")
            await asyncio.sleep(0.01)
        station.model.set(state="C")
        await asyncio.sleep(0.5)
        phases = args.phases.split(",") + (["mqtt", "mqtt+cmd"] if mqtt else [])
        for phase in phases:
            if phase.startswith("mqtt"):
                assert mqtt is not None
                steps.take()
                results[phase], mqtt_stats[phase] = await mqtt.phase(daemon, station, args.events,
                                                                     hostile=phase == "mqtt+cmd")
                step_results[phase] = steps.take()
                continue
            web = await asyncio.to_thread(WebLoad, station.web_port) if phase == "web" else None
            if web is not None:
                await asyncio.sleep(1.0)
            if phase == "flood":
                csms.send("flood")
                await asyncio.sleep(1.0)
                before = await asyncio.to_thread(csms.stats)
                started = time.monotonic()
            steps.take()
            results[phase] = await asyncio.to_thread(station.events, args.events)
            step_results[phase] = steps.take()
            if web is not None:
                web_stats = await asyncio.to_thread(web.close)
            if phase == "flood":
                after = await asyncio.to_thread(csms.stats)
                elapsed = time.monotonic() - started
                csms.send("quiet")
                calls = after["answers"] - before["answers"]
                flood_stats = {"calls_per_s": calls / elapsed,
                               "mb_per_s": (after["bytes"] - before["bytes"]) / elapsed / 1e6,
                               "callerrors": after["errors"] - before["errors"], "calls": calls}
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 30)
        csms.close()
        if mqtt is not None:
            mqtt.close()
        tmp.cleanup()
    report(args, results, flood_stats, mqtt_stats)
    report_steps(step_results, web_stats)


def report_steps(steps: dict[str, list[float]], web: dict[str, Any]) -> None:
    if web:
        print(f"\nweb load: {json.dumps(web, sort_keys=True)}")
    print("\nsafety-loop step duration (chargepoint_safety_tick_seconds), all steps of each phase:")
    print(f"{'phase':<8} {'steps':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for phase, values in steps.items():
        if values:
            print(f"{phase:<8} {len(values):8d} {percentile(values, 50):8.3f} {percentile(values, 99):8.3f} "
                  f"{max(values):8.3f}")


def report(args: argparse.Namespace, results: dict[str, list[float]], flood: dict[str, Any],
           mqtt: dict[str, Any] | None = None) -> None:
    print(f"safety latency: CP change seen by the driver -> contactor-open call "
          f"({platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs)")
    print(f"profile examples/raspberrypi.toml: {args.adc} ({'860' if args.adc == 'ads1115' else '3300'} SPS, "
          f"conversions in real time), safety tick {args.tick * 1000:g} ms, debounce 2 samples, "
          f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms"
          f"; {args.events} events per phase")
    if flood:
        print(f"flood: {flood['calls_per_s']:.0f} CALLs/s (GetConfiguration + DataTransfer of "
              f"{args.payload_kb} KiB, alternating), {flood['mb_per_s']:.1f} MB/s, "
              f"{flood['callerrors']} of {flood['calls']} answered with CALLERROR")
    for phase, load in (mqtt or {}).items():
        print(f"{phase}: {load['published_per_s']:.0f} messages/s published by the station "
              f"({load['refreshes_per_s']:.0f} state refreshes/s); malformed commands: "
              f"{load['commands_per_s']:.0f}/s arriving, {load['handled_per_s']:.0f}/s parsed and refused, "
              f"the rest dropped unread; {load['connections']} connection(s) to the broker so far")
    print()
    print(f"{'phase':<8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for phase, values in results.items():
        print(f"{phase:<8} {percentile(values, 50):8.2f} {percentile(values, 90):8.2f} "
              f"{percentile(values, 99):8.2f} {max(values):8.2f}")
    if "web" in results and "quiet" in results:
        ratio = percentile(results["web"], 99) / percentile(results["quiet"], 99)
        print(f"\np99 web / quiet: {ratio:.2f}x")
    for phase in ("mqtt", "mqtt+cmd"):
        if phase in results and "quiet" in results:
            ratio = percentile(results[phase], 99) / percentile(results["quiet"], 99)
            print(f"p99 {phase} / quiet: {ratio:.2f}x")
    if "flood" in results and "quiet" in results:
        ratio = percentile(results["flood"], 99) / percentile(results["quiet"], 99)
        print(f"\np99 flood / quiet: {ratio:.2f}x; target p99 <= {TARGET_P99_MS:g} ms under load; "
              f"IEC 61851-1 limit {IEC_LIMIT_MS:g} ms")
    print(f"mean {statistics.fmean(itertools.chain(*results.values())):.2f} ms over all events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="C -> B events per phase")
    parser.add_argument("--tick", type=float, default=None,
                        help="safety loop tick in s (default: the example profile's)")
    parser.add_argument("--adc", choices=("ads1115", "ads1015"), default=None,
                        help="ADC of the front end (default: the example profile's)")
    parser.add_argument("--payload-kb", type=int, default=64, help="DataTransfer data size in KiB")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="sys.setswitchinterval for this run; the Pi backend lowers it to "
                             "1 ms itself, so only smaller values change anything")
    parser.add_argument("--phases", default="quiet,web,flood",
                        help="phases to run, in order (quiet, web, flood)")
    parser.add_argument("--mqtt", action="store_true",
                        help="add the MQTT phase: a mosquitto broker on loopback (apt-get install mosquitto)")
    parser.add_argument("--mqtt-rate", type=float, default=200.0,
                        help="full state republishes per second in the MQTT phase")
    parser.add_argument("--serve-csms", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mqtt-flood", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_csms:
        serve_csms(args.payload_kb)
        return
    if args.mqtt_flood is not None:
        mqtt_flood(args.mqtt_flood)
        return
    profile = tomllib.loads(EXAMPLE.read_text())
    if args.tick is None:
        args.tick = profile["safety"]["tick_s"]
    if args.adc is None:
        args.adc = profile["board"]["adc"]["type"]
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

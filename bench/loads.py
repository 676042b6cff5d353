"""The loads bench/safety_latency.py puts on a station, each a bounded process of its own on loopback.

* ``CsmsProcess``: an OCPP 1.6J CSMS on raw JSON frames (``--serve-csms``); on
  ``flood`` it sends GetConfiguration and DataTransfer CALLs (each with a
  ``--payload-kb`` data string) back to back, the next as soon as the last is
  answered (one outstanding CALL, as OCPP allows). Niced: on a station the
  CSMS is another machine.
* ``MeterProcess``: the station's energy meter, ``python -m hal.meters.simdevice``
  on Modbus TCP (niced: a device of its own on a station).
* ``WebLoad``: bench/web_load.py against the daemon's dashboard, logged in (niced).
* ``MqttLoad``: a mosquitto broker, a subscriber counting what the station
  publishes and answers, and (``hostile``) a client flooding the command
  topics with malformed commands (``--mqtt-flood``, niced).
* ``CpuHogs``: ``python -c "while ...: pass"`` processes at normal priority.
* ``FirmwareInstall``: what a firmware update does to the machine: a fresh
  venv (``python -m venv``, pip from ensurepip) and ``pip install --no-index
  --no-deps`` of this checkout's wheel (built once, offline), over and over, at
  normal priority.

Every load stops by itself: after a count and a time, besides the bench's stop.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Every load process and loop ends after this long at most, whatever the bench does.
LOAD_MAX_S = 900.0
#: The hostile MQTT client stops after this many messages.
MQTT_FLOOD_MAX = 5_000_000
#: Firmware installs per phase at most.
INSTALLS_MAX = 50
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_setup(nice: int = 0) -> Any:
    """preexec_fn: SIGKILL with the bench, and a niceness."""
    def setup() -> None:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if nice:
            os.nice(nice)
    return setup


# ------------------------------------------------------------------ the CSMS
def serve_csms(payload_kb: int) -> None:
    """A loopback OCPP 1.6J CSMS on raw JSON frames; flood on/off through stdin."""
    import websockets
    from websockets.asyncio.server import serve

    state = {"flood": False, "calls": 0, "answers": 0, "errors": 0, "bytes": 0, "boots": 0}
    ids = itertools.count(1)
    data = "x" * (payload_kb * 1024)

    def result(action: str) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if action == "BootNotification":
            state["boots"] += 1
            return {"status": "Accepted", "currentTime": now, "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action in ("Authorize", "StopTransaction"):
            return {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            return {"transactionId": 1, "idTagInfo": {"status": "Accepted"}}
        if action == "DataTransfer":
            return {"status": "Accepted"}
        return {}

    async def handler(ws: Any) -> None:
        pending: dict[str, asyncio.Future[Any]] = {}

        async def reader() -> None:
            async for frame in ws:
                message = json.loads(frame)
                if message[0] == 2:
                    await ws.send(json.dumps([3, message[1], result(message[2])]))
                elif message[1] in pending:
                    pending.pop(message[1]).set_result(message[0])

        async def flooder() -> None:
            for n in itertools.count():
                if not state["flood"]:
                    await asyncio.sleep(0.01)
                    continue
                unique = f"f{next(ids)}"
                call = [2, unique, "GetConfiguration", {}] if n % 2 else \
                    [2, unique, "DataTransfer", {"vendorId": "bench", "messageId": "flood", "data": data}]
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
            started = time.monotonic()
            while time.monotonic() - started < LOAD_MAX_S:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                command = line.strip()
                if command in ("", "quit"):
                    return
                if command in ("flood", "quiet"):
                    state["flood"] = command == "flood"
                elif command == "stats":
                    print("STATS " + json.dumps(state), flush=True)

    asyncio.run(main())


class CsmsProcess:
    def __init__(self, payload_kb: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-csms", "--payload-kb", str(payload_kb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=child_setup(10))
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
        return dict(json.loads(line.removeprefix("STATS ")))

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)


class MeterProcess:
    """The station's meter: an SDM630 on Modbus TCP, a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hal.meters.simdevice", "--model", "sdm630", "--tcp", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=child_setup(10))
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if "Modbus TCP" not in line:
            raise RuntimeError(f"meter did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# ------------------------------------------------------------------ web
def web_login(port: int, password: str) -> str:
    """A session cookie (once, before any guesser has locked logins out)."""
    import urllib.request

    login = urllib.request.Request(f"http://127.0.0.1:{port}/api/login", method="POST",
                                   data=json.dumps({"password": password}).encode(),
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(login, timeout=10) as response:
        return str(response.headers["Set-Cookie"].split(";")[0])


class WebLoad:
    """bench/web_load.py as a niced subprocess, with a logged-in session's cookie."""

    def __init__(self, port: int, cookie: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "web_load.py"), "--port", str(port), "--cookie", cookie],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=child_setup(10))
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "READY":
            raise RuntimeError(f"web load did not start: {line!r}")

    def close(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        self.proc.wait(timeout=30)
        return dict(json.loads(line.removeprefix("STATS "))) if line.startswith("STATS ") else {}


# ------------------------------------------------------------------ MQTT
def mqtt_flood(port: int, prefix: str) -> None:
    """Malformed commands to the station's command topics, as fast as the client goes.

    Stops at MQTT_FLOOD_MAX messages, after LOAD_MAX_S, or when stdin closes; prints ``SENT n``.
    """
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-flood")
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    junk = ["{not json", "[1, 2]", '{"id_tag": 5}', "x" * 2000, "maybe", '{"limit": 6}']
    started, sent = time.monotonic(), 0
    for n in range(MQTT_FLOOD_MAX):
        if stop.is_set() or time.monotonic() - started > LOAD_MAX_S:
            break
        name = ("start", "stop", "availability")[n % 3]
        client.publish(f"{prefix}/connector/1/cmd/{name}", junk[n % len(junk)], qos=0)
        sent += 1
        if n % 200 == 199:
            time.sleep(0.005)  # let paho's thread write; the broker drops what a client cannot take
    client.loop_stop()
    client.disconnect()
    print(f"SENT {sent}", flush=True)


class MqttLoad:
    """The broker, a counting subscriber, and the hostile client on demand."""

    def __init__(self, root: Path, prefix: str) -> None:
        import paho.mqtt.client as paho

        sys.path.insert(0, str(ROOT))
        from tests.mqtt_broker import Mosquitto

        root.mkdir(parents=True, exist_ok=True)
        self.broker = Mosquitto(root).start()
        self.prefix = prefix
        self.published = self.results = 0
        self.counter = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.counter.on_message = self._message
        self.counter.connect("127.0.0.1", self.broker.port)
        self.counter.subscribe(f"{prefix}/#")
        self.counter.loop_start()
        self.flood: subprocess.Popen[str] | None = None

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        if message.topic == f"{self.prefix}/cmd/result":
            self.results += 1
        elif "/cmd/" not in message.topic:  # not the hostile client's own messages
            self.published += 1

    def settings(self, interval_s: float) -> dict[str, Any]:
        return {"enabled": True, "host": "127.0.0.1", "port": self.broker.port, "commands": True,
                "interval_s": interval_s, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0}

    def start(self, hostile: bool) -> None:
        self.mark = (time.monotonic(), self.published, self.results)
        if hostile:
            self.flood = subprocess.Popen(
                [sys.executable, __file__, "--mqtt-flood", str(self.broker.port), "--prefix", self.prefix],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=child_setup(10))

    def stop(self) -> dict[str, Any]:
        started, published, results = self.mark
        elapsed = time.monotonic() - started
        sent = 0
        if self.flood is not None:
            out, _ = self.flood.communicate(input="", timeout=30)
            sent = int(out.split()[-1]) if out.startswith("SENT") else 0
            self.flood = None
        return {"published_per_s": (self.published - published) / elapsed,
                "answered_per_s": (self.results - results) / elapsed, "sent_per_s": sent / elapsed}

    def close(self) -> None:
        self.counter.loop_stop()
        self.counter.disconnect()
        self.broker.close()


# ------------------------------------------------------------------ CPU and a firmware install
class CpuHogs:
    """``count`` CPU-bound processes at normal priority, each ending by itself after LOAD_MAX_S."""

    def __init__(self, count: int = 2) -> None:
        code = f"import time\nend = time.monotonic() + {LOAD_MAX_S}\nwhile time.monotonic() < end: pass\n"
        self.procs = [subprocess.Popen([sys.executable, "-c", code], preexec_fn=child_setup())
                      for _ in range(count)]

    def close(self) -> dict[str, Any]:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
        return {"processes": len(self.procs)}


def build_wheel(workdir: Path) -> Path:
    """This checkout's wheel, built offline from a copy (the build writes build/ and egg-info beside
    the source: not in a tree others work in)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    source = workdir / "source"
    for name in filter(None, files):
        path = ROOT / name
        if path.is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    wheels = workdir / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(wheels), str(source)], check=True, timeout=600)
    return next(wheels.glob("chargepoint-*.whl"))


class FirmwareInstall:
    """Fresh venvs with this checkout's wheel installed into them, one after the other, in a thread."""

    def __init__(self, wheel: Path, workdir: Path) -> None:
        self.wheel = wheel
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.stop_event = threading.Event()
        self.installs: list[float] = []
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        for n in range(INSTALLS_MAX):
            if self.stop_event.is_set() or time.monotonic() - started > LOAD_MAX_S:
                return
            venv = self.workdir / f"venv-{n}"
            began = time.monotonic()
            steps = [[sys.executable, "-m", "venv", str(venv)],
                     [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
                      "--no-deps", "--disable-pip-version-check", str(self.wheel)]]
            for step in steps:
                if self.stop_event.is_set():
                    break
                log = self.workdir / "install.log"
                with log.open("w") as err:
                    proc = subprocess.Popen(step, stdout=subprocess.DEVNULL, stderr=err,
                                            preexec_fn=child_setup())
                deadline = time.monotonic() + 300
                while proc.poll() is None and not self.stop_event.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if proc.poll() is None:  # stopped (or hung): this install is not counted
                    proc.kill()
                    proc.wait()
                    break
                if proc.returncode != 0:
                    self.error = log.read_text(errors="replace").strip()[-500:]
                    return
            else:
                self.installs.append(time.monotonic() - began)
            shutil.rmtree(venv, ignore_errors=True)

    def close(self) -> dict[str, Any]:
        self.stop_event.set()
        self.thread.join(timeout=30)
        done = self.installs
        return {"installs": len(done), "s_per_install": sum(done) / len(done) if done else None,
                "error": self.error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-csms", action="store_true")
    parser.add_argument("--payload-kb", type=int, default=64)
    parser.add_argument("--mqtt-flood", type=int, default=None, metavar="PORT")
    parser.add_argument("--prefix", default="chargepoint/CP-BENCH")
    args = parser.parse_args()
    if args.serve_csms:
        serve_csms(args.payload_kb)
    elif args.mqtt_flood is not None:
        mqtt_flood(args.mqtt_flood, args.prefix)


if __name__ == "__main__":
    main()

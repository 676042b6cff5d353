"""A burst of CALLs from the CSMS against the daemon: does the station stay responsive?

A CSMS (hostile or broken) sends ``--calls`` GetConfiguration CALLs back to
back without waiting for answers. The station's daemon (``chargepoint run`` on
the simulated hardware, its supervisor started on demand) must keep its event
loop turning meanwhile: the systemd watchdog pings are sent from a task on the
loop, and ``chargepoint status`` is answered by the control socket on the same
loop. Measured per run, from the first CALL sent until the last answer is read:

- the largest gap between two watchdog pings (``WATCHDOG=1`` datagrams on a
  notify socket, as systemd receives them; ``WATCHDOG_USEC`` = 1 s, so a ping
  is due every 0.5 s);
- the latency of ``status`` requests on the control socket, one after another
  with 0.1 s between them (the largest, and the median), and the same for the
  dashboard's ``GET /api/state`` (web enabled on loopback, no password);
- how many CALLs were answered with a CALLRESULT and how many with a CALLERROR
  (the station's "busy" answer), and how long the burst took.

``--baseline REV`` runs, in each run, the same measurement against the daemon
of another commit too (its tree exported with ``git archive`` into a temporary
directory, started from there), the two alternating in order; figures are the
median of the runs.

    .venv/bin/python bench/call_flood.py                        # 3 runs, 15,000 CALLs
    .venv/bin/python bench/call_flood.py --baseline HEAD~3      # and a pre-change daemon beside it
    .venv/bin/python bench/call_flood.py --runs 1 --calls 3000 --log-level debug
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loads import child_setup, free_port  # noqa: E402

#: systemd's WatchdogSec for the daemon under test (a ping is due every half of it).
WATCHDOG_USEC = 1_000_000
#: Targets: the largest ping gap and the slowest ``status`` during the burst (seconds).
TARGET_GAP_S = 2.0
TARGET_STATUS_S = 1.0
#: The bench gives up on a burst after this long.
BURST_MAX_S = 300.0


# ------------------------------------------------------------------ the CSMS (a subprocess)
def serve_csms() -> None:
    """OCPP 1.6J on raw frames: answers the station; on ``burst N`` sends N CALLs at once."""
    from websockets.asyncio.server import serve

    now = lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # noqa: E731
    results = {"BootNotification": lambda: {"status": "Accepted", "currentTime": now(), "interval": 300},
               "Heartbeat": lambda: {"currentTime": now()},
               "Authorize": lambda: {"idTagInfo": {"status": "Accepted"}}}
    state: dict[str, Any] = {"ws": None, "answers": 0, "errors": 0, "done": None, "expect": 0,
                             "codes": {}, "description": ""}
    connected = asyncio.Event()

    async def handler(ws: Any) -> None:
        state["ws"] = ws
        connected.set()
        async for frame in ws:
            message = json.loads(frame)
            if message[0] == 2:
                await ws.send(json.dumps([3, message[1], results.get(message[2], dict)()]))
            elif str(message[1]).startswith("flood-"):
                state["answers"] += 1
                if message[0] == 4:
                    state["errors"] += 1
                    state["codes"][message[2]] = state["codes"].get(message[2], 0) + 1
                    state["description"] = message[3]
                if state["answers"] == state["expect"] and state["done"] is not None:
                    state["done"].set()

    async def burst(count: int) -> dict[str, Any]:
        await connected.wait()
        state.update(answers=0, errors=0, expect=count, done=asyncio.Event(), codes={}, description="")
        frames = [json.dumps([2, f"flood-{n}", "GetConfiguration", {}]) for n in range(count)]
        started = time.monotonic()
        for frame in frames:
            await state["ws"].send(frame)
        sent = time.monotonic()
        try:
            async with asyncio.timeout(BURST_MAX_S):
                await state["done"].wait()
        except TimeoutError:
            pass
        return {"sent_s": sent - started, "answered_s": time.monotonic() - started,
                "answers": state["answers"], "errors": state["errors"], "codes": state["codes"],
                "description": state["description"]}

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"], max_size=None) as server:
            print(f"PORT {next(iter(server.sockets)).getsockname()[1]}", flush=True)
            loop = asyncio.get_running_loop()
            while True:
                line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
                if not line or line[0] == "quit":
                    return
                if line[0] == "burst":
                    print("RESULT " + json.dumps(await burst(int(line[1]))), flush=True)

    asyncio.run(main())


# ------------------------------------------------------------------ the bench
def station_toml(root: Path, csms_port: int, web_port: int) -> str:
    return f"""
[station]
identity = "CP-FLOOD-1"
state_dir = "{root / 'state'}"

[ocpp]
csms_url = "ws://127.0.0.1:{csms_port}"
versions = ["1.6"]
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[meter]
poll_interval_s = 1.0

[control]
socket = "{root / 'control.sock'}"

[web]
enabled = true
port = {web_port}
"""


class Station:
    """A CSMS subprocess and a daemon from source tree ``tree``, with its notify socket read."""

    def __init__(self, tree: Path, log_level: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cp-flood-", dir="/tmp"))
        self.csms = subprocess.Popen([sys.executable, __file__, "--serve-csms"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, preexec_fn=child_setup(10))
        line = self.csms.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            raise RuntimeError(f"the CSMS did not start: {line!r}")
        config = self.root / "station.toml"
        self.web_port = free_port()
        config.write_text(station_toml(self.root, int(line.split()[1]), self.web_port))
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.root / "notify.sock"))
        self.notify.settimeout(0.1)
        self.pings: list[float] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_notify, daemon=True)
        self._reader.start()
        self.log = self.root / "daemon.log"
        env = {**os.environ, "NOTIFY_SOCKET": str(self.root / "notify.sock"),
               "WATCHDOG_USEC": str(WATCHDOG_USEC), "PYTHONPATH": str(tree)}
        env.pop("CHARGEPOINT_SOCKET", None)
        with open(self.log, "wb") as stderr:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config),
                 "--log-level", log_level],
                cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=child_setup())

    def _read_notify(self) -> None:
        while not self._stop.is_set():
            try:
                if self.notify.recv(4096) == b"WATCHDOG=1":
                    self.pings.append(time.monotonic())
            except TimeoutError:
                continue

    def status(self, timeout: float = 60.0) -> tuple[float, dict[str, Any]]:
        """One ``status`` request on a fresh control connection: (seconds, result)."""
        started = time.monotonic()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(self.root / "control.sock"))
            s.sendall(json.dumps({"v": 1, "id": 1, "cmd": "status", "args": {}}).encode() + b"\n")
            response = json.loads(s.makefile("rb").readline())
        return time.monotonic() - started, response.get("result") or {}

    def web_state(self, timeout: float = 60.0) -> float:
        """One ``GET /api/state`` from the dashboard: seconds."""
        started = time.monotonic()
        url = f"http://127.0.0.1:{self.web_port}/api/state"
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            response.read()
        return time.monotonic() - started

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"the daemon ended: {self.log.read_text()[-2000:]}")
            try:
                if self.status()[1]["connection"]["boot"] == "accepted" and len(self.pings) >= 2:
                    self.web_state()
                    return
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the daemon did not boot: {self.log.read_text()[-2000:]}")

    def burst(self, calls: int) -> dict[str, Any]:
        """The burst, with ``status`` asked meanwhile; the figures."""
        latencies: dict[str, list[float]] = {"status": [], "web": []}
        done = threading.Event()

        def prober(name: str, ask: Any) -> None:
            while not done.is_set():
                try:
                    latencies[name].append(ask())
                except OSError as error:
                    latencies[name].append(float("inf"))
                    print(f"  {name} failed: {error}", file=sys.stderr)
                done.wait(0.1)

        time.sleep(1.0)  # idle pings before the burst
        started = time.monotonic()
        probes = [threading.Thread(target=prober, args=("status", lambda: self.status()[0]), daemon=True),
                  threading.Thread(target=prober, args=("web", self.web_state), daemon=True)]
        for probe in probes:
            probe.start()
        self.csms.stdin.write(f"burst {calls}\n")  # type: ignore[union-attr]
        self.csms.stdin.flush()  # type: ignore[union-attr]
        line = self.csms.stdout.readline()  # type: ignore[union-attr]
        ended = time.monotonic()
        done.set()
        for probe in probes:
            probe.join(60)
        result = json.loads(line.split(" ", 1)[1])
        pings = [started, *(p for p in self.pings if started < p < ended), ended]
        result["gap_s"] = max(b - a for a, b in zip(pings, pings[1:], strict=False))
        for name, values in latencies.items():
            result[f"{name}_max_s"] = max(values)
            result[f"{name}_median_s"] = statistics.median(values)
            result[f"{name}_count"] = len(values)
        result["alive"] = self.daemon.poll() is None
        return result

    def close(self) -> None:
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        try:
            self.csms.communicate("quit\n", timeout=10)
        except subprocess.TimeoutExpired:
            self.csms.kill()
            self.csms.wait()
        self._stop.set()
        self._reader.join(2)
        self.notify.close()
        shutil.rmtree(self.root, ignore_errors=True)


def export(rev: str) -> Path:
    """The source tree of commit ``rev``, in a temporary directory."""
    target = Path(tempfile.mkdtemp(prefix="cp-flood-tree-", dir="/tmp"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def one(name: str, tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    station = Station(tree, args.log_level)
    try:
        station.wait_ready()
        result = station.burst(args.calls)
    finally:
        station.close()
    codes = ", ".join(f"{n} {code}" for code, n in result["codes"].items()) or "none"
    print(f"  {name:9} ping gap {result['gap_s']:6.2f} s | status max {result['status_max_s']:6.2f} s, "
          f"median {result['status_median_s']:5.2f} s ({result['status_count']} asked) | "
          f"web max {result['web_max_s']:6.2f} s ({result['web_count']} asked) | "
          f"{result['answers']} answers in {result['answered_s']:5.1f} s, CALLERRORs: {codes}"
          f"{'' if result['alive'] else ' | DAEMON DIED'}", flush=True)
    if result["description"]:
        print(f"  {'':9} busy answer: {result['description']!r}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-csms", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=15_000, help="CALLs in the burst (default 15000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    parser.add_argument("--baseline", metavar="REV", help="also measure the daemon of this commit")
    args = parser.parse_args()
    if args.serve_csms:
        serve_csms()
        return
    trees = {"this tree": ROOT}
    if args.baseline:
        trees["baseline"] = export(args.baseline)
    label = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True).stdout.strip()
    print(f"call_flood: {args.calls} GetConfiguration CALLs at once, log level {args.log_level}, "
          f"{args.runs} run(s); HEAD {label}{f', baseline {args.baseline}' if args.baseline else ''}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    try:
        for run in range(args.runs):
            print(f"run {run + 1}")
            order = list(trees) if run % 2 == 0 else list(reversed(trees))
            for name in order:
                results[name].append(one(name, trees[name], args))
    finally:
        for name, tree in trees.items():
            if name != "this tree":
                shutil.rmtree(tree, ignore_errors=True)
    print(f"median of {args.runs} run(s):")
    for name, runs in results.items():
        gap = statistics.median(r["gap_s"] for r in runs)
        worst = statistics.median(r["status_max_s"] for r in runs)
        print(f"  {name:9} largest ping gap {gap:6.2f} s ({'ok' if gap <= TARGET_GAP_S else 'over'} "
              f"<= {TARGET_GAP_S:g} s) | slowest status {worst:6.2f} s "
              f"({'ok' if worst <= TARGET_STATUS_S else 'over'} <= {TARGET_STATUS_S:g} s) | "
              f"slowest /api/state {statistics.median(r['web_max_s'] for r in runs):6.2f} s | "
              f"burst answered in {statistics.median(r['answered_s'] for r in runs):5.1f} s, "
              f"{statistics.median(r['errors'] for r in runs):.0f} busy")


if __name__ == "__main__":
    main()

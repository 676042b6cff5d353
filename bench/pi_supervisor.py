"""The safety supervisor on the Raspberry Pi board, fakes at the hardware boundaries, in a process of its own.

For bench/safety_latency.py (``--probe``: instrumented, an "EV" thread) and
bench/footprint.py (plain: what it costs). It runs what ``chargepoint
supervise`` runs -- ``chargepoint.supervisor.main.Supervisor``: the safety loop
in its thread, the channel the daemon attaches to, mlockall, the garbage
policy -- over the board ``build_board`` makes from the configuration file, with
the fakes of tests/unit/pi_fakes.py in place of the hardware: a sysfs PWM tree
in /dev/shm, an ADS1x15 whose conversions take their real time
(1/DR), gpiozero's mock pins (contactor and its auxiliary contact, RCM,
emergency stop). Nothing of the bench is in the product.

Before any thread starts it sets the supervisor's thread stack size and asks
for SCHED_FIFO (``--fifo PRIORITY``: the unit's 40 by default, 0 = leave the
policy alone); the supervisor locks its memory itself. What was granted is in
the ``info`` answer.

Instruments (``--probe``), as the in-process bench measured before: *seen* is
when the ADC fake hands the driver the first conversion of the positive peak
detector (AIN0) that shows state B; *open* is when the coil's GPIO goes low.
Both are ``time.perf_counter()`` in this process. Every step's duration is
kept too (the loop's own TickTimes, which the status reports, records it).

One line in on stdin, one JSON line out on stdout (logs go to stderr)::

    info       the supervisor's figures (its hello answer) and process facts
    plug       EV to B, wait for the daemon's PWM, EV to C, wait for the contactor
    events N   start N C -> B -> C events in the EV thread
    progress   {"done": events so far, "controller": a daemon attached}
    wait       when the events are done: latencies and step durations (ms)
    quit       outputs safe, exit
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if __name__ == "__main__" and "--config" in sys.argv[:-1]:
    # As `chargepoint supervise` decides on a board, before asyncio is imported: no ssl.
    from chargepoint.supervisor.command import leave_out_unused_modules

    leave_out_unused_modules(sys.argv[sys.argv.index("--config") + 1])

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
from typing import Any  # noqa: E402

from chargepoint.safety.ticktimes import TickTimes  # noqa: E402

EXAMPLE = ROOT / "examples" / "raspberrypi.toml"
EVENT_TIMEOUT_S = 5.0


def toml_text(data: dict[str, Any], prefix: str = "") -> str:
    """Tables, sub-tables, arrays of tables, and scalars / lists of scalars (JSON's are TOML's)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"\n[{prefix}{key}]\n" + toml_text(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            tables += [f"\n[[{prefix}{key}]]\n" + toml_text(item, f"{prefix}{key}.") for item in value]
        else:
            lines.append(f"{key} = {json.dumps(value)}\n")
    return "".join(lines) + "".join(tables)


def pi_profile(workdir: Path, identity: str) -> dict[str, Any]:
    """examples/raspberrypi.toml for a bench: state and channel in ``workdir``, no card reader."""
    data = tomllib.loads(EXAMPLE.read_text())
    data["station"].update(identity=identity, state_dir=str(workdir / "state"))
    data["safety"]["channel"] = str(workdir / "safety.sock")
    data["board"]["rfid"] = {"type": "none"}
    return data


class RecordingTickTimes(TickTimes):
    """The loop's own step histogram, which also keeps every duration (ms) until taken."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def observe(self, seconds: float) -> None:
        super().observe(seconds)
        self.values.append(seconds * 1000.0)

    def take(self) -> list[float]:
        values, self.values = self.values, []
        return values


def ask_fifo(priority: int) -> str | None:
    """SCHED_FIFO for this thread and every thread it starts later; None if granted, else why not."""
    if priority <= 0:
        return "not asked"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class Bench:
    """The board's fakes, the supervisor over them, and the EV."""

    def __init__(self, config_path: str, sys_root: Path, probe: bool) -> None:
        from chargepoint.config.safety_view import load_safety_view
        from chargepoint.supervisor.hardware import build_board
        from chargepoint.supervisor.main import Supervisor
        from hal.clock import RealClock
        from tests.unit.pi_fakes import (
            ContactorPhysics,
            FakeAds1x15,
            FakePwmSysfs,
            PilotModel,
            RcmModel,
            SwitchInput,
            mock_factory,
        )
        from tests.unit.pump_fakes import HeartbeatCircuit

        config = load_safety_view(config_path)
        board = config.board
        assert board is not None, "the bench supervisor needs a [board] profile"
        self.factory = mock_factory()
        self.sysfs = FakePwmSysfs(sys_root)
        self.exported = False
        self.model = PilotModel(self.sysfs.duty_percent)
        self.bus = FakeAds1x15(self.model.adc_volts, chip=board.adc.type, realtime=True)
        # The fake keeps every conversion and config word for the tests: keep the last only.
        self.bus.conversions = collections.deque(maxlen=1)  # type: ignore[assignment]
        self.bus.configs = collections.deque(maxlen=1)  # type: ignore[assignment]
        clock = RealClock()
        hardware = build_board(config, pin_factory=self.factory, i2c_bus=self.bus, sysfs_root=sys_root,
                               clock=clock, blocking_sleep=self._sleep)
        ContactorPhysics(self.factory, board.contactor.pin, board.contactor.aux_pin, clock, settle_s=0)
        if board.rcd is not None:
            RcmModel(self.factory, board.rcd.pin, board.rcd.test_pin)
        if board.emergency_stop is not None:
            SwitchInput(self.factory, board.emergency_stop.pin)
        if board.heartbeat is not None:  # the pump, read back for the check before every session
            HeartbeatCircuit.attach(self.factory, board, self.model, clock.monotonic)
        # gpiozero's mock pins keep every state they went through (the heartbeat toggles every step).
        for pin in self.factory.pins.values():
            pin.states = collections.deque(pin.states, maxlen=2)
        self.evse = hardware.connectors[0].evse
        self.steps = RecordingTickTimes() if probe else None
        if self.steps is not None:
            self.evse.tick_times = self.steps  # before the loop starts
        self.supervisor = Supervisor(config, hardware)
        self._b_threshold = self.model.divider.to_adc(7.5)  # between C (6 V) and B (9 V)
        self.waiting_for_b = False
        self.seen_at = self.opened_at = 0.0
        #: The channels converted between *seen* and *open*, per event ("120": AIN1, AIN2, AIN0).
        self.after_seen: list[int] | None = None
        self.conversions_after_seen: list[str] = []
        self.opened, self.closed = threading.Event(), threading.Event()
        if probe:
            self.bus.on_conversion_read = self._conversion
            self.factory.pin(board.contactor.pin).hooks.append(self._coil)
        self.done = 0
        self.result: dict[str, Any] | None = None

    def _sleep(self, seconds: float) -> None:
        # The fake kernel turns an export into a pwmN directory while the driver waits; once there,
        # its check (a glob and a read, ~0.05 ms) is left out of the conversions' waits.
        if not self.exported:
            self.sysfs.kernel_sleep(seconds)
            self.exported = self.sysfs.channel().exists()
        time.sleep(seconds)

    def _conversion(self, channel: int, volts: float) -> None:
        if self.waiting_for_b and channel == 0 and volts > self._b_threshold:
            self.seen_at = time.perf_counter()
            self.waiting_for_b = False
            self.after_seen = []
        elif self.after_seen is not None:
            self.after_seen.append(channel)

    def _coil(self, value: Any) -> None:
        if value:
            self.closed.set()
        else:
            self.opened_at = time.perf_counter()
            if self.after_seen is not None:
                self.conversions_after_seen.append("".join(map(str, self.after_seen)))
                self.after_seen = None
            self.opened.set()

    # ------------------------------------------------------------------ the EV (its own thread)
    def plug(self) -> dict[str, Any]:
        """Plugged in: the daemon (free vend) starts a session and grants energy; then C, charging."""
        self.model.set(state="B")
        deadline = time.monotonic() + 30
        while self.sysfs.duty_percent() >= 100.0:
            if time.monotonic() > deadline:
                return {"error": "no PWM after 30 s: the daemon did not grant energy"}
            time.sleep(0.01)
        self.model.set(state="C")
        if not self.closed.wait(10):
            return {"error": "the contactor did not close"}
        return {"ok": True}

    def events(self, count: int) -> dict[str, Any]:
        """``count`` C -> B -> C events; the latencies and the steps taken meanwhile."""
        assert self.steps is not None
        latencies: list[float] = []
        self.done = 0
        self.conversions_after_seen = []
        self.steps.take()
        error = None
        for _ in range(count):
            if not self.closed.wait(EVENT_TIMEOUT_S):
                error = "the contactor did not close"
                break
            time.sleep(random.uniform(0.0, 0.02))  # any phase of the loop's tick
            self.opened.clear()
            self.waiting_for_b = True
            self.model.set(state="B")
            if not self.opened.wait(EVENT_TIMEOUT_S):
                error = "the contactor did not open"
                break
            latencies.append((self.opened_at - self.seen_at) * 1000.0)
            self.closed.clear()
            self.model.set(state="C")
            self.done += 1
        return {"latency_ms": latencies, "step_ms": self.steps.take(), "error": error,
                "conversions_after_seen": dict(collections.Counter(self.conversions_after_seen)),
                "gc_longest_ms": round(self.supervisor.gc.longest_s * 1000, 3),
                "gc_collections": self.supervisor.gc.collections}

    # ------------------------------------------------------------------ facts
    def info(self) -> dict[str, Any]:
        info = self.supervisor.info()
        loop_thread = self.evse._thread  # noqa: SLF001 - a bench looks inside
        policy = None
        if loop_thread is not None and loop_thread.native_id is not None:
            try:
                policy = os.sched_getscheduler(loop_thread.native_id)
            except OSError:
                pass
        info.update(
            mlock_error=self.supervisor.mlock_error, loop_thread_fifo=policy == os.SCHED_FIFO,
            threads=[t.name for t in threading.enumerate()], thread_stack_bytes=threading.stack_size(),
            modules=len(sys.modules), pymodbus="pymodbus" in sys.modules,
            switch_interval_ms=sys.getswitchinterval() * 1000.0)
        return info


async def serve(bench: Bench) -> None:
    loop = asyncio.get_running_loop()
    running = asyncio.ensure_future(bench.supervisor.run())
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pending: asyncio.Future[dict[str, Any]] | None = None

    def in_thread(job: Any, *args: Any) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = loop.create_future()

        def work() -> None:
            try:
                result = job(*args)
            except Exception as exc:  # noqa: BLE001 - the bench is told, not left waiting
                result = {"error": f"{type(exc).__name__}: {exc}"}
            loop.call_soon_threadsafe(future.set_result, result)
        threading.Thread(target=work, name="bench-ev", daemon=True).start()
        return future

    def say(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    while not Path(bench.supervisor.path).exists() and not running.done():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the channel is open; then memory is locked and the start-up garbage frozen
    if running.done():
        running.result()  # raises what stopped it
    say({"ready": bench.info()})
    try:
        while not running.done():
            read = asyncio.ensure_future(reader.readline())
            await asyncio.wait({read, running}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():  # SIGTERM stopped the supervisor
                read.cancel()
                break
            line = read.result().decode().split()
            if not line or line[0] == "quit":
                break
            command = line[0]
            if command == "info":
                say(bench.info())
            elif command == "plug":
                say(await in_thread(bench.plug))
            elif command == "events":
                pending = in_thread(bench.events, int(line[1]))
                say({"started": int(line[1])})
            elif command == "progress":
                say({"done": bench.done, "controller": bench.supervisor.channel.controller_connected})
            elif command == "wait" and pending is not None:
                say(await pending)
                pending = None
            else:
                say({"error": f"unknown command {command!r}"})
    finally:
        bench.supervisor._stop.set()  # noqa: SLF001 - as SIGTERM does
        await running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--fifo", type=int, default=40, help="SCHED_FIFO priority to ask for (0: none)")
    parser.add_argument("--probe", action="store_true", help="instrument the loop and run the EV")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="sys.setswitchinterval for this process (default: what the supervisor sets)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    import chargepoint.supervisor.main as supervisor_main

    stack = getattr(supervisor_main, "THREAD_STACK_BYTES", 0)
    if stack:
        threading.stack_size(stack)  # as run_supervisor does, before any thread starts
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    fifo_refused = ask_fifo(args.fifo)
    if fifo_refused:
        print(f"SCHED_FIFO {args.fifo}: {fifo_refused}", file=sys.stderr)
    # The fake sysfs tree in memory, as sysfs is (on a disk its files compete with a pip install's writes).
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="bench-pi-sys-", dir=shm) as tmp:
        bench = Bench(args.config, Path(tmp) / "sys", args.probe)
        asyncio.run(serve(bench))


if __name__ == "__main__":
    main()

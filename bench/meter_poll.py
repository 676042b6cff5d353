"""Full meter readings per second over Modbus RTU, against the line limit in the same run.

A reading of a meter is its register map's planned requests (see
``hal/meters/registermap.py``); on an RS-485 line each request and its answer
take (request + response bytes) x 11 bits / baud on the wire (8 data bits,
start, parity and stop bit). The line limit is therefore

    readings/s <= baud / (11 x bytes of all requests and answers of one reading)

and the driver's figure is how close it gets: the rest is the RTU inter-frame
silence (3.5 characters before each request), the meter's and the driver's
turnaround, and Python.

The line is real serial plumbing paced to the baud rate: the driver
(``ModbusMeter`` over pymodbus's serial client, as in the station) opens one
end of a socat pty pair; a relay joins it to a second pair and delivers every
chunk only after the time its bytes take on a half-duplex line of that speed;
a pymodbus server holding the model's register layout answers on the far end.
Relay and meter run in a child process so they do not share the driver's
event loop. A pty has no baud rate of its own, hence the relay.

Prints the per-run figures, then per model and baud the median over the
runs and its ratio to the line limit (target >= 0.8), and to the RTU
ceiling: the line limit with the 3.5-character silence that RTU requires
before every request, a cost per request that no driver can avoid and that
weighs most on maps of a few short requests. Asserts nothing.

    .venv/bin/python bench/meter_poll.py                 # all models, 9600 and 19200 baud
    .venv/bin/python bench/meter_poll.py --quick         # sdm630 only, fewer readings
    .venv/bin/python bench/meter_poll.py --models sdm630,abb-b23 --runs 7 --readings 20
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hal.interfaces import MeterFailure  # noqa: E402
from hal.meters.bus import BusSettings, ModbusBus  # noqa: E402
from hal.meters.modbus_meter import ModbusMeter  # noqa: E402
from hal.meters.registermap import load_map  # noqa: E402

MODELS = ("sdm630", "sdm72d-m", "sdm120", "abb-b23", "em340", "orno-we517")
BAUDS = (9600, 19200)
BITS_PER_CHAR = 11  # 1 start + 8 data + 2 stop (8N2; 8E1 has as many bits, but a pty refuses parity)
UNIT = 1


def line_limit(model: str, baud: int) -> tuple[int, int, float]:
    """Requests per reading, bytes on the wire per reading, readings/s the line allows."""
    plan = load_map(model).plan()
    wire = sum(sum(request.frame_bytes()) for request in plan)
    return len(plan), wire, baud / (BITS_PER_CHAR * wire)


def rtu_ceiling(requests: int, wire: int, baud: int) -> float:
    """Readings/s with the bytes and the silence RTU demands before each request (3.5 chars)."""
    gap = BusSettings("rtu", baudrate=baud, stopbits=2).frame_gap_s
    return 1.0 / (wire * BITS_PER_CHAR / baud + requests * gap)


# ------------------------------------------------------------ the meter side
def serve_line(model: str, baud: int, workdir: str, ready: object, done: object) -> None:
    """Child process: socat pairs, the pacing relay and the simulated meter."""
    from hal.meters.simdevice import SimModbusDevice, SimModbusLine, drifting_source
    from tests.integration.meter_rig import LineRelay, PtyPair

    async def run() -> None:
        base = Path(workdir)
        client_side = PtyPair(base / "client", base / "relay-a")
        meter_side = PtyPair(base / "relay-b", base / "meter")
        line = SimModbusLine([SimModbusDevice(load_map(model), source=drifting_source(), unit_id=UNIT)])
        relay = LineRelay(client_side.b, meter_side.a, baudrate=baud, bits_per_char=BITS_PER_CHAR)
        try:
            client_side.start()
            meter_side.start()
            await line.serve_rtu(str(meter_side.b), baudrate=baud, stopbits=2)
            relay.start()
            ready.set()  # type: ignore[attr-defined]
            while not done.is_set():  # type: ignore[attr-defined]
                await asyncio.sleep(0.05)
        finally:
            relay.stop()
            await line.close()
            client_side.stop()
            meter_side.stop()

    asyncio.run(run())


# ------------------------------------------------------------ the driver side
@dataclass
class Result:
    model: str
    baud: int
    requests: int
    wire_bytes: int
    limit: float
    runs: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0


async def poll(model: str, baud: int, port: Path, runs: int, readings: int, result: Result) -> None:
    settings = BusSettings("rtu", port=str(port), baudrate=baud, stopbits=2, timeout_s=1.0)
    meter = ModbusMeter(ModbusBus(settings), load_map(model), UNIT, retries=0)
    try:
        for _ in range(2):  # warm-up: open the port, first frames
            await meter.read()
        for _ in range(runs):
            started = time.perf_counter()
            for _ in range(readings):
                if isinstance(await meter.read(), MeterFailure):
                    result.failures += 1
            result.runs.append(readings / (time.perf_counter() - started))
    finally:
        await meter.close()


def measure(model: str, baud: int, runs: int, readings: int) -> Result:
    requests, wire, limit = line_limit(model, baud)
    result = Result(model, baud, requests, wire, limit)
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    with tempfile.TemporaryDirectory(prefix="meter-poll-") as workdir:
        child = ctx.Process(target=serve_line, args=(model, baud, workdir, ready, done), daemon=True)
        child.start()
        try:
            deadline = time.monotonic() + 30
            while not ready.wait(0.1):
                if not child.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the simulated line did not come up (is socat installed?)")
            asyncio.run(poll(model, baud, Path(workdir) / "client", runs, readings, result))
        finally:
            done.set()
            child.join(15)
            if child.is_alive():
                child.terminate()
                child.join(5)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all)")
    parser.add_argument("--bauds", default=",".join(map(str, BAUDS)))
    parser.add_argument("--runs", type=int, default=5, help="runs per model and baud (median)")
    parser.add_argument("--readings", type=int, default=10, help="full readings per run")
    parser.add_argument("--quick", action="store_true", help="sdm630 only, 3 runs of 5 readings")
    args = parser.parse_args()
    models = ["sdm630"] if args.quick else [m.strip() for m in args.models.split(",") if m.strip()]
    bauds = [int(b) for b in args.bauds.split(",")]
    runs, readings = (3, 5) if args.quick else (args.runs, args.readings)
    print(f"meter_poll: {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {runs} runs x {readings} readings, {BITS_PER_CHAR} bits/char")
    results = []
    for model in models:
        for baud in bauds:
            result = measure(model, baud, runs, readings)
            results.append(result)
            figures = " ".join(f"{r:.2f}" for r in result.runs)
            print(f"  {model:<11} {baud:>6} baud: readings/s per run: {figures}"
                  + (f"  ({result.failures} failed reads)" if result.failures else ""), flush=True)
    print()
    print(f"{'model':<11} {'baud':>6} {'requests':>8} {'bytes':>6} {'line limit/s':>12} "
          f"{'median/s':>9} {'ratio':>6} {'target':>6}   {'RTU ceiling/s':>13} {'ratio':>6}")
    for r in results:
        verdict = "ok" if r.median / r.limit >= 0.8 else "BELOW"
        ceiling = rtu_ceiling(r.requests, r.wire_bytes, r.baud)
        print(f"{r.model:<11} {r.baud:>6} {r.requests:>8} {r.wire_bytes:>6} {r.limit:>12.2f} "
              f"{r.median:>9.2f} {r.median / r.limit:>6.2f} {verdict:>6}   {ceiling:>13.2f} "
              f"{r.median / ceiling:>6.2f}")
    print("\nline limit: bytes only (request + answer x 11 bits / baud), target >= 0.8 of it;"
          "\nRTU ceiling: the same plus the 3.5-character silence RTU requires before each request.")


if __name__ == "__main__":
    main()

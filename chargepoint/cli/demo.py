"""The demo: a simulated station and the bench CSMS run one whole session.

It shows, on one screen, what a station and a CSMS say to each other during a
charging session: plug in, card tap, Authorize, the start of the transaction,
its meter values, a remote stop from the CSMS, unplug; in OCPP 2.1 or 2.0.1
(TransactionEvent; in 2.1 the Ended message carries the session's cost under
the demo's home tariff) or 1.6J (StartTransaction, MeterValues, StopTransaction).
The station is the real daemon with the simulated hal, so the demo exercises the same code a station runs.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from typing import Any

from chargepoint.cli.demo_station import TwoProcessStation
from chargepoint.protocol.bench_csms.v16 import CentralSystem, Frame
from chargepoint.protocol.bench_csms.v21 import ALL_VERSIONS

CARD = "04A1B2C3D4"
IDENTITY = "DEMO-CP-1"

ARROWS = {"in": "station → CSMS", "out": "CSMS → station"}


def _summary(frame: Frame) -> str:
    """The interesting fields of a frame, short enough for one line."""
    if frame.message_type == 2:
        payload = frame.payload
        if frame.action == "MeterValues":
            values = payload["meterValue"][0]["sampledValue"]
            parts = []
            for v in values:
                name = v.get("measurand", "Energy.Active.Import.Register").split(".")[0]
                parts.append(f"{name}{'/' + v['phase'] if v.get('phase') else ''}={v['value']}"
                             f"{v.get('unit', '')}")
            return f"txId={payload.get('transactionId')} " + " ".join(parts)
        if frame.action == "TransactionEvent":
            info = payload["transactionInfo"]
            energy = [v["value"] for mv in payload.get("meterValue", []) for v in mv["sampledValue"]
                      if v.get("measurand") == "Energy.Active.Import.Register"]
            return (f"{payload['eventType']} seqNo={payload['seqNo']} {payload['triggerReason']} "
                    f"txId={info['transactionId']}"
                    + (f" {info['stoppedReason']}" if "stoppedReason" in info else "")
                    + (f" {info['chargingState']}" if "chargingState" in info else "")
                    + (f" Energy={energy[-1]}Wh" if energy else "")
                    + _cost(payload.get("costDetails")))
        if frame.action == "StopTransaction":
            keep = {k: payload[k] for k in ("transactionId", "meterStop", "reason", "idTag")
                    if k in payload}
            return json.dumps(keep)
        return json.dumps(payload, separators=(",", ":"))
    if frame.message_type == 3:
        return "→ " + json.dumps(frame.payload[0], separators=(",", ":"))
    if frame.message_type == 4:
        return "→ CALLERROR " + json.dumps(frame.payload, separators=(",", ":"))
    return repr(frame.payload)


def _cost(details: dict[str, Any] | None) -> str:
    """A 2.1 TransactionEvent's cost, as a bill shows it."""
    if not details:
        return ""
    total = details["totalCost"]
    return f" cost={total['total'].get('inclTax', 0):.2f} {total['currency']}"


class Timeline:
    """Prints frames and narration with the time since the demo started."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.start = time.monotonic()
        self.out = out
        #: CALLs printed whose answer is not printed yet (the summary waits for them: last line).
        self.unanswered: set[str] = set()

    def say(self, text: str) -> None:
        self.out(f"{time.monotonic() - self.start:6.2f}s  ** {text}")

    async def answered(self, at_most_s: float) -> None:
        """Until every CALL printed has its answer printed too (bounded: the summary comes anyway)."""
        deadline = time.monotonic() + at_most_s
        while self.unanswered and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def frame(self, frame: Frame) -> None:
        if frame.message_type == 2:
            self.unanswered.add(frame.unique_id)
        else:
            self.unanswered.discard(frame.unique_id)
        kind = {2: "CALL      ", 3: "RESULT    ", 4: "ERROR     "}.get(frame.message_type, "?")
        action = frame.action or "?"
        self.out(f"{time.monotonic() - self.start:6.2f}s  {ARROWS[frame.direction]}  {kind}"
                 f"{action:<18} {_summary(frame)}")


async def until(condition: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def run_demo(speed: float = 20.0, out: Callable[[str], None] = print,
                   samples: int = 3, ocpp: str = "2.0.1") -> int:
    """Run one whole session in OCPP ``ocpp``; return the energy delivered in Wh (> 0 on success)."""
    timeline = Timeline(out)
    csms = CentralSystem(heartbeat_interval_s=300, on_frame=timeline.frame, peers=dict(ALL_VERSIONS))
    port = await csms.start("127.0.0.1", 0)
    timeline.say(f"bench CSMS listening on ws://127.0.0.1:{port} (OCPP 2.0.1, 1.6J and 2.1)")
    state_dir = tempfile.TemporaryDirectory(prefix="chargepoint-demo-")
    station = TwoProcessStation({
        "station": {"identity": IDENTITY, "model": "Demo AC 11", "serial_number": "DEMO0001",
                    "state_dir": state_dir.name},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{port}", "versions": [ocpp],
                 "meter_value_sample_interval_s": 60,
                 "meter_values_sampled_data": ["Energy.Active.Import.Register",
                                               "Power.Active.Import", "Current.Import"]},
        "simulation": {"speed": speed, "ev_max_current_a": 16, "ev_soc": 0.4},
        "home": {"price_per_kwh": 0.30},  # the session's cost (2.1 reports it to the CSMS)
        # The simulated meter's values travel as a real meter's do: an SDM630's
        # registers on a Modbus TCP server on loopback, read by the real driver.
        "meter": {"poll_interval_s": 5.0, "kind": "sim-modbus", "model": "sdm630"},
        "control": {"socket": f"{state_dir.name}/control.sock"},
    }, state_dir.name)
    # The two processes of a station: the safety supervisor (the simulated EV, circuit and
    # contactor are its hardware) and the daemon, here in this process, on its channel.
    daemon = await station.__aenter__()
    world = daemon.hardware.worlds[1]
    evse = daemon.hardware.connectors[0].evse
    runner = asyncio.ensure_future(daemon.run())
    try:
        timeline.say(f"simulated station {IDENTITY} started, offering OCPP {ocpp} "
                     f"(simulation {speed:g}x real time, "
                     f"meter: simulated SDM630 read over Modbus TCP)")
        await until(lambda: daemon.adapter and daemon.adapter.accepted.is_set(),
                     "BootNotification accepted", 10)
        await asyncio.sleep(0.3)
        timeline.say("EV plugged in (state B)")
        await asyncio.to_thread(world.plug_in)
        await asyncio.sleep(0.3)
        timeline.say(f"RFID card {CARD} presented")
        world.card_reader.tap(CARD)
        record = await until(lambda: next(iter(csms.transactions.values()), None),
                              "the transaction's start", 10)
        await until(lambda: evse.status.contactor_closed, "contactor closed", 5)
        await asyncio.sleep(0.2)
        ev = await asyncio.to_thread(world.act, "look")
        timeline.say(f"contactor closed by the safety supervisor: EV charging at "
                     f"{ev['ev_current_a']:.0f} A x {ev['ev_phases']} phase(s)")
        await until(lambda: record.meter_values >= samples, f"{samples} MeterValues", 15)
        timeline.say("operator stops the session from the CSMS")
        await csms.remote_stop(IDENTITY, record.transaction_id)
        await until(lambda: record.meter_stop is not None, "the transaction's end", 10)
        await asyncio.sleep(0.2)
        timeline.say("EV unplugged")
        await asyncio.to_thread(world.unplug)
        await until(lambda: csms.stations[IDENTITY].status.get(1, ("",))[0] == "Available",
                     "connector Available", 5)
        await timeline.answered(2.0)
        energy = record.energy_wh or 0
        timeline.say(f"session complete: transaction {record.transaction_id}, "
                     f"{energy} Wh delivered (meter {record.meter_start} → {record.meter_stop} Wh), "
                     f"reason {record.reason}")
        return energy
    finally:
        daemon.stop()
        await asyncio.gather(runner, return_exceptions=True)
        await station.__aexit__()
        await csms.close()
        state_dir.cleanup()

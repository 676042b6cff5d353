"""The home station demo (``chargepoint demo --standalone``): no CSMS, a card of the owner's.

It shows what a private wallbox does without an operator backend: the owner's
card is put on the local card list, a stranger's card is refused, the owner's
card starts a session and ends it, and the session lands in the history with
its card, energy and meter values, exported as the CSV ``chargepoint sessions
--csv`` writes. The station is the real daemon on the simulated hal, through
the same station service API the control socket serves.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable

from chargepoint.app.daemon import Daemon
from chargepoint.cli.demo import IDENTITY, Timeline, until
from chargepoint.cli.session_csv import sessions_csv
from chargepoint.config import parse
from chargepoint.core.cards import checked

CARD, NAME, STRANGER = "04A1B2C3D4", "Company car", "0499FFEE"


async def run_standalone_demo(speed: float = 20.0, out: Callable[[str], None] = print,
                              minutes: float = 5.0) -> float:
    """Charge ``minutes`` (simulated) with the owner's card; the energy in Wh (> 0 on success)."""
    timeline = Timeline(out)
    state_dir = tempfile.TemporaryDirectory(prefix="chargepoint-demo-")
    config = parse({
        "station": {"identity": IDENTITY, "model": "Demo AC 11", "state_dir": state_dir.name},
        "simulation": {"speed": speed, "ev_max_current_a": 16, "ev_soc": 0.4},
        "meter": {"poll_interval_s": 5.0},
        "control": {"enabled": False},
    }, "<demo>")
    daemon = Daemon(config)
    world = daemon.hardware.worlds[1]
    runner = asyncio.ensure_future(daemon.run())
    try:
        timeline.say(f"simulated home station {IDENTITY} started without a CSMS "
                     f"(simulation {speed:g}x real time)")
        await until(lambda: daemon.store is not None and daemon.cards.store is not None, "the station", 10)
        await daemon.cards.put([checked(CARD, NAME, None, daemon.clock.time())])
        timeline.say(f"card {CARD} ({NAME}) put on the local card list (chargepoint cards add)")
        world.plug_in()
        timeline.say("EV plugged in (state B)")
        await asyncio.sleep(0.2)
        world.card_reader.tap(STRANGER)
        timeline.say(f"card {STRANGER} presented: not on the list, refused")
        await asyncio.sleep(0.3)
        assert daemon.station.connectors[1].session is None, "a stranger's card must not start a session"
        world.card_reader.tap(CARD)
        timeline.say(f"card {CARD} presented")
        await until(lambda: world.contactor.closed, "contactor closed", 10)
        timeline.say(f"contactor closed: EV charging at {world.ev.current_a:.0f} A x {world.ev.phases} "
                     f"phase(s); nothing is sent anywhere")
        await asyncio.sleep(minutes * 60 / speed)
        world.card_reader.tap(CARD)
        timeline.say(f"card {CARD} presented again: session ends")
        await until(lambda: daemon.station.connectors[1].session is None, "the session's end", 10)
        world.unplug()
        timeline.say("EV unplugged")
        history = await daemon.service.sessions(10)
        (session,) = history["finished"]
        timeline.say(f"in the history: {session['id_tag']} ({session['card_name']}), "
                     f"{session['energy_wh']:.0f} Wh (meter {session['meter_start_wh']:.0f} → "
                     f"{session['meter_stop_wh']:.0f} Wh), reason {session['reason']}; "
                     f"{len(daemon.outbox)} message(s) queued")
        timeline.say("as chargepoint sessions --csv FILE writes it:")
        for line in sessions_csv(history["finished"]).splitlines():
            out(f"          {line}")
        return float(session["energy_wh"])
    finally:
        daemon.stop()
        await asyncio.gather(runner, return_exceptions=True)
        state_dir.cleanup()

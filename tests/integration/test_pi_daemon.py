"""The daemon on the Raspberry Pi backends against fakes, with a real CSMS on loopback.

The whole station runs as on a Pi: ``chargepoint.backends.raspberrypi`` builds it from the
reference profile, the safety loop runs in its thread in real time, the RFID
reader reads a real pty (socat) -- only the hardware is fake: the sysfs PWM
tree, the ADS1115's registers, gpiozero's MockFactory pins with a contactor
and an RCM behind them.
"""

from __future__ import annotations

import asyncio
import shutil
import tomllib
from pathlib import Path

import pytest
import serial

from chargepoint.app.daemon import Daemon
from chargepoint.backends.raspberrypi.build import build_pi_hardware
from chargepoint.config import parse
from hal.clock import RealClock
from hal.rfid import rdm6300_frame
from hal.sim.world import SimWorld
from tests.integration.conftest import until
from tests.integration.test_rfid_readers import pty_pair
from tests.unit.pi_fakes import (
    ContactorPhysics,
    FakeAds1x15,
    FakePwmSysfs,
    PilotModel,
    RcmModel,
    SwitchInput,
)
from tests.unit.pump_fakes import HeartbeatCircuit

EXAMPLE = Path(__file__).parents[2] / "examples" / "raspberrypi.toml"
CARD = "0415AB7C3E"

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")


async def test_a_card_session_on_the_pi_backends(csms, tmp_path, factory):
    with pty_pair() as pair, serial.Serial(pair.paths[1], 9600) as tag:
        data = tomllib.loads(EXAMPLE.read_text())
        data["station"].update(identity="CP-PI-1", state_dir=str(tmp_path / "state"))
        data["ocpp"].update(csms_url=csms.url, reconnect_min_s=0.2, reconnect_max_s=1.0)
        data["board"]["rfid"]["port"] = pair.paths[0]
        config = parse(data, "<test>")

        board = config.board
        sysfs = FakePwmSysfs(tmp_path / "sys")
        model = PilotModel(sysfs.duty_percent)
        clock = RealClock()
        bus = FakeAds1x15(model.adc_volts, chip=board.adc.type)
        hardware = build_pi_hardware(config, pin_factory=factory, i2c_bus=bus, sysfs_root=tmp_path / "sys",
                                     clock=clock, meter=SimWorld(clock).meter,
                                     blocking_sleep=sysfs.kernel_sleep)
        contactor = ContactorPhysics(factory, board.contactor.pin, board.contactor.aux_pin, clock, settle_s=0)
        rcm = RcmModel(factory, board.rcd.pin, board.rcd.test_pin)
        SwitchInput(factory, board.emergency_stop.pin)
        HeartbeatCircuit.attach(factory, board, model, clock.monotonic)  # checked before the session

        daemon = Daemon(config, hardware)
        task = asyncio.ensure_future(daemon.run())
        try:
            await csms.wait_for("StatusNotification", connector_id=1, status="Available")
            model.set(state="B")
            await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
            await asyncio.to_thread(tag.write, rdm6300_frame(CARD))
            await csms.wait_for("Authorize")
            assert csms.of("Authorize")[0].payload["id_tag"] == CARD
            await csms.wait_for("StartTransaction")
            await until(lambda: sysfs.duty_percent() < 100.0)  # PWM on: 32 A offered
            assert sysfs.duty_percent() == pytest.approx(32 / 0.6, abs=0.001)
            assert rcm.tests == 1  # the RCM was tested before the session
            model.set(state="C")
            await csms.wait_for("StatusNotification", connector_id=1, status="Charging")
            assert contactor.contacts
            # Unplugged while charging. The empty socket's PP reads open one sample before
            # the pilot's debounce confirms A, so the safety loop opens on the proximity
            # fault first (as PP breaking first on a real plug would make it do).
            model.set(state="A")
            await until(lambda: not contactor.commanded)
            await csms.wait_for("StopTransaction")
            await csms.wait_for("StatusNotification", connector_id=1, status="Available", count=2)
            rcm.trip()
            await csms.wait_for("StatusNotification", connector_id=1, status="Faulted",
                                error_code="GroundFailure")
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)
        assert sysfs.duty_percent() == 100.0 and not contactor.commanded

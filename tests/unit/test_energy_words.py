"""The energy manager's status in words and figures: what the solar claim does, the flow of power,
and the binding claim as a homeowner reads it (simulated time, the product's house and EV)."""

from __future__ import annotations

import re

from chargepoint.cli.control_limit import claims_text
from chargepoint.core.energy.energy_words import limit_words
from tests.unit.energy_rig import EnergyRig

SUNNY = {"pv_peak_w": 9000, "cloudiness": 0.0, "day_start_h": 12, "base_load_w": 300}


async def test_pv_mode_says_when_it_starts_then_which_surplus_the_solar_claim_follows():
    rig = EnergyRig(ev_max_a=16, solar={"mode": "pv", "enable_delay_s": 60}, house=SUNNY)
    try:
        await rig.run(3)
        status = rig.energy.status()
        assert status["mode"] == "pv"
        assert status["connectors"][0]["solar"] == ("no EV: one plugged in starts once the surplus has "
                                                    "covered 6 A for 60 s"), "true without an EV"
        power = status["power"]
        assert power["grid_w"] < -5000 and power["station_w"] == 0, power
        assert power["surplus_w"] == -power["grid_w"] and power["house_net_w"] == power["grid_w"]
        rig.plug_all()
        await rig.run(8)
        status = rig.energy.status()
        words = status["connectors"][0]["solar"]
        left = int(re.fullmatch(r"paused, starting in (\d+) s unless the surplus changes", words)[1])
        assert 48 <= left <= 53, words
        resolved = rig.limits[1].resolve()
        assert resolved.binding == "solar" and resolved.amps == 0.0
        assert limit_words(resolved.binding, resolved.amps, status, 1) == words, "not 'limit 0.0 A (solar)'"
        await rig.run(60)
        status = rig.energy.status()
        assert status["connectors"][0]["solar"] == "charging from surplus"
        amps = rig.claim(1, "solar")
        assert amps is not None and amps >= 6
        surplus_kw = status["surplus_w"] / 1000
        expected = f"solar: {amps:.1f} A from {surplus_kw:.1f} kW surplus"
        assert limit_words("solar", amps, status, 1) == expected
        assert status["power"]["station_w"] > 4000 and status["connectors"][0]["solar_wh"] > 0
    finally:
        await rig.close()


def test_other_claims_in_words():
    energy = {"main_fuse_a": 25, "headroom_a": [7.5, 12.0, 12.0], "connectors": [], "surplus_w": 0}
    assert limit_words("load_manager", 7.4, energy, 1) == ("main fuse: 7.4 A of the 25 A it leaves "
                                                           "beside the house")
    short = {**energy, "headroom_a": [4.5, 12.0, 12.0]}
    assert limit_words("load_manager", 0.0, short, 1) == ("paused: the main fuse (25 A) leaves 4.5 A "
                                                          "beside the house")
    assert limit_words("operator", 10.0, None, 1) == "your limit: 10.0 A"
    assert limit_words("", float("inf"), None, 1) == "no limit"


def test_the_cli_says_why_the_solar_or_fuse_claim_binds():
    waiting = "paused, starting in 52 s unless the surplus changes"
    limit = {"claims": {"station": 32.0, "solar": 0.0}, "binding": "solar", "words": waiting}
    assert claims_text(limit) == f"solar 0 A (binds), station 32 A; {waiting}"
    operator = {"claims": {"station": 32.0, "operator": 10.0}, "binding": "operator",
                "words": "your limit: 10.0 A"}
    assert claims_text(operator) == "operator 10 A (binds), station 32 A", "the claims say it already"

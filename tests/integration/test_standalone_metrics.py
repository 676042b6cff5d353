"""/metrics of a standalone station says no CSMS is configured and has no CSMS-connected gauge (a 0
there would be a false alert); with a CSMS configured it has both. Real daemons on the sim hal."""

from __future__ import annotations

from chargepoint.web.metrics import registry_for, render
from chargepoint.web.ocppstats import MessageCounter
from tests.integration.conftest import running, station_config


async def test_a_standalone_station_exports_no_csms_connected_metric(tmp_path):
    data = station_config("", str(tmp_path / "alone"), control={"enabled": False})
    del data["ocpp"]["csms_url"]
    async with running(data) as daemon:
        text = render(registry_for(daemon.service, MessageCounter())).decode()
    assert "chargepoint_csms_configured 0.0" in text
    assert "chargepoint_csms_connected" not in text and "chargepoint_csms_reconnects" not in text
    assert "chargepoint_outbox_length 0.0" in text

    linked = station_config("ws://127.0.0.1:9", str(tmp_path / "linked"), control={"enabled": False})
    async with running(linked) as daemon:
        text = render(registry_for(daemon.service, MessageCounter())).decode()
    assert "chargepoint_csms_configured 1.0" in text and "chargepoint_csms_connected 0.0" in text

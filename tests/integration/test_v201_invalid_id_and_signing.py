"""MaxEnergyOnInvalidId and the repeated signing request (CertSigningWaitMinimum / CertSigningRepeatTimes)
in 2.0.1 against the strict ``ocpp-rpc`` CSMS, by OCTT case.

A card the CSMS accepts to Authorize but answers Invalid in the transaction's
Started event: with StopTxOnInvalidId false the transaction stays open and
charges on until MaxEnergyOnInvalidId Wh are delivered, then the energy stops.
A signing request the CSMS accepts and never answers with a certificate is made
again CertSigningWaitMinimum seconds later, the wait doubled each time, at most
CertSigningRepeatTimes times; a certificate ends the series. Waits are measured
on the station's (simulated) clock. Every frame is schema-checked: zero strict
validation failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.conftest import StationLog
from tests.integration.strict_peer import StrictPeer, strict_peer
from tests.integration.test_v201_strict import ok
from tests.pki import Ca, pem

CARD = "CAFE0BAD"


@asynccontextmanager
async def running(tmp_path: Path, refused: str = "") -> AsyncIterator[tuple[StrictPeer, Daemon]]:
    async with strict_peer(tmp_path, 300, "ocpp2.0.1", env={"STRICT_CSMS_REFUSED_TOKENS": refused}) as peer:
        daemon = Daemon(parse({
            "station": {"identity": "CP-INVALID-201", "state_dir": str(tmp_path / "state")},
            "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "meter_value_sample_interval_s": 60,
                     "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
            "simulation": {"speed": 10.0},
            "control": {"enabled": False},
        }, "<test_v201_invalid_id_and_signing>"))
        task = asyncio.ensure_future(daemon.run())
        try:
            await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
            yield peer, daemon
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)
        assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames" + peer.report()
        assert peer.of("badMessage") == [], peer.report()


async def _set(peer: StrictPeer, component: str, **values: Any) -> None:
    answer = await ok(peer, "SetVariables", {"setVariableData": [
        {"component": {"name": component}, "variable": {"name": name}, "attributeValue": str(value)}
        for name, value in values.items()]})
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == ["Accepted"] * len(values), answer


async def test_tc_c_15_refused_id_charges_on_up_to_max_energy_on_invalid_id(tmp_path: Path) -> None:
    async with running(tmp_path, refused=CARD) as (peer, daemon):
        await _set(peer, "TxCtrlr", StopTxOnInvalidId="false", MaxEnergyOnInvalidId=30)
        world = daemon.hardware.worlds[1]
        world.plug_in()
        world.card_reader.tap(CARD)
        started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
        meter_start = started["meterValue"][0]["sampledValue"][0]["value"]
        await peer.wait(lambda: world.contactor.closed, "charging")
        # Refused, yet kept and charging until 30 Wh are delivered; then the station offers no energy.
        tx_id = started["transactionInfo"]["transactionId"]
        await peer.wait(lambda: [c for c in peer.calls("TransactionEvent", eventType="Updated")
                                 if c["params"]["transactionInfo"] == {"transactionId": tx_id,
                                                                       "chargingState": "SuspendedEVSE"}],
                        "SuspendedEVSE", timeout=15)
        await peer.wait(lambda: not world.contactor.closed, "the contactor opened")
        delivered = world.meter.energy_wh - meter_start
        assert 30 <= delivered < 45, delivered
        assert peer.calls("TransactionEvent", eventType="Ended") == [], "the transaction stays open"
        assert daemon.station.active_transactions()[0][1].suspended


async def test_tc_a_23_signing_request_repeated_with_doubling_waits_until_a_certificate(
        tmp_path: Path, station_log: StationLog) -> None:
    async with running(tmp_path) as (peer, daemon):
        authority = Ca.root("CSMS CA", days=365)
        assert (await ok(peer, "InstallCertificate", {
            "certificateType": "CSMSRootCertificate", "certificate": pem(authority.certificate)}))[
            "status"] == "Accepted"
        await _set(peer, "SecurityCtrlr", CertSigningWaitMinimum=3, CertSigningRepeatTimes=2)
        # When the station makes each request, on its own clock (recorded, not changed).
        made_at: list[float] = []
        make = daemon.security.signing_request

        async def recorded() -> str:
            made_at.append(daemon.clock.time())
            return await make()

        daemon.security.signing_request = recorded  # type: ignore[method-assign]

        async def requests(count: int) -> list[dict[str, Any]]:
            return await peer.wait(  # type: ignore[no-any-return]
                lambda: (lambda calls: calls if len(calls) >= count else None)(peer.calls("SignCertificate")),
                f"{count} SignCertificate", timeout=10)

        assert await ok(peer, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}) == {
            "status": "Accepted"}
        await requests(3)
        await station_log.wait_for("no certificate after 3 signing request(s)")
        assert len(peer.calls("SignCertificate")) == 3  # the first and CertSigningRepeatTimes more
        gaps = [b - a for a, b in zip(made_at, made_at[1:], strict=False)]
        # 3 s, then doubled, after each answer (the answer's round trip on top)
        assert 3.0 <= gaps[0] < 5.0 and 6.0 <= gaps[1] < 8.0, gaps

        # A new series on the CSMS's trigger; its certificate ends it: no request after.
        assert await ok(peer, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}) == {
            "status": "Accepted"}
        [*_, request] = await requests(4)
        chain = authority.sign_csr(request["params"]["csr"], days=365)
        signed = await ok(peer, "CertificateSigned", {
            "certificateChain": chain, "certificateType": "ChargingStationCertificate"})
        assert signed == {"status": "Accepted"}
        await daemon.clock.sleep(10)  # past the first and the second wait of the series
        assert len(peer.calls("SignCertificate")) == 4

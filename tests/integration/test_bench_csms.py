"""The bench CSMS (`chargepoint csms`, the demo's) answers every report a 1.6 station sends.

A station reports security events, firmware and log states on its own; a CSMS
without a handler answers NotImplemented, which the station logs as a failure.
"""

from __future__ import annotations

import asyncio

import websockets
from ocpp.v16 import ChargePoint, call

from chargepoint.protocol.bench_csms.v16 import CentralSystem


async def test_reports_of_a_16_station_are_answered():
    csms = CentralSystem()
    port = await csms.start()
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/BENCH-1", subprotocols=["ocpp1.6"]) as ws:
            station = ChargePoint("BENCH-1", ws)
            reader = asyncio.ensure_future(station.start())
            try:
                reports = [
                    call.SecurityEventNotification(type="StartupOfTheDevice",
                                                   timestamp="2026-11-28T10:00:00Z", tech_info=None),
                    call.FirmwareStatusNotification(status="Idle"),
                    call.DiagnosticsStatusNotification(status="Idle"),
                    call.SignedFirmwareStatusNotification(status="Idle", request_id=None),
                    call.LogStatusNotification(status="Idle", request_id=None),
                ]
                for report in reports:  # suppress=False: a CALLERROR would raise
                    assert await station.call(report, suppress=False) is not None
                signed = await station.call(call.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----"),
                                            suppress=False)
                assert signed.status == "Rejected"  # no certificate authority here, and it says so
            finally:
                reader.cancel()
    finally:
        await csms.close()

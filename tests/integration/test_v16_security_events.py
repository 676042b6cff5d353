"""Security events provoked on a running station and seen on the wire, and the root certificates' life.

Each event is caused the way it happens in the field (a refused password, a
frame that is not OCPP, a bad certificate from the CSMS, a tampered firmware
package, a reset) and must reach the CSMS as a SecurityEventNotification, also
when it happened while the station was offline.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import running, station_config, until
from tests.integration.test_v16_profile3 import SecurityCsms, ok
from tests.integration.test_v16_security import KEY, OTHER_KEY, basic
from tests.pki import Ca, pem, server_context, sign_package

CSMS_ROOT = "CentralSystemRootCertificate"
MANUFACTURER_ROOT = "ManufacturerRootCertificate"


def config(url: str, tmp_path: Path, **ocpp: Any) -> dict[str, Any]:
    return station_config(
        url, str(tmp_path / "state"), ocpp={"security_profile": 1, "authorization_key": KEY, **ocpp}
    )


async def test_a_refused_password_is_reported_once_the_csms_takes_the_station(tmp_path):
    async with SecurityCsms(authorization=basic(OTHER_KEY)) as csms:
        async with running(config(csms.url, tmp_path)):
            await until(lambda: csms.handshakes, 10, "a refused handshake")
            csms.authorization = basic(KEY)
            [event] = await csms.wait_for(
                "SecurityEventNotification", type="FailedToAuthenticateAtCentralSystem"
            )
            assert event.payload["techInfo"] == "HTTP 401 at connect"
            assert "StartupOfTheDevice" in csms.events()


async def test_events_of_the_running_station_reach_the_csms(tmp_path):
    async with SecurityCsms(authorization=basic(KEY)) as csms:
        async with running(config(csms.url, tmp_path)) as daemon:
            await csms.wait_for("StatusNotification")
            # A frame that is not OCPP.
            await csms.send("this is not json")
            await csms.wait_for("SecurityEventNotification", type="InvalidMessages")
            # A certificate chain the station cannot take.
            answer = await ok(csms, "CertificateSigned", {"certificateChain": pem(Ca.root("x").certificate)})
            assert answer["status"] == "Rejected"
            await csms.wait_for("SecurityEventNotification", type="InvalidChargePointCertificate")
            # A new password.
            assert (await ok(csms, "ChangeConfiguration", {"key": "AuthorizationKey", "value": OTHER_KEY}))[
                "status"
            ] == "Accepted"
            [changed] = await csms.wait_for(
                "SecurityEventNotification", type="ReconfigurationOfSecurityParameters"
            )
            assert OTHER_KEY not in str(changed.payload)
            # Firmware the station must not run: through the verifier the firmware manager calls.
            root = Ca.root("Manufacturer")
            assert (
                await ok(
                    csms,
                    "InstallCertificate",
                    {"certificateType": MANUFACTURER_ROOT, "certificate": pem(root.certificate)},
                )
            )["status"] == "Accepted"
            signing, key = root.leaf("firmware signing")
            package = tmp_path / "fw.bin"
            package.write_bytes(b"firmware" * 1000)
            signature = sign_package(key, b"firmware" * 1000)
            tampered = type("Request", (), {"signature": signature, "signing_certificate": pem(signing)})()
            package.write_bytes(b"firmware" * 999 + b"FIRMWARE")
            assert await daemon.security.verifier.verify(package, tampered) is not None
            unknown_signer, other_key = Ca.root("someone").leaf("signer")
            foreign = type(
                "Request",
                (),
                {
                    "signature": sign_package(other_key, package.read_bytes()),
                    "signing_certificate": pem(unknown_signer),
                },
            )()
            assert await daemon.security.verifier.verify(package, foreign) is not None
            await csms.wait_for("SecurityEventNotification", type="InvalidFirmwareSignature")
            await csms.wait_for("SecurityEventNotification", type="InvalidFirmwareSigningCertificate")
            # The technician clears the log.
            await daemon.security.log.clear("the technician")
            await csms.wait_for("SecurityEventNotification", type="SecurityLogWasCleared")
    # A notification's fields are the 1.6 schema's (the strict peer checks them too).
    for event in csms.of("SecurityEventNotification"):
        assert set(event.payload) <= {"type", "timestamp", "techInfo"}
        assert len(event.payload.get("techInfo", "")) <= 255


async def test_events_of_an_outage_and_of_a_reset_arrive_after_the_reconnect(tmp_path, station_log):
    async with SecurityCsms(authorization=basic(KEY)) as csms:
        async with running(config(csms.url, tmp_path)) as daemon:
            await csms.wait_for("StatusNotification")
            assert (await ok(csms, "Reset", {"type": "Soft"}))["status"] == "Accepted"
            await asyncio.wait_for(daemon._stopped.wait(), 20)
        assert daemon.restart_requested == "soft"
        port = csms.port
    # Offline: the CSMS is gone while the station starts again.
    async with running(config(f"ws://127.0.0.1:{port}/ocpp", tmp_path)):
        await station_log.wait_for("next attempt in")  # the CSMS is not there: events wait on disk
        later = SecurityCsms(authorization=basic(KEY))
        await later.start(port)
        try:
            # The start made while the CSMS was away arrives once it is back.
            await later.wait_for("SecurityEventNotification", type="StartupOfTheDevice", timeout=20)
            await later.wait_for("StatusNotification")
        finally:
            await later.close()
    # The reset's event went out before the restart or after it (it is on disk until answered). Sent
    # just as the station stopped, its answer may not have been read: then the same event comes again
    # (at least once, as OCPP delivers), never a second event.
    resets = csms.of("SecurityEventNotification", type="ResetOrReboot") + \
        later.of("SecurityEventNotification", type="ResetOrReboot")
    assert resets and all(r.payload == resets[0].payload for r in resets), resets
    assert len(resets) <= 2 and resets[0].payload["techInfo"] == "soft reset by the CSMS"


async def test_roots_are_installed_listed_and_a_deleted_root_is_no_longer_trusted(tmp_path, station_log):
    authority, other = Ca.root("CSMS CA", days=365), Ca.root("Other CA")
    context = server_context(*authority.server(tmp_path / "server"))
    async with SecurityCsms(authorization=basic(KEY), ssl_context=context) as csms:
        cfg = config(csms.url, tmp_path, security_profile=2, ca_bundle=authority.write(tmp_path / "ca.pem"))
        async with running(cfg):
            await csms.wait_for("StatusNotification")
            empty = await ok(csms, "GetInstalledCertificateIds", {"certificateType": CSMS_ROOT})
            assert empty == {"status": "NotFound"}
            for root in (authority, other):
                assert (
                    await ok(
                        csms,
                        "InstallCertificate",
                        {"certificateType": CSMS_ROOT, "certificate": pem(root.certificate)},
                    )
                )["status"] == "Accepted"
            bad = await ok(
                csms,
                "InstallCertificate",
                {"certificateType": CSMS_ROOT, "certificate": pem(authority.leaf("not a CA")[0])},
            )
            assert bad["status"] == "Rejected"
            listed = await ok(csms, "GetInstalledCertificateIds", {"certificateType": CSMS_ROOT})
            assert listed["status"] == "Accepted" and len(listed["certificateHashData"]) == 2
            serial = format(authority.certificate.serial_number, "x")
            [ours] = [h for h in listed["certificateHashData"] if h["serialNumber"] == serial]
            assert (await ok(csms, "DeleteCertificate", {"certificateHashData": ours}))[
                "status"
            ] == "Accepted"
            assert (await ok(csms, "DeleteCertificate", {"certificateHashData": ours}))[
                "status"
            ] == "NotFound"
            # The next connection must lead to the remaining root, which did not sign the CSMS's certificate.
            connections = len(csms.sockets)
            await csms.sockets[-1].close()
            await station_log.wait_for("security event invalid_csms_certificate")
            assert len(csms.sockets) == connections
    assert csms.of("SecurityEventNotification", type="ReconfigurationOfSecurityParameters")


@pytest.mark.parametrize(
    "message",
    [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "LogStatusNotification",
        "FirmwareStatusNotification",
    ],
)
async def test_extended_trigger_message_sends_what_was_asked_for(tmp_path, message):
    async with SecurityCsms() as csms:
        async with running(station_config(csms.url, str(tmp_path / "state"))):
            await csms.wait_for("StatusNotification")
            # The extension's FirmwareStatusNotification is its SignedFirmwareStatusNotification.
            signed = message == "FirmwareStatusNotification"
            sent_as = "SignedFirmwareStatusNotification" if signed else message
            before = len(csms.of(sent_as))
            assert (await ok(csms, "ExtendedTriggerMessage", {"requestedMessage": message}))[
                "status"
            ] == "Accepted"
            [*_, sent] = await csms.wait_for(sent_as, count=before + 1)
            if message in ("LogStatusNotification", "FirmwareStatusNotification"):
                assert sent.payload["status"] == "Idle"
            assert (
                await ok(csms, "ExtendedTriggerMessage", {"requestedMessage": message, "connectorId": 7})
            )["status"] == "Rejected"

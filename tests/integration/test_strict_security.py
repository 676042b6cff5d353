"""The 1.6 security extension against the strict ocpp-rpc CSMS, over mutual TLS (security profile 3).

ocpp-rpc's strict mode carries the official 1.6 schemas including the security
extension's (SignCertificate, CertificateSigned, InstallCertificate,
DeleteCertificate, GetInstalledCertificateIds, ExtendedTriggerMessage,
SecurityEventNotification, LogStatusNotification): every frame the station
sends is checked by an implementation we did not write. The peer serves wss://
and demands a client certificate of the CSMS's CA; the station presents the
one it got for a key it made itself. The run must end with no strict failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.strict_peer import PEER_DIR, SCRIPT, StrictPeer
from tests.integration.test_strict_peer import HEARTBEAT_S
from tests.integration.test_v16_profile3 import IDENTITY, provisioned_state
from tests.pki import Ca, pem


@pytest.fixture
async def pki(tmp_path: Path) -> dict[str, Any]:
    authority = Ca.root("CSMS CA", days=365)
    certfile, keyfile = authority.server(tmp_path / "server")
    return {
        "ca": authority,
        "cert": certfile,
        "key": keyfile,
        "ca_file": authority.write(tmp_path / "ca.pem"),
    }


@pytest.fixture
async def strict(tmp_path: Path, pki: dict[str, Any]) -> AsyncIterator[StrictPeer]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the strict ocpp-rpc peer cannot run (make test installs it)")
    if not (PEER_DIR / "node_modules" / "ocpp-rpc").is_dir():
        pytest.fail(f"{PEER_DIR / 'node_modules'} is missing: run `make test` to install the strict peer")
    env = {
        **os.environ,
        "STRICT_CSMS_TLS_CERT": pki["cert"],
        "STRICT_CSMS_TLS_KEY": pki["key"],
        "STRICT_CSMS_TLS_CLIENT_CA": pki["ca_file"],
    }
    stderr_path = tmp_path / "strict_csms.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            "0",
            str(HEARTBEAT_S),
            cwd=PEER_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    server = StrictPeer(process, stderr_path)
    try:
        await server.wait(lambda: server.port, "the peer to listen", timeout=10)
        yield server
    finally:
        await server.quit()


@pytest.fixture
async def daemon(strict: StrictPeer, pki: dict[str, Any], tmp_path: Path) -> AsyncIterator[Daemon]:
    state = tmp_path / "state"
    await provisioned_state(state, pki["ca"])
    station = Daemon(
        parse(
            {
                "station": {"identity": IDENTITY, "state_dir": str(state)},
                "ocpp": {
                    "csms_url": f"wss://127.0.0.1:{strict.port}",
                    "security_profile": 3,
                    "reconnect_min_s": 0.2,
                    "reconnect_max_s": 1.0,
                },
                "simulation": {"speed": 10.0},
                "control": {"socket": str(tmp_path / "control.sock")},
            },
            "<test_strict_security>",
        )
    )
    task = asyncio.ensure_future(station.run())
    try:
        await strict.wait_call("StatusNotification", connectorId=1)
        yield station
        assert strict.of("close") == [], "the connection dropped" + strict.report()
    finally:
        station.stop()
        await asyncio.wait_for(task, 20)
    assert strict.strict_failures() == [], "ocpp-rpc (strict mode) rejected frames" + strict.report()
    assert strict.of("badMessage") == [], strict.report()


async def result(strict: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await strict.call(action, params)
    assert answer["event"] == "result", f"{action}: {answer}" + strict.report()
    return answer["result"]  # type: ignore[no-any-return]


async def test_the_security_extension_over_mutual_tls_passes_the_strict_peer(strict, daemon, pki, tmp_path):
    [client] = strict.of("client")
    assert client["clientCertificate"] == IDENTITY
    await strict.wait_call("SecurityEventNotification", type="StartupOfTheDevice")
    keys = await result(
        strict,
        "GetConfiguration",
        {
            "key": [
                "CpoName",
                "CertificateSignedMaxChainSize",
                "CertificateStoreMaxLength",
                "AdditionalRootCertificateCheck",
                "SecurityProfile",
            ]
        },
    )
    values = {k["key"]: (k.get("value"), k["readonly"]) for k in keys["configurationKey"]}
    assert values == {
        "CpoName": ("", False),
        "CertificateSignedMaxChainSize": ("10000", True),
        "CertificateStoreMaxLength": ("20", True),
        "AdditionalRootCertificateCheck": ("false", True),
        "SecurityProfile": ("3", False),
    }

    manufacturer = Ca.root("Manufacturer root")
    installed = await result(
        strict,
        "InstallCertificate",
        {"certificateType": "ManufacturerRootCertificate", "certificate": pem(manufacturer.certificate)},
    )
    assert installed == {"status": "Accepted"}
    ids = await result(
        strict, "GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"}
    )
    assert ids["status"] == "Accepted" and len(ids["certificateHashData"]) == 1
    csms_ids = await result(
        strict, "GetInstalledCertificateIds", {"certificateType": "CentralSystemRootCertificate"}
    )
    assert len(csms_ids["certificateHashData"]) == 1
    deleted = await result(
        strict, "DeleteCertificate", {"certificateHashData": ids["certificateHashData"][0]}
    )
    assert deleted == {"status": "Accepted"}
    assert await result(
        strict, "GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"}
    ) == {"status": "NotFound"}

    for message in (
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "FirmwareStatusNotification",
        "LogStatusNotification",
    ):
        # The extension's FirmwareStatusNotification is its SignedFirmwareStatusNotification.
        sent_as = "SignedFirmwareStatusNotification" if message == "FirmwareStatusNotification" else message
        before = len(strict.calls(sent_as))
        assert await result(strict, "ExtendedTriggerMessage", {"requestedMessage": message}) == {
            "status": "Accepted"
        }
        await strict.wait_call(sent_as, count=before + 1)
    assert await result(
        strict, "ExtendedTriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 3}
    ) == {"status": "Rejected"}

    # Renewal on the CSMS's request: a CSR over a new key, signed, accepted; a bad chain refused.
    assert await result(
        strict, "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
    ) == {"status": "Accepted"}
    [request] = await strict.wait_call("SignCertificate")
    csr = x509.load_pem_x509_csr(request["params"]["csr"].encode())
    assert csr.is_signature_valid
    signed = await result(
        strict,
        "CertificateSigned",
        {"certificateChain": pki["ca"].sign_csr(request["params"]["csr"], days=365)},
    )
    assert signed == {"status": "Accepted"}
    refused = await result(strict, "CertificateSigned", {"certificateChain": pem(Ca.root("x").certificate)})
    assert refused == {"status": "Rejected"}
    await strict.wait_call("SecurityEventNotification", type="InvalidChargePointCertificate")
    await strict.wait_call("SecurityEventNotification", type="ReconfigurationOfSecurityParameters")

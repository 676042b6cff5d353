"""OCPP 2.0.1 security (A and M blocks) against the strict ocpp-rpc CSMS, over mutual TLS (profile 3).

The peer speaks 2.0.1 only, serves wss:// and demands a client certificate of
the CSMS's CA; the station presents the one it got for a key it made itself
(security profile 3 over 2.0.1: the connection code is the same as 1.6's).
ocpp-rpc's strict mode checks every frame the station sends against the
official 2.0.1 schemas (SignCertificate, SecurityEventNotification, the
answers to InstallCertificate, DeleteCertificate, GetInstalledCertificateIds,
CertificateSigned, TriggerMessage, GetVariables); each run must end with no
strict failure. Tests are named after the OCTT cases they follow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from chargepoint.core.security.certificates import CertificateStore, RootKind
from tests.integration.strict_peer import StrictPeer, strict_peer
from tests.pki import Ca, pem

IDENTITY = "CP-SEC-201"
HEARTBEAT_S = 5


@pytest.fixture
def ca(tmp_path: Path) -> dict[str, Any]:
    authority = Ca.root("CSMS CA", days=365)
    certfile, keyfile = authority.server(tmp_path / "server")
    return {"ca": authority, "env": {"STRICT_CSMS_TLS_CERT": certfile, "STRICT_CSMS_TLS_KEY": keyfile,
                                     "STRICT_CSMS_TLS_CLIENT_CA": authority.write(tmp_path / "ca.pem")}}


@pytest.fixture
async def peer(tmp_path: Path, ca: dict[str, Any]) -> AsyncIterator[StrictPeer]:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp2.0.1", env=ca["env"]) as server:
        yield server


def provision(state: Path, authority: Ca, days: float) -> None:
    """A station that already has its certificate (``days`` valid) and trusts the CSMS's CA."""
    store = CertificateStore(state, time.time)
    store.install(RootKind.CSMS, pem(authority.certificate), 20)
    csr = store.new_signing_request(IDENTITY, "CPO")
    assert store.accept_signed(authority.sign_csr(csr, days=days), 10_000) is None


@asynccontextmanager
async def running(peer: StrictPeer, tmp_path: Path, authority: Ca, days: float = 365,
                  **settings: Any) -> AsyncIterator[Daemon]:
    """The station on profile 3 against ``peer``, until its statuses are in; strict checks after."""
    state = tmp_path / "state"
    provision(state, authority, days)
    daemon = Daemon(parse({
        "station": {"identity": IDENTITY, "state_dir": str(state)},
        "ocpp": {"csms_url": f"wss://127.0.0.1:{peer.port}", "security_profile": 3,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, **settings},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v201_strict_security>"))
    task = asyncio.ensure_future(daemon.run())
    try:
        await peer.wait_call("StatusNotification", evseId=1, connectorId=1)
        yield daemon
        assert peer.of("close") == [], "the connection dropped" + peer.report()
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames" + peer.report()
    assert peer.of("badMessage") == [], peer.report()


async def ok(peer: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await peer.call(action, params)
    assert answer["event"] == "result", f"{action}: {answer}" + peer.report()
    return answer["result"]  # type: ignore[no-any-return]


async def set_organization(peer: StrictPeer, name: str) -> None:
    answer = await ok(peer, "SetVariables", {"setVariableData": [
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "OrganizationName"},
         "attributeValue": name}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted", answer


def cn(csr_pem: str) -> str:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    return str(csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


async def test_profile3_over_201_security_ctrlr_and_startup_event(peer, ca, tmp_path):
    """A00-style: the 2.0.1 CSMS demanding a client certificate takes the station's; the start is
    reported after the boot; the SecurityCtrlr variables show the neutral settings."""
    async with running(peer, tmp_path, ca["ca"]):
        [client] = peer.of("client")
        assert client["protocol"] == "ocpp2.0.1"
        assert client["clientCertificate"] == IDENTITY
        [startup] = await peer.wait_call("SecurityEventNotification", type="StartupOfTheDevice")
        actions = peer.actions()
        assert actions.index("BootNotification") < actions.index("SecurityEventNotification")
        assert set(startup["params"]) <= {"type", "timestamp", "techInfo"}
        await set_organization(peer, "Example CPO")
        names = ("OrganizationName", "CertificateEntries", "SecurityProfile", "Identity",
                 "MaxCertificateChainSize", "AdditionalRootCertificateCheck")
        got = await ok(peer, "GetVariables", {"getVariableData": [
            {"component": {"name": "SecurityCtrlr"}, "variable": {"name": n}} for n in names]})
        values = {r["variable"]["name"]: (r["attributeStatus"], r.get("attributeValue"))
                  for r in got["getVariableResult"]}
        assert values == {
            "OrganizationName": ("Accepted", "Example CPO"),
            "CertificateEntries": ("Accepted", "1"),
            "SecurityProfile": ("Accepted", "3"),
            "Identity": ("Accepted", IDENTITY),
            "MaxCertificateChainSize": ("Accepted", "10000"),
            "AdditionalRootCertificateCheck": ("Accepted", "false"),
        }
        # Read-only: the security profile changes through a network profile only.
        denied = await ok(peer, "SetVariables", {"setVariableData": [
            {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "MaxCertificateChainSize"},
             "attributeValue": "5000"}]})
        assert denied["setVariableResult"][0]["attributeStatus"] == "Rejected"


async def test_m05_m03_m04_install_list_delete_roots(peer, ca, tmp_path):
    async with running(peer, tmp_path, ca["ca"]):
        await peer.wait_call("SecurityEventNotification", type="StartupOfTheDevice")
        manufacturer = Ca.root("Manufacturer root", days=365)
        # M05: install a manufacturer root; a V2G root is not a kind this station keeps.
        assert await ok(peer, "InstallCertificate", {
            "certificateType": "ManufacturerRootCertificate",
            "certificate": pem(manufacturer.certificate)}) == {"status": "Accepted"}
        assert await ok(peer, "InstallCertificate", {
            "certificateType": "V2GRootCertificate",
            "certificate": pem(Ca.root("V2G").certificate)}) == {"status": "Rejected"}
        await peer.wait_call("SecurityEventNotification", type="ReconfigurationOfSecurityParameters")
        # M03: by type, and every type.
        only = await ok(peer, "GetInstalledCertificateIds",
                        {"certificateType": ["ManufacturerRootCertificate"]})
        assert only["status"] == "Accepted"
        [entry] = only["certificateHashDataChain"]
        assert entry["certificateType"] == "ManufacturerRootCertificate"
        hash_data = entry["certificateHashData"]
        assert hash_data["hashAlgorithm"] == "SHA256"
        assert int(hash_data["serialNumber"], 16) == manufacturer.certificate.serial_number
        every = await ok(peer, "GetInstalledCertificateIds", {})
        assert sorted(e["certificateType"] for e in every["certificateHashDataChain"]) == [
            "CSMSRootCertificate", "ManufacturerRootCertificate"]
        assert await ok(peer, "GetInstalledCertificateIds", {"certificateType": ["V2GRootCertificate"]}) == {
            "status": "NotFound"}
        # M04: delete it; a second time it is not there.
        assert await ok(peer, "DeleteCertificate", {"certificateHashData": hash_data}) == {
            "status": "Accepted"}
        assert await ok(peer, "DeleteCertificate", {"certificateHashData": hash_data}) == {
            "status": "NotFound"}
        assert await ok(peer, "GetInstalledCertificateIds",
                        {"certificateType": ["ManufacturerRootCertificate"]}) == {"status": "NotFound"}
        await peer.wait_call("SecurityEventNotification", type="ReconfigurationOfSecurityParameters", count=2)


async def test_a02_certificate_renewal_on_trigger_and_invalid_chain_reported(peer, ca, tmp_path):
    async with running(peer, tmp_path, ca["ca"]) as daemon:
        await peer.wait_call("SecurityEventNotification", type="StartupOfTheDevice")
        await set_organization(peer, "Example CPO")
        assert peer.calls("SignCertificate") == []  # a year left: no renewal of its own
        assert await ok(peer, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}) == {
            "status": "Accepted"}
        [request] = await peer.wait_call("SignCertificate")
        assert request["params"]["certificateType"] == "ChargingStationCertificate"
        assert cn(request["params"]["csr"]) == IDENTITY
        subject = x509.load_pem_x509_csr(request["params"]["csr"].encode()).subject
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example CPO"
        chain = ca["ca"].sign_csr(request["params"]["csr"], days=365)
        assert await ok(peer, "CertificateSigned", {
            "certificateChain": chain, "certificateType": "ChargingStationCertificate"}) == {
            "status": "Accepted"}
        own = await asyncio.to_thread(daemon.security.certificates.client_identity)
        assert own is not None
        # A chain for another key (not issued for the station's CSR): refused and reported.
        assert await ok(peer, "CertificateSigned", {
            "certificateChain": pem(Ca.root("x").certificate)}) == {"status": "Rejected"}
        await peer.wait_call("SecurityEventNotification", type="InvalidChargingStationCertificate")
        # A frame that is not OCPP: dropped, the connection stays, the event reaches the CSMS.
        peer.send_raw("this is not json")
        [invalid] = await peer.wait_call("SecurityEventNotification", type="InvalidMessages")
        assert "not JSON" in invalid["params"]["techInfo"]


async def test_a03_renewal_started_by_the_station_ahead_of_expiry(peer, ca, tmp_path):
    """The station's certificate has less than certificate_renewal_days left: it asks by itself."""
    async with running(peer, tmp_path, ca["ca"], days=10):
        [request] = await peer.wait_call("SignCertificate")
        assert cn(request["params"]["csr"]) == IDENTITY
        assert await ok(peer, "CertificateSigned", {
            "certificateChain": ca["ca"].sign_csr(request["params"]["csr"], days=365)}) == {
            "status": "Accepted"}

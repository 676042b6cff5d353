"""Security profile 3 and certificate management over real TLS: the station's key, its certificate, renewal.

A frame-level CSMS (``RawCsms``) serves wss:// with a certificate of its CA and
asks for (or demands) a client certificate issued by that CA. The station
starts at profile 2; the CSMS installs its root, has the station make a key and
a signing request, signs it, raises the profile to 3; the station then presents
its certificate (and no password) and renews it ahead of expiry. Every step is
what the CSMS sees on the wire.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from chargepoint.core.security.certificates import CertificateStore, RootKind
from tests.integration.conftest import running, station_config, until
from tests.integration.peers import RawCsms
from tests.integration.test_v16_security import KEY, basic
from tests.pki import Ca, pem, server_context

IDENTITY = "CP-TEST-1"


class SecurityCsms(RawCsms):
    """RawCsms that also answers the security extension's CALLs and notes the client certificate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Per connection: the leaf certificate the station presented (None: none).
        self.client_certificates: list[x509.Certificate | None] = []

    async def _handle(self, ws: Any) -> None:
        ssl_object = ws.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.client_certificates.append(x509.load_der_x509_certificate(der) if der else None)
        await super()._handle(ws)

    def _answer(self, frame: list[Any]) -> list[Any]:
        if frame[2] in ("SecurityEventNotification", "SignedFirmwareStatusNotification",
                        "LogStatusNotification"):
            return [3, frame[1], {}]
        if frame[2] == "SignCertificate":
            return [3, frame[1], {"status": "Accepted"}]
        return super()._answer(frame)

    def events(self, connection: int | None = None) -> list[str]:
        return [c.payload["type"] for c in self.of("SecurityEventNotification", connection)]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("pki")
    authority = Ca.root("CSMS CA", days=365)
    certfile, keyfile = authority.server(directory)
    return {
        "ca": authority,
        "certfile": certfile,
        "keyfile": keyfile,
        "ca_bundle": authority.write(directory / "csms-ca.pem"),
    }


def config(url: str, tmp_path: Path, ca_bundle: str, **ocpp: Any) -> dict[str, Any]:
    settings = {"security_profile": 2, "authorization_key": KEY, "ca_bundle": ca_bundle, **ocpp}
    return station_config(url, str(tmp_path / "state"), ocpp=settings)


async def ok(csms: RawCsms, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    answer = await csms.call(action, payload, timeout=10)
    assert answer[0] == 3, answer
    return answer[2]  # type: ignore[no-any-return]


async def provision(csms: SecurityCsms, ca: Ca, *, days: float, organization: str = "Example CPO") -> str:
    """The CSMS installs its root, names the organization, triggers a CSR and signs it; returns the CSR."""
    assert (
        await ok(
            csms,
            "InstallCertificate",
            {"certificateType": "CentralSystemRootCertificate", "certificate": pem(ca.certificate)},
        )
    )["status"] == "Accepted"
    assert (await ok(csms, "ChangeConfiguration", {"key": "CpoName", "value": organization}))[
        "status"
    ] == "Accepted"
    before = len(csms.of("SignCertificate"))
    assert (await ok(csms, "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}))[
        "status"
    ] == "Accepted"
    csr = (await csms.wait_for("SignCertificate", count=before + 1))[-1].payload["csr"]
    answer = await ok(csms, "CertificateSigned", {"certificateChain": ca.sign_csr(csr, days=days)})
    assert answer["status"] == "Accepted"
    return csr  # type: ignore[no-any-return]


@pytest.fixture
async def optional_client_cert(ca: dict[str, Any]) -> AsyncIterator[SecurityCsms]:
    context = server_context(
        ca["certfile"], ca["keyfile"], client_ca=pem(ca["ca"].certificate), require=False
    )
    async with SecurityCsms(authorization=None, ssl_context=context) as csms:
        yield csms


async def test_the_csms_moves_the_station_to_profile_3_and_the_certificate_is_renewed_ahead_of_expiry(
    ca, optional_client_cert, tmp_path
):
    csms = optional_client_cert
    async with running(config(csms.url, tmp_path, ca["ca_bundle"])) as daemon:
        await csms.wait_for("StatusNotification")
        assert csms.client_certificates == [None] and csms.handshakes[0].authorization == basic(KEY)
        # Too early: profile 3 without a certificate of its own is refused.
        assert (await ok(csms, "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}))[
            "status"
        ] == "Rejected"
        csr = x509.load_pem_x509_csr((await provision(csms, ca["ca"], days=20)).encode())
        assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == IDENTITY
        assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example CPO"
        pair = Path(daemon.config.station.state_dir) / "certs" / "station.pem"
        assert pair.stat().st_mode & 0o777 == 0o600
        assert (await ok(csms, "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}))[
            "status"
        ] == "Accepted"
        # The new connection: the station's certificate, no password.
        await csms.wait_for("BootNotification", connection=2)
        first = csms.client_certificates[1]
        assert first is not None and first.public_key() == csr.public_key()
        assert csms.handshakes[1].authorization is None
        # Twenty days left, renewal thirty days ahead: a new signing request over a new key at once.
        renewal = (await csms.wait_for("SignCertificate", count=2))[-1].payload["csr"]
        new_csr = x509.load_pem_x509_csr(renewal.encode())
        assert new_csr.public_key() != csr.public_key()
        answer = await ok(
            csms, "CertificateSigned", {"certificateChain": ca["ca"].sign_csr(renewal, days=365)}
        )
        assert answer["status"] == "Accepted"
        assert len(csms.sockets) == 2  # switched in on the next connection, not by dropping this one
        await daemon.link.reconnect()
        await csms.wait_for("BootNotification", connection=3)
        third = csms.client_certificates[2]
        assert third is not None and third.public_key() == new_csr.public_key()
        assert "ReconfigurationOfSecurityParameters" in csms.events()
        assert "StartupOfTheDevice" in csms.events()
        assert pair.read_text().count("PRIVATE KEY") == 2  # BEGIN and END of the one key: not in the log
    assert daemon.settings.get("security_profile") == 3


async def test_a_csms_that_demands_a_client_certificate_gets_the_stations(ca, tmp_path):
    """Profile 3 from the start against a server that refuses a handshake without a client certificate."""
    optional = server_context(
        ca["certfile"], ca["keyfile"], client_ca=pem(ca["ca"].certificate), require=False
    )
    async with SecurityCsms(ssl_context=optional) as csms:
        async with running(config(csms.url, tmp_path, ca["ca_bundle"])):
            await csms.wait_for("StatusNotification")
            await provision(csms, ca["ca"], days=365)
    demanding = server_context(
        ca["certfile"], ca["keyfile"], client_ca=pem(ca["ca"].certificate), require=True
    )
    async with SecurityCsms(ssl_context=demanding) as csms:
        async with running(config(csms.url, tmp_path, ca["ca_bundle"], security_profile=3)) as daemon:
            await csms.wait_for("BootNotification")
            assert csms.client_certificates[0] is not None
            assert csms.client_certificates[0].subject.rfc4514_string() == f"O=Example CPO,CN={IDENTITY}"
            assert daemon.link.connections == 1


async def test_a_raised_profile_the_csms_refuses_falls_back_to_the_previous_one_and_reports_it(ca, tmp_path):
    """The CSMS trusts another CA for client certificates: profile 3 fails three times, back to 2."""
    stranger = Ca.root("client CA the station does not have")
    context = server_context(
        ca["certfile"], ca["keyfile"], client_ca=pem(stranger.certificate), require=False
    )
    async with SecurityCsms(authorization=basic(KEY), ssl_context=context) as csms:
        async with running(config(csms.url, tmp_path, ca["ca_bundle"])) as daemon:
            await csms.wait_for("StatusNotification")
            await provision(csms, ca["ca"], days=365)
            assert (await ok(csms, "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}))[
                "status"
            ] == "Accepted"
            await csms.wait_for("BootNotification", connection=2, timeout=30)
            await until(
                lambda: any(
                    "back to profile 2" in c.payload.get("techInfo", "")
                    for c in csms.of(
                        "SecurityEventNotification", 2, type="ReconfigurationOfSecurityParameters"
                    )
                ),
                15,
                "the fallback",
            )
            assert csms.events(2).count("FailedToAuthenticateAtCentralSystem") == 3
            assert daemon.settings.get("security_profile") == 2
            assert csms.client_certificates[-1] is None and csms.handshakes[-1].authorization == basic(KEY)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", ["untrusted", "wrong host", "old tls", "cipher"])
async def test_a_csms_the_station_cannot_trust_is_refused_and_reported_once_it_can_connect(
    ca, tmp_path, case, station_log
):
    """The server starts wrong and is put right after the first refused attempt; the event then arrives."""
    stranger = Ca.root("some other CA")
    directory = tmp_path / "server"
    good = ca["ca"].server(directory)
    bad = {
        "untrusted": lambda: stranger.server(directory),
        "wrong host": lambda: ca["ca"].server(directory, "csms.example"),
    }.get(case, lambda: good)()
    context = server_context(*bad, client_ca=pem(ca["ca"].certificate), require=False)
    if case == "old tls":
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if case == "cipher":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305")
    expected, neutral = {
        "untrusted": ("InvalidCentralSystemCertificate", "invalid_csms_certificate"),
        "wrong host": ("CentralSystemFailedToAuthenticate", "csms_failed_to_authenticate"),
        "old tls": ("InvalidTLSVersion", "invalid_tls_version"),
        "cipher": ("InvalidTLSCipherSuite", "invalid_tls_cipher_suite"),
    }[case]
    profile = 3 if case == "cipher" else 2
    state = tmp_path / "state"
    if profile == 3:  # a station that already has its certificate (made as the CSMS would)
        await provisioned_state(state, ca["ca"])
    async with SecurityCsms(ssl_context=context) as csms:
        async with running(config(csms.url, tmp_path, ca["ca_bundle"], security_profile=profile)):
            await station_log.wait_for(f"security event {neutral}")
            assert csms.handshakes == []  # refused in TLS: no HTTP request reached the server
            context.load_cert_chain(*good)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
            context.set_ciphers("DEFAULT")
            await csms.wait_for("SecurityEventNotification", timeout=20, type=expected)


async def provisioned_state(state: Path, ca: Ca) -> None:
    """A state directory whose station already has its certificate (as a CSMS would have given it)."""
    store = CertificateStore(state, time.time)
    store.install(RootKind.CSMS, pem(ca.certificate), 20)
    csr = store.new_signing_request(IDENTITY, "CPO")
    assert store.accept_signed(ca.sign_csr(csr, days=365), 10_000) is None

"""The station takes as its own certificate only one made for it, and keeps it from the CSMS.

CertificateSigned is refused (Rejected, and the security event in the
version's words) for a leaf that names another station, one of another
organization (2.0.1), a CA certificate, and one not usable by a TLS client.
2.0.1 DeleteCertificate of the station's own certificate answers Failed.
Every certificate is real X.509 signed by a root the CSMS installed, over the
key of the station's own signing request; the handlers are the adapters' own.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chargepoint.config import parse
from chargepoint.core.security import pki
from chargepoint.core.security.certificates import RootKind
from chargepoint.core.security.services import Security
from chargepoint.core.services import Services
from chargepoint.core.settings import Settings
from chargepoint.protocol.v16 import security as v16
from chargepoint.protocol.v201 import security as v201
from hal.clock import ManualClock
from tests.pki import Ca, pem

IDENTITY = "CP-CERT-1"
ORGANIZATION = "Example CPO"
GOOD = {"cn": IDENTITY, "o": ORGANIZATION, "ca": False, "eku": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "digital_signature": True}
BAD_LEAVES = {
    "another identity": {"cn": "OTHER-CP"},
    "CA:TRUE": {"ca": True},
    "serverAuth only": {"eku": [ExtendedKeyUsageOID.SERVER_AUTH]},
    "no digitalSignature": {"digital_signature": False},
}


async def _station(tmp_path: Path) -> tuple[Security, Ca, str]:
    """A station with a CSMS root installed and a signing request made: (security, root, csr)."""
    settings = Settings(parse({"station": {"identity": IDENTITY}, "ocpp": {"csms_url": "ws://127.0.0.1:9"}}))
    settings.set("organization_name", ORGANIZATION)
    security = Security(settings, ManualClock(wall_start=time.time()), str(tmp_path), IDENTITY)
    root = Ca.root("CSMS root", days=365)
    await security.install_root(RootKind.CSMS, pem(root.certificate))
    return security, root, await security.signing_request()


def _leaf(root: Ca, csr_pem: str, **changes: Any) -> str:
    """A leaf over the request's key, signed by ``root``, with the fields of GOOD as changed."""
    f = {**GOOD, **changes}
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = dt.datetime.now(dt.UTC)
    names = [x509.NameAttribute(NameOID.COMMON_NAME, f["cn"])]
    if f["o"]:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, f["o"]))
    builder = (x509.CertificateBuilder().subject_name(x509.Name(names)).issuer_name(root.certificate.subject)
               .public_key(csr.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=f["ca"], path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(f["eku"]), critical=False)
               .add_extension(x509.KeyUsage(
                   digital_signature=f["digital_signature"], content_commitment=False, key_encipherment=True,
                   data_encipherment=False, key_agreement=False, key_cert_sign=f["ca"], crl_sign=False,
                   encipher_only=False, decipher_only=False), critical=True))
    return pem(builder.sign(root.key, hashes.SHA256()))  # type: ignore[arg-type]


def _handlers(module: Any, security: Security) -> Any:
    return module.SecurityHandlers(SimpleNamespace(services=Services(security=security)))


async def _events(security: Security) -> list[Any]:
    return [e.kind for e in await security.log.entries()]


@pytest.mark.parametrize("case", list(BAD_LEAVES))
async def test_a_leaf_not_made_for_this_station_is_rejected_in_both_versions(tmp_path: Path,
                                                                             case: str) -> None:
    security, root, csr = await _station(tmp_path)
    chain = _leaf(root, csr, **BAD_LEAVES[case])
    answer16 = await _handlers(v16, security).on_certificate_signed(certificate_chain=chain)
    answer201 = await _handlers(v201, security).on_certificate_signed(
        certificate_chain=chain, certificate_type="ChargingStationCertificate")
    assert (answer16.status, answer201.status) == ("Rejected", "Rejected"), case
    assert security.certificates.station_certificate() is None, "a refused leaf became the station's"
    kinds = await _events(security)
    assert [v16.EVENT_NAMES[k] for k in kinds if k.value == "invalid_station_certificate"] == \
        ["InvalidChargePointCertificate"] * 2
    assert v201.EVENT_TYPES[kinds[-1]] == "InvalidChargingStationCertificate"
    info = (await security.log.entries())[-1].info
    assert {"another identity": "not for CN=CP-CERT-1", "CA:TRUE": "CA:TRUE", "serverAuth only": "clientAuth",
            "no digitalSignature": "digitalSignature"}[case] in info


async def test_the_organization_must_match_in_201_and_a_good_leaf_is_taken(tmp_path: Path) -> None:
    security, root, csr = await _station(tmp_path)
    other = _leaf(root, csr, o="Other CPO")
    answer = await _handlers(v201, security).on_certificate_signed(certificate_chain=other)
    assert answer.status == "Rejected"
    assert "not for O=Example CPO" in (await security.log.entries())[-1].info
    good = await _handlers(v201, security).on_certificate_signed(certificate_chain=_leaf(root, csr))
    assert good.status == "Accepted"
    assert pki.subject_text(security.certificates.station_certificate()) == f"O={ORGANIZATION},CN={IDENTITY}"
    # 1.6 names the station by its CN only (its CSR carries the CpoName, its check does not).
    again = await security.signing_request()
    assert (await _handlers(v16, security).on_certificate_signed(
        certificate_chain=_leaf(root, again, o="Other CPO"))).status == "Accepted"


async def test_the_station_s_own_certificate_cannot_be_deleted(tmp_path: Path) -> None:
    security, root, csr = await _station(tmp_path)
    assert await security.accept_certificate(_leaf(root, csr))
    own = security.certificates.station_certificate()
    assert own is not None
    hashed = pki.hash_data(own, root.key.public_key(), "SHA256")  # type: ignore[arg-type]
    data = {"hash_algorithm": hashed.algorithm, "issuer_name_hash": hashed.issuer_name_hash,
            "issuer_key_hash": hashed.issuer_key_hash, "serial_number": hashed.serial_number}
    answer = await _handlers(v201, security).on_delete_certificate(certificate_hash_data=data)
    assert answer.status == "Failed"
    assert security.certificates.client_identity() is not None, "the station's pair is still there"
    root_data = security.certificates.installed(RootKind.CSMS)[0].hash_data()
    deleted = await _handlers(v201, security).on_delete_certificate(certificate_hash_data={
        "hash_algorithm": root_data.algorithm, "issuer_name_hash": root_data.issuer_name_hash,
        "issuer_key_hash": root_data.issuer_key_hash, "serial_number": root_data.serial_number})
    assert deleted.status == "Accepted"  # a root still can be

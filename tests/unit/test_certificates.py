"""The certificate store on real files with real certificates: roots, the station's pair, renewal rules."""

from __future__ import annotations

import logging
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from chargepoint.core.security import pki
from chargepoint.core.security.certificates import CertificateStore, DeleteResult, InstallResult, RootKind
from tests.pki import DAY, Ca, pem

NOW = time.time()


@pytest.fixture
def store(tmp_path: Path) -> CertificateStore:
    return CertificateStore(tmp_path, lambda: NOW)


def test_a_root_is_installed_listed_and_named_by_its_ocsp_hash_data(store):
    root = Ca.root("CSMS root")
    assert store.install(RootKind.CSMS, pem(root.certificate), 20)[0] is InstallResult.ACCEPTED
    [item] = store.installed(RootKind.CSMS)
    assert store.installed(RootKind.MANUFACTURER) == []
    # The OCSP CertID of the root (issuer = itself), computed by cryptography's OCSP builder.
    builder = ocsp.OCSPRequestBuilder().add_certificate(root.certificate, root.certificate, hashes.SHA256())
    request = builder.build()
    data = item.hash_data()
    assert data.issuer_name_hash == request.issuer_name_hash.hex()
    assert data.issuer_key_hash == request.issuer_key_hash.hex()
    assert data.serial_number == format(root.certificate.serial_number, "x")
    assert item.hash_data("SHA384").issuer_name_hash != data.issuer_name_hash


def test_installing_the_same_root_twice_keeps_one(store):
    root = Ca.root("CSMS root")
    store.install(RootKind.CSMS, pem(root.certificate), 20)
    assert store.install(RootKind.CSMS, pem(root.certificate), 20)[0] is InstallResult.ACCEPTED
    assert len(store.installed()) == 1


@pytest.mark.parametrize("case", ["not a CA", "expired", "not yet valid", "garbage", "store full"])
def test_a_root_that_cannot_be_trusted_is_rejected(store, case):
    if case == "store full":
        store.install(RootKind.CSMS, pem(Ca.root("first").certificate), 1)
        result, why = store.install(RootKind.MANUFACTURER, pem(Ca.root("second").certificate), 1)
        assert "full" in why
    else:
        text = {"not a CA": lambda: pem(Ca.root("r").leaf("plain")[0]),
                "expired": lambda: pem(Ca.root("old", start=NOW - 40 * DAY).certificate),
                "not yet valid": lambda: pem(Ca.root("new", start=NOW + DAY).certificate),
                "garbage": lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}[case]()
        result, why = store.install(RootKind.CSMS, text, 20)
        assert store.installed() == []
    assert result is InstallResult.REJECTED and why


def test_delete_by_hash_data_and_not_found(store):
    a, b = Ca.root("A"), Ca.root("B")
    store.install(RootKind.CSMS, pem(a.certificate), 20)
    store.install(RootKind.MANUFACTURER, pem(b.certificate), 20)
    wanted = store.installed(RootKind.MANUFACTURER)[0].hash_data("SHA512")
    assert store.delete(wanted)[0] is DeleteResult.ACCEPTED
    assert [i.subject for i in store.installed()] == ["CN=A"]
    assert store.delete(wanted)[0] is DeleteResult.NOT_FOUND


def test_the_signing_request_names_the_station_and_its_key_stays_private(store, caplog):
    caplog.set_level(logging.DEBUG)
    csr = x509.load_pem_x509_csr(store.new_signing_request("CP-1", "Example CPO").encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example CPO"
    pending = store.directory / "station.pending.key"
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in caplog.text


def _signed_pair(store: CertificateStore, issuer: Ca, **kw: float) -> str:
    return issuer.sign_csr(store.new_signing_request("CP-1", "CPO"), **kw)


def test_a_chain_through_an_intermediate_to_an_installed_root_becomes_the_station_pair(store):
    root = Ca.root("CSMS root")
    store.install(RootKind.CSMS, pem(root.certificate), 20)
    chain = _signed_pair(store, root.intermediate("CPO sub-CA"))
    assert store.accept_signed(chain, 10_000) is None
    pair = store.client_identity()
    assert pair == store.pair_path and stat.S_IMODE(pair.stat().st_mode) == 0o600
    assert not (store.directory / "station.pending.key").exists()
    assert store.days_left() == pytest.approx(30 - 1 / 24, abs=0.01)


@pytest.mark.parametrize("case", ["expired", "wrong key", "unknown root", "deleted root", "too long",
                                  "broken link"])
def test_a_chain_that_does_not_check_is_refused_and_the_old_pair_stays(store, case):
    root = Ca.root("CSMS root")
    store.install(RootKind.CSMS, pem(root.certificate), 20)
    assert store.accept_signed(_signed_pair(store, root), 10_000) is None
    before = store.pair_path.read_bytes()
    csr = store.new_signing_request("CP-1", "CPO")
    if case == "expired":
        chain = root.sign_csr(csr, start=NOW - 10 * DAY, days=5)
    elif case == "wrong key":
        chain = pem(root.leaf("CP-1")[0])
    elif case == "unknown root":
        chain = Ca.root("stranger").sign_csr(csr)
    elif case == "deleted root":
        chain = root.sign_csr(csr)
        store.delete(store.installed(RootKind.CSMS)[0].hash_data())
    elif case == "too long":
        chain = root.sign_csr(csr) + "\n" * 10_000
    else:  # an intermediate the root did not sign
        chain = Ca.root("other").intermediate("sub").sign_csr(csr)
    refusal = store.accept_signed(chain, 10_000)
    assert refusal, case
    assert store.pair_path.read_bytes() == before


def test_check_chain_names_where_it_breaks():
    root = Ca.root("R")
    leaf, _ = root.leaf("L", start=NOW - 10 * DAY, days=1)
    with pytest.raises(pki.CertificateError, match="expired"):
        pki.check_chain([leaf], [root.certificate], NOW)
    with pytest.raises(pki.CertificateError, match="no root"):
        pki.check_chain([root.leaf("L")[0]], [], NOW)

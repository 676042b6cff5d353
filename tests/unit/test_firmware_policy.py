"""The owner's firmware policy: an unsigned package runs only where the owner allows it, and
only the manufacturer roots the owner pinned (once any are) sign firmware.

A package is code: the installer's import check runs it. So an unsigned
UpdateFirmware over a link that is not TLS-authenticated (profile 0 or 1) is
refused by default, before anything of the package runs; the owner may allow
it (``allow_unsigned_without_tls``) or require signatures everywhere
(``require_signature``). The first test drives the daemon's own firmware
manager, verifier list and installer against a real wheel whose import would
leave a marker file.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from chargepoint.control import security_commands
from chargepoint.control.errors import ControlError
from chargepoint.core.firmware import FirmwareRequest, FirmwareState, FirmwareStatus
from chargepoint.core.firmware_policy import FirmwarePolicy
from chargepoint.core.security import pki
from chargepoint.core.security.certificates import CertificateStore, RootKind
from chargepoint.core.security.firmware_signature import INVALID_CERTIFICATE, INVALID_SIGNATURE
from chargepoint.core.security.security_log import SecurityEvent
from chargepoint.core.security.services import Security
from chargepoint.core.services import Services
from chargepoint.core.settings import Settings
from chargepoint.protocol.v16.firmware import SENT
from chargepoint.protocol.v201.firmware import STATUS
from hal.clock import ManualClock
from tests.firmware_rig import FileServer, build_wheel
from tests.pki import Ca, pem, sign_package

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = await FileServer().start()
    yield server
    await server.close()


def _daemon(tmp_path: Path, *, profile: int = 0, **firmware: Any) -> Daemon:
    ocpp: dict[str, Any] = {"csms_url": "ws://127.0.0.1:9", "security_profile": profile}
    if profile >= 1:
        ocpp["authorization_key"] = KEY
    if profile >= 2:
        ocpp["csms_url"] = "wss://127.0.0.1:9"
    venvs = tmp_path / "venvs"
    (venvs / "0.1.0").mkdir(parents=True)
    (venvs / "current").symlink_to("0.1.0")
    return Daemon(parse({"station": {"identity": "CP-FW-POLICY", "state_dir": str(tmp_path / "state")},
                         "ocpp": ocpp,
                         "firmware": {"venvs_dir": str(tmp_path / "venvs"), "pip_args": "--no-deps",
                                      "system_site_packages": False, "venv_with_pip": False, **firmware}},
                        str(tmp_path / "station.toml")))


def _close(daemon: Daemon) -> None:
    for connector in daemon.hardware.connectors:
        connector.evse.close()


async def _events(daemon: Daemon) -> list[tuple[SecurityEvent, str]]:
    return [(e.kind, e.info) for e in await daemon.security.log.entries()]


async def test_an_unsigned_update_over_a_plain_link_is_refused_before_any_of_it_runs(
        tmp_path: Path, files: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an import check would find the wheel's code, not this checkout
    marker = tmp_path / "the-package-ran"
    wheel = build_wheel(tmp_path, "0.1.9", {"chargepoint/__init__.py": f"open({str(marker)!r}, 'w').close()"})
    files.files[wheel.name] = wheel.read_bytes()
    daemon = _daemon(tmp_path)
    try:
        firmware = daemon.services.firmware
        ended = asyncio.Event()
        states: list[FirmwareState] = []

        def seen(state: FirmwareState) -> None:
            states.append(state)
            if state.status.final or state.status is FirmwareStatus.INSTALL_REBOOTING:
                ended.set()

        firmware.listeners.append(seen)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()  # a good checksum proves nothing
        assert firmware.update(FirmwareRequest(files.url(f"/files/{wheel.name}#sha256={digest}"),
                                               retrieve_at=daemon.clock.time())) == "accepted"
        await asyncio.wait_for(ended.wait(), 60)
        assert not marker.exists(), "the package's code ran"
        final = states[-1]
        assert final.status is FirmwareStatus.INVALID_SIGNATURE, states
        assert "not signed" in (final.detail or "") and "security profile 0" in (final.detail or "")
        assert SENT[final.status].value == "InstallationFailed"  # what a 1.6 CSMS is told
        assert STATUS[final.status].value == "InvalidSignature"  # and a 2.0.1 one
        assert not (tmp_path / "venvs" / "0.1.9").exists()
        assert [k for k, _ in await _events(daemon)] == [SecurityEvent.INVALID_FIRMWARE_SIGNATURE]
    finally:
        await daemon.maintenance.close()
        _close(daemon)


def _request(signed: bool = False) -> FirmwareRequest:
    return FirmwareRequest("http://127.0.0.1:9/pkg.whl", retrieve_at=0.0,
                           signature="c2lnbmF0dXJl" if signed else None)


async def _verdicts(daemon: Daemon, package: Path) -> list[str | None]:
    return [await v.verify(package, _request()) for v in daemon.maintenance.firmware.verifiers]


async def test_the_owner_may_allow_unsigned_firmware_over_a_plain_link(tmp_path: Path) -> None:
    package = tmp_path / "pkg.whl"
    package.write_bytes(b"PK")
    daemon = _daemon(tmp_path, profile=1, allow_unsigned_without_tls=True)
    try:
        assert await _verdicts(daemon, package) == [None, None]
        assert await _events(daemon) == []
    finally:
        _close(daemon)


async def test_over_tls_unsigned_firmware_passes_unless_signatures_are_required(tmp_path: Path) -> None:
    package = tmp_path / "pkg.whl"
    package.write_bytes(b"PK")
    daemon = _daemon(tmp_path / "open", profile=2)
    strict = _daemon(tmp_path / "strict", profile=2, require_signature=True,
                     allow_unsigned_without_tls=True)
    try:
        assert await _verdicts(daemon, package) == [None, None]
        refusal = (await _verdicts(strict, package))[1]
        assert refusal is not None and "requires signed firmware" in refusal
        assert getattr(refusal, "status", None) == INVALID_SIGNATURE
        assert [k for k, _ in await _events(strict)] == [SecurityEvent.INVALID_FIRMWARE_SIGNATURE]
    finally:
        _close(daemon)
        _close(strict)


class _Signatures:
    """Stands in for the signature verifier: notes what it was asked."""

    def __init__(self) -> None:
        self.asked: list[FirmwareRequest] = []

    async def verify(self, package: Path, request: FirmwareRequest) -> str | None:
        self.asked.append(request)
        return None


async def test_a_profile_raised_while_the_package_downloads_does_not_admit_it(tmp_path: Path) -> None:
    profile = [1]
    signatures = _Signatures()
    policy = FirmwarePolicy(signatures, lambda: profile[0],  # type: ignore[arg-type]
                            require_signature=False, allow_unsigned_without_tls=False)
    policy.watch(FirmwareState(FirmwareStatus.DOWNLOADING))
    profile[0] = 2  # the CSMS raised the profile and the station reconnected with it
    policy.watch(FirmwareState(FirmwareStatus.DOWNLOADED))
    assert "security profile 1" in (await policy.verify(tmp_path, _request()) or "")
    policy.watch(FirmwareState(FirmwareStatus.INVALID_SIGNATURE))  # that update ended
    policy.watch(FirmwareState(FirmwareStatus.DOWNLOADING))  # the next one begins over profile 2
    assert await policy.verify(tmp_path, _request()) is None
    assert await policy.verify(tmp_path, _request(signed=True)) is None
    assert len(signatures.asked) == 1, "a signed request goes to the signature verifier"


# ------------------------------------------------------------ pinned manufacturer roots
def _signed_by(root: Ca, package: Path) -> FirmwareRequest:
    signer = root.intermediate(f"{root.name} signing CA")
    certificate, key = signer.leaf("firmware signer")
    return FirmwareRequest("http://127.0.0.1:9/fw.whl", retrieve_at=0.0,
                           signature=sign_package(key, package.read_bytes()),
                           signing_certificate=pem(certificate) + signer.chain_pem())


async def test_once_the_owner_pins_a_manufacturer_root_a_csms_installed_one_signs_no_firmware(
        tmp_path: Path) -> None:
    clock = ManualClock(wall_start=time.time())
    settings = Settings(parse({"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://127.0.0.1:9"}}))
    security = Security(settings, clock, str(tmp_path), "CP-1")  # type: ignore[arg-type]
    service: Any = SimpleNamespace(services=Services(security=security))
    package = tmp_path / "fw.whl"
    package.write_bytes(b"PK firmware" * 1000)
    csms_root, owners_root = Ca.root("Root the CSMS installed"), Ca.root("Owner's manufacturer root")
    assert await security.install_root(RootKind.MANUFACTURER, pem(csms_root.certificate)) == "accepted"
    from_csms, from_owner = _signed_by(csms_root, package), _signed_by(owners_root, package)
    assert await security.verifier.verify(package, from_csms) is None  # nothing pinned: installed roots count

    pinned = await security_commands.COMMANDS["certs_pin"](service, {"pem": pem(owners_root.certificate)})
    assert "Owner's manufacturer root" in pinned["pinned"]
    refused = await security.verifier.verify(package, from_csms)
    assert getattr(refused, "status", None) == INVALID_CERTIFICATE
    assert await security.verifier.check_certificate(from_csms.signing_certificate) is not None
    assert await security.verifier.verify(package, from_owner) is None
    # The CSMS can neither see the pinned root nor delete it, and a root it installs now signs nothing.
    assert await security.installed_ids(RootKind.MANUFACTURER) == [
        CertificateStore(tmp_path, clock.time).installed(RootKind.MANUFACTURER)[0].hash_data()]
    owners_hash = pki.hash_data(owners_root.certificate, owners_root.key.public_key())
    assert await security.delete_root(owners_hash) == "not_found"
    another = Ca.root("Another root from the CSMS")
    assert await security.install_root(RootKind.MANUFACTURER, pem(another.certificate)) == "accepted"
    assert getattr(await security.verifier.verify(package, _signed_by(another, package)), "status",
                   None) == INVALID_CERTIFICATE
    assert await security.verifier.verify(package, from_owner) is None

    listed = await security_commands.COMMANDS["certs"](service, {})
    [entry] = listed["pinned"]
    assert entry["subject"] == "CN=Owner's manufacturer root"
    with pytest.raises(ControlError):
        await security_commands.COMMANDS["certs_pin"](service, {"pem": pem(_not_a_ca(owners_root))})
    await security_commands.COMMANDS["certs_unpin"](service, {"fingerprint": entry["fingerprint"][:12]})
    assert await security.verifier.verify(package, from_csms) is None  # none pinned: installed roots again
    kinds = [e.kind for e in await security.log.entries()]
    assert SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE in kinds
    assert kinds.count(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS) == 4  # 2 installs, pin, unpin


def _not_a_ca(root: Ca) -> Any:
    """A certificate that is no CA: never a root to pin."""
    return root.leaf("not a CA")[0]

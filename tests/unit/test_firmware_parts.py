"""The parts of firmware updates and diagnostics, each alone: the guard's decisions in injected time,
checksums, the verification hook's refusals, URLs shown without passwords, packages unpacked, the 1.6
words, the configuration, masking and the log window."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from ocpp.exceptions import PropertyConstraintViolationError

from chargepoint.app.maintenance import MASK, masked
from chargepoint.config import parse
from chargepoint.config.reader import ConfigError
from chargepoint.core.diagnostics import lines_in_window, stamp_of
from chargepoint.core.firmware import (
    FirmwareRequest,
    FirmwareState,
    FirmwareStatus,
    Sha256Verifier,
    VerificationRefused,
    trial,
)
from chargepoint.core.firmware.installer import InstallError
from chargepoint.core.firmware.model import refusal_status
from chargepoint.core.firmware.package import unpack
from chargepoint.core.firmware.transfer import check_url, shown
from chargepoint.core.firmware.verify import checksum_in, checksum_text, sha256_of
from chargepoint.protocol.v16 import firmware as v16

S = FirmwareStatus


# -------------------------------------------------------------------- guard
@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    venvs, state = tmp_path / "venvs", tmp_path / "state"
    for version in ("0.1.0", "0.2.0"):
        (venvs / version).mkdir(parents=True)
    (venvs / "current").symlink_to("0.1.0")
    return venvs, state


def test_a_trial_starts_once_and_a_second_start_without_confirmation_rolls_back(layout):
    venvs, state = layout
    trial.begin(state, venvs, "0.2.0", "0.2.0", deadline_s=60, now=1000.0)
    assert trial.current(venvs) == "0.2.0"
    assert trial.prestart(state, venvs, now=1001.0) == "starting version 0.2.0 on trial"
    assert trial.read(state)["started_at"] == 1001.0
    said = trial.prestart(state, venvs, now=1005.0)  # it crashed: the service starts again
    assert said is not None and said.startswith("rolled back to 0.1.0")
    assert trial.current(venvs) == "0.1.0"
    assert trial.read(state)["state"] == trial.ROLLED_BACK
    assert trial.prestart(state, venvs, now=1006.0) is None, "the old version starts normally"


def test_a_trial_whose_link_was_never_switched_ends_at_the_next_start_without_a_restart(layout):
    """Killed between the record and the switch: the guard does not count a start of a version the
    link does not name (its timer would roll back and restart the service for nothing)."""
    venvs, state = layout
    trial.write(state, {"state": "pending", "version": "0.2.0", "target": "0.2.0", "previous": "0.1.0",
                        "deadline_s": 60, "installed_at": 1000.0, "starts": 0, "started_at": None,
                        "reason": None})
    said = trial.prestart(state, venvs, now=1001.0)
    assert said == "trial of 0.2.0 ended: the station stopped before switching to version 0.2.0"
    assert trial.read(state)["state"] == trial.ROLLED_BACK and trial.current(venvs) == "0.1.0"
    assert trial.check(state, venvs, now=99999.0) is None

def test_the_timer_rolls_back_only_after_the_deadline_and_never_a_confirmed_version(layout):
    venvs, state = layout
    trial.begin(state, venvs, "0.2.0", "0.2.0", deadline_s=60, now=1000.0)
    assert trial.check(state, venvs, now=5000.0) is None, "not started yet: the deadline runs from the start"
    trial.prestart(state, venvs, now=1000.0)
    assert trial.check(state, venvs, now=1059.9) is None
    assert "within 60 s" in (trial.check(state, venvs, now=1060.0) or "")
    assert trial.current(venvs) == "0.1.0"

    trial.begin(state, venvs, "0.2.0", "0.2.0", deadline_s=60, now=2000.0)
    trial.prestart(state, venvs, now=2000.0)
    assert not trial.confirm(state, "0.1.0"), "only the version on trial confirms itself"
    assert trial.confirm(state, "0.2.0")
    assert trial.check(state, venvs, now=9999.0) is None and trial.prestart(state, venvs, now=9999.0) is None
    assert trial.current(venvs) == "0.2.0"


def test_no_trial_begins_without_a_current_link_and_the_guard_script_runs_alone(tmp_path: Path, layout):
    with pytest.raises(FileNotFoundError):
        trial.begin(tmp_path / "s", tmp_path / "nowhere", "x", "x", 60, 0.0)
    venvs, state = layout
    assert trial.main(["show", "--state-dir", str(state), "--venvs-dir", str(venvs)]) == 0
    source = Path(trial.__file__).read_text()
    assert "from chargepoint" not in source and "import chargepoint" not in source


def test_the_link_is_replaced_never_removed(layout):
    venvs, _ = layout
    trial.switch(venvs, "0.2.0")
    assert os.readlink(venvs / "current") == "0.2.0" and not (venvs / ".current.new").exists()


# ---------------------------------------------------------- verification
def test_checksums_come_from_the_fragment_or_a_sha256sum_file():
    digest = "AB" * 32
    assert checksum_in(f"https://h/p.whl#sha256={digest}") == digest.lower()
    assert checksum_in("https://h/p.whl#md5=00") is None and checksum_in("https://h/p.whl") is None
    assert checksum_text(f"{digest.lower()}  chargepoint-0.2.0-py3-none-any.whl\n") == digest.lower()
    assert checksum_text("nothing here") is None


async def test_the_sha256_verifier_refuses_a_mismatch_and_when_required_a_missing_checksum(tmp_path: Path):
    package = tmp_path / "p.whl"
    package.write_bytes(b"package")
    request = FirmwareRequest("https://h/p.whl", 0.0, checksum_sha256=sha256_of(package))
    assert await Sha256Verifier().verify(package, request) is None
    wrong = FirmwareRequest("https://h/p.whl", 0.0, checksum_sha256="0" * 64)
    assert "differs" in (await Sha256Verifier().verify(package, wrong) or "")
    bare = FirmwareRequest("https://h/p.whl", 0.0)
    assert await Sha256Verifier().verify(package, bare) is None
    assert "required" in (await Sha256Verifier(required=True).verify(package, bare) or "")


def test_a_refusal_names_its_status_by_attribute_or_by_exception():
    class Refusal(str):
        status: str

    refusal = Refusal("certificate expired")
    refusal.status = "invalid_certificate"
    assert refusal_status(refusal) is S.INVALID_CERTIFICATE
    assert refusal_status("bad bytes") is S.INSTALL_VERIFICATION_FAILED
    assert VerificationRefused(S.INVALID_SIGNATURE, "no").status is S.INVALID_SIGNATURE
    with pytest.raises(ValueError):
        VerificationRefused(S.INSTALLED, "not a refusal")


# ---------------------------------------------------------- transfers, packages
def test_a_url_is_shown_without_its_password_and_checked():
    assert shown("ftp://user:pa55@host:2121/dir/p.whl#sha256=ab") == "ftp://user@host:2121/dir/p.whl"
    assert check_url("file:///etc/passwd") is not None and check_url("http:///p") is not None
    assert check_url("https://h/p.whl") is None


def _wheel(name: str, version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")
        zf.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
    return buffer.getvalue()


def test_a_tarball_of_wheels_gives_the_chargepoint_wheel_and_a_bad_package_is_refused(tmp_path: Path):
    bundle = tmp_path / "bundle.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        for name, data in (("wheels/aiohttp-3.9.0-py3-none-any.whl", _wheel("aiohttp", "3.9.0")),
                           ("wheels/anything.whl", _wheel("chargepoint", "0.2.0"))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    wheel, version, bundled = unpack(bundle, tmp_path / "work")
    assert (wheel.name, version, bundled) == ("chargepoint-0.2.0-py3-none-any.whl", "0.2.0", True)
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(InstallError, match="neither a wheel nor a tarball"):
        unpack(junk, tmp_path / "work")
    other = tmp_path / "other.whl"
    other.write_bytes(_wheel("requests", "2.0"))
    with pytest.raises(InstallError, match="no chargepoint wheel"):
        unpack(other, tmp_path / "work")


# --------------------------------------------------------------- 1.6 words
def test_the_16_words_for_each_status_sent_and_triggered():
    sent = {s: v16.firmware_notification(FirmwareState(s)) for s in S}
    assert sent[S.INSTALL_VERIFICATION_FAILED].status == "InstallationFailed"
    assert sent[S.INVALID_SIGNATURE].status == "InstallationFailed"
    assert sent[S.DOWNLOAD_SCHEDULED] is None and sent[S.INSTALL_REBOOTING] is None
    core_schema = {"Downloaded", "DownloadFailed", "Downloading", "Idle", "InstallationFailed", "Installing",
                   "Installed"}
    assert all(r is None or r.status in core_schema for r in sent.values())
    triggered = {s: v16.firmware_notification(FirmwareState(s), triggered=True).status for s in S}
    assert triggered[S.INSTALL_REBOOTING] == "Installing" and triggered[S.INSTALL_SCHEDULED] == "Downloaded"
    assert triggered[S.INSTALLED] == "Idle" and triggered[S.DOWNLOAD_FAILED] == "Idle", "ended: idle"
    with pytest.raises(PropertyConstraintViolationError):
        v16.firmware_request("https://h/p", "tomorrow", None, None, parse(_minimal(), "<t>").firmware)
    request = v16.firmware_request("https://h/p", "2030-01-01T00:00:00Z", None, 30,
                                   parse(_minimal(), "<t>").firmware)
    assert (request.retries, request.retry_interval_s, request.request_id) == (3, 30.0, None)


# -------------------------------------------------- configuration, masking, log window
def _minimal(**sections: dict) -> dict:
    return {"station": {"identity": "CP"}, "ocpp": {"csms_url": "ws://h/x"}, **sections}


def test_the_sections_are_checked_with_file_key_and_reason():
    config = parse(_minimal(firmware={"restart_command": "sudo systemctl restart 'chargepoint.service'"}))
    assert config.firmware.restart_command == ("sudo", "systemctl", "restart", "chargepoint.service")
    for sections, key in ((dict(diagnostics={"http_method": "PATCH"}), "diagnostics.http_method"),
                          (dict(firmware={"venvs_dir": "venvs"}), "firmware.venvs_dir"),
                          (dict(firmware={"pip_args": "--index-url 'x"}), "firmware.pip_args")):
        with pytest.raises(ConfigError, match=key):
            parse(_minimal(**sections), "station.toml")


def test_masked_configuration_hides_passwords_and_keys_at_any_depth():
    config = parse(_minimal(mqtt={"username": "u", "password": "hunter2"}))
    shown_config = masked(config)
    assert shown_config["mqtt"]["password"] == MASK and shown_config["mqtt"]["username"] == "u"
    assert shown_config["ocpp"]["authorization_key"] == "", "an empty secret stays visibly empty"
    assert "hunter2" not in repr(shown_config)


def test_the_log_window_keeps_continuation_lines_with_their_record(tmp_path: Path):
    log = tmp_path / "chargepoint.log"
    log.write_text("2026-01-01T10:00:00.000Z INFO a: before\n"
                   "2026-01-01T10:00:05.000Z ERROR a: inside\nTraceback line\n"
                   "2026-01-01T10:00:10.000Z INFO a: after\nanother continuation\n")
    start, stop = stamp_of("2026-01-01T10:00:01.000Z"), stamp_of("2026-01-01T10:00:09.000Z")
    out = io.BytesIO()
    assert lines_in_window([log, tmp_path / "missing.log"], start, stop, out) == 2
    assert out.getvalue().decode() == "2026-01-01T10:00:05.000Z ERROR a: inside\nTraceback line\n"

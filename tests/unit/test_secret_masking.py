"""Passwords in URLs are masked in any text, and masking a masked text changes nothing.

A CSMS writes credentials into firmware and diagnostics locations
(``ftp://user:password@host/...``), as JSON (maybe with escaped slashes) or as
a Python repr in the library's log lines. Every handler of a log record scrubs
the same record, so the masks must be idempotent: a second pass must not turn
``(redacted)`` into ``(redacted))``.
"""

from __future__ import annotations

import logging
import tarfile

import pytest

from chargepoint.app.logfilter import Mask, Scrub
from chargepoint.app.recorder import Recorder
from chargepoint.core.diagnostics import Diagnostics, DiagnosticsRequest, DiagnosticsSources

SECRET = "s3cret"
NAMES = ("AuthorizationKey", "authorization_key")


@pytest.mark.parametrize("text", [
    '[2,"1","UpdateFirmware",{"location":"ftp://user:s3cret@10.0.0.1/fw/pkg.whl","retrieveDate":"x"}]',
    '[2,"2","GetDiagnostics",{"location":"ftp:\\/\\/user:s3cret@10.0.0.1\\/up\\/","retries":1}]',
    "UpdateFirmware(location='https://user:s3cret@cdn.example:8443/pkg.whl', retrieve_date='x')",
    "firmware from HTTP://USER:s3cret@host/pkg.whl failed",
    "ftp://user:s3c@ret@host/pkg.whl",  # a raw @ in the password: up to the last one before the host
    '{"location": "ftp://user:s3\\"cret@host/"}',  # an escaped quote in it
    "ftp://:s3cret@host/",
    "sftp://user:s3cret@host/a@b",
])
def test_a_password_in_a_url_is_masked(text):
    masked = Mask()(text)
    assert "s3c" not in masked and "cret" not in masked, masked
    assert ":(redacted)@" in masked


@pytest.mark.parametrize("text", [
    "connected to ws://csms.example:9000/ocpp/CP-1 (ocpp1.6)",
    "ftp://user@host/pkg.whl",
    "mail ops@example.com about http://host/a@b",
    "https://host:8443/x and someone@example.com",
])
def test_urls_without_a_password_are_left_alone(text):
    assert Mask()(text) == text


@pytest.mark.parametrize("text", [
    "AuthorizationKey=0011aabb)",
    "AuthorizationKey=(redacted)",
    "Authorization: Basic QWxhZGRpbjpvcGVu)",
    "[('Authorization', 'Basic QWxhZGRpbjpvcGVu')]",
    '{"key":"AuthorizationKey","value":"0011aabb"}',
    '{"key":"AuthorizationKey","value":"0011aa',
    "authorization_key=abc, x=(1)",
    "ftp://user:s3cret@host/x) and ftp://u:(redacted)@h/",
])
def test_masking_twice_is_masking_once(text):
    mask, scrub = Mask(NAMES), Scrub(NAMES)
    once = mask(text)
    assert mask(once) == once
    assert scrub.clean(scrub.clean(text)) == scrub.clean(text)


def test_two_handlers_scrubbing_one_record_write_it_alike():
    """The root logger's handlers each scrub the same record: the second finds it masked already."""
    first, second = Scrub(NAMES), Scrub(NAMES)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "AuthorizationKey=%s)", ("0011aabb",), None)
    first.filter(record)
    written = record.getMessage()
    second.filter(record)
    assert record.getMessage() == written == "AuthorizationKey=(redacted))"


def test_the_recorder_and_the_diagnostics_archive_keep_no_url_password(tmp_path):
    """The frames of ``chargepoint logs --frames`` and the archive's logs/recent.jsonl."""
    recorder = Recorder()
    recorder.frame("in", '[2,"7","UpdateFirmware",{"location":"ftp://cp:s3cret@fw.example/p.whl",'
                         '"retrieveDate":"2026-01-01T00:00:00Z"}]')
    recorder.frame("in", b'[2,"8","GetDiagnostics",{"location":"ftp://cp:s3cret@logs.example/in/"}]')
    frames = recorder.select(kind="frames")
    assert len(frames) == 2 and all("cp:(redacted)@" in f["text"] for f in frames)
    diagnostics = Diagnostics(DiagnosticsSources(recent=lambda: list(recorder.entries)), None,  # type: ignore[arg-type]
                              str(tmp_path), "CP-1")
    archive = tmp_path / "a.tar.gz"
    diagnostics.build(archive, DiagnosticsRequest(location="ftp://cp:s3cret@logs.example/in/"), {})
    with tarfile.open(archive) as tar:
        member = tar.extractfile("logs/recent.jsonl")
        assert member is not None
        recent = member.read().decode()
    assert "UpdateFirmware" in recent and SECRET not in recent

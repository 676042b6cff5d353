"""The 1.6 security extension's and 2.0.1's words for every neutral firmware and upload status."""

from __future__ import annotations

from chargepoint.core.diagnostics import DiagnosticsState, DiagnosticsStatus
from chargepoint.core.firmware import FirmwareState, FirmwareStatus
from chargepoint.protocol.v16 import signed_firmware as v16
from chargepoint.protocol.v201 import firmware as v201


def test_every_neutral_status_has_a_word_in_both_versions():
    for table in (v16.SIGNED, v201.STATUS):
        assert set(table) == set(FirmwareStatus)
    for table in (v16.LOG, v201.LOG):
        assert set(table) == set(DiagnosticsStatus)


def test_reports_carry_the_request_id_and_a_trigger_with_nothing_running_says_idle():
    refused = FirmwareState(FirmwareStatus.INVALID_SIGNATURE, request_id=7)
    assert v16.signed_notification(refused).status == "InvalidSignature"
    assert v16.signed_notification(refused).request_id == 7
    assert v201.firmware_notification(refused).request_id == 7
    # A final state is over: a trigger reports Idle, without the old request's id.
    assert v16.signed_notification(refused, triggered=True).request_id is None
    assert v201.firmware_notification(refused, triggered=True).status == "Idle"
    running = FirmwareState(FirmwareStatus.SIGNATURE_VERIFIED, request_id=8)
    assert v201.firmware_notification(running, triggered=True).status == "SignatureVerified"
    uploading = DiagnosticsState(DiagnosticsStatus.UPLOADING, request_id=3)
    assert v16.log_notification(uploading, triggered=True).request_id == 3
    failed = DiagnosticsState(DiagnosticsStatus.UPLOAD_FAILED, 4)
    assert v201.log_notification(failed).status == "UploadFailure"
    # A 1.6 GetDiagnostics upload (no requestId) is not a GetLog upload: LogStatusNotification says Idle.
    plain = DiagnosticsState(DiagnosticsStatus.UPLOADING)
    assert v16.log_notification(plain, triggered=True).status == "Idle"

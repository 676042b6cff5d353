"""The core's firmware and upload statuses reported on one session, in either version.

What both versions do alike: listen to the firmware manager and the upload
service once the boot is accepted (confirming a version on trial then), send
what is still unreported, send each firmware state once (the boot's catch-up
and a status being entered may both offer the same one), and stop listening
when the session ends. A version's subclass only words the notifications
(``firmware_notification``, ``upload_notification``) and sends them (``send``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chargepoint.core.diagnostics import DiagnosticsState
from chargepoint.core.firmware import FirmwareState
from chargepoint.protocol.common.block import BlockContext


class StatusReports:
    def __init__(self, adapter: BlockContext) -> None:
        self.adapter = adapter
        self.services = adapter.services
        self._attached = False
        #: The firmware state last sent.
        self._sent: FirmwareState | None = None

    # -- what a version words and how it sends ----------------------------------------------
    def firmware_notification(self, state: FirmwareState) -> Any:
        raise NotImplementedError

    def upload_notification(self, state: DiagnosticsState) -> Any:
        raise NotImplementedError

    def send(self, request: Any, then: Callable[[], None] | None = None) -> None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def attach(self) -> None:
        """The boot was accepted: report from now on, and what is still unreported."""
        firmware, uploads = self.services.firmware, self.services.diagnostics
        self._attached = True
        if firmware is not None:
            firmware.listeners.append(self.firmware_changed)
            firmware.boot_accepted()
            if firmware.unreported:
                self.firmware_changed(firmware.state)
        if uploads is not None:
            uploads.listeners.append(self.upload_changed)

    def detach(self) -> None:
        if not self._attached:
            return
        for source, listener in ((self.services.firmware, self.firmware_changed),
                                 (self.services.diagnostics, self.upload_changed)):
            if source is not None and listener in source.listeners:
                source.listeners.remove(listener)

    def firmware_changed(self, state: FirmwareState) -> None:
        request = self.firmware_notification(state)
        if request is None or state == self._sent:
            return
        self._sent = state
        firmware = self.services.firmware
        self.send(request, lambda: firmware.reported(state))

    def upload_changed(self, state: DiagnosticsState) -> None:
        request = self.upload_notification(state)
        if request is not None:
            self.send(request)

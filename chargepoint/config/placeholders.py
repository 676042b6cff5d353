"""Values a station's file still has from the shipped examples: warnings, not errors.

``install.sh`` installs ``examples/raspberrypi.toml`` as the station's file, and
that file is valid as shipped, so a technician who forgets to set the identity
or the CSMS address gets a station that checks OK and then knocks on a CSMS
that does not exist (or, worse, on the operator's under another station's
name). ``chargepoint check-config`` and ``chargepoint selftest`` name each such
value; the daemon still starts with them (a bench station may keep them).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from chargepoint.config.model import Config

#: The identity the example files ship with.
EXAMPLE_IDENTITY = "CP-0001"
#: Domains reserved for documentation (RFC 2606, RFC 6761): never a real CSMS.
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org", "example")
#: The card reader port of examples/raspberrypi.toml (the serial number of one particular adapter).
EXAMPLE_RFID_PORT = "/dev/serial/by-id/usb-Silicon_Labs_CP2102_USB_to_UART_Bridge_Controller_0001-if00-port0"


@dataclass(frozen=True)
class Placeholder:
    """A key whose value is the example's, and what to put there instead."""

    key: str
    value: str
    advice: str

    def text(self) -> str:
        return f"{self.key} = {self.value!r} is the example's value: {self.advice}"


def _example_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in EXAMPLE_DOMAINS)


def placeholders(config: Config) -> list[Placeholder]:
    """The example values ``config`` still has, in file order."""
    found = []
    if config.station.identity == EXAMPLE_IDENTITY:
        found.append(Placeholder("station.identity", config.station.identity,
                                 "set this station's identity as the CSMS knows it"))
    host = urlparse(config.ocpp.csms_url).hostname or ""
    if _example_host(host):
        found.append(Placeholder("ocpp.csms_url", config.ocpp.csms_url,
                                 "set the operator's CSMS address (example domains never answer)"))
    rfid = config.board.rfid if config.board is not None else None
    if rfid is not None and rfid.port == EXAMPLE_RFID_PORT:
        found.append(Placeholder("board.rfid.port", rfid.port,
                                 "set your card reader's port (ls /dev/serial/by-id/)"))
    return found

"""The first verifier of every package: its SHA-256 checksum, when one is configured or given.

The checksum comes with the request (``FirmwareRequest.checksum_sha256``): from
a ``#sha256=<hex>`` fragment of the location (the convention pip uses for
package URLs; the fragment never reaches the server), or from a ``<location>.sha256``
file next to the package when the configuration asks for one. When the
configuration requires a checksum, a package without one is refused: nothing
unverified is installed. The file is hashed in a worker thread, in chunks.
"""

from __future__ import annotations

import asyncio
import hashlib
import pathlib
import re
from urllib.parse import urlsplit

from chargepoint.core.firmware.model import FirmwareRequest

_HEX64 = re.compile(r"\b[0-9a-fA-F]{64}\b")


def checksum_in(location: str) -> str | None:
    """The ``sha256=<hex>`` of a location's fragment, lowercase; None without one."""
    for item in urlsplit(location).fragment.split("&"):
        name, _, value = item.partition("=")
        if name == "sha256" and _HEX64.fullmatch(value):
            return value.lower()
    return None


def checksum_text(text: str) -> str | None:
    """The first 64-digit hex word of a ``.sha256`` file (``sha256sum`` writes "<hex>  <name>")."""
    match = _HEX64.search(text)
    return match.group(0).lower() if match else None


def sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Sha256Verifier:
    """Refuses a package whose SHA-256 differs from the one given (or, when required, when none is)."""

    def __init__(self, *, required: bool = False) -> None:
        self.required = required

    async def verify(self, package: pathlib.Path, request: FirmwareRequest) -> str | None:
        expected = request.checksum_sha256
        if expected is None:
            return "no SHA-256 checksum was given and one is required" if self.required else None
        actual = await asyncio.to_thread(sha256_of, package)
        if actual != expected.lower():
            return f"SHA-256 {actual[:16]}... differs from the expected {expected.lower()[:16]}..."
        return None

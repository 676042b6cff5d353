"""Reading a downloaded package within bounds: how many members, how many bytes unpacked, what ratio.

A package is a wheel (a zip) or a tarball of wheels, and whoever made it may
have made it to hurt: a few megabytes of zeros that unpack to gigabytes keep a
station busy for minutes and fill its disk. So a package is measured before it
is unpacked, and unpacked only as far as the measure allows:

- a zip is judged by its central directory alone (nothing is decompressed):
  its number of entries, the sum of their declared sizes, and that sum over
  the file's size (the ratio);
- a tarball is read as a stream through a counter: every member's header is
  judged before its data is read (a 1.5 GB member in a 1.5 MB package is
  refused at its header), and the counter stops any reading beyond the budget,
  also inside tarfile's own headers (a pax header can be large).

Real packages are far inside the bounds: wheels unpack to about 3 times their
size (Python source in deflate), a tarball of wheels to about once its size.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pathlib
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

#: Whatever its size, a package may always unpack to this much (a tarball's headers and padding).
MIN_BUDGET = 1024 * 1024


class ArchiveRefused(Exception):  # noqa: N818 - a refusal of the package, not an error of the station
    """The package is beyond a bound; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Bounds:
    """How far a package may unpack."""

    #: Entries of one zip, or members of one tarball.
    members: int = 10_000
    #: Bytes unpacked from one package, at most, whatever its size.
    total_bytes: int = 1024 * 1024 * 1024
    #: Bytes unpacked per byte of the package, at most.
    ratio: float = 20.0

    def budget(self, packed: int) -> int:
        """Bytes a package of ``packed`` bytes may unpack to."""
        return min(self.total_bytes, max(int(self.ratio * packed), MIN_BUDGET))


def check_zip(path: pathlib.Path, bounds: Bounds) -> int:
    """The bytes ``path`` (a zip) unpacks to, from its central directory; ``ArchiveRefused`` beyond
    the bounds. Python's and pip's readers never give more than an entry's declared size."""
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
    if len(entries) > bounds.members:
        raise ArchiveRefused(f"{path.name} has {len(entries)} entries, more than {bounds.members}")
    total = sum(entry.file_size for entry in entries)
    packed = path.stat().st_size
    if total > bounds.budget(packed):
        raise ArchiveRefused(f"{path.name} would unpack to {total} bytes from {packed} "
                             f"(at most {bounds.ratio:g} times its size, {bounds.total_bytes} bytes in all)")
    return total


class _Counted(io.RawIOBase):
    """A reader that refuses to give more than ``budget`` bytes in all."""

    def __init__(self, source: IO[bytes], budget: int, name: str) -> None:
        self.source, self.budget, self.name, self.count = source, budget, name, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        room = self.budget - self.count
        want = room + 1 if size is None or size < 0 else min(size, room + 1)
        data = self.source.read(want)
        self.count += len(data)
        if self.count > self.budget:
            raise ArchiveRefused(f"{self.name} unpacks to more than {self.budget} bytes")
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    """The tarball's bytes: gzip, bzip2 and xz are recognised by their magic, anything else is read as is."""
    magic = raw.read(6)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)
    if magic[:3] == b"BZh":
        return bz2.BZ2File(raw)
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw)
    return raw


def tar_members(path: pathlib.Path, bounds: Bounds) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Each member of the tarball ``path`` with the open archive (``extractfile`` works on the
    member in hand), in order, read as a stream within the bounds. ``tarfile.ReadError`` when it is
    no tarball; ``ArchiveRefused`` at the first member beyond a bound, before its data is read."""
    budget = bounds.budget(path.stat().st_size)
    with path.open("rb") as raw:
        counted = _Counted(_decompressed(raw), budget, path.name)
        with tarfile.open(fileobj=counted, mode="r|") as tar:  # type: ignore[call-overload]
            declared = 0
            for number, member in enumerate(tar, start=1):
                if number > bounds.members:
                    raise ArchiveRefused(f"{path.name} has more than {bounds.members} members")
                declared += max(0, member.size)
                if declared > budget:
                    raise ArchiveRefused(
                        f"{path.name} would unpack to {declared} bytes or more from {path.stat().st_size} "
                        f"(at most {bounds.ratio:g} times its size, {bounds.total_bytes} bytes in all)")
                yield member, tar

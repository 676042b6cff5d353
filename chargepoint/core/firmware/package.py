"""A downloaded package read before it is installed: measured, unpacked, its wheel named.

A package is a chargepoint wheel, or a tarball of wheels (chargepoint and, for
stations without internet, its dependencies). ``unpack`` measures every
archive against the bounds before anything of it is expanded (``archive.py``),
copies the wheels out of a tarball by their base names only, and finds the
chargepoint wheel by its own metadata, whose version must be a PEP 440 version
and a plain directory name (it names the new environment). Anything else is an
``InstallError`` with the reason.

``installer.py`` imports this module when an update installs: tarfile, zipfile,
the email parser and ``packaging`` stay out of the daemon until then.
"""

from __future__ import annotations

import email.parser
import lzma
import pathlib
import re
import shutil
import tarfile
import zipfile
import zlib

from packaging.version import InvalidVersion, Version

from chargepoint.core.firmware import archive, trial
from chargepoint.core.firmware.model import InstallError

#: How far a package may unpack (members, bytes, ratio): far beyond any real one.
BOUNDS = archive.Bounds()
#: A wheel's METADATA or WHEEL file is a few kilobytes; bigger ones are not read into memory.
METADATA_MAX = 1024 * 1024
#: A wheel's compatibility tag (python-abi-platform), as its file name carries it.
_TAG = re.compile(r"[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+")


def wheel_info(path: pathlib.Path) -> tuple[str, str, str]:
    """(name, version, first tag) from a wheel's own metadata; InstallError if it is not a wheel."""
    def text(wheel: zipfile.ZipFile, name: str) -> str:
        if wheel.getinfo(name).file_size > METADATA_MAX:
            raise InstallError(f"{path.name}: its {name.rpartition('/')[2]} is over {METADATA_MAX} bytes")
        return wheel.read(name).decode("utf-8", "replace")

    try:
        with zipfile.ZipFile(path) as wheel:
            names = wheel.namelist()
            info = next((n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)), None)
            if info is None:
                raise InstallError(f"{path.name} is not a wheel: it has no .dist-info/METADATA")
            metadata = email.parser.Parser().parsestr(text(wheel, info))
            wheel_file = text(wheel, info.replace("METADATA", "WHEEL"))
            tags = email.parser.Parser().parsestr(wheel_file).get_all("Tag")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as exc:
        raise InstallError(f"{path.name} is not a readable wheel: {exc}") from None
    name, version = metadata.get("Name"), metadata.get("Version")
    if not name or not version or not tags:
        raise InstallError(f"{path.name}: the wheel's metadata names no name, version or tag")
    problem = version_problem(version)
    if problem is not None:
        raise InstallError(f"{path.name}: {problem}")
    if not _TAG.fullmatch(tags[0]):
        raise InstallError(f"{path.name}: the wheel's tag {tags[0][:80]!r} is not a compatibility tag")
    return name, version, tags[0]


def version_problem(version: str) -> str | None:
    """Why ``version`` cannot name an environment of the versions directory, or None: it must be a
    PEP 440 version and one plain name (``trial.safe_name``: no ``/``, not ``.``, ``..``, ``current``)."""
    try:
        Version(version)
    except InvalidVersion:
        return f"the wheel's version {version[:80]!r} is not a PEP 440 version"
    if not trial.safe_name(version):
        return f"the wheel's version {version[:80]!r} is not a plain directory name"
    return None


def unpack(package: pathlib.Path, workdir: pathlib.Path,
           bounds: archive.Bounds = BOUNDS) -> tuple[pathlib.Path, str, bool]:
    """The chargepoint wheel in ``package`` (a wheel, or a tarball of wheels) under its proper name
    in ``workdir``, its version, and whether its dependencies came with it. Every archive is
    measured against ``bounds`` before it is unpacked (``archive.py``): a package beyond them is
    refused without being expanded."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(package):
            candidates, bundled = [package], False
        else:
            candidates, bundled = _unbundle(package, workdir / "bundle", bounds), True
        unpacked = 0
        for candidate in candidates:  # pip unpacks each of them: each one is measured
            unpacked += archive.check_zip(candidate, bounds)
            if unpacked > bounds.total_bytes:
                raise archive.ArchiveRefused(f"{package.name}'s wheels unpack to more than "
                                             f"{bounds.total_bytes} bytes")
    except archive.ArchiveRefused as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise InstallError(f"refused without unpacking: {exc.reason}") from None
    except zipfile.BadZipFile as exc:
        raise InstallError(f"{package.name} holds a wheel that is no readable zip: {exc}") from None
    for candidate in candidates:
        name, version, tag = wheel_info(candidate)
        if name.lower().replace("_", "-") == "chargepoint":
            proper = workdir / f"chargepoint-{version}-{tag}.whl"
            shutil.copyfile(candidate, proper)
            return proper, version, bundled
    raise InstallError(f"{package.name} holds no chargepoint wheel")


def _unbundle(package: pathlib.Path, bundle: pathlib.Path, bounds: archive.Bounds) -> list[pathlib.Path]:
    """The wheels of the tarball ``package``, copied into ``bundle``: only their bytes, each under its
    own base name (no path of the tarball is trusted, and no extraction filter is needed, which
    Python before 3.11.4 lacks). The tarball is read as a stream within ``bounds``."""
    bundle.mkdir()
    try:
        for member, tar in archive.tar_members(package, bounds):
            name = pathlib.PurePosixPath(member.name).name
            source = tar.extractfile(member) if member.isfile() and name.endswith(".whl") else None
            if source is not None:
                with source, (bundle / name).open("wb") as out:
                    shutil.copyfileobj(source, out)
    except tarfile.ReadError:
        raise InstallError(f"{package.name} is neither a wheel nor a tarball of wheels") from None
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
        raise InstallError(f"{package.name} is not a readable tarball: {exc}") from None
    return sorted(bundle.glob("*.whl"))

"""Installing a verified package: a new virtual environment per version, or the operator's own command.

``VenvInstaller`` (the default) takes a wheel of chargepoint, or a tarball of
wheels (chargepoint and, for stations without internet, its dependencies),
and installs it into ``<venvs_dir>/<version>``, beside the running version,
which it never touches. The new environment must import and name the version
its wheel says before the ``current`` link is switched to it, through the
trial of ``trial.py``; a restart then starts the new version, and the guard
switches back if it does not boot. Older environments beyond ``keep`` are
removed first (never the running one nor the one before it). A version names
a directory, so it must be a PEP 440 version and one plain name (no ``/``, not
``.``, ``..`` or ``current``); and every directory the installer makes or
removes is checked, resolved, to be an entry of ``venvs_dir`` that is neither
the ``current`` link nor the running or previous environment.

Before anything is unpacked, the package is measured (``archive.py``: members,
bytes unpacked, ratio): a package beyond the bounds is refused unexpanded.
Reading a package (``package.py``: tarfile, zipfile, wheel metadata, PEP 440)
is imported when an update installs, not by the daemon that starts: only what
``clean`` needs at every start is here.

The environment being made belongs to its update until the update ends: its
name is marked (``<state_dir>/firmware/installing``) before it is made, and
``clean`` (at every start, and when the update ends) removes it, unless the
``current`` link or a pending trial names it, then the mark. So a process
killed at any instant of an install leaves no half-made environment, nor one
of a version rolled back, nor its unpacked files, beyond its next start. An
old environment is renamed ``.<version>.removing`` before it is removed, so a
kill during its removal leaves no half of it under its version's name.

``CommandInstaller`` is for operators with their own update system (an OS
image, a Debian package): the configured command gets the package's path as
its last argument; exit status 0 means installed, anything else failed. No
restart and no rollback are ours then.

Every step runs as a subprocess (asyncio, nothing blocks the loop) with a
time limit; a failed step removes what it made and raises ``InstallError``
with the step's own last words.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from chargepoint.core.firmware import trial
from chargepoint.core.firmware.model import FirmwareRequest, InstallError

log = logging.getLogger(__name__)

#: Longest any one step (venv, pip, the import check, the command) may take.
STEP_TIMEOUT_S = 900.0
#: In ``<state_dir>/firmware``: the name of the environment an unfinished update is making.
MARKER = "installing"
#: The ending of an old environment's name while it is being removed (``.<version>.removing``).
REMOVING = ".removing"


@dataclass(frozen=True)
class Installed:
    """What an installer did: the version installed (when known) and whether a restart runs it."""

    version: str | None
    restart: bool


class Installer(Protocol):
    async def install(self, package: pathlib.Path, request: FirmwareRequest) -> Installed: ...


async def run_step(args: Sequence[str], what: str, timeout_s: float = STEP_TIMEOUT_S) -> str:
    """Run one step; its standard output, or InstallError with the tail of what it said."""
    try:
        process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise InstallError(f"{what}: cannot run {args[0]}: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except BaseException as exc:  # the time is up, or the update was canceled: the step goes too
        if process.returncode is None:
            process.kill()
        await asyncio.shield(process.wait())
        if isinstance(exc, TimeoutError):
            raise InstallError(f"{what}: no end after {timeout_s:g} s") from None
        raise
    if process.returncode != 0:
        said = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        raise InstallError(f"{what} failed (exit {process.returncode})"
                           + (f": {said[-1].strip()[:300]}" if said else ""))
    return out.decode("utf-8", "replace")


class VenvInstaller:
    """A new virtual environment per version under ``venvs_dir``, switched to through a trial."""

    def __init__(self, venvs_dir: str, state_dir: str, *, running_version: str, deadline_s: float,
                 python: str = "", system_site_packages: bool = True, pip_args: Sequence[str] = (),
                 keep: int = 3, with_pip: bool = True, now: Callable[[], float] = time.time) -> None:
        self.venvs_dir = pathlib.Path(venvs_dir)
        self.state_dir = pathlib.Path(state_dir)
        self.running_version = running_version
        self.deadline_s = deadline_s
        #: The interpreter new environments are made with (default: the one the running one was made from).
        self.python = python or getattr(sys, "_base_executable", sys.executable)
        self.system_site_packages = system_site_packages
        self.pip_args = tuple(pip_args)
        self.keep = keep
        #: New environments get their own pip (the next update installs with it); without, the
        #: running environment's pip installs into them (``pip --python``).
        self.with_pip = with_pip
        self.now = now

    def refusal(self) -> str | None:
        """Why nothing can be installed here (no ``current`` link to come back to), or None."""
        if trial.current(self.venvs_dir) is None:
            return f"{self.venvs_dir / trial.LINK} does not exist (see README, Firmware updates)"
        return None

    async def install(self, package: pathlib.Path, request: FirmwareRequest) -> Installed:
        refusal = self.refusal()
        if refusal is not None:
            raise InstallError(refusal)
        work = self.state_dir / "firmware" / "unpacked"
        wheel, version, bundled = await asyncio.to_thread(_unpack, package, work)
        if trial.current(self.venvs_dir) == version:
            raise InstallError(f"version {version} is the one running")
        target = await asyncio.to_thread(self._entry, version)
        await asyncio.to_thread(self._mark, version)
        python = target / "bin" / "python"
        try:
            await asyncio.to_thread(self._prune, version)
            venv = [self.python, "-m", "venv", str(target)]
            if self.system_site_packages:
                venv.insert(-1, "--system-site-packages")
            if not self.with_pip:
                venv.insert(-1, "--without-pip")
            await run_step(venv, "creating the virtual environment")
            pip = [str(python), "-m", "pip"] if self.with_pip else \
                [sys.executable, "-m", "pip", "--python", str(python)]
            pip += ["install", "--no-input", "--disable-pip-version-check", "--quiet", *self.pip_args]
            if bundled:
                pip += ["--no-index", "--find-links", str(wheel.parent / "bundle")]
            await run_step([*pip, str(wheel)], "pip install")
            said = await run_step([str(python), "-c", "import chargepoint; print(chargepoint.__version__)"],
                                  "the new version's import check", timeout_s=120)
            if said.strip() != version:
                raise InstallError(f"the new environment says version {said.strip()!r}, not {version}")
            await asyncio.to_thread(trial.begin, self.state_dir, self.venvs_dir, version, version,
                                    self.deadline_s, self.now())
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, target, True)
            await asyncio.to_thread(self._unmark)
            raise
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        return Installed(version, restart=True)

    # ------------------------------------------------ what a kill leaves
    def _mark(self, version: str) -> None:
        """Name the environment about to be made (a new file renamed over, synced: never half a name)."""
        directory = self.state_dir / "firmware"
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f"{MARKER}.tmp"
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(version)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, directory / MARKER)

    def _unmark(self) -> None:
        for name in (MARKER, f"{MARKER}.tmp"):
            (self.state_dir / "firmware" / name).unlink(missing_ok=True)

    def marked(self) -> str | None:
        """The environment an unfinished update was making (a plain name), or None."""
        try:
            fd = os.open(self.state_dir / "firmware" / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            name = handle.read(256).decode("utf-8", "replace").strip()
        return name if trial.safe_name(name) else None

    def clean(self) -> list[str]:
        """Remove what an install left once nothing is deciding about it (run at start, and when an
        update ends): the unpacked package, and the marked environment unless the ``current`` link
        or a pending trial names it (a half-made one, one never switched to, one rolled back); the
        mark goes once no pending trial names it. Everything removed is checked to be inside its
        directory (``_entry``); what was removed, for the log."""
        removed = [str(path) for path in [remove_inside(self.state_dir / "firmware", "unpacked")] if path]
        removed += self._finish_removals()
        name = self.marked()
        record = trial.read(self.state_dir)
        pending = record is not None and record.get("state") == trial.PENDING
        named = {trial.current(self.venvs_dir)}
        if pending and record is not None:
            named |= {record.get("target"), record.get("previous")}
        if name is not None and name not in named:
            try:
                target = self._entry(name)
            except InstallError as exc:
                log.warning("environment %s of an unfinished update kept: %s", name, exc)
            else:
                if target.exists():
                    shutil.rmtree(target, ignore_errors=True)
                    removed.append(str(target))
        if not (pending and name in named):
            self._unmark()
        return removed

    def _protected(self) -> set[pathlib.Path]:
        """The environments nothing may remove or install into: the running one and the one before."""
        names = [trial.LINK]
        record = trial.read(self.state_dir)
        if record is not None and trial.safe_link(record.get("previous")):
            names.append(str(record["previous"]))
        return {(self.venvs_dir / name).resolve() for name in names}

    def _entry(self, name: str) -> pathlib.Path:
        """``venvs_dir/name``, checked before anything is made or removed there: a plain name, not a
        link, resolving to an entry of ``venvs_dir`` that is not a protected environment."""
        if not trial.safe_name(name):
            raise InstallError(f"{name[:80]!r} is not a plain name of {self.venvs_dir}")
        base = self.venvs_dir.resolve()
        path = base / name
        if path.is_symlink():
            raise InstallError(f"{path} is a link: not an environment of its own")
        real = path.resolve()
        if real.parent != base or real == base:
            raise InstallError(f"{path} is not inside {base}")
        if real in self._protected():
            raise InstallError(f"{path} is the running environment or the one before it")
        return path

    def _prune(self, incoming: str) -> None:
        """Remove old environments, keeping the running one, the one before it and the newest others."""
        keep = {trial.current(self.venvs_dir) or "", incoming}
        record = trial.read(self.state_dir)
        if record is not None:
            keep.add(str(record.get("previous")))
        olds = sorted((p for p in self.venvs_dir.iterdir() if p.is_dir() and not p.is_symlink()
                       and p.name not in keep and not p.name.startswith(".")),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for old in olds[max(0, self.keep - len(keep)):]:
            try:
                checked = self._entry(old.name)
            except InstallError as exc:
                log.warning("old environment %s kept: %s", old.name[:80], exc)
                continue
            self._discard(checked)
        stale = self._entry(incoming)
        if stale.exists():
            shutil.rmtree(stale, ignore_errors=True)

    def _discard(self, environment: pathlib.Path) -> None:
        """Remove an old environment: first renamed to ``.<name>.removing`` (one atomic step, and a
        name nothing starts or keeps), so a kill during the removal leaves no half environment
        under its version's name; ``clean`` finishes such a removal at the next start."""
        doomed = environment.with_name(f".{environment.name}{REMOVING}")
        shutil.rmtree(doomed, ignore_errors=True)
        try:
            os.rename(environment, doomed)
        except OSError as exc:
            log.warning("old environment %s kept: %s", environment.name, exc.strerror or exc)
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def _finish_removals(self) -> list[str]:
        """Old environments a kill interrupted the removal of (``_discard``)."""
        if not self.venvs_dir.is_dir() or self.venvs_dir.is_symlink():
            return []
        removed = []
        for entry in self.venvs_dir.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(REMOVING) and not entry.is_symlink() \
                    and entry.is_dir() and trial.safe_name(entry.name[1:-len(REMOVING)]):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(str(entry))
        return removed


def remove_inside(directory: pathlib.Path, name: str) -> pathlib.Path | None:
    """Remove ``directory/name`` (a work directory or file) without following a link: a link there
    is unlinked, never its target; nothing happens when ``directory`` itself is a link. The path
    removed, or None."""
    path = directory / name
    try:
        if directory.is_symlink() or not os.path.lexists(path):
            return None
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)  # fd-based on Linux: never follows a link inside
    except OSError as exc:
        log.warning("%s not removed: %s", path, exc.strerror or exc)
        return None
    return path


class CommandInstaller:
    """The operator's installer command, given the package's path; exit 0 = installed."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = tuple(command)

    async def install(self, package: pathlib.Path, request: FirmwareRequest) -> Installed:
        name = os.path.basename(self.command[0])
        await run_step([*self.command, str(package)], f"the installer command {name}")
        return Installed(None, restart=False)


def _unpack(package: pathlib.Path, workdir: pathlib.Path) -> tuple[pathlib.Path, str, bool]:
    """``package.unpack``, imported here in the worker thread: the first update loads the package
    reader (tarfile, zipfile, the wheel's metadata) off the event loop, and a daemon that starts
    does not load it at all (it keeps every module it imports for months)."""
    from chargepoint.core.firmware.package import unpack

    return unpack(package, workdir)

"""The trial of a newly installed version, and the guard that rolls a failed one back.

Who decides that a new version works? Not the new version alone: one that
crashes at start, hangs or never reaches the CSMS cannot be trusted to say it
failed. So the decision is split:

- the old daemon installs the new version into its own virtual environment,
  writes a *trial record* (state ``pending``, with the environment the
  ``current`` link pointed to before) and only then switches the link
  (``begin``); then it exits for the service manager to start the new one;
- the new daemon marks the trial ``confirmed`` once the CSMS has accepted its
  BootNotification and its watchdog is fed (``confirm``);
- this guard, run by systemd before every start of the service
  (``ExecStartPre``, ``prestart``) and by a timer (``check``), rolls back
  without anyone's help: a service starting a second time while the trial is
  still pending means the new version stopped (crashed, was killed by the
  watchdog) before it was confirmed; a trial still pending ``deadline_s``
  after the new version's first start means it never got an accepted boot.
  A trial whose link was never switched (the old daemon was killed between
  the record and the switch) ends at the next start, nothing switched.
  Rolling back switches the link to the previous environment, marks the trial
  ``rolled_back`` with the reason, and (``check``) restarts the service. The
  old version, started again, reads the record and reports the failure.

The link is switched atomically: a new symlink beside it renamed over it.

The state directory is the service user's, and the timer runs the guard as
root; so nothing here trusts what that user could have put there. The record
is opened without following links (``O_NOFOLLOW``), its temporary file is
created new (``O_EXCL``, after unlinking a stale one, which removes a link
and never its target), and a record whose version or environments are not
plain names of the versions directory is ignored, never acted on. On top of
that, run as root the guard does its file work in a child process that has
become the owner of the state directory (``as_owner``); only the restart
command runs as root.

This module uses only the standard library and imports nothing of the
package, so the guard runs as a plain script (``python3 trial.py prestart``)
with the system's Python, whatever state the installed versions are in;
``chargepoint firmware-guard`` runs the same code.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import pwd
import re
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

#: The symlink in the versions directory that the service starts through.
LINK = "current"
PENDING, CONFIRMED, ROLLED_BACK = "pending", "confirmed", "rolled_back"
RECORD, TMP = "trial.json", "trial.json.tmp"
#: What the guard says of a record it will not act on.
IGNORED = "trial record ignored"
#: A record is a few hundred bytes; anything much bigger was not written by us.
RECORD_MAX = 64 * 1024
#: One plain entry of the versions directory: what a version may be called (PEP 440's characters).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,99}")
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def record_path(state_dir: str | pathlib.Path) -> pathlib.Path:
    return pathlib.Path(state_dir) / "firmware" / RECORD


def safe_name(value: object) -> bool:
    """``value`` names one entry of the versions directory: no ``/``, not ``.``, ``..`` or ``current``,
    no leading dot, only the characters a version has (so no shell text either)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None and value != LINK


def safe_link(value: object) -> bool:
    """``value`` may be written into the ``current`` link: an entry of the versions directory, or one
    beside it (``../venv``, the environment systemd/install.sh made)."""
    return safe_name(value) or (isinstance(value, str) and value.startswith("../") and safe_name(value[3:]))


def invalid(record: dict[str, Any]) -> str | None:
    """Why ``record`` must not be acted on (it was not written by a daemon or the guard), or None."""
    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    if record.get("state") not in (PENDING, CONFIRMED, ROLLED_BACK):
        return "its state is not one of pending, confirmed, rolled_back"
    for key, ok in (("version", safe_name), ("target", safe_name), ("previous", safe_link)):
        if not ok(record.get(key)):
            return f"its {key} is not a plain name of the versions directory"
    if not number(record.get("deadline_s")) or not number(record.get("installed_at", 0)):
        return "its deadline or installation time is not a number"
    if record.get("started_at") is not None and not number(record.get("started_at")):
        return "its start time is not a number"
    if not isinstance(record.get("starts", 0), int):
        return "its start count is not a number"
    if not isinstance(record.get("unhealthy_boot", False), bool):
        return "its unhealthy_boot is not true or false"
    return None


def _firmware_dir(state_dir: str | pathlib.Path, *, create: bool) -> int:
    """A descriptor of ``<state_dir>/firmware``: a directory, never reached through a link there."""
    if create:
        pathlib.Path(state_dir).mkdir(parents=True, exist_ok=True)
    base = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if create:
            try:
                os.mkdir("firmware", 0o700, dir_fd=base)
            except FileExistsError:
                pass
        return os.open("firmware", os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=base)
    finally:
        os.close(base)


def read(state_dir: str | pathlib.Path) -> dict[str, Any] | None:
    """The trial record, or None when no trial is recorded (or the record is unreadable, is a link
    or is not a plain file)."""
    try:
        directory = _firmware_dir(state_dir, create=False)
    except OSError:
        return None
    try:
        # O_NONBLOCK: a FIFO planted there must not hang the guard; it is refused as no plain file.
        fd = os.open(RECORD, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=directory)
    except OSError:
        return None
    finally:
        os.close(directory)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, RECORD_MAX + 1)
        data = json.loads(text.decode("utf-8")) if len(text) <= RECORD_MAX else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None


def write(state_dir: str | pathlib.Path, record: dict[str, Any]) -> None:
    """Write the record atomically (a new file renamed over the old, synced). The temporary file is
    made anew: a stale one, or a link planted in its place, is unlinked (the link, not its target),
    then it is created exclusively without following links; a link planted between the two makes
    the write fail, never write through it."""
    directory = _firmware_dir(state_dir, create=True)
    try:
        try:
            os.unlink(TMP, dir_fd=directory)
        except FileNotFoundError:
            pass
        fd = os.open(TMP, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(TMP, RECORD, src_dir_fd=directory, dst_dir_fd=directory)
    finally:
        os.close(directory)


def remove(state_dir: str | pathlib.Path) -> None:
    try:
        directory = _firmware_dir(state_dir, create=False)
    except FileNotFoundError:
        return
    try:
        os.unlink(RECORD, dir_fd=directory)
    except FileNotFoundError:
        pass
    finally:
        os.close(directory)


def current(venvs_dir: str | pathlib.Path) -> str | None:
    """Where the ``current`` link points (as written in the link), or None without one."""
    try:
        return os.readlink(pathlib.Path(venvs_dir) / LINK)
    except OSError:
        return None


def switch(venvs_dir: str | pathlib.Path, target: str) -> None:
    """Point ``current`` at ``target`` atomically (readers see the old or the new link, never none)."""
    if not safe_link(target):
        raise ValueError(f"{target!r} is not an environment of the versions directory")
    link = pathlib.Path(venvs_dir) / LINK
    tmp = link.with_name(f".{LINK}.new")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    directory = os.open(link.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def begin(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path, target: str, version: str,
          deadline_s: float, now: float) -> dict[str, Any]:
    """Record the trial of ``version`` (installed in ``target``), then switch the link to it."""
    previous = current(venvs_dir)
    if previous is None:
        raise FileNotFoundError(f"{pathlib.Path(venvs_dir) / LINK} does not exist: nothing to roll back to")
    record = {"state": PENDING, "version": version, "target": target, "previous": previous,
              "deadline_s": deadline_s, "installed_at": now, "starts": 0, "started_at": None, "reason": None}
    problem = invalid(record)
    if problem is not None:
        raise ValueError(f"no trial of {version!r} in {target!r} after {previous!r}: {problem}")
    write(state_dir, record)
    switch(venvs_dir, target)
    return record


def rollback(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path, record: dict[str, Any],
             reason: str) -> None:
    """Back to the previous environment (if the link still names the trial's), and say why.
    ``ValueError`` for a record that is ``invalid``: nothing is switched then."""
    problem = invalid(record)
    if problem is not None:
        raise ValueError(f"the trial record is ignored: {problem}")
    if current(venvs_dir) == record["target"]:
        switch(venvs_dir, record["previous"])
    record.update(state=ROLLED_BACK, reason=reason)
    write(state_dir, record)


def prestart(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path, now: float) -> str | None:
    """Before each start of the service: count the trial version's start; roll back at its second."""
    record = read(state_dir)
    if record is None or record.get("state") != PENDING:
        return None
    problem = invalid(record)
    if problem is not None:
        return f"{IGNORED}: {problem}"
    if int(record.get("starts") or 0) == 0:
        if current(venvs_dir) != record["target"]:  # killed between the record and the switch
            reason = f"the station stopped before switching to version {record['version']}"
            rollback(state_dir, venvs_dir, record, reason)
            return f"trial of {record['version']} ended: {reason}"
        record.update(starts=1, started_at=now)
        write(state_dir, record)
        return f"starting version {record['version']} on trial"
    reason = (f"version {record['version']} stopped before it was confirmed (an accepted BootNotification "
              "with its watchdog fed): it crashed, hung or was restarted")
    rollback(state_dir, venvs_dir, record, reason)
    return f"rolled back to {record['previous']}: {reason}"


def check(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path, now: float) -> str | None:
    """From a timer: roll back a trial that has run past its deadline without an accepted boot."""
    record = read(state_dir)
    if record is None or record.get("state") != PENDING or record.get("started_at") is None:
        return None
    problem = invalid(record)
    if problem is not None:
        return f"{IGNORED}: {problem}"
    deadline = float(record["deadline_s"])
    if now < float(record["started_at"]) + deadline:
        return None
    reason = (f"version {record['version']} was not confirmed within {deadline:g} s: its BootNotification "
              "was accepted, but its watchdog was not fed" if record.get("unhealthy_boot") is True else
              f"version {record['version']} had no accepted BootNotification within {deadline:g} s")
    rollback(state_dir, venvs_dir, record, reason)
    return f"rolled back to {record['previous']}: {reason}"


def confirm(state_dir: str | pathlib.Path, version: str) -> bool:
    """The running ``version`` booted well: its trial (if it is on trial) is confirmed."""
    record = read(state_dir)
    if record is None or record.get("state") != PENDING or record.get("version") != version:
        return False
    record["state"] = CONFIRMED
    write(state_dir, record)
    return True


def unhealthy_boot(state_dir: str | pathlib.Path, version: str) -> bool:
    """The running ``version`` on trial had its boot accepted while its watchdog was not fed: noted
    in the record, so that a rollback at the deadline says so instead of "no accepted boot"."""
    record = read(state_dir)
    if record is None or record.get("state") != PENDING or record.get("version") != version \
            or record.get("unhealthy_boot") is True:
        return False
    record["unhealthy_boot"] = True
    write(state_dir, record)
    return True


def owner(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path) -> tuple[int, int] | None:
    """Run as root: the (uid, gid) the guard's file work runs as, the first owner other than root of
    ``<state_dir>/firmware``, the state directory or the versions directory (the service user's);
    None when not root, or when root owns them all (nobody else can write there)."""
    if os.geteuid() != 0:
        return None
    for path in (pathlib.Path(state_dir) / "firmware", pathlib.Path(state_dir), pathlib.Path(venvs_dir)):
        try:
            found = os.lstat(path)
        except OSError:
            continue
        if found.st_uid != 0:
            try:
                gid = pwd.getpwuid(found.st_uid).pw_gid
            except KeyError:
                gid = found.st_gid
            return found.st_uid, gid or found.st_gid or 65534  # never root's group
    return None


def as_owner(user: tuple[int, int] | None, work: Callable[[], str | None]) -> str | None:
    """``work()``, in a child process that has become ``user`` (its group, no other groups) when one
    is given: root never writes where the service user can. What the child says comes back through
    a pipe; ``RuntimeError`` with its reason when it failed."""
    if user is None:
        return work()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process (its result is what the tests check)
        code = 0
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
            answer: dict[str, Any] = {"said": work()}
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent as words
            answer, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        try:
            os.write(writer, json.dumps(answer).encode("utf-8")[:RECORD_MAX])
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read(RECORD_MAX + 1)
    _, status = os.waitpid(child, 0)
    try:
        answer = json.loads(data.decode("utf-8"))
    except ValueError:
        answer = {}
    if os.waitstatus_to_exitcode(status) != 0 or not isinstance(answer, dict) or "error" in answer:
        raise RuntimeError(f"as user {user[0]}: {answer.get('error') if isinstance(answer, dict) else None}")
    said = answer.get("said")
    return said if isinstance(said, str) else None


def main(argv: list[str] | None = None) -> int:
    import argparse  # the guard's own command line; the daemon imports this module without it

    parser = argparse.ArgumentParser(prog="firmware-guard", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("prestart", "check", "show"))
    parser.add_argument("--state-dir", default="/var/lib/chargepoint")
    parser.add_argument("--venvs-dir", default="/opt/chargepoint/venvs")
    parser.add_argument("--restart-command", default="",
                        help="run after a rollback by check (e.g. 'systemctl restart chargepoint.service'); "
                             "run as root, the guard does everything else as the state directory's owner")
    args = parser.parse_args(argv)
    user = owner(args.state_dir, args.venvs_dir)
    if args.action == "show":
        shown = as_owner(user, lambda: json.dumps({"current": current(args.venvs_dir),
                                                   "trial": read(args.state_dir)}, indent=1))
        print(shown)
        return 0
    act = prestart if args.action == "prestart" else check
    try:
        said = as_owner(user, lambda: act(args.state_dir, args.venvs_dir, time.time()))
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"firmware-guard: {args.action} failed: {exc}", file=sys.stderr)
        return 1
    if said:
        print(f"firmware-guard: {said.encode('ascii', 'replace').decode()}", file=sys.stderr)
        if said.startswith(IGNORED):
            return 2
        if said.startswith("rolled back") and args.action == "check" and args.restart_command:
            return subprocess.run(shlex.split(args.restart_command), check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())

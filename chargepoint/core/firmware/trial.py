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
  Rolling back switches the link to the previous environment, marks the trial
  ``rolled_back`` with the reason, and (``check``) restarts the service. The
  old version, started again, reads the record and reports the failure.

The link is switched atomically: a new symlink beside it renamed over it.
This module uses only the standard library and imports nothing of the
package, so the guard runs as a plain script (``python3 trial.py prestart``)
with the system's Python, whatever state the installed versions are in;
``chargepoint firmware-guard`` runs the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time
from typing import Any

#: The symlink in the versions directory that the service starts through.
LINK = "current"
PENDING, CONFIRMED, ROLLED_BACK = "pending", "confirmed", "rolled_back"


def record_path(state_dir: str | pathlib.Path) -> pathlib.Path:
    return pathlib.Path(state_dir) / "firmware" / "trial.json"


def read(state_dir: str | pathlib.Path) -> dict[str, Any] | None:
    """The trial record, or None when no trial is recorded (or the record is unreadable)."""
    try:
        data = json.loads(record_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(state_dir: str | pathlib.Path, record: dict[str, Any]) -> None:
    """Write the record atomically (a new file renamed over the old, synced)."""
    path = record_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def remove(state_dir: str | pathlib.Path) -> None:
    record_path(state_dir).unlink(missing_ok=True)


def current(venvs_dir: str | pathlib.Path) -> str | None:
    """Where the ``current`` link points (as written in the link), or None without one."""
    try:
        return os.readlink(pathlib.Path(venvs_dir) / LINK)
    except OSError:
        return None


def switch(venvs_dir: str | pathlib.Path, target: str) -> None:
    """Point ``current`` at ``target`` atomically (readers see the old or the new link, never none)."""
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
    write(state_dir, record)
    switch(venvs_dir, target)
    return record


def rollback(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path, record: dict[str, Any],
             reason: str) -> None:
    """Back to the previous environment (if the link still names the trial's), and say why."""
    if current(venvs_dir) == record["target"]:
        switch(venvs_dir, record["previous"])
    record.update(state=ROLLED_BACK, reason=reason)
    write(state_dir, record)


def prestart(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path, now: float) -> str | None:
    """Before each start of the service: count the trial version's start; roll back at its second."""
    record = read(state_dir)
    if record is None or record.get("state") != PENDING:
        return None
    if int(record.get("starts") or 0) == 0:
        record.update(starts=1, started_at=now)
        write(state_dir, record)
        return f"starting version {record['version']} on trial"
    reason = (f"version {record['version']} stopped before the CSMS accepted its BootNotification "
              "(it crashed, hung or was restarted)")
    rollback(state_dir, venvs_dir, record, reason)
    return f"rolled back to {record['previous']}: {reason}"


def check(state_dir: str | pathlib.Path, venvs_dir: str | pathlib.Path, now: float) -> str | None:
    """From a timer: roll back a trial that has run past its deadline without an accepted boot."""
    record = read(state_dir)
    if record is None or record.get("state") != PENDING or record.get("started_at") is None:
        return None
    deadline = float(record["deadline_s"])
    if now < float(record["started_at"]) + deadline:
        return None
    reason = f"version {record['version']} had no accepted BootNotification within {deadline:g} s"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="firmware-guard", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("prestart", "check", "show"))
    parser.add_argument("--state-dir", default="/var/lib/chargepoint")
    parser.add_argument("--venvs-dir", default="/opt/chargepoint/venvs")
    parser.add_argument("--restart-command", default="",
                        help="run after a rollback by check (e.g. 'systemctl restart chargepoint.service')")
    args = parser.parse_args(argv)
    if args.action == "show":
        print(json.dumps({"current": current(args.venvs_dir), "trial": read(args.state_dir)}, indent=1))
        return 0
    act = prestart if args.action == "prestart" else check
    said = act(args.state_dir, args.venvs_dir, time.time())
    if said:
        print(f"firmware-guard: {said}", file=sys.stderr)
        if said.startswith("rolled back") and args.action == "check" and args.restart_command:
            return subprocess.run(shlex.split(args.restart_command), check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())

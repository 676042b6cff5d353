"""The daemon's files are its user's alone: files 0600, directories 0700, whatever the umask.

The state directory holds the database (authorization key, card ids), the log
(card ids, CSMS addresses), diagnostics archives and firmware records. Under
systemd the unit's ``UMask=0077`` makes every new file private; started from a
shell (umask 022) they came out readable by every local user. So the places
that make them set the mode themselves (``private_dir``, ``FILE_MODE`` with
``os.open``), and ``chargepoint run`` takes the unit's umask at start
(``private_umask``) for everything else it creates, as the unit would.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

#: A file of the daemon's: read and written by its user only.
FILE_MODE = 0o600
#: A directory of the daemon's: entered by its user only.
DIR_MODE = 0o700
#: The umask that gives new files and directories no access for group and others (systemd's UMask=0077).
UMASK = 0o077


def private_dir(path: Path) -> None:
    """Make ``path`` (and its missing parents) if it does not exist; the directory made is DIR_MODE.

    A directory that already exists keeps its mode: the owner, or systemd's
    ``StateDirectoryMode=``, chose it. Blocking file I/O: call it off the event loop.
    """
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # made meanwhile by another process: its mode stands
        path.mkdir(mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask; chmod's does not


def private_umask() -> int:
    """Give this process the umask of the systemd unit; returns the one it had."""
    return os.umask(UMASK)

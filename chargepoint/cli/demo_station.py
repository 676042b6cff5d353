"""The demo's station as on a real one: the safety supervisor and the daemon, two processes.

The demo writes its configuration to a file, starts ``chargepoint supervise`` on it
as a child process (the simulation's EV, circuit and contactor live there), and
runs the daemon in this process, attached over the supervisor's channel: the same
two processes, the same channel and the same Modbus TCP meter as ``chargepoint run``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from chargepoint.app.daemon import Daemon
from chargepoint.backends.remote import build_remote_hardware, connect
from chargepoint.config import Config, load


def toml_text(data: dict[str, Any]) -> str:
    """A configuration dict (tables of scalars and lists of scalars) as TOML."""
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            # JSON's strings, numbers, lists and booleans are TOML's too.
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)


class TwoProcessStation:
    """``async with``: the supervisor started, the daemon built on its channel; stopped at the end."""

    def __init__(self, data: dict[str, Any], state_dir: str) -> None:
        self.path = Path(state_dir) / "chargepoint.toml"
        self.path.write_text(toml_text(data), encoding="utf-8")
        self.config: Config = load(str(self.path))
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.daemon: Daemon | None = None

    async def __aenter__(self) -> Daemon:
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "chargepoint.supervisor", "--config", str(self.path),
             "--log-level", "warning"], stdin=subprocess.DEVNULL)
        client, hello = await asyncio.to_thread(connect, self.config, spawn=False)
        self.daemon = Daemon(self.config, build_remote_hardware(self.config, client, hello))
        return self.daemon

    async def __aexit__(self, *exc: object) -> None:
        if self.supervisor is not None:
            self.supervisor.terminate()
            await asyncio.to_thread(self.supervisor.wait, 10)

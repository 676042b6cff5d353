"""The independent strict OCPP peer (``tests/peer/strict_csms.js``) as the tests drive it.

``ocpp-rpc`` in strict mode schema-checks every frame the station sends (its
CALLs and the CALLRESULTs it returns to the CSMS's CALLs) with an OCPP
implementation we did not write, in OCPP 1.6J or 2.0.1 (``protocols``: the
subprotocols it serves, preferred first). ``make test`` installs the peer's
node_modules (``npm ci``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

PEER_DIR = Path(__file__).resolve().parents[1] / "peer"
SCRIPT = PEER_DIR / "strict_csms.js"


class StrictPeer:
    """The node process and the JSON lines it prints."""

    def __init__(self, process: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.events: list[dict[str, Any]] = []
        self.port: int | None = None
        self._refs = itertools.count(1)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "unparsed", "line": line}
            if event.get("event") == "listening":
                self.port = int(event["port"])
            self.events.append(event)

    # ------------------------------------------------------------ queries
    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == kind
                and all(e.get(k) == v for k, v in match.items())]

    def calls(self, action: str, **params: Any) -> list[dict[str, Any]]:
        """The station's CALLs of ``action`` whose params contain ``params``."""
        return [e for e in self.of("call", action=action)
                if all(e["params"].get(k) == v for k, v in params.items())]

    def actions(self) -> list[str]:
        return [e["action"] for e in self.of("call")]

    def strict_failures(self) -> list[dict[str, Any]]:
        return self.of("strictValidationFailure")

    def report(self) -> str:
        """What to show when something goes wrong: failures first, then the tail of the log."""
        failures = self.strict_failures()
        tail = self.events[-25:]
        stderr = self.stderr_path.read_text(errors="replace")[-2000:] if self.stderr_path.exists() else ""
        return (f"\nstrictValidationFailure events ({len(failures)}):\n"
                + "".join(f"  {json.dumps(f)}\n" for f in failures)
                + "last peer events:\n" + "".join(f"  {json.dumps(e)[:400]}\n" for e in tail)
                + (f"peer stderr:\n{stderr}" if stderr else ""))

    async def wait(self, condition: Callable[[], Any], what: str, timeout: float = 8.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            if self._reader.done() or loop.time() > deadline:
                gone = " (the peer process ended)" if self._reader.done() else ""
                raise AssertionError(f"timed out waiting for {what}{gone}{self.report()}")
            await asyncio.sleep(0.01)

    async def wait_call(self, action: str, count: int = 1, timeout: float = 8.0,
                        **params: Any) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]] | None:
            calls = self.calls(action, **params)
            return calls if len(calls) >= count else None
        return await self.wait(found, f"{count} x {action} {params or ''}", timeout)

    # ----------------------------------------------------------- commands
    def _send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())

    async def call(self, action: str, params: dict[str, Any], timeout: float = 8.0) -> dict[str, Any]:
        """Make the CSMS call the station; the ``result`` or ``callError`` event."""
        ref = f"r{next(self._refs)}"
        self._send({"cmd": "call", "action": action, "params": params, "ref": ref})
        answers = await self.wait(
            lambda: [e for e in self.events if e.get("ref") == ref
                     and e.get("event") in ("result", "callError")],
            f"the answer to {action}", timeout)
        return answers[0]

    def send_raw(self, text: str) -> None:
        """Make the CSMS send ``text`` as one frame, as it is (not OCPP, say)."""
        self._send({"cmd": "raw", "text": text})

    def drop(self) -> None:
        """Make the connection go away under the station, as a network loss (no closing handshake)."""
        self._send({"cmd": "drop"})

    async def quit(self) -> None:
        if self.process.returncode is None:
            try:
                self._send({"cmd": "quit"})
                await asyncio.wait_for(self.process.wait(), 5)
            except (TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()
        await asyncio.gather(self._reader, return_exceptions=True)



@asynccontextmanager
async def strict_peer(tmp_path: Path, heartbeat_s: int, protocols: str = "ocpp1.6",
                      env: dict[str, str] | None = None) -> AsyncIterator[StrictPeer]:
    """The peer process serving ``protocols`` (comma-separated), listening on a free port;
    ``env`` adds environment variables (the STRICT_CSMS_TLS_* options)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the strict ocpp-rpc peer cannot run (make test installs it)")
    if not (PEER_DIR / "node_modules" / "ocpp-rpc").is_dir():
        pytest.fail(f"{PEER_DIR / 'node_modules'} is missing: run `make test` "
                    f"(or `cd {PEER_DIR} && npm ci`) to install the strict OCPP peer")
    stderr_path = tmp_path / f"strict_csms.{protocols.replace(',', '+')}.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), "0", str(heartbeat_s), protocols, cwd=PEER_DIR,
            env={**os.environ, **(env or {})},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    server = StrictPeer(process, stderr_path)
    try:
        await server.wait(lambda: server.port, "the peer to listen", timeout=10)
        yield server
    finally:
        await server.quit()

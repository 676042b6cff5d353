"""Real parts for the firmware and diagnostics tests: package servers, wheels, venvs, a service manager.

``FileServer`` is an aiohttp server on loopback that serves packages (whole, cut
off half-way, endless without a length, or held until a test lets it go) and
takes uploads by PUT and POST. ``FtpServer`` is pyftpdlib in a thread, with a
user and password. ``build_wheel`` zips this checkout into a wheel of any
version (optionally with extra code appended to a module, e.g. a daemon that
crashes at start) in a fraction of a second; ``deps_dir`` is a directory of
links to the test venv's packages minus chargepoint itself, put on PYTHONPATH
so that a venv made with ``--without-pip`` runs (and pip-installs) without
downloading anything. ``Service`` does what systemd does for the unit: the
firmware guard before every start (ExecStartPre), then the daemon from
``venvs/current``, started again when it exits with a failure status.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

from aiohttp import web

import chargepoint.core.firmware.trial as trial_module

ROOT = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(next(p for p in sys.path if p.endswith("site-packages")))


# ------------------------------------------------------------------ servers
class FileServer:
    """Packages and uploads over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.uploads: dict[str, bytes] = {}
        #: Set to hold a download (after its first half) or an upload (before its answer) until set.
        self.release = asyncio.Event()
        self.release.set()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> FileServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/files/{name}", self._whole)
        app.router.add_get("/drop/{name}", self._drop)
        app.router.add_get("/endless/{name}", self._endless)
        app.router.add_put("/upload/{name}", self._put)
        app.router.add_post("/upload", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def close(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _whole(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append(request.path)
        if name not in self.files:
            return web.Response(status=404)
        data = self.files[name]
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        await self.release.wait()
        await response.write(data[len(data) // 2:])
        await response.write_eof()
        return response

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        """Announces the whole length, sends half, and closes the connection."""
        self.requests.append(request.path)
        data = self.files[request.match_info["name"]]
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        assert request.transport is not None
        request.transport.close()
        return response

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        """No length: chunk after chunk until the client stops reading (a disk that fills up)."""
        self.requests.append(request.path)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = os.urandom(256 * 1024)
        try:
            for _ in range(400):  # 100 MiB at most
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def _put(self, request: web.Request) -> web.Response:
        self.requests.append(f"PUT {request.path}")
        body = await request.read()
        await self.release.wait()
        self.uploads[request.match_info["name"]] = body
        return web.Response(status=201)

    async def _post(self, request: web.Request) -> web.Response:
        self.requests.append(f"POST {request.path}")
        form = await request.post()
        field: Any = form["file"]
        self.uploads[field.filename] = field.file.read()
        return web.Response(status=200)


class FtpServer:
    """pyftpdlib on 127.0.0.1 in a thread: user ``station`` with a password, home ``root``."""

    PASSWORD = "s3cret-ftp-pass"

    def __init__(self, root: Path) -> None:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer

        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user("station", self.PASSWORD, str(root), perm="elradfmwMT")
        handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "passive_ports": None})
        handler.log_prefix = ""
        self.server = FTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"timeout": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"ftp://station:{self.PASSWORD}@127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.close_all()
        self.thread.join(5)


# ------------------------------------------------------------------- wheels
def build_wheel(out: Path, version: str, patches: dict[str, str] | None = None) -> Path:
    """A wheel of this checkout as chargepoint ``version``; ``patches``: module path -> code appended."""
    patches = patches or {}
    name = f"chargepoint-{version}-py3-none-any.whl"
    dist = f"chargepoint-{version}.dist-info"
    records: list[str] = []
    buffer = io.BytesIO()

    def add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
        zf.writestr(arcname, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        records.append(f"{arcname},sha256={digest},{len(data)}")

    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for package in ("chargepoint", "hal"):
            for path in sorted((ROOT / package).rglob("*")):
                if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                    continue
                arcname = path.relative_to(ROOT).as_posix()
                data = path.read_bytes()
                if arcname == "chargepoint/__init__.py":
                    data = data.replace(b'__version__ = "0.1.0"', f'__version__ = "{version}"'.encode())
                if arcname in patches:
                    data += b"\n" + patches[arcname].encode()
                add(zf, arcname, data)
        metadata = f"Metadata-Version: 2.1\nName: chargepoint\nVersion: {version}\n"
        add(zf, f"{dist}/METADATA", metadata.encode())
        add(zf, f"{dist}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                                 b"Tag: py3-none-any\n")
        add(zf, f"{dist}/entry_points.txt", b"[console_scripts]\nchargepoint = chargepoint.cli:main\n")
        zf.writestr(f"{dist}/RECORD", "\n".join([*records, f"{dist}/RECORD,,"]) + "\n")
    path = out / name
    path.write_bytes(buffer.getvalue())
    return path


def deps_dir(out: Path) -> Path:
    """Links to every package of the test venv but chargepoint (and its editable hook): for PYTHONPATH."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in SITE_PACKAGES.iterdir():
        if entry.name.startswith(("chargepoint", "__editable__", "_chargepoint")) or entry.name == "hal" \
                or entry.suffix == ".pth":
            continue
        (out / entry.name).symlink_to(entry)
    return out


def make_venv(target: Path, wheel: Path, env: dict[str, str]) -> None:
    """A venv of ``wheel`` as the installer makes one: --without-pip, then pip --python, no deps."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(target)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"), "install",
                    "--quiet", "--no-deps", "--disable-pip-version-check", str(wheel)], check=True, env=env)


# ------------------------------------------------------------------ service
class Service:
    """The chargepoint unit as systemd runs it: guard, then ``current/bin/python -m chargepoint.cli run``."""

    def __init__(self, venvs: Path, state_dir: Path, config: Path, env: dict[str, str], log: Path) -> None:
        self.venvs, self.state_dir, self.config, self.env, self.log = venvs, state_dir, config, env, log
        self.process: asyncio.subprocess.Process | None = None
        self.exits: list[int] = []
        self.guard_said: list[str] = []
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.ensure_future(self._supervise())

    async def _guard(self, action: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, trial_module.__file__, action, "--state-dir", str(self.state_dir),
            "--venvs-dir", str(self.venvs), stderr=asyncio.subprocess.PIPE, env={"PATH": os.environ["PATH"]})
        _, err = await process.communicate()
        said = err.decode().strip()
        if said:
            self.guard_said.append(said)
        return said

    async def _supervise(self) -> None:
        while not self._stopping:
            await self._guard("prestart")  # ExecStartPre
            python = self.venvs / "current" / "bin" / "python"
            with self.log.open("ab") as log:
                self.process = await asyncio.create_subprocess_exec(
                    str(python), "-m", "chargepoint.cli", "run", "--config", str(self.config),
                    env=self.env, stdout=log, stderr=log, cwd=str(self.state_dir.parent))
            code = await self.process.wait()
            self.exits.append(code)
            if code == 0 or self._stopping:  # Restart=on-failure
                break
            await asyncio.sleep(0.2)  # RestartSec

    async def check(self) -> str:
        """The guard's timer; on a rollback, what ``systemctl restart`` does."""
        said = await self._guard("check")
        if "rolled back" in said:
            await self.stop()
            self.start()
        return said

    async def stop(self) -> None:
        self._stopping = True
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def running_version(self) -> str:
        return os.readlink(self.venvs / "current")


def copy_venv(template: Path, target: Path) -> None:
    shutil.copytree(template, target, symlinks=True)

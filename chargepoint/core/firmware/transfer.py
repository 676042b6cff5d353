"""Moving files to and from the operator's servers: HTTP(S) and FTP, streamed, never blocking the loop.

A firmware package is downloaded in chunks straight to a file beside its final
name (``<name>.part``) and renamed once complete, so no package sits whole in
memory and a half-written file never passes for a downloaded one. A server
that closes the connection half-way, a length that does not add up and a disk
that fills up are ``TransferError`` values with the reason in words (a full
disk says so: retrying will not help). Diagnostics go the other way: HTTP(S)
PUT of the file to ``<location>/<name>`` (or a POST of a form with the file to
the location), FTP STOR into the location's directory.

HTTP goes through aiohttp and FTP through the standard library's ftplib, each
imported when a transfer runs, not when the daemon starts (it would keep them
resident for months); FTP runs in a worker thread, as does every write to the
disk. Credentials in a URL (``ftp://user:password@host/``)
are used and never shown: ``shown()`` is the URL as logs and status print it,
and ``hide()`` takes the password out of any text (a library's error may quote
the URL whole). A download may be given a size limit (``max_bytes``): a
package announced or found bigger stops there, its partial file removed. A URL
with control characters (``%0d%0a``, which would end an FTP command early) is
refused before any connection; such refusals, like a full disk, are ``final``:
trying again cannot help.
"""

from __future__ import annotations

import asyncio
import errno
import os
import pathlib
import re
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    import ftplib

#: Bytes read from the network and written to disk at a time.
CHUNK = 64 * 1024
SCHEMES = ("http", "https", "ftp")


#: Bytes in the MB of ``max_download_mb`` and of the messages.
MB = 1024 * 1024


class TransferError(Exception):
    """A download or upload that did not complete; ``disk_full`` when the disk ran out of space;
    ``too_big`` when the package is bigger than the download's ``max_bytes``; ``final`` when another
    attempt cannot succeed either (a full disk, a bad URL, a package too big)."""

    def __init__(self, reason: str, *, disk_full: bool = False, too_big: bool = False,
                 final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.disk_full = disk_full
        self.too_big = too_big
        self.final = final or disk_full or too_big


#: The user information of a URL that ``urlsplit`` cannot take apart (``//user:password@``).
_USERINFO = re.compile(r"//([^/?#@]*?)(:[^/?#@]*)?@")


def shown(url: str) -> str:
    """The URL without its password and fragment: what a log line or the status may print (also
    for a URL that does not parse)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"//\1@", url).partition("#")[0]
    host = parts.netloc.rpartition("@")[2]
    if parts.username:
        host = f"{parts.username}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def hide(text: str, url: str) -> str:
    """``text`` with ``url`` shown as ``shown`` shows it and its password (as written, and decoded)
    replaced: for reasons made of a library's error, which may quote the URL whole."""
    text = text.replace(url, shown(url))
    try:
        password = urlsplit(url).password or ""
    except ValueError:
        found = _USERINFO.search(url)
        password = found.group(2)[1:] if found and found.group(2) else ""
    for secret in sorted({password, unquote(password)} - {""}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be used for a transfer, or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the URL does not parse"
    if parts.scheme not in SCHEMES:
        return f"unsupported scheme {parts.scheme or '(none)'!r}; supported: {', '.join(SCHEMES)}"
    try:
        if not parts.hostname:
            return "the URL names no host"
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        return "the URL's port is not a number"
    decoded = unquote(parts.netloc + parts.path + parts.query)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        return "the URL holds control characters (such as CR or LF)"
    return None


def _too_big(limit: int) -> TransferError:
    return TransferError(f"the package is bigger than the {limit / MB:.3g} MB this download may take",
                         too_big=True)


def _disk_error(exc: OSError, path: pathlib.Path) -> TransferError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TransferError(f"the disk is full writing {path.name}", disk_full=True)
    return TransferError(f"cannot write {path.name}: {exc.strerror or exc}")


async def download(url: str, dest: pathlib.Path, *, timeout_s: float = 60.0,
                   max_bytes: int | None = None) -> int:
    """Fetch ``url`` into ``dest``; returns its size in bytes. Raises ``TransferError``, also when
    the package is bigger than ``max_bytes`` (announced so, or found so while it arrives)."""
    problem = check_url(url)
    if problem is not None:
        raise TransferError(problem, final=True)
    part = dest.with_name(dest.name + ".part")
    try:
        handle = await asyncio.to_thread(_open_write, part)
    except OSError as exc:
        raise _disk_error(exc, part) from None
    try:
        if urlsplit(url).scheme == "ftp":
            size = await asyncio.to_thread(_ftp_get, url, handle, part, timeout_s, max_bytes)
        else:
            size = await _http_get(url, handle, part, timeout_s, max_bytes)
        await asyncio.to_thread(_finish, handle, part, dest)
        return size
    except BaseException:
        await asyncio.to_thread(_discard, handle, part)
        raise


def _open_write(path: pathlib.Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _write(handle: BinaryIO, data: bytes, path: pathlib.Path) -> None:
    try:
        handle.write(data)
    except OSError as exc:
        raise _disk_error(exc, path) from None


def _finish(handle: BinaryIO, part: pathlib.Path, dest: pathlib.Path) -> None:
    try:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
    except OSError as exc:
        raise _disk_error(exc, part) from None
    os.replace(part, dest)


def _discard(handle: BinaryIO, part: pathlib.Path) -> None:
    try:
        handle.close()
    except OSError:
        pass  # a full disk may refuse the last flush too: the file goes anyway
    part.unlink(missing_ok=True)


async def _http_get(url: str, handle: BinaryIO, part: pathlib.Path, timeout_s: float,
                    max_bytes: int | None) -> int:
    import aiohttp  # only when a transfer runs: it costs the daemon's start a quarter second

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
    received = 0
    try:
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session, \
                session.get(url) as response:
            if response.status != 200:
                raise TransferError(f"the server answered HTTP {response.status} "
                                    f"{response.reason or ''}".strip())
            expected = response.content_length
            if max_bytes is not None and expected is not None and expected > max_bytes:
                raise _too_big(max_bytes)
            async for chunk in response.content.iter_chunked(CHUNK):
                if max_bytes is not None and received + len(chunk) > max_bytes:
                    raise _too_big(max_bytes)
                await asyncio.to_thread(_write, handle, chunk, part)
                received += len(chunk)
            if expected is not None and received != expected:
                raise TransferError(f"the connection ended after {received} of {expected} bytes")
    except aiohttp.ClientPayloadError:
        raise TransferError(f"the connection ended after {received} bytes, before the end") from None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TransferError(hide(f"{type(exc).__name__}: {exc}".rstrip(": "), url)) from None
    return received


def _ftp_login(url: str, timeout_s: float) -> tuple[ftplib.FTP, str]:
    import ftplib  # only when an FTP transfer runs (see the module's doc)

    parts = urlsplit(url)
    ftp = ftplib.FTP(timeout=timeout_s)
    try:
        ftp.connect(parts.hostname or "", parts.port or 21)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or "anonymous@"))
    except BaseException:
        ftp.close()
        raise
    return ftp, unquote(parts.path) or "/"


def _ftp_get(url: str, handle: BinaryIO, part: pathlib.Path, timeout_s: float,
             max_bytes: int | None = None) -> int:
    import ftplib  # only when an FTP transfer runs (see the module's doc)

    received = 0
    expected: int | None = None

    def write(data: bytes) -> None:
        nonlocal received
        if max_bytes is not None and received + len(data) > max_bytes:
            raise _too_big(max_bytes)  # out of retrbinary: the data connection is closed
        _write(handle, data, part)
        received += len(data)

    try:
        ftp, path = _ftp_login(url, timeout_s)
        try:
            ftp.voidcmd("TYPE I")
            try:
                expected = ftp.size(path)
            except ftplib.error_perm:
                expected = None  # the server does not say: the transfer's own end decides
            if max_bytes is not None and expected is not None and expected > max_bytes:
                raise _too_big(max_bytes)
            ftp.retrbinary(f"RETR {path}", write, blocksize=CHUNK)
        finally:
            ftp.close()
    except TransferError:
        raise
    except (ftplib.Error, OSError, EOFError, ValueError) as exc:
        raise TransferError(hide(f"FTP: {exc}".strip(), url) + f" (after {received} bytes)") from None
    if expected is not None and received != expected:
        raise TransferError(f"the connection ended after {received} of {expected} bytes")
    return received


async def upload(url: str, file: pathlib.Path, *, method: str = "PUT", timeout_s: float = 60.0) -> None:
    """Put ``file`` into the directory ``url`` names (HTTP PUT/POST or FTP STOR); raises TransferError."""
    problem = check_url(url)
    if problem is not None:
        raise TransferError(problem, final=True)
    if urlsplit(url).scheme == "ftp":
        await asyncio.to_thread(_ftp_put, url, file, timeout_s)
    else:
        await _http_put(url, file, method, timeout_s)


def _target(url: str, name: str) -> str:
    parts = urlsplit(url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path + name, parts.query, ""))


async def _http_put(url: str, file: pathlib.Path, method: str, timeout_s: float) -> None:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
    handle = await asyncio.to_thread(file.open, "rb")
    try:
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            body: Any
            if method == "POST":
                body = aiohttp.FormData()
                body.add_field("file", _chunks(handle), filename=file.name,
                               content_type="application/octet-stream")
                target = url
            else:
                body, target = _chunks(handle), _target(url, file.name)
            headers = {"Content-Length": str(file.stat().st_size)} if method != "POST" else None
            async with session.request(method, target, data=body, headers=headers) as response:
                if response.status not in (200, 201, 204):
                    raise TransferError(f"the server answered HTTP {response.status} "
                                        f"{response.reason or ''}".strip())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TransferError(hide(f"{type(exc).__name__}: {exc}".rstrip(": "), url)) from None
    finally:
        await asyncio.to_thread(handle.close)


async def _chunks(handle: BinaryIO) -> Any:
    while True:
        data = await asyncio.to_thread(handle.read, CHUNK)
        if not data:
            return
        yield data


def _ftp_put(url: str, file: pathlib.Path, timeout_s: float) -> None:
    import ftplib  # only when an FTP transfer runs (see the module's doc)

    try:
        ftp, directory = _ftp_login(url, timeout_s)
        try:
            if directory not in ("", "/"):
                ftp.cwd(directory)
            with file.open("rb") as handle:
                ftp.storbinary(f"STOR {file.name}", handle, blocksize=CHUNK)
        finally:
            ftp.close()
    except (ftplib.Error, OSError, EOFError, ValueError) as exc:
        raise TransferError(hide(f"FTP: {exc}".strip(), url)) from None

"""The dashboard's password: a salted scrypt hash in the state directory, readable by the daemon only.

``chargepoint web passwd`` writes it; the daemon reads it when it starts (to
refuse listening beyond loopback without one), looks at the file's ``stamp``
before each request it guards and reads it again when that changed, so a new
password takes effect at once, without a restart. Only the hash is stored; scrypt
makes guessing costly even for someone who copies the file, and logins are
rate-limited besides (``auth.LoginThrottle``).

File format, one line: ``scrypt$N$r$p$SALT$HASH`` with SALT and HASH in
base64. The parameters travel with the hash so they can be raised later
without invalidating stored passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

#: File name in ``station.state_dir``.
PASSWORD_FILE = "web-password"
FILE_MODE = 0o600
#: scrypt cost: 16 MiB and about 50 ms on a desktop core, a few hundred on a Raspberry Pi.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
KEY_BYTES = 32
MIN_LENGTH = 8


class PasswordError(Exception):
    """A password file that cannot be read or used; says which file and why."""


def password_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / PASSWORD_FILE


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=128 * r * (n + p + 2))


def hash_password(password: str, *, cost: int = SCRYPT_N) -> str:
    """The stored form of ``password``: fresh random salt, current parameters.

    ``cost`` (scrypt's N, a power of two) is lowered only by tests that check many guesses.
    """
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, cost, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${cost}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a malformed ``stored`` matches nothing."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def stamp(state_dir: str | Path) -> tuple[int, ...] | None:
    """What changes whenever the password file is written or removed: its inode, size and times.

    ``write_hash`` replaces the file, so a new password always has a new inode.
    None when no file exists. Blocking (a stat): call it in a thread.
    """
    try:
        st = password_path(state_dir).stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return (-1, exc.errno or 0)  # unreadable: read_hash says why
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_hash(state_dir: str | Path) -> str | None:
    """The stored hash, or None when no password is set (blocking: call it in a thread)."""
    path = password_path(state_dir)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PasswordError(f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.startswith("scrypt$") or text.count("$") != 5:
        raise PasswordError(f"{path}: not a password hash written by `chargepoint web passwd`")
    return text


def write_hash(state_dir: str | Path, stored: str) -> Path:
    """Write the hash atomically with mode 0600, owned like the state directory.

    Run as root (a technician with sudo), the file is handed to the owner of
    the state directory, the service user, which must read it.
    """
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = password_path(directory)
    temporary = directory / f".{PASSWORD_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(stored + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, FILE_MODE)  # O_CREAT's mode is masked by the umask; this one is not
        if os.geteuid() == 0:
            owner = directory.stat()
            os.chown(temporary, owner.st_uid, owner.st_gid)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path

"""Running the CLI as a user the control socket shuts out."""

from __future__ import annotations

import json
import os
import pwd
import select
from typing import Any

from click.testing import CliRunner

from chargepoint.cli import main


def cli_as_a_stranger(args: list[str], socket_path: str) -> dict[str, Any]:
    """``chargepoint ARGS`` by a user the socket's mode shuts out: exit code, stdout, stderr.

    As root (which passes every permission check) the CLI runs in a forked child that
    dropped to the user nobody; otherwise the socket's mode is 0 for the call.
    """
    if os.geteuid() != 0:
        mode = os.stat(socket_path).st_mode & 0o777
        os.chmod(socket_path, 0)
        try:
            result = CliRunner().invoke(main, args, env={"CHARGEPOINT_SOCKET": None})
        finally:
            os.chmod(socket_path, mode)
        return {"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
    return cli_as_nobody(args)


def cli_as_nobody(args: list[str]) -> dict[str, Any]:
    """``chargepoint ARGS`` in a forked child that dropped to the user nobody (as root only)."""
    assert os.geteuid() == 0, "only root can become nobody"
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = CliRunner().invoke(main, args, env={"CHARGEPOINT_SOCKET": None})
            os.write(write_end, json.dumps({"code": result.exit_code, "stdout": result.stdout,
                                            "stderr": result.stderr}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    try:
        while select.select([read_end], [], [], 20)[0]:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))

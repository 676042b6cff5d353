"""``chargepoint certs`` and ``chargepoint logs --security``: the station's certificates and security log.

For the technician at the station: which root certificates are installed and
when they run out, the station's own certificate (security profile 3) and the
days it has left, a signing request made by hand (the key is made by the
daemon, in its state directory, and never leaves it), the manufacturer roots
the owner pins (no CSMS can change those; once one is pinned, only pinned
roots verify firmware), and the persistent security log.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from chargepoint.cli.control_target import Target, daemon_command


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _certs_view(result: dict[str, Any]) -> str:
    lines = []
    station = result["station"]
    if station is None:
        lines.append("Station certificate: none (security profile 3 needs one: chargepoint certs --csr).")
    else:
        state = "in use" if station["in_use"] else "NOT usable: it does not belong to the station's key"
        lines.append(f"Station certificate: {station['subject']}, issued by {station['issuer']}")
        lines.append(f"  expires {_when(station['expires'])} ({station['days_left']:.0f} days left; "
                     f"renewal starts {result['renewal_days']} days ahead), {state}")
    if not result["roots"]:
        lines.append("Root certificates: none installed.")
    for root in result["roots"]:
        lines.append(f"{root['kind']:<18} {root['subject']}  expires {_when(root['expires'])} "
                     f"({root['days_left']:.0f} days left)  serial {root['serial_number']}")
    pinned = result.get("pinned") or []
    if pinned:
        lines.append("Pinned manufacturer roots (only these verify firmware; "
                     "a manufacturer_root the CSMS installed does not):")
    for root in pinned:
        lines.append(f"  {root['subject']}  expires {_when(root['expires'])} "
                     f"({root['days_left']:.0f} days left)  SHA-256 {root['fingerprint']}")
    return "\n".join(lines)


@click.group(invoke_without_command=True)
@click.option("--csr", is_flag=True,
              help="Make a certificate signing request on the station instead (CN its identity, "
                   "O organization_name; the daemon makes a new key for it).")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="With --csr: write it to this file.")
@daemon_command
@click.pass_context
def certs(ctx: click.Context, target: Target, csr: bool, out: str | None) -> None:
    """Installed root certificates and the station's own, with their expiry; or a signing request.

    A certificate signed for the request is taken when the CSMS sends it
    (CertificateSigned), and presented from the next connection on.
    pin-manufacturer / unpin-manufacturer: the owner's firmware signing roots."""
    if ctx.invoked_subcommand is not None:
        if csr or out is not None:
            raise click.UsageError("--csr and --out are not for a subcommand")
        return
    if out is not None and not csr:
        raise click.UsageError("--out needs --csr")
    if not csr:
        target.show(target.call("certs"), _certs_view)
        return
    result = target.call("certs_csr")
    if out is not None:
        Path(out).write_text(result["csr"], encoding="ascii")

    def text(r: dict[str, Any]) -> str:
        head = f"Signing request for CN={r['identity']}, O={r['organization'] or '(organization_name unset)'}"
        return f"{head}: written to {out}" if out else f"{head}:\n{r['csr'].rstrip()}"

    target.show(result, text)


@certs.command("pin-manufacturer")
@click.argument("pem_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE")
@daemon_command
def certs_pin(target: Target, pem_file: Path) -> None:
    """Pin a manufacturer root certificate (PEM FILE) for firmware signatures.

    Once a root is pinned, a signed firmware's certificate must lead to a pinned
    root: a ManufacturerRootCertificate the CSMS installs no longer signs firmware.
    No CSMS can remove a pinned root."""
    pem = pem_file.read_text(encoding="ascii", errors="replace")
    target.show(target.call("certs_pin", pem=pem), lambda r: f"Pinned: {r['pinned']}")


@certs.command("unpin-manufacturer")
@click.argument("fingerprint")
@daemon_command
def certs_unpin(target: Target, fingerprint: str) -> None:
    """Remove a pinned manufacturer root, named by its SHA-256 FINGERPRINT (8 hex digits or more,
    as `chargepoint certs` lists it). With none left pinned, the CSMS-installed roots count again."""
    target.show(target.call("certs_unpin", fingerprint=fingerprint), lambda r: f"Unpinned: {r['unpinned']}")


def security_log_view(result: dict[str, Any]) -> str:
    lines = []
    for e in result["entries"]:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
        flags = ("critical " if e["critical"] else "") + ("" if e["sent"] else "(not yet sent) ")
        lines.append(f"{stamp}  {e['kind']} {flags}{e['info']}".rstrip())
    return "\n".join(lines) if lines else "The security log is empty."


def show_security_log(target: Target, limit: int, clear: bool) -> None:
    """What ``logs --security`` prints (``--clear`` empties the log first)."""
    target.show(target.call("security_log", limit=limit, clear=clear), security_log_view)

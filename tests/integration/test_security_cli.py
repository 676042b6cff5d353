"""``chargepoint certs``, ``logs --security`` and the selftest's certificate check on a running station."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.x509.oid import NameOID

from chargepoint.cli import main
from tests.integration.conftest import running, station_config
from tests.integration.test_v16_profile3 import IDENTITY, SecurityCsms, provision
from tests.integration.test_v16_security import KEY, basic
from tests.pki import Ca, server_context


async def cli(*args: str) -> Result:
    """The command in a worker thread: it talks to the daemon on this event loop."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


async def test_the_technician_sees_certificates_makes_a_csr_and_reads_and_clears_the_security_log(tmp_path):
    authority = Ca.root("CSMS CA", days=365)
    context = server_context(*authority.server(tmp_path / "server"))
    socket = str(tmp_path / "control.sock")
    async with SecurityCsms(authorization=basic(KEY), ssl_context=context) as csms:
        cfg = station_config(csms.url, str(tmp_path / "state"), control={"socket": socket},
                             ocpp={"security_profile": 2, "authorization_key": KEY,
                                   "ca_bundle": authority.write(tmp_path / "ca.pem")})
        async with running(cfg):
            await csms.wait_for("StatusNotification")
            empty = await cli("certs", "--socket", socket)
            assert empty.exit_code == 0, empty.output
            assert "Station certificate: none" in empty.output and "none installed" in empty.output
            await provision(csms, authority, days=20)
            listed: dict[str, Any] = json.loads((await cli("certs", "--json", "--socket", socket)).stdout)
            assert listed["station"]["subject"] == f"O=Example CPO,CN={IDENTITY}"
            assert 19 <= listed["station"]["days_left"] <= 20 and listed["station"]["in_use"]
            assert [r["kind"] for r in listed["roots"]] == ["csms_root"]
            text = (await cli("certs", "--socket", socket)).output
            assert "renewal starts 30 days ahead" in text and "CN=CSMS CA" in text

            manufacturer = Ca.root("Owner's manufacturer root", days=365)
            pinned = await cli("certs", "pin-manufacturer", manufacturer.write(tmp_path / "mfr.pem"),
                               "--socket", socket)
            assert pinned.exit_code == 0 and "Pinned: CN=Owner's manufacturer root" in pinned.output
            text = (await cli("certs", "--socket", socket)).output
            assert "Pinned manufacturer roots (only these verify firmware" in text
            [root] = json.loads((await cli("certs", "--json", "--socket", socket)).stdout)["pinned"]
            refused = await cli("certs", "unpin-manufacturer", "abc", "--socket", socket)
            assert refused.exit_code != 0 and "at least 8 hex digits" in refused.output
            unpinned = await cli("certs", "unpin-manufacturer", root["fingerprint"][:10], "--socket", socket)
            assert unpinned.exit_code == 0, unpinned.output
            assert json.loads((await cli("certs", "--json", "--socket", socket)).stdout)["pinned"] == []

            out = tmp_path / "station.csr"
            made = await cli("certs", "--csr", "--out", str(out), "--socket", socket)
            assert made.exit_code == 0, made.output
            csr = x509.load_pem_x509_csr(out.read_bytes())
            assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == IDENTITY
            assert "PRIVATE" not in out.read_text()

            checks = json.loads((await cli("selftest", "--json", "--socket", socket)).stdout)["checks"]
            [certificates] = [c for c in checks if c["name"] == "certificates"]
            assert certificates["status"] == "warn" and "renewal due" in certificates["detail"]

            log = await cli("logs", "--security", "--socket", socket)
            assert "startup_of_the_device critical" in log.output
            assert "reconfiguration_of_security_parameters" in log.output
            cleared = await cli("logs", "--security", "--clear", "--json", "--socket", socket)
            [entry] = json.loads(cleared.stdout)["entries"]
            assert entry["kind"] == "security_log_was_cleared"
            await csms.wait_for("SecurityEventNotification", type="SecurityLogWasCleared")
    assert (await cli("logs", "--clear", "--socket", socket)).exit_code != 0
    assert Path(out).exists()

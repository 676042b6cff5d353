"""The daemon says at start which settings the CSMS or the CLI set over the file."""

from __future__ import annotations

import asyncio
import signal

from chargepoint.core.storage.store import Store
from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.test_daemon_process import run_daemon


async def test_the_start_log_names_each_override_and_the_file_value(tmp_path, csms: LoopbackCsms):
    store = await Store.open(tmp_path / "state")
    await store.call(store.save_setting, "sample_interval_s", "20")
    await store.call(store.save_setting, "MeterValueSampleInterval", "25")  # an earlier release's row
    await store.close()
    process = await run_daemon(tmp_path, csms, "CP-OVR-1")
    try:
        await csms.wait_for("StatusNotification", count=2, timeout=20)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr.decode()
    lines = [line for line in log.splitlines() if "win over" in line]
    assert len(lines) == 1, log
    assert (f"settings set by the CSMS or the CLI win over {tmp_path / 'station.toml'}: "
            "sample_interval_s = 20 (default of ocpp.meter_value_sample_interval_s: 60) "
            "(chargepoint config reset KEY drops one)") in lines[0]

"""The dashboard in a real browser against a real daemon (sim hal), and /metrics scraped from it.

One daemon subprocess with [web] on loopback and a password set by
`chargepoint web passwd`, the bench CSMS as a second subprocess, and Debian's
chromium driven by Selenium through /usr/bin/chromedriver (headless, a fresh
profile, no network services of its own). The simulated EV is plugged in
through the control socket; free vend starts the session. The home station's
page (modes, cards, phone width, accessibility) is ``test_web_home.py``.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.integration.browser_rig import PASSWORD, Station, chromium, cli, console_errors, daemon, text, wait
from tests.integration.control_rig import free_port, wait_until


def write_config(root: Path, csms_port: int, web_port: int, listen: str = "127.0.0.1") -> Path:
    config = root / "station.toml"
    config.write_text(f"""
[station]
identity = "CP-WEB-1"
state_dir = "{root / 'state'}"
free_vend = true

[ocpp]
csms_url = "ws://127.0.0.1:{csms_port}"
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[simulation]
speed = 20

[meter]
poll_interval_s = 0.5

[control]
socket = "{root / 'control.sock'}"

[web]
enabled = true
listen = "{listen}"
port = {web_port}
""")
    return config


@pytest.fixture(scope="module")
def station() -> Iterator[Station]:
    root = Path(tempfile.mkdtemp(prefix="cp-web-", dir="/tmp"))
    csms_port, web_port = free_port(), free_port()
    config = write_config(root, csms_port, web_port)
    done = cli("web", "passwd", "--config", str(config), "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((root / "state" / "web-password").stat().st_mode) == 0o600
    csms = subprocess.Popen([sys.executable, "-m", "chargepoint.cli", "csms", "--port", str(csms_port),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with daemon(root, config, web_port,
                    lambda s: s.control("status")["connection"]["boot"] == "accepted") as running:
            yield running
    finally:
        csms.kill()
        csms.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def test_dashboard_login_live_values_and_stop_in_a_real_browser(station: Station, browser: webdriver.Chrome):
    browser.get(station.url + "/")
    wait(browser, lambda d: d.find_element(By.ID, "login-form").is_displayed(), "the login form")
    assert browser.find_elements(By.ID, "connector-1") == []  # nothing shown before the login
    assert console_errors(browser) == []

    # A wrong password is refused, and the page still shows nothing.
    browser.find_element(By.ID, "password").send_keys("not-the-password")
    browser.find_element(By.ID, "login-button").click()
    wait(browser, lambda d: "wrong password" in text(d, "message"), "the refusal")
    assert browser.find_elements(By.ID, "connector-1") == []

    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait(browser, lambda d: text(d, "live") == "live", "the live feed")
    wait(browser, lambda d: d.find_elements(By.ID, "c1-status"), "connector 1")
    # A CSMS decides who may charge: no cards panel for the owner's cards, which are not used.
    assert not browser.find_element(By.ID, "cards-section").is_displayed()

    # The EV charges: the page follows by itself, no reload.
    station.control("sim", action="plug", connector=1)
    wait(browser, lambda d: "Charging" in text(d, "c1-status"), "Charging shown")
    wait(browser, lambda d: text(d, "c1-power") not in ("–", "0.00 kW"), "power shown")
    first = text(browser, "c1-meter-energy")
    wait(browser, lambda d: text(d, "c1-meter-energy") != first, "the energy growing")
    assert text(browser, "c1-iec") == "C"
    assert "Charging" in text(browser, "station-status")  # the header says the worst connector, as the CLI
    assert "A" in text(browser, "c1-currents") and "L3" in text(browser, "c1-currents")
    assert ": " in text(browser, "c1-limit")  # the binding claim is named
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#c1-chart polyline.power"), "the chart")
    assert "connected" in text(browser, "link")

    # The operator's limit through the page: the claim binds and the pilot offers it.
    browser.find_element(By.ID, "c1-limit-amps").send_keys("10")
    browser.find_element(By.ID, "c1-limit-set").click()
    wait(browser, lambda d: "Limit: 10 A" in text(d, "message"), "the limit confirmed")
    wait_until(lambda: station.connector()["limit"]["binding"] == "operator", 20, "the operator claim")
    wait(browser, lambda d: "your limit: 10.0 A" in text(d, "c1-limit"), "the binding claim shown")
    wait(browser, lambda d: d.find_elements(By.ID, "c1-limit-clear"), "the Clear limit button")
    browser.find_element(By.ID, "c1-limit-clear").click()
    wait_until(lambda: "operator" not in station.connector()["limit"]["claims"], 20, "the claim cleared")

    # Stop through the page: the station service ends the transaction.
    browser.find_element(By.ID, "c1-stop").click()
    wait(browser, lambda d: "Stopped" in text(d, "message"), "the stop confirmed")
    wait_until(lambda: station.connector()["session"] is None, 20, "the session to end")
    wait(browser, lambda d: d.find_elements(By.ID, "c1-start"), "the Start button back")
    wait(browser, lambda d: "stopped here" in d.find_element(By.ID, "sessions").text, "the stopped session")

    # The one error the console may show is the refused login's 401 (Chromium logs every 4xx).
    severe = console_errors(browser, lambda m: "/api/login" in m and "401" in m)
    assert severe == [], severe


def test_metrics_from_the_running_daemon_parse(station: Station):
    with urllib.request.urlopen(station.url + "/metrics", timeout=10) as response:
        body = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    energy = families["chargepoint_energy_import_wh"].samples
    assert energy and energy[0].value > 0  # the browser test charged
    messages = {(s.labels["direction"], s.labels["action"], s.labels["result"]): s.value
                for s in families["chargepoint_ocpp_messages"].samples if s.name.endswith("_total")}
    assert messages[("sent", "BootNotification", "ok")] == 1
    # The bench CSMS speaks 2.0.1 first: the start is a TransactionEvent (StartTransaction in 1.6).
    starts = ("TransactionEvent", "StartTransaction")
    assert sum(messages.get(("sent", action, "ok"), 0) for action in starts) >= 1
    ticks = {s.name: s.value for s in families["chargepoint_safety_tick_seconds"].samples}
    assert ticks["chargepoint_safety_tick_seconds_count"] > 100
    status = [s.labels["status"] for s in families["chargepoint_connector_status"].samples]
    assert len(status) == 1


def test_actions_over_http_need_a_login(station: Station):
    request = urllib.request.Request(station.url + "/api/action/stop", data=b'{"connector": 1}',
                                     method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_daemon_refuses_a_public_address_without_a_password(tmp_path):
    config = write_config(tmp_path, free_port(), free_port(), listen="0.0.0.0")
    result = cli("run", "--config", str(config))
    assert result.returncode == 1
    assert f"{config}: web.listen: listening on 0.0.0.0" in result.stderr
    assert "chargepoint web passwd" in result.stderr
    assert not (tmp_path / "state" / "chargepoint.sqlite").exists()  # refused before anything ran

"""The dashboard of a home station in a real browser, on a phone (390 px) and a desktop (1280 px).

One daemon subprocess: standalone (no CSMS), the simulated house behind a grid
meter, a dashboard password. For each width a fresh Debian chromium: the
logged-out page is a hint, not empty headings; logged in it shows the energy
flow, switches the charging mode, refuses an empty limit field and clears a
limit, refuses a half-filled departure plan, sets one and clears it, adds a
card by name that then starts a session, draws the session with a clock axis
and one lane per phase, labels it once it ended, and removes the card; nothing
scrolls sideways, the console stays clean and axe-core finds no WCAG 2.1 A/AA
violation, in the light theme and the dark one; chromium finds it installable.
Every wait is on the page or the station's status.

Set CHARGEPOINT_SCREENSHOTS=docs to renew docs/dashboard.png (desktop) and
docs/dashboard-phone.png.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By

from tests.integration.browser_rig import (
    DESKTOP,
    PASSWORD,
    PHONE,
    Station,
    axe_violations,
    chromium,
    cli,
    click,
    console_errors,
    daemon,
    login,
    overflow,
    text,
    wait,
)
from tests.integration.control_rig import free_port, wait_until

TAG = "04A1B2C3D4"


def write_config(root: Path, web_port: int) -> Path:
    config = root / "station.toml"
    config.write_text(f"""
[station]
identity = "WALLBOX"
state_dir = "{root / 'state'}"

[simulation]
speed = 20

[meter]
poll_interval_s = 0.5

[control]
socket = "{root / 'control.sock'}"

[web]
enabled = true
port = {web_port}

[load]
enabled = true
main_fuse_a = 25

[load.meter]
kind = "sim"
poll_interval_s = 0.5

[house]
pv_peak_w = 9000
cloudiness = 0
day_start_h = 11

[home]
price_per_kwh = 0.30
currency = "EUR"
""")
    return config


@pytest.fixture(scope="module")
def station() -> Iterator[Station]:
    root = Path(tempfile.mkdtemp(prefix="cp-home-", dir="/tmp"))  # short: a socket path
    web_port = free_port()
    config = write_config(root, web_port)
    done = cli("web", "passwd", "--config", str(config), "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    try:
        with daemon(root, config, web_port,
                    lambda s: (s.control("status")["energy"] or {}).get("grid_meter", {}).get("state") == "ok"
                    ) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pressed(driver, mode: str) -> bool:
    return driver.find_element(By.ID, f"mode-{mode}").get_attribute("aria-pressed") == "true"


@pytest.mark.parametrize("width", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_home_dashboard(station: Station, width: int):
    with chromium(width) as browser:
        browser.get(station.url + "/")
        # Logged out: a hint that says what to do, and no empty sections.
        wait(browser, lambda d: d.find_element(By.ID, "hint").is_displayed(), "the hint")
        assert "Log in" in text(browser, "hint")
        assert not browser.find_element(By.ID, "main").is_displayed()
        assert [h.text for h in browser.find_elements(By.CSS_SELECTOR, "h2") if h.is_displayed()] == []
        assert axe_violations(browser) == []
        # Chromium's own check that the page installs on a home screen (manifest, icons, start URL).
        wait(browser, lambda d: d.execute_cdp_cmd("Page.getInstallabilityErrors", {})
             == {"installabilityErrors": []}, "an installable page")
        assert browser.execute_cdp_cmd("Page.getAppManifest", {})["errors"] == []

        login(browser)
        assert not browser.find_element(By.ID, "hint").is_displayed()
        wait(browser, lambda d: d.find_elements(By.ID, "c1-status"), "connector 1")
        # The energy flow from the grid meter: the grid, the car and the surplus in kW.
        wait(browser, lambda d: "kW" in text(d, "flow-grid-w"), "the grid's power")
        assert "kW" in text(browser, "flow-car-w") and "kW" in text(browser, "flow-surplus-w")

        # Mode buttons: the one pressed is the station's mode, and a click changes it.
        for mode, word in (("pv", "PV"), ("fast", "Fast")):
            click(browser, f"mode-{mode}")
            wait(browser, lambda d, m=mode: pressed(d, m), f"{mode} pressed")
            wait_until(lambda m=mode: station.control("mode")["mode"] == m, 20, f"the station in {mode}")
            wait(browser, lambda d, w=word: f"Charging mode: {w}" in text(d, "events"), "the event in words")
        said = text(browser, "events")
        assert "chargepoint" not in said and "uid" not in said and "{" not in said, said

        # A limit: an empty field is refused on the page (nothing is sent); a number is set; "No limit"
        # clears it.
        logged = len(station.log.read_text())
        field = browser.find_element(By.ID, "c1-limit-amps")
        field.clear()
        click(browser, "c1-limit-set")
        wait(browser, lambda d: "Type a current" in text(d, "message"), "the refusal")
        assert "operator" not in station.connector()["limit"]["claims"]
        assert "web: limit" not in station.log.read_text()[logged:]  # the page sent nothing
        browser.find_element(By.ID, "c1-limit-amps").send_keys("10")
        click(browser, "c1-limit-set")
        wait_until(lambda: station.connector()["limit"]["claims"].get("operator") == 10.0, 20, "the limit")
        wait(browser, lambda d: "your limit: 10.0 A" in text(d, "c1-limit"), "which claim binds, in words")
        click(browser, "c1-limit-clear")
        wait_until(lambda: "operator" not in station.connector()["limit"]["claims"], 20, "the limit cleared")
        wait(browser, lambda d: not d.find_elements(By.ID, "c1-limit-clear"), "No limit gone with the limit")

        # A departure plan: both fields are needed; set, shown in words, cleared.
        click(browser, "c1-plan-set")
        wait(browser, lambda d: "A plan needs the energy" in text(d, "message"), "the refusal")
        assert station.control("plan", connector=1)["plan"] is None
        browser.find_element(By.ID, "c1-plan-kwh").send_keys("12")
        # A time field types differently per locale: its value is set as the picker would set it.
        browser.execute_script("arguments[0].value = '07:30'", browser.find_element(By.ID, "c1-plan-by"))
        click(browser, "c1-plan-set")
        plan = wait_until(lambda: station.control("plan", connector=1)["plan"], 20, "the plan")
        assert plan["energy_wh"] == 12000.0
        wait(browser, lambda d: "12.0 kWh by 07:30" in text(d, "c1-plan"), "the plan in words")
        click(browser, "c1-plan-clear")
        wait_until(lambda: (station.control("plan", connector=1)["plan"] or {}).get("state") not in
                   ("solar", "grid"), 20, "the plan cleared")
        wait(browser, lambda d: not d.find_elements(By.ID, "c1-plan-clear"), "Clear plan gone with the plan")

        # A card by its name; it starts a session and names it.
        browser.find_element(By.ID, "card-name").send_keys("Anna's car")
        browser.find_element(By.ID, "card-tag").send_keys(TAG)
        # A date field types differently per locale: its value is set as the picker would set it.
        expiry = browser.find_element(By.ID, "card-expiry")
        browser.execute_script("arguments[0].value = '2030-01-31'", expiry)
        click(browser, "card-add")
        wait(browser, lambda d: d.find_elements(By.ID, f"card-{TAG}"), "the card listed")
        listed = text(browser, f"card-{TAG}")
        assert "Anna's car" in listed and "valid through" in listed and "2030" in listed
        (card,) = station.control("cards")["cards"]
        # Valid through the day given: it expires when that day ends, local time.
        assert card["name"] == "Anna's car" and datetime.fromtimestamp(card["expiry"]) == datetime(2030, 2, 1)
        wait(browser, lambda d: "Anna's car" in text(d, "c1-tag"), "the card offered for a start")
        # The same tag again is somebody's card: the page asks, and "no" changes nothing.
        logged = len(station.log.read_text())
        browser.find_element(By.ID, "card-name").send_keys("Dup")
        browser.find_element(By.ID, "card-tag").send_keys(TAG)
        click(browser, "card-add")
        question = wait(browser, lambda d: d.switch_to.alert, "the question")
        assert "already listed as “Anna's car”" in question.text
        question.dismiss()
        wait(browser, lambda d: "left as “Anna's car”" in text(d, "message"), "the card left as it was")
        assert "web: cards_add" not in station.log.read_text()[logged:]  # nothing was sent
        assert [c["name"] for c in station.control("cards")["cards"]] == ["Anna's car"]
        for field in ("card-name", "card-tag"):
            browser.find_element(By.ID, field).clear()
        station.control("sim", action="plug", connector=1)
        station.control("sim", action="card", id_tag=TAG)
        wait(browser, lambda d: "Anna's car" in text(d, "c1-session"), "the session named after the card")
        wait(browser, lambda d: "Charging" in text(d, "c1-status"), "charging")
        # What it has charged, how much of it from the sun, and what it costs at the home tariff.
        wait(browser, lambda d: "% solar" in (t := text(d, "c1-session-energy")) and "€" in t,
             "the solar share and the cost")
        # The chart: a clock axis, and the three phases on three lanes (equal currents, apart all the same).
        # The chart is redrawn every second: it is read in the page in one step.
        chart = wait(browser, lambda d: d.execute_script("""
            const svg = document.getElementById('c1-chart');
            const lanes = ['L1', 'L2', 'L3'].map((p) => svg.querySelector(`polyline.${p}`));
            if (!svg.querySelector('polyline.power') || lanes.includes(null)) return null;
            return {lanes: lanes.map((l) => l.getAttribute('points')),
                    labels: [...svg.querySelectorAll('text')].map((t) => t.textContent)};"""), "the chart")
        assert len(set(chart["lanes"])) == 3, "the phases are drawn on top of each other"
        assert any(re.fullmatch(r"\d\d:\d\d", label) for label in chart["labels"]), chart["labels"]
        assert text(browser, "c1-chart-title") == "This session"
        if os.environ.get("CHARGEPOINT_SCREENSHOTS"):
            wait(browser, lambda d: "Anna's car" in d.find_element(By.ID, "sessions").text, "listed")
            browser.execute_script("document.getElementById('message').hidden = true; window.scrollTo(0, 0)")
            if width == DESKTOP:
                browser.set_window_size(DESKTOP, 1180)  # the whole connector, chart included
            name = "dashboard.png" if width == DESKTOP else "dashboard-phone.png"
            browser.save_screenshot(str(Path(os.environ["CHARGEPOINT_SCREENSHOTS"]) / name))
        assert overflow(browser) == []
        assert axe_violations(browser) == []
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        wait(browser, lambda d: d.execute_script(
            "return matchMedia('(prefers-color-scheme: dark)').matches"), "the dark theme")
        assert axe_violations(browser) == []  # the dark colours keep their contrast too

        station.control("sim", action="unplug", connector=1)
        wait(browser, lambda d: text(d, "c1-chart-title").startswith("Last session, ended"), "the label")
        wait(browser, lambda d: "car unplugged" in d.find_element(By.ID, "sessions").text, "the end listed")
        assert overflow(browser) == []

        click(browser, f"card-remove-{TAG}")
        wait(browser, lambda d: not d.find_elements(By.ID, f"card-{TAG}"), "the card removed")
        assert station.control("cards")["cards"] == []
        assert console_errors(browser) == []


def test_metrics_of_the_house(station: Station):
    with urllib.request.urlopen(station.url + "/metrics", timeout=10) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    mode = station.control("mode")["mode"]
    assert [(s.labels["mode"], s.value) for s in families["chargepoint_solar_mode"].samples] == [(mode, 1)]
    for name in ("grid", "surplus", "house_net", "station"):
        assert len(families[f"chargepoint_{name}_power_w"].samples) == 1, name
    assert "chargepoint_pv_power_w" not in families  # no PV reading: no PV figure, rather than 0 W
    assert families["chargepoint_grid_meter_ok"].samples[0].value == 1

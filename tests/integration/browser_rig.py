"""What the dashboard's browser tests share: a daemon subprocess with [web], Debian's chromium at a given
width, waits on the page's state, the accessibility check and the overflow check.

The daemon is the real one (``chargepoint run``, sim hal); chromium is driven by
Selenium through /usr/bin/chromedriver (headless, a fresh profile each, no
network services of its own). A phone is the page at 390 CSS pixels by the
DevTools device metrics (mobile viewport, touch), a desktop a 1280 px window.
Nothing here sleeps to let the page catch up: every wait is on the DOM or the
station's own status, polled until true or a deadline.

The accessibility check runs axe-core (tests/peer, ``npm ci``) in the page:
the script is evaluated through DevTools, which the page's Content-Security-
Policy does not restrict, and nothing of it is served by the station.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.control_rig import wait_until

PASSWORD = "station-password-1"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")
AXE = Path(__file__).resolve().parents[1] / "peer" / "node_modules" / "axe-core" / "axe.min.js"
#: The widths the page is tried at: a phone (CSS px of an iPhone 12-15) and a desktop.
PHONE, DESKTOP = 390, 1280


@dataclass
class Station:
    root: Path
    url: str
    socket: str
    config: Path
    log: Path

    def control(self, command: str, **args: object) -> dict:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(self.socket)
            s.sendall(json.dumps({"v": 1, "id": 1, "cmd": command, "args": args}).encode() + b"\n")
            response = json.loads(s.makefile("rb").readline())
        assert response["ok"], response
        return response["result"]

    def connector(self) -> dict:
        return self.control("status")["connectors"][0]


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chargepoint.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


@contextmanager
def daemon(root: Path, config: Path, web_port: int, ready: Callable[[Station], Any]) -> Iterator[Station]:
    """``chargepoint run`` on ``config`` until the block ends; it must then stop cleanly."""
    log = root / "daemon.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config)],
                                   stderr=stderr)
    station = Station(root, f"http://127.0.0.1:{web_port}", str(root / "control.sock"), config, log)
    try:
        wait_until(lambda: process.poll() is not None or "web dashboard on" in log.read_text(), 30,
                   "the web dashboard")
        assert process.poll() is None, log.read_text()
        wait_until(lambda: ready(station), 30, "the station ready")
        yield station
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()[-3000:]


@contextmanager
def chromium(width: int = DESKTOP) -> Iterator[webdriver.Chrome]:
    """A fresh headless chromium showing pages ``width`` CSS pixels wide (a phone below 600)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={max(width, 800)},1000")
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='cp-chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        if width < 600:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": 844, "deviceScaleFactor": 2, "mobile": True})
            driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
        else:
            driver.set_window_size(width, 1000)
        yield driver
    finally:
        driver.quit()


def text(driver: webdriver.Chrome, element_id: str) -> str:
    """An element's text, also inside a closed <details> (where Selenium's .text is empty).

    Read in the page in one step: parts of the page are rebuilt every second, and an element found
    first and read after could be gone in between.
    """
    found = driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;", element_id)
    if found is None:
        raise NoSuchElementException(f"#{element_id}")
    return str(found).strip()


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], what: str,
         timeout: float = 20) -> Any:
    # A card is rebuilt when its shape changes (a session, a limit set): an element read while that
    # happens is stale, which only means "look again".
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
                         ).until(lambda d: condition(d), what)


def click(driver: webdriver.Chrome, element_id: str) -> None:
    """Click by id once the element is there and enabled; looked up afresh until the click lands (a
    connector's card is rebuilt when its shape changes, and an element found just before is gone)."""
    def clicked(d: webdriver.Chrome) -> bool:
        element = d.find_element(By.ID, element_id)
        if not element.is_enabled():
            return False
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()
        return True
    wait(driver, clicked, f"a click on #{element_id}")


def login(driver: webdriver.Chrome, password: str = PASSWORD) -> None:
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    wait(driver, lambda d: text(d, "live") == "live", "the live feed")


def overflow(driver: webdriver.Chrome) -> list[str]:
    """Elements wider than the viewport (the page must not scroll sideways), as tag#id."""
    return driver.execute_script("""
        const root = document.documentElement, width = root.clientWidth, out = [];
        if (root.scrollWidth > width) out.push(`page ${root.scrollWidth}px`);
        for (const e of document.querySelectorAll('body *')) {
          const r = e.getBoundingClientRect();
          if (r.width && r.right > width + 0.5 && !e.closest('.scroll')) {
            out.push(`${e.tagName}#${e.id} ${r.right}px`);
          }
        }
        return out;""")


def console_errors(driver: webdriver.Chrome, allowed: Callable[[str], bool] = lambda m: False) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and not allowed(e["message"])]


def axe_violations(driver: webdriver.Chrome) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now, one line each."""
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
          .then((r) => done(r.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ` +
                                              v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', '))))
          .catch((e) => done([`axe failed: ${e}`]));""")
    return list(result)

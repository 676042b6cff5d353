"""The dashboard's home-station parts: events in plain words, the strict limit and mode actions, the cards
route behind the login, the web app manifest and its icons.

The HTTP parts run a real aiohttp server (aiohttp's test server on loopback) in
front of a real station service (the sim daemon, not started), as
``test_web_access.py`` does; the browser's side is ``tests/integration/test_web_browser.py``.
"""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from chargepoint.web import icons, words
from chargepoint.web.access import CSRF_HEADER
from chargepoint.web.server import ASSETS, load_assets
from tests.unit.test_web_access import client, clock, login  # noqa: F401 - fixtures

LOG = [
    ("INFO", 'control: mode by uid 0 (pid 5446) {"mode":"pv"}', None),
    ("INFO", "solar mode pv", "Charging mode: PV"),
    ("INFO", "web: limit by 127.0.0.1 {\"amps\":10,\"connector\":1}", None),
    ("INFO", "connector 1: operator limit 10 A", "Connector 1: limit set to 10 A"),
    ("INFO", "connector 1: operator limit cleared", "Connector 1: limit removed"),
    ("INFO", "connector 1: EV plugged in", "Connector 1: car plugged in"),
    ("INFO", "connector 1: transaction 66174c873cd1 started at 0 Wh",
     "Connector 1: charging session started"),
    ("INFO", "connector 1: transaction 66174c873cd1 stopped (ev_disconnected), 8970 Wh delivered",
     "Connector 1: session ended (car unplugged), 8.97 kWh charged"),
    ("INFO", "card 04A1B2C3D4 (Anna's car) accepted from the local card list", "Card “Anna's car” accepted"),
    ("INFO", "connector 1: idle", None),
    ("INFO", "control socket /run/chargepoint/control.sock ready (at most 32 clients)", None),
    ("WARNING", "grid meter: no good reading for 10 s (timeout): the station shares the fallback 6 A",
     "Grid meter: no good reading for 10 s (timeout): the station shares the fallback 6 A"),
    # A warning a rule would leave out is shown all the same, in the log's words.
    ("WARNING", "control: stop by uid 0 (pid 7) {}", "Control: stop by uid 0 (pid 7) {}"),
]


@pytest.mark.parametrize(("level", "line", "said"), LOG)
def test_log_lines_in_plain_words(level, line, said):
    assert words.plain(level, line) == said


def test_events_leave_out_the_technicians_lines_and_keep_the_newest():
    entries = [{"time": float(n), "level": level, "source": "chargepoint.x", "text": line}
               for n, (level, line, _) in enumerate(LOG)]
    shown = words.events(entries, 3)
    assert [e["text"] for e in shown] == [
        "Card “Anna's car” accepted",
        "Grid meter: no good reading for 10 s (timeout): the station shares the fallback 6 A",
        "Control: stop by uid 0 (pid 7) {}"]
    assert all("source" not in e and "chargepoint." not in e["text"] for e in shown)


async def action(client, csrf: str, name: str, body: dict) -> tuple[int, dict]:  # noqa: F811
    response = await client.post(f"/api/action/{name}", data=json.dumps(body),
                                 headers={CSRF_HEADER: csrf, "Content-Type": "application/json"})
    return response.status, await response.json()


async def test_a_limit_must_be_said_an_empty_field_is_never_a_limit(client):  # noqa: F811
    csrf = await login(client)
    limits = client.web.service.operator_limits
    for body in ({"connector": 1}, {"connector": 1, "amps": ""}, {"connector": 1, "amps": "10"},
                 {"connector": 1, "amps": True}):
        status, answer = await action(client, csrf, "limit", body)
        assert status == 400, body
        assert answer["error"]["code"] == "bad_request"
        assert limits.get(1) is None  # nothing was set, nothing was cleared
    assert (await action(client, csrf, "limit", {"connector": 1, "amps": 10}))[0] == 200
    assert limits.get(1) == 10.0
    status, _ = await action(client, csrf, "limit", {"connector": 1})
    assert status == 400 and limits.get(1) == 10.0  # a body without amps does not clear it either
    assert (await action(client, csrf, "limit", {"connector": 1, "amps": None}))[0] == 200
    assert limits.get(1) is None


async def test_the_mode_action_needs_a_mode_and_a_grid_meter(client):  # noqa: F811
    csrf = await login(client)
    status, answer = await action(client, csrf, "mode", {})
    assert status == 400 and "say the mode" in answer["error"]["message"]
    status, answer = await action(client, csrf, "mode", {"mode": "pv"})
    assert status == 409 and "grid meter" in answer["error"]["message"]


async def test_cards_need_a_login(client):  # noqa: F811
    assert (await client.get("/api/cards")).status == 401
    csrf = await login(client)
    status, _ = await action(client, csrf, "cards_add", {"id_tag": "04A1", "name": "Anna"})
    # This station has a CSMS: the CSMS decides who may charge, and the owner's cards are not edited.
    assert status == 409


async def test_the_manifest_and_icons_are_served_by_the_station(client):  # noqa: F811
    manifest = await client.get("/static/manifest.webmanifest")
    assert manifest.status == 200 and manifest.content_type == "application/manifest+json"
    data = json.loads(await manifest.text())
    assert data["start_url"] == "/" and data["display"] == "standalone"
    sizes = {icon["sizes"]: icon["src"] for icon in data["icons"]}
    for size in icons.SIZES:
        response = await client.get(sizes[f"{size}x{size}"])
        assert response.status == 200 and response.headers["Content-Type"] == "image/png"
        body = await response.read()
        assert body[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", body[16:24]) == (size, size)
    for src in sizes.values():  # every file the manifest names is one the station serves
        assert src.removeprefix("/static/") in ASSETS


def test_the_committed_icons_are_what_the_generator_draws():
    assets = load_assets()
    assert assets["icon-192.png"] == icons.png(192)
    body = assets["icon-512.png"]
    raw = zlib.decompress(body[body.index(b"IDAT") + 4:body.index(b"IEND") - 8])
    assert len(raw) == 512 * (1 + 512 * 4)


async def test_a_plan_needs_its_energy_and_departure(client):  # noqa: F811
    csrf = await login(client)
    for body in ({"connector": 1}, {"connector": 1, "energy_kwh": 12}, {"connector": 1, "deadline": 1e9},
                 {"connector": 1, "energy_kwh": "", "deadline": 1e9}):
        status, answer = await action(client, csrf, "plan", body)
        assert status == 400 and "a plan needs" in answer["error"]["message"], body
    # Said in full, it reaches the station, which has no grid meter here.
    status, answer = await action(client, csrf, "plan", {"connector": 1, "energy_kwh": 12, "deadline": 2e9})
    assert status == 409 and "grid meter" in answer["error"]["message"]

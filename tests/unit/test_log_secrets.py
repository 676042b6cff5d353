"""Secrets are masked in every line, at every level: Basic credentials and password settings.

The texts below are what the libraries really write (websockets' request
headers at DEBUG, the ocpp library's frames and reprs, tracebacks), and the
Recorder that feeds ``chargepoint logs`` masks the same way.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from chargepoint.app.logfilter import Mask, Scrub, install
from chargepoint.app.recorder import Recorder
from chargepoint.protocol.common.peer import shown
from tests.loglines import Lines

KEY = "00ff10e2c3a4b5c6d7e8f90a1b2c3d4e5f607182"
NAMES = ("AuthorizationKey", "authorization_key")
BASIC = "Basic " + base64.b64encode(b"CP-1:" + bytes.fromhex(KEY)).decode()


def leaks(text: str) -> bool:
    return KEY in text.lower() or BASIC.split()[1] in text or KEY[-14:] in text.lower()


@pytest.mark.parametrize("text", [
    f"> Authorization: {BASIC}",
    f"[('Authorization', '{BASIC}')]",
    f"headers={{'authorization': '{BASIC}'}}",
    f'CP-1: receive message [2,"c-1","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{KEY}"}}]',
    f'[2, "c-1", "ChangeConfiguration", {{"value": "{KEY}", "key": "AuthorizationKey"}}]',
    f"<Call - unique_id=c-1, action=ChangeConfiguration, payload={{'key': 'AuthorizationKey', "
    f"'value': '{KEY}'}}>",
    f"ChangeConfiguration(key='AuthorizationKey', value='{KEY}')",
    f'{{"authorization_key": "{KEY}", "heartbeat_interval_s": 300}}',
    f"authorization_key={KEY}, security_profile=1",
    f'{{"key":"AuthorizationKey","value":"{KEY[:30]}',  # cut short by a cap
    f'[{{"key":"AuthorizationKey","readonly":false,"value":"{KEY}"}},{{"key":"X","value":"1"}}]',
])
def test_masked(text):
    masked = Mask(NAMES)(text)
    assert not leaks(masked), masked
    assert "(redacted)" in masked


@pytest.mark.parametrize("text", [
    '{"key":"HeartbeatInterval","value":"300"}',
    "Authorization header missing",
    "connected to ws://csms.example/ocpp/CP-1 (ocpp1.6)",
])
def test_left_alone(text):
    assert Mask(NAMES)(text) == text


def test_a_websocket_data_frame_line_keeps_no_data():
    """websockets shows a frame's start and end: the end of a ChangeConfiguration holds the
    key's last digits, with the name cut away."""
    line = (f"< TEXT '[2,\"csms-3\",\"ChangeConfiguration\",{{\"key\":\"Author...{KEY[-14:]}\"}}]' "
            "[106 bytes]")
    record = logging.LogRecord("websockets.client", logging.DEBUG, __file__, 1, "%s", (line,), None)
    assert Scrub(NAMES).filter(record)
    assert record.getMessage() == "< TEXT (data not shown) [106 bytes]"


def test_a_traceback_is_masked_too():
    try:
        raise ValueError(f"bad frame {{'key': 'AuthorizationKey', 'value': '{KEY}'}}")
    except ValueError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), (type(exc), exc, None))
    Scrub(NAMES).filter(record)
    text = logging.Formatter().format(record)
    assert "ValueError" in text and not leaks(text)


@pytest.fixture
def websockets_debug() -> Iterator[tuple[logging.Logger, Lines]]:
    """A websockets logger at DEBUG, into a handler with the filters installed."""
    logger = logging.getLogger("websockets.client")
    handler = Lines()
    install(handler, NAMES)
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)
    logger.setLevel(saved)


def test_what_websockets_logs_of_the_handshake_and_of_frames_is_masked(websockets_debug):
    """The library's own lines, made without a socket (websockets is sans-I/O underneath)."""
    logger, out = websockets_debug
    client = ClientProtocol(parse_uri("ws://csms.example/ocpp/CP-1"), logger=logger)
    request = client.connect()
    request.headers["Authorization"] = BASIC
    client.send_request(request)
    frame = f'[2,"csms-3","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{KEY}"}}]'
    logger.debug("< %s", Frame(Opcode.TEXT, frame.encode()))  # as websockets logs a frame received

    text = "\n".join(out.lines)
    assert "> Authorization: Basic (redacted)" in text, text
    assert "< TEXT (data not shown) [" in text, text
    assert not leaks(text), text
    assert KEY[-14:] in str(Frame(Opcode.TEXT, frame.encode())), "unmasked, the frame's end shows"


def test_the_recorder_masks_frames_and_events(caplog):
    recorder = Recorder(secret_names=("AuthorizationKey",))
    recorder.frame("in", f'[2,"c-1","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{KEY}"}}]')
    recorder.attach()
    try:
        logging.getLogger("chargepoint.test").warning("header %s", f"Authorization: {BASIC}")
        logging.getLogger("chargepoint.test").warning("settings %s", {"authorization_key": KEY})
    finally:
        recorder.detach()
    texts = [str(e["text"]) for e in recorder.entries]
    assert len(texts) == 3
    assert not any(leaks(t) for t in texts), texts
    assert all("(redacted)" in t for t in texts)


def test_a_long_frame_naming_a_secret_is_left_out_rather_than_cut():
    """The ocpp layer cuts long frames before the filter sees them: a cut could keep the value
    and lose the name after it, so such a frame is not shown at all."""
    broken = f'[2,"c-1","ChangeConfiguration",{{"value":"{KEY}",' + " " * 300 + '"key":"AuthorizationKey"'
    left_out = shown(broken, 200, ("AuthorizationKey",))
    assert left_out == f"({len(broken)} characters naming a secret setting, not shown)"
    other = broken.replace("AuthorizationKey", "HeartbeatInterval")
    assert shown(other, 200, ("AuthorizationKey",)).startswith(other[:200] + "... (")
    assert shown(broken[:150], 200, ("AuthorizationKey",)) == broken[:150], "short: whole, for the filter"

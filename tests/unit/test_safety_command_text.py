"""``chargepoint safety`` in words: what a technician reads when the daemon does not answer."""

from __future__ import annotations

import datetime

from chargepoint.cli.safety_command import as_text


def hello(**connector: object) -> dict:
    return {"supervisor": {"pid": 42, "backend": "raspberrypi", "up_s": 12, "controller": False,
                           "orphan_left_s": None, "memory_locked": True, "heartbeat": True},
            "connectors": [{"connector": 1, "operative": True, "claims": {"station": 32.0},
                            "status": {"cp": "B", "duty": 100.0, "offered_a": 0.0, "contactor": False,
                                       "allowed": False, "binding": "", "faults": []},
                            **connector}]}


def test_a_departure_while_no_daemon_was_attached_is_said_with_its_time():
    left_at = datetime.datetime(2026, 12, 7, 22, 31, 5).timestamp()
    text = as_text(hello(ev_left_at=left_at))
    assert "  EV left    2026-12-07 22:31:05, with no daemon attached: energy withdrawn" in text
    assert "daemon     NOT ATTACHED" in text and "Connector 1: IEC state B, contactor open" in text


def test_no_departure_no_line():
    assert "EV left" not in as_text(hello(ev_left_at=None))
    assert "EV left" not in as_text(hello())

"""Numbers in MQTT commands are ASCII digits: int() and float() also take other scripts' digits."""

from __future__ import annotations

from typing import Any

import pytest

from chargepoint.mqtt.commands import CommandHandler
from chargepoint.mqtt.topics import Topics

# ------------------------------------------------------------- numbers in commands

class _Service:
    """Records what a command would have done."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def evse_id(self, connector: int) -> int:
        self.calls.append(("evse_id", connector))
        return connector

    async def limit(self, evse_id: int, amps: float | None) -> dict[str, Any]:
        self.calls.append(("limit", amps))
        return {"limit_a": amps}


@pytest.mark.parametrize(("connector", "payload"), [
    ("\u0661", b"10"),          # ARABIC-INDIC DIGIT ONE as the connector
    ("\u00b9", b"10"),          # SUPERSCRIPT ONE: str.isdigit() says yes, int() says no
    ("\uff11", b"10"),          # FULLWIDTH DIGIT ONE
    ("1", "\u0661\u0666".encode()),  # sixteen in Arabic-Indic digits
    ("1", "\u0967\u0966".encode()),  # ten in Devanagari digits
    ("1", b"1_6"), ("1", b"1e1"), ("1", b"nan"), ("1", b"inf"), ("1", b"-5"), ("1", b"0x10"),
])
async def test_numbers_in_commands_are_ascii_digits_only(connector, payload):
    service = _Service()
    handler = CommandHandler(service, Topics("chargepoint/CP-1"))  # type: ignore[arg-type]
    outcome = await handler.handle(f"chargepoint/CP-1/connector/{connector}/cmd/limit", payload, False)
    assert outcome.ok is False
    assert [c for c in service.calls if c[0] == "limit"] == []


@pytest.mark.parametrize(("payload", "amps"), [(b"10", 10.0), (b"10.5", 10.5), (b" 16 ", 16.0),
                                               (b"clear", None)])
async def test_ascii_numbers_in_commands_still_work(payload, amps):
    service = _Service()
    handler = CommandHandler(service, Topics("chargepoint/CP-1"))  # type: ignore[arg-type]
    outcome = await handler.handle("chargepoint/CP-1/connector/1/cmd/limit", payload, False)
    assert outcome.ok is True and service.calls == [("evse_id", 1), ("limit", amps)]

"""The 2.0.1 words of the display messages: MessageInfoType both ways, and the report's pages."""

from __future__ import annotations

from chargepoint.core.display_messages import DisplayMessage, Format, Priority, State
from chargepoint.protocol.v201.display import MESSAGES_PER_REPORT, message_info, message_of, reports


def test_a_message_info_comes_back_as_it_was_set() -> None:
    info = {"id": 4, "priority": "InFront", "state": "Charging",
            "start_date_time": "2026-12-07T10:00:00.000Z", "end_date_time": "2026-12-07T11:00:00.000Z",
            "transaction_id": "abc123", "display": {"name": "Display", "evse": {"id": 1}},
            "message": {"format": "ASCII", "language": "de", "content": "Hallo"}}
    m = message_of(info)
    assert (m.priority, m.state, m.format) == (Priority.IN_FRONT, State.CHARGING, Format.ASCII)
    assert m.language == "de" and m.transaction_id == "abc123"
    assert m.end is not None and m.start is not None and m.end - m.start == 3600
    assert message_info(m) == info


def test_the_report_is_paged_with_tbc_on_all_but_the_last() -> None:
    def messages(n: int) -> list[DisplayMessage]:
        return [DisplayMessage(i, Priority.NORMAL_CYCLE, f"m{i}") for i in range(n)]

    one = reports(7, messages(MESSAGES_PER_REPORT))
    assert [(r.request_id, r.tbc, len(r.message_info or [])) for r in one] == [(7, None, MESSAGES_PER_REPORT)]
    two = reports(8, messages(MESSAGES_PER_REPORT + 1))
    assert [(r.tbc, len(r.message_info or [])) for r in two] == [(True, MESSAGES_PER_REPORT), (None, 1)]
    assert reports(9, []) == []

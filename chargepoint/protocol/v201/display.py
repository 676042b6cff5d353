"""The 2.0.1 DisplayMessage block (O): SetDisplayMessage, GetDisplayMessages, ClearDisplayMessage,
NotifyDisplayMessages, and the DisplayMessageCtrlr variables' facts.

Translation only: the core keeps the messages, decides what is shown and
answers whether a message can be taken (``chargepoint/core/display_messages.py``);
here its answers get their 2.0.1 words. A GetDisplayMessages that matches
messages is answered Accepted and followed by NotifyDisplayMessages, in pages of
``MESSAGES_PER_REPORT`` (``tbc`` on every page but the last); one that matches
none is answered Unknown and nothing follows. The transactionId of a message is
the station's own transaction id (2.0.1 transaction ids are the station's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from chargepoint.core.display_messages import DisplayMessage, DisplayMessages, SetResult
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.common.timefmt import iso_utc, parse_iso
from chargepoint.protocol.v201.display_words import FORMATS, PRIORITIES, STATES, WORD

#: Most messages in one NotifyDisplayMessages.
MESSAGES_PER_REPORT = 5

_SET = {SetResult.ACCEPTED: "Accepted", SetResult.UNSUPPORTED_FORMAT: "NotSupportedMessageFormat",
        SetResult.UNSUPPORTED_PRIORITY: "NotSupportedPriority",
        SetResult.UNSUPPORTED_STATE: "NotSupportedState",
        SetResult.UNKNOWN_TRANSACTION: "UnknownTransaction", SetResult.REJECTED: "Rejected"}


def message_of(info: dict[str, Any]) -> DisplayMessage:
    """A MessageInfoType (the library's snake_case dict) as the core's message."""
    content = info["message"]
    try:
        start, end = (parse_iso(info[k]) if info.get(k) else None
                      for k in ("start_date_time", "end_date_time"))
    except ValueError:
        raise PropertyConstraintViolationError(
            description="startDateTime / endDateTime is not a date and time", details={}) from None
    state = info.get("state")
    return DisplayMessage(int(info["id"]), PRIORITIES[info["priority"]], str(content["content"]),
                          FORMATS[content["format"]], content.get("language"),
                          STATES[state] if state else None, start, end, info.get("transaction_id"),
                          info.get("display"))


def message_info(m: DisplayMessage) -> dict[str, Any]:
    """The core's message as a MessageInfoType (snake_case: the library writes camelCase)."""
    content: dict[str, Any] = {"format": WORD[m.format], "content": m.content}
    if m.language:
        content["language"] = m.language
    out: dict[str, Any] = {"id": m.id, "priority": WORD[m.priority], "message": content}
    for key, value in (("state", WORD[m.state] if m.state else None),
                       ("start_date_time", iso_utc(m.start) if m.start is not None else None),
                       ("end_date_time", iso_utc(m.end) if m.end is not None else None),
                       ("transaction_id", m.transaction_id), ("display", m.display)):
        if value is not None:
            out[key] = value
    return out


def reports(request_id: int, messages: list[DisplayMessage]) -> list[call.NotifyDisplayMessages]:
    """The NotifyDisplayMessages answering one GetDisplayMessages, in pages."""
    pages = [messages[i:i + MESSAGES_PER_REPORT] for i in range(0, len(messages), MESSAGES_PER_REPORT)]
    return [call.NotifyDisplayMessages(request_id=request_id, message_info=[message_info(m) for m in page],
                                       tbc=True if n < len(pages) - 1 else None)
            for n, page in enumerate(pages)]


class DisplayHandlers(Block[BlockContext]):
    """The DisplayMessage block (O), routed to the 2.0.1 peer by the adapter."""


    def _display_messages(self) -> DisplayMessages | None:
        return self.context.services.display_messages

    @on(Action.set_display_message, skip_schema_validation=True)
    async def on_set_display_message(self, message: dict[str, Any], **_: Any) -> Any:
        # Awaited in the CALL's own task (see RobustPeer): the answer goes once the message is stored.
        engine = self._display_messages()
        if engine is None:
            return call_result.SetDisplayMessage(status="Rejected")
        result = await engine.set(message_of(message))
        return call_result.SetDisplayMessage(status=_SET[result])

    def _matching(self, id: list[int] | None, priority: str | None,
                  state: str | None) -> list[DisplayMessage]:
        engine = self._display_messages()
        if engine is None:
            return []
        return engine.query(id, PRIORITIES[priority] if priority else None, STATES[state] if state else None)

    @on(Action.get_display_messages, skip_schema_validation=True)
    def on_get_display_messages(self, request_id: int, id: list[int] | None = None,
                                priority: str | None = None, state: str | None = None, **_: Any) -> Any:
        found = self._matching(id, priority, state)
        return call_result.GetDisplayMessages(status="Accepted" if found else "Unknown")

    @after(Action.get_display_messages)
    def after_get_display_messages(self, request_id: int, id: list[int] | None = None,
                                   priority: str | None = None, state: str | None = None, **_: Any) -> None:
        queue: Callable[[Any], None] = self.context.queue
        for page in reports(request_id, self._matching(id, priority, state)):
            queue(page)

    @on(Action.clear_display_message, skip_schema_validation=True)
    async def on_clear_display_message(self, id: int, **_: Any) -> Any:
        engine = self._display_messages()
        cleared = engine is not None and await engine.clear(id)
        return call_result.ClearDisplayMessage(status="Accepted" if cleared else "Unknown")

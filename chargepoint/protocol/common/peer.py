"""The ``ocpp`` library's charge point, made robust; every version's adapter builds on it.

What the library does not do, or does wrongly for a station in the field, is
corrected here once for every OCPP version:

- frames that are not OCPP at all are logged and dropped without closing the
  connection, a malformed CALL gets a FormationViolation answer;
- a CALLRESULT nobody waits for, or one for another message id, is dropped;
- the wait for an answer uses ``asyncio.timeout`` (``wait_for`` swallows a
  cancellation that arrives in the same loop step as the answer on Python 3.11,
  and a connection being torn down then hangs for ever);
- CALLs from the CSMS are handled in order in a task of their own, so the frame
  reader goes on reading answers to the station's own CALLs while a handler
  works (an unlock that first stops a transaction takes seconds);
- ``call_built`` sends a CALL whose payload this station built itself, without
  the library's deep copy, renaming and schema validation, which cost more than
  the round trip on a backlog of meter values.

The version's adapter supplies the handlers and the error mapping; this module
knows no version's actions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import fields
from typing import Any

from ocpp.charge_point import ChargePoint as LibChargePoint
from ocpp.exceptions import FormationViolationError
from ocpp.messages import Call, MessageType

log = logging.getLogger(__name__)

#: Longest OCPP message id (the specifications' limit).
MESSAGE_ID_MAX = 36


class RobustPeer(LibChargePoint):
    """A library charge point (of any version's subclass) with the corrections above.

    Use as the first base: ``class Peer(RobustPeer, ocpp.v16.ChargePoint)``.
    """

    #: The version's ``call_result`` module (for ``call_built``); set by the subclass.
    call_results: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._calls_in_order = asyncio.Lock()
        self._handling: set[asyncio.Task[None]] = set()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Frames that are not OCPP are dropped (with an answer where possible)."""
        try:
            frame = json.loads(raw_msg)
        except (ValueError, TypeError):
            log.warning("dropped a frame that is not JSON: %.200r", raw_msg)
            return
        if not isinstance(frame, list) or not frame or frame[0] not in (2, 3, 4):
            log.warning("dropped a frame that is not an OCPP message: %.200r", raw_msg)
            return
        if len(frame) < 2 or not isinstance(frame[1], str) or len(frame[1]) > MESSAGE_ID_MAX:
            log.warning("dropped an OCPP frame without a usable message id: %.200r", raw_msg)
            return
        well_formed = (
            (frame[0] == 2 and len(frame) == 4 and isinstance(frame[2], str) and isinstance(frame[3], dict))
            or (frame[0] == 3 and len(frame) == 3)
            or (frame[0] == 4 and len(frame) == 5)
        )
        if not well_formed:
            log.warning("malformed OCPP frame: %.200r", raw_msg)
            if frame[0] == 2:
                error = FormationViolationError(
                    description="a CALL is [2, uniqueId, action, {payload}]", details={})
                await self._send(Call(frame[1], "", {}).create_call_error(error).to_json())
            return
        if frame[0] == 3 and not self._call_lock.locked():
            log.warning("ignored a CALLRESULT nobody waits for (id %s)", frame[1])
            return
        if frame[0] == 2:
            task = asyncio.ensure_future(self._handle_in_order(raw_msg))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)
            return
        await super().route_message(raw_msg)

    async def _handle_in_order(self, raw_msg: str | bytes) -> None:
        """One CSMS CALL at a time, in the order they arrived (the CSMS should send one anyway)."""
        async with self._calls_in_order:
            try:
                await super().route_message(raw_msg)
            except Exception:
                log.exception("handling a CALL from the CSMS failed")

    async def stop_handling(self) -> None:
        """Cancel CALLs still being handled (the connection is closing)."""
        for task in list(self._handling):
            task.cancel()
        await asyncio.gather(*self._handling, return_exceptions=True)

    async def call_built(self, request: Any) -> Any:
        """A CALL whose nested parts are already in wire form (camelCase dicts).

        Does what the library's ``call`` does (one outstanding CALL under its
        lock, wait for the matching answer, CALLERROR raised) without its deep
        copy and recursive renaming of the payload and without schema
        validation. Only top-level field names are converted.
        """
        payload = {camel(name): value for name, value in vars(request).items() if value is not None}
        message = Call(str(self._unique_id_generator()), type(request).__name__, payload)
        async with self._call_lock:
            await self._send(message.to_json())
            response = await self._get_specific_response(message.unique_id, self._response_timeout)
        if response.message_type_id == MessageType.CallError:
            raise response.to_exception()
        result_type = getattr(self.call_results, message.action)
        known = {f.name for f in fields(result_type)}
        return result_type(**{snake(name): value for name, value in response.payload.items()
                              if snake(name) in known})

    async def _get_specific_response(self, unique_id: str, timeout: float) -> Any:
        """The answer to CALL ``unique_id``; answers to other ids are logged and dropped."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    response = await self._response_queue.get()
                    if response.unique_id == unique_id:
                        return response
                    log.warning("ignored an answer to an unknown CALL id %s", response.unique_id)
        except TimeoutError:
            raise TimeoutError(f"no answer within {timeout:g} s") from None


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


async def first_of(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of ``futures`` finishes; re-raise its exception."""
    done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    for future in done:
        future.result()

"""The ``ocpp`` library's charge point, made robust; every version's adapter builds on it.

What the library does not do, or does wrongly for a station in the field, is
corrected here once for every OCPP version:

- frames that are not OCPP at all are logged and dropped without closing the
  connection, a malformed CALL gets a FormationViolation answer;
- a frame nested deeper than ``MAX_NESTING`` arrays and objects is refused
  before it is parsed (JSON nested thousands deep overflows the parser's
  recursion, and the library's unpacking, schema validation and renaming all
  recurse too): a CALL whose id can be read gets a FormationViolation, any
  other such frame is dropped with one warning;
- a frame longer than ``FRAME_MAX`` is not parsed: a CALL whose id can be read
  from its beginning is answered GenericError naming the limit (the CSMS gets
  an answer instead of a lost connection and resends), anything else is
  dropped with one warning; the connection reads frames up to 8 MiB and
  closes on a longer one;
- a CALLRESULT nobody waits for, or one for another message id, is dropped;
- the wait for an answer uses ``asyncio.timeout`` (``wait_for`` swallows a
  cancellation that arrives in the same loop step as the answer on Python 3.11,
  and a connection being torn down then hangs for ever);
- CALLs from the CSMS are handled in order in a task of their own, so the frame
  reader goes on reading answers to the station's own CALLs while a handler
  works (an unlock that first stops a transaction takes seconds); they wait in
  a bounded queue, and one that finds it full is answered busy at once
  (``intake.CallIntake``); the reader lets the event loop turn every
  ``FRAMES_PER_TURN`` frames, so a burst of frames cannot hold the loop;
- ``call_built`` sends a CALL whose payload this station built itself, without
  the library's deep copy, renaming and schema validation, which cost more than
  the round trip on a backlog of meter values; given a ``WireCall`` it sends
  the payload text as it is (a transaction message resent byte for byte);
- the library's logging (``LibraryLog``) is made fit for a log read on site:
  it wrote every CALLERROR it answered as an ERROR with a traceback and the
  whole CALL (a 900 kB frame wrote 2.7 MB), and every frame at INFO. Here an
  answered CALLERROR is one WARNING line naming the CALL, the code and the
  description (capped); the library's own lines are debug detail, frames in
  them capped; a handler that fails unexpectedly (a bug) keeps its traceback.

The version's adapter supplies the handlers and the error mapping; this module
knows no version's actions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from ocpp.charge_point import ChargePoint as LibChargePoint
from ocpp.exceptions import FormationViolationError, GenericError, InternalError, OCPPError
from ocpp.messages import Call, MessageType
from ocpp.routing import create_route_map

from chargepoint.protocol.common.intake import CALL_QUEUE_MAX, FRAMES_PER_TURN, CallIntake

log = logging.getLogger(__name__)

#: Longest OCPP message id (the specifications' limit).
MESSAGE_ID_MAX = 36
#: Deepest nesting of arrays and objects a frame may have. The deepest OCPP 1.6 or
#: 2.0.1 message nests about ten levels (a CALL's array, its payload, a charging
#: profile, its schedule, the periods ...); Python's parser gives up near a thousand.
MAX_NESTING = 64

#: A JSON string (skipped whole, brackets in it do not count), an opening or a closing bracket.
_NESTING_TOKENS = r'(?P<string>"[^"\\]*(?:\\.[^"\\]*)*")|(?P<open>[\[{])|(?P<close>[\]}])'
_NESTING = {str: re.compile(_NESTING_TOKENS), bytes: re.compile(_NESTING_TOKENS.encode())}
#: Longest frame handled (characters): 1 MiB, as 2.0.1's BytesPerMessage tells the CSMS.
FRAME_MAX = 1 << 20
#: Longest frame the library's debug lines show, and a warning about a bad frame (characters).
FRAME_LOG_MAX = 1000
FRAME_WARNING_MAX = 200
#: Longest error description in the station's line and in a CALLERROR it sends.
DESCRIPTION_MAX = 200

#: The start of a CALL: its message type and the id, as a JSON string literal.
_CALL_HEAD = re.compile(r'\s*\[\s*2\s*,\s*("(?:[^"\\]|\\.){0,' + str(6 * MESSAGE_ID_MAX) + r'}")\s*,')


@dataclass(frozen=True)
class WireCall:
    """A CALL in wire form: the action and the payload as JSON text, sent unchanged."""

    action: str
    payload: str


def wire_call(request: Any) -> WireCall:
    """``request`` (a library dataclass whose nested parts are already in wire form) as the text
    ``call_built`` sends: top-level names in camelCase, None left out, compact as the library's
    ``Call`` encodes it (a Decimal as a float)."""
    if isinstance(request, WireCall):
        return request
    payload = {camel(name): value for name, value in vars(request).items() if value is not None}
    return WireCall(type(request).__name__, json.dumps(payload, separators=(",", ":"), default=_number))


def _number(value: object) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class RobustPeer(LibChargePoint):
    """A library charge point (of any version's subclass) with the corrections above.

    Use as the first base: ``class Peer(RobustPeer, ocpp.v16.ChargePoint)``.
    """

    #: The version's ``call_result`` module (for ``call_built``); set by the subclass.
    call_results: Any = None
    #: Names of settings whose values are secret (a frame with one is not cut for the log).
    secret_names: tuple[str, ...] = ()
    #: CSMS CALLs that may wait while one is handled; more are answered busy.
    call_queue_max: int = CALL_QUEUE_MAX

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("logger", LibraryLog(self.secret_names))
        super().__init__(*args, **kwargs)
        self._intake = CallIntake(self._handle_call_frame, self._refuse_busy, self.call_queue_max)
        #: Told (with a reason) of every frame from the CSMS that is not valid OCPP: the security log's
        #: InvalidMessages event. Set by the adapter.
        self.on_invalid: Callable[[str], None] | None = None

    def add_block(self, block: object) -> None:
        """Route the CALLs ``block``'s ``@on``/``@after`` methods handle to it (see
        ``common/block.py``); a later block's route for an action replaces an earlier one's."""
        for action, route in create_route_map(block).items():
            self.route_map.setdefault(action, {}).update(route)

    def invalid(self, reason: str) -> None:
        """A frame from the CSMS was not valid OCPP (dropped or answered with a CALLERROR)."""
        if self.on_invalid is not None:
            self.on_invalid(brief(reason, 200))

    async def start(self) -> None:
        """Read frames until the connection closes, letting the loop turn every ``FRAMES_PER_TURN``.

        The library's reader takes the next frame as soon as one is routed, and
        ``recv`` does not suspend while frames are buffered: without a pause a
        burst of thousands of frames would be read in one loop turn.
        """
        read = 0
        while True:
            message = await self._connection.recv()
            self.logger.info("%s: receive message %s", self.id, message)
            await self.route_message(message)
            read += 1
            if read % FRAMES_PER_TURN == 0:
                await asyncio.sleep(0)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Frames that are not OCPP are dropped (with an answer where possible)."""
        if len(raw_msg) > FRAME_MAX:
            await self._refuse_too_long(raw_msg)
            return
        if nested_deeper(raw_msg, MAX_NESTING):
            unique_id = call_id(raw_msg)
            if unique_id is None:
                log.warning("dropped a frame nested deeper than %d levels: %r", MAX_NESTING,
                            self._frame(raw_msg))
                self.invalid(f"a frame nested deeper than {MAX_NESTING} levels")
                return
            log.warning("CALL %s nested deeper than %d levels: answered FormationViolation",
                        unique_id, MAX_NESTING)
            await self._refuse_malformed(unique_id, f"nested deeper than {MAX_NESTING} levels")
            self.invalid(f"CALL {unique_id} nested deeper than {MAX_NESTING} levels")
            return
        try:
            frame = json.loads(raw_msg)
        except (ValueError, TypeError):
            log.warning("dropped a frame that is not JSON: %r", self._frame(raw_msg))
            self.invalid("a frame that is not JSON")
            return
        if not isinstance(frame, list) or not frame or frame[0] not in (2, 3, 4):
            log.warning("dropped a frame that is not an OCPP message: %r", self._frame(raw_msg))
            self.invalid("a frame that is not an OCPP message")
            return
        if len(frame) < 2 or not isinstance(frame[1], str) or len(frame[1]) > MESSAGE_ID_MAX:
            log.warning("dropped an OCPP frame without a usable message id: %r", self._frame(raw_msg))
            self.invalid("an OCPP frame without a usable message id")
            return
        well_formed = (
            (frame[0] == 2 and len(frame) == 4 and isinstance(frame[2], str) and isinstance(frame[3], dict))
            or (frame[0] == 3 and len(frame) == 3)
            or (frame[0] == 4 and len(frame) == 5)
        )
        if not well_formed:
            log.warning("malformed OCPP frame: %r", self._frame(raw_msg))
            self.invalid("a malformed OCPP frame")
            if frame[0] == 2:
                await self._refuse_malformed(frame[1], "a CALL is [2, uniqueId, action, {payload}]")
            return
        if frame[0] == 3 and not self._call_lock.locked():
            log.warning("ignored a CALLRESULT nobody waits for (id %s)", frame[1])
            return
        if frame[0] == 2:
            await self._intake.offer(frame[1], raw_msg)
            return
        await super().route_message(raw_msg)

    def _frame(self, raw: str | bytes) -> str:
        """A frame for a warning: ``FRAME_WARNING_MAX`` characters (see ``shown``)."""
        return shown(raw, FRAME_WARNING_MAX, self.secret_names)

    async def _refuse_malformed(self, unique_id: str, description: str) -> None:
        error = FormationViolationError(description=description, details={})
        await self._send(Call(unique_id, "", {}).create_call_error(error).to_json())

    async def _refuse_too_long(self, raw_msg: str | bytes) -> None:
        """A frame over ``FRAME_MAX``: a CALL is answered GenericError (as a busy one is: neither
        OCPP-J version has a code for "too long", and the CALL is not malformed); else dropped."""
        what = f"a frame of {len(raw_msg)} characters (the station reads up to {FRAME_MAX})"
        self.invalid(what)
        unique_id = call_id(raw_msg)
        if unique_id is None:
            log.warning("dropped %s", what)
            return
        log.warning("CALL %s is %s: answered GenericError", unique_id, what)
        error = GenericError(description=f"frame of {len(raw_msg)} characters, longer than the "
                                         f"{FRAME_MAX} the station reads", details={})
        await self._send(Call(unique_id, "", {}).create_call_error(error).to_json())

    async def _handle_call_frame(self, raw_msg: str | bytes) -> None:
        """One CSMS CALL from the queue: the library routes it to its handler and answers.

        The library answers InternalError for a handler that fails; a failure before the
        handler (in this station's checks around it) gets the same answer here, so the
        CSMS is never left waiting for its timeout."""
        try:
            await super().route_message(raw_msg)
        except Exception as error:
            unique_id = call_id(raw_msg)
            log.error("CALL (id %s) failed before its handler; answered with an InternalError",
                      brief(unique_id or "?", 40), exc_info=error)
            if unique_id is not None:
                await self._send(Call(unique_id, "", {}).create_call_error(
                    InternalError(description="the station failed to process this request",
                                  details={})).to_json())

    async def _refuse_busy(self, unique_id: str, description: str) -> None:
        """Answer a CALL that found the queue full: GenericError, "busy: N requests waiting".

        Neither OCPP-J 1.6 nor 2.0.1 has a code for "busy". GenericError ("any
        other error not covered by the previous ones" in 1.6J, "... by the more
        specific error codes" in 2.0.1) is in both tables and claims nothing
        false. InternalError says the station failed while processing the
        action, and a CSMS may count that as a station fault; 2.0.1's
        RpcFrameworkError is for a frame that is not a valid RPC request, and
        this one is valid. The description says why, so the CSMS (or its
        operator) can send the CALL again later.
        """
        await self._send(Call(unique_id, "", {}).create_call_error(
            GenericError(description=description, details={})).to_json())

    async def stop_handling(self) -> None:
        """Drop waiting CALLs and cancel the one being handled (the connection is closing)."""
        await self._intake.close()

    async def call_built(self, request: Any, after_send: Callable[[], object] | None = None) -> Any:
        """A CALL whose nested parts are already in wire form (camelCase dicts).

        Does what the library's ``call`` does (one outstanding CALL under its
        lock, wait for the matching answer, CALLERROR raised) without its deep
        copy and recursive renaming of the payload and without schema
        validation. Only top-level field names are converted.

        ``after_send`` runs once the CALL is on the wire, before the answer is
        awaited: the sender prepares its next message in the round trip's time
        without a task of its own.
        """
        wire = wire_call(request)
        message = Call(str(self._unique_id_generator()), wire.action, None)
        frame = f"[2,{json.dumps(message.unique_id)},{json.dumps(wire.action)},{wire.payload}]"
        async with self._call_lock:
            await self._send(frame)
            if after_send is not None:
                after_send()
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


class LibraryLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """What the ``ocpp`` library logs, turned into one line per event (see the module doc).

    The library calls ``logger.exception`` inside the ``except`` that answers a
    CALL with a CALLERROR; an OCPPError there is an expected error. Its other
    lines (every frame sent and received at INFO, a CALLERROR received at
    WARNING, which the adapter reports in its own words) go to the ``ocpp``
    logger at DEBUG, each argument cut to ``FRAME_LOG_MAX`` characters (``shown``).
    """

    def __init__(self, secret_names: tuple[str, ...] = ()) -> None:
        super().__init__(logging.getLogger("ocpp"), {})
        self.secret_names = secret_names

    def log(self, level: int, msg: object, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        error = sys.exc_info()[1] if exc_info is True else exc_info
        call = next((a for a in args if isinstance(a, Call)), None)
        if isinstance(error, OCPPError):
            if call is None:  # the library could not unpack the frame; nothing was answered
                log.warning("frame not understood: %s %s", error.code, brief(error.description))
            else:
                log.warning("CALL %s (id %s) answered with %s: %s", brief(call.action, 60),
                            brief(call.unique_id, 40), error.code, brief(error.description))
        elif isinstance(error, BaseException):
            log.error("CALL %s (id %s) failed in its handler; answered with an InternalError",
                      brief(getattr(call, "action", "?"), 60), brief(getattr(call, "unique_id", "?"), 40),
                      exc_info=error)
        elif self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(msg, *(arg if isinstance(arg, int | float)
                                     else shown(arg, FRAME_LOG_MAX, self.secret_names) for arg in args))


def shown(item: object, limit: int, secret_names: tuple[str, ...] = ()) -> str:
    """``item`` as text for a log line: whole up to ``limit`` characters (the log filter
    masks secrets in it), else cut, unless it names a secret: then it is not shown at
    all, as a cut could keep a secret's value and lose the name the filter looks for."""
    text = item.decode("utf-8", "replace") if isinstance(item, bytes | bytearray) else str(item)
    if len(text) <= limit:
        return text
    if any(name in text for name in secret_names):
        return f"({len(text)} characters naming a secret setting, not shown)"
    return f"{text[:limit]}... ({len(text)} characters)"


def brief(text: object, limit: int = DESCRIPTION_MAX) -> str:
    """``text`` cut to ``limit`` characters, marked where cut."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def nested_deeper(raw: str | bytes, limit: int) -> bool:
    """Whether arrays and objects in ``raw`` nest deeper than ``limit``, outside strings.

    One pass over the brackets (a long string is one step), before anything
    parses the text; it stops at the first level too deep. A frame with fewer
    opening brackets than ``limit`` in all (nearly every frame) is not scanned.
    """
    opening = (b"[", b"{") if isinstance(raw, bytes | bytearray) else ("[", "{")
    if raw.count(opening[0]) + raw.count(opening[1]) <= limit:  # type: ignore[arg-type]
        return False
    pattern = _NESTING[bytes if isinstance(raw, bytes | bytearray) else str]
    depth = 0
    for token in pattern.finditer(raw):  # type: ignore[arg-type]
        if token.lastgroup == "open":
            depth += 1
            if depth > limit:
                return True
        elif token.lastgroup == "close":
            depth -= 1
    return False


def call_id(raw: str | bytes) -> str | None:
    """The message id of a frame that starts like a CALL, read without parsing the rest."""
    head = raw[:512]
    if isinstance(head, bytes | bytearray):
        head = bytes(head).decode("utf-8", "replace")
    match = _CALL_HEAD.match(head)
    if match is None:
        return None
    try:
        unique_id = json.loads(match.group(1))
    except ValueError:
        return None
    return unique_id if isinstance(unique_id, str) and len(unique_id) <= MESSAGE_ID_MAX else None


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

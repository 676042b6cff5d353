"""RFID/NFC card readers on a serial port (pyserial), each in its own thread.

* :class:`Rdm6300Reader`: 125 kHz EM4100 readers of the RDM6300 kind. They
  send, unasked and repeatedly while a card is in the field, 14-byte frames at
  9600 baud: STX (0x02), 10 ASCII hex digits (version byte + 4-byte card
  number), 2 ASCII hex digits of checksum (XOR of the 5 data bytes), ETX
  (0x03). The idTag is the 10 hex digits, upper case.
* :class:`Pn532Reader`: an NXP PN532 NFC reader in HSU (UART) mode at 115200
  baud. It is polled with InListPassiveTarget (ISO 14443-A, 106 kbps); the
  idTag is the card's UID in upper-case hex (8, 14 or 20 digits).

Both drop a frame with bad framing or a bad checksum and count it in
``bad_frames``; both report a card once per presentation (again only after it
was away for ``hold_off_s``); both survive the reader being unplugged: the
port is closed, reopened every ``reopen_s`` until it is back (a USB adapter's
``/dev/serial/by-id/...`` link reappears on replug), and reading resumes.

The callback is called from the reader's thread; the daemon hands it to the
event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

log = logging.getLogger(__name__)


class _Dedup:
    """Reports a card once per presentation: again only after ``hold_off_s`` without it."""

    def __init__(self, hold_off_s: float, clock: Callable[[], float]) -> None:
        self._hold_off_s = hold_off_s
        self._clock = clock
        self._uid: str | None = None
        self._seen_at = 0.0

    def fresh(self, uid: str) -> bool:
        now = self._clock()
        fresh = uid != self._uid or now - self._seen_at > self._hold_off_s
        self._uid, self._seen_at = uid, now
        return fresh


class SerialCardReader:
    """The thread, the port and the reopen logic; subclasses speak the protocol."""

    #: Name used in logs.
    kind = "reader"

    def __init__(
        self,
        port: str,
        baudrate: int,
        *,
        reopen_s: float = 1.0,
        hold_off_s: float = 1.0,
        read_timeout_s: float = 0.05,
        serial_factory: Callable[..., Any] = serial.Serial,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.reopen_s = reopen_s
        self.read_timeout_s = read_timeout_s
        self._serial_factory = serial_factory
        self._clock = clock
        self._dedup = _Dedup(hold_off_s, clock)
        self._callback: Callable[[str], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: Any = None
        self._lock = threading.Lock()
        self.bad_frames = 0
        """Frames dropped for bad framing or checksum."""
        self.cards = 0
        """Cards reported."""
        self.opens = 0
        """Times the port was opened (1 + reconnects)."""
        self.connected = threading.Event()
        """Set while the port is open (for status and tests)."""

    # -- CardReader ------------------------------------------------------------------------

    def start(self, callback: Callable[[str], None]) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.kind} already started")
        self._callback = callback
        self._thread = threading.Thread(target=self._run, name=f"rfid-{self.kind}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (it notices within one read timeout) and release the port.
        The port is closed by the reader's own thread, never under a running read."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
            if thread.is_alive():
                log.warning("%s on %s: reader thread did not stop", self.kind, self.port)
                return
        self._close_port()

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        announced = False
        while not self._stop.is_set():
            try:
                port = self._serial_factory(self.port, self.baudrate, timeout=self.read_timeout_s)
            except (serial.SerialException, OSError) as exc:
                if not announced:
                    log.warning("%s on %s not available (%s); retrying every %.1f s",
                                self.kind, self.port, exc, self.reopen_s)
                    announced = True
                self._stop.wait(self.reopen_s)
                continue
            with self._lock:
                self._serial = port
            self.opens += 1
            announced = False
            log.info("%s on %s opened", self.kind, self.port)
            self.connected.set()
            try:
                self._session(port)
            except (serial.SerialException, OSError) as exc:
                if not self._stop.is_set():
                    log.warning("%s on %s lost (%s); reopening", self.kind, self.port, exc)
            finally:
                self.connected.clear()
                self._close_port()
            self._stop.wait(self.reopen_s)

    def _close_port(self) -> None:
        with self._lock:
            port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def _session(self, port: Any) -> None:
        raise NotImplementedError

    def _card(self, uid: str) -> None:
        if not self._dedup.fresh(uid):
            return
        self.cards += 1
        log.info("%s: card %s", self.kind, uid)
        callback = self._callback
        if callback is not None:
            try:
                callback(uid)
            except Exception:
                log.exception("card callback failed")

    def _bad(self, why: str) -> None:
        self.bad_frames += 1
        log.debug("%s: dropped a bad frame (%s)", self.kind, why)


# --------------------------------------------------------------------------- RDM6300

STX, ETX = 0x02, 0x03
RDM6300_FRAME = 14


def rdm6300_frame(card_hex: str) -> bytes:
    """The frame an RDM6300 sends for a card (10 hex digits); for tests and tools."""
    data = bytes.fromhex(card_hex)
    if len(data) != 5:
        raise ValueError("an RDM6300 card number is 5 bytes (10 hex digits)")
    checksum = 0
    for byte in data:
        checksum ^= byte
    return bytes([STX]) + card_hex.upper().encode() + f"{checksum:02X}".encode() + bytes([ETX])


class Rdm6300Reader(SerialCardReader):
    """An RDM6300-style 125 kHz reader (9600 baud, framed ASCII hex with XOR checksum)."""

    kind = "rdm6300"

    def __init__(self, port: str, baudrate: int = 9600, **kwargs: Any) -> None:
        super().__init__(port, baudrate, **kwargs)
        self._buffer = bytearray()

    def _session(self, port: Any) -> None:
        self._buffer.clear()
        while not self._stop.is_set():
            chunk = port.read(port.in_waiting or 1)
            if chunk:
                self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        """Parse bytes as they arrive; whole good frames become cards."""
        buffer = self._buffer
        buffer.extend(chunk)
        while buffer:
            start = buffer.find(STX)
            if start < 0:
                self._bad("bytes without STX")
                buffer.clear()
                return
            if start > 0:
                self._bad("bytes before STX")
                del buffer[:start]
            if len(buffer) < RDM6300_FRAME:
                return
            frame = bytes(buffer[:RDM6300_FRAME])
            uid = self._decode(frame)
            if uid is None:
                # Resynchronise on the next STX after this one.
                del buffer[:1]
                continue
            del buffer[:RDM6300_FRAME]
            self._card(uid)

    def _decode(self, frame: bytes) -> str | None:
        if frame[-1] != ETX:
            self._bad("no ETX")
            return None
        text = frame[1:13]
        try:
            data = bytes.fromhex(text[:10].decode("ascii"))
            checksum = int(text[10:].decode("ascii"), 16)
        except (UnicodeDecodeError, ValueError):
            self._bad("not hex")
            return None
        expected = 0
        for byte in data:
            expected ^= byte
        if expected != checksum:
            self._bad("checksum")
            return None
        return text[:10].decode("ascii").upper()


# --------------------------------------------------------------------------- PN532

PN532_HOST_TO = 0xD4
PN532_TO_HOST = 0xD5
CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_LIST_PASSIVE_TARGET = 0x4A
ACK = bytes([0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00])
#: HSU wake-up: 0x55 0x55 then zeros long enough for the PN532 to wake.
WAKEUP = bytes([0x55, 0x55]) + bytes(14)


def pn532_frame(tfi: int, payload: bytes) -> bytes:
    """A normal information frame: preamble, start code, LEN, LCS, TFI+data, DCS, postamble."""
    body = bytes([tfi]) + payload
    length = len(body)
    if length > 254:
        raise ValueError("normal frames carry at most 254 bytes")
    dcs = (-sum(body)) & 0xFF
    return bytes([0x00, 0x00, 0xFF, length, (-length) & 0xFF]) + body + bytes([dcs, 0x00])


class Pn532Reader(SerialCardReader):
    """An NXP PN532 over UART (HSU), polled with InListPassiveTarget."""

    kind = "pn532"

    def __init__(self, port: str, baudrate: int = 115200, *, poll_interval_s: float = 0.2,
                 response_timeout_s: float = 0.5, **kwargs: Any) -> None:
        kwargs.setdefault("read_timeout_s", 0.02)
        super().__init__(port, baudrate, **kwargs)
        self.poll_interval_s = poll_interval_s
        self.response_timeout_s = response_timeout_s
        self._pending = bytearray()

    def _session(self, port: Any) -> None:
        self._pending.clear()
        port.write(WAKEUP)
        # Normal mode, no IRQ use; then make InListPassiveTarget give up after a
        # few tries when no card is there, instead of waiting forever.
        if self.command(port, CMD_SAM_CONFIGURATION, bytes([0x01, 0x14, 0x01])) is None:
            raise OSError("PN532 did not answer SAMConfiguration")
        self.command(port, CMD_RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, 0x02]))
        while not self._stop.is_set():
            answer = self.command(port, CMD_IN_LIST_PASSIVE_TARGET, bytes([0x01, 0x00]))
            if answer:
                uid = self._uid(answer)
                if uid:
                    self._card(uid)
            self._stop.wait(self.poll_interval_s)

    @staticmethod
    def _uid(answer: bytes) -> str | None:
        # NbTg, Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1...
        if len(answer) < 6 or answer[0] < 1:
            return None
        length = answer[5]
        uid = answer[6:6 + length]
        if length not in (4, 7, 10) or len(uid) != length:
            return None
        return uid.hex().upper()

    def command(self, port: Any, code: int, data: bytes) -> bytes | None:
        """Send a command and return the response's data (after TFI and code),
        or None when no valid answer came within ``response_timeout_s``."""
        port.reset_input_buffer()
        self._pending.clear()
        port.write(pn532_frame(PN532_HOST_TO, bytes([code]) + data))
        deadline = self._clock() + self.response_timeout_s
        acked = False
        while self._clock() < deadline and not self._stop.is_set():
            frame = self._next_frame(port, deadline)
            if frame is None:
                break
            if frame == b"ACK":
                acked = True
                continue
            if frame == b"NACK":
                self._bad("NACK")
                return None
            if len(frame) >= 2 and frame[0] == PN532_TO_HOST and frame[1] == code + 1:
                if not acked:
                    log.debug("pn532: answer without ACK")
                return frame[2:]
            if frame[:1] == b"\x7f":
                log.debug("pn532: application error frame")
                return None
            self._bad("unexpected frame")
        return None

    def _next_frame(self, port: Any, deadline: float) -> bytes | None:
        """The next frame's TFI+data (or b"ACK"/b"NACK"); None on timeout.
        Frames with a bad LCS/DCS are counted and skipped."""
        buf = self._pending
        while True:
            start = buf.find(b"\x00\xff")
            if start >= 0 and len(buf) >= start + 4:
                length, lcs = buf[start + 2], buf[start + 3]
                if length == 0x00 and lcs == 0xFF:
                    del buf[:start + 4]
                    return b"ACK"
                if length == 0xFF and lcs == 0x00:
                    del buf[:start + 4]
                    return b"NACK"
                if (length + lcs) & 0xFF != 0:
                    self._bad("length checksum")
                    del buf[:start + 2]
                    continue
                end = start + 4 + length + 1  # TFI+data, then DCS
                if len(buf) >= end:
                    body = bytes(buf[start + 4:start + 4 + length])
                    dcs = buf[start + 4 + length]
                    del buf[:end]
                    if (sum(body) + dcs) & 0xFF != 0:
                        self._bad("data checksum")
                        continue
                    return body
            if start < 0 and len(buf) > 1:
                del buf[:-1]  # no start code: keep only a last 0x00 that may begin one
            if self._clock() >= deadline or self._stop.is_set():
                return None
            chunk = port.read(port.in_waiting or 1)
            if chunk:
                buf.extend(chunk)

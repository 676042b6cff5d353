"""The RFID readers over a real serial pty pair made by socat, with frames written by the test.

The reader opens one end like a USB serial adapter; the test writes what an
RDM6300 would send, or plays a PN532 answering the reader's commands, on the
other end. Unplugging is socat going away (the pty vanishes), replugging is a
new socat making the same links, as udev recreates /dev/serial/by-id/... .
"""

from __future__ import annotations

import os
import queue
import re
import selectors
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial

from hal.rfid import (
    ACK,
    CMD_IN_LIST_PASSIVE_TARGET,
    CMD_RF_CONFIGURATION,
    CMD_SAM_CONFIGURATION,
    Pn532Reader,
    Rdm6300Reader,
    pn532_frame,
    rdm6300_frame,
)

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")

WAIT_S = 5.0


class PtyPair:
    """``socat -d -d pty,raw,echo=0 pty,raw,echo=0``: two connected ptys."""

    def __init__(self, links: tuple[Path, Path] | None = None) -> None:
        ends = ["pty,raw,echo=0", "pty,raw,echo=0"]
        if links:
            ends = [f"{end},link={link}" for end, link in zip(ends, links, strict=True)]
        self.proc = subprocess.Popen(["socat", "-d", "-d", *ends], stderr=subprocess.PIPE)
        self.paths = self._paths()

    def _paths(self) -> list[str]:
        """The two /dev/pts paths, parsed from socat's stderr (bounded wait)."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        text = ""
        deadline = time.monotonic() + WAIT_S
        try:
            while "starting data transfer loop" not in text and time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                text += chunk.decode(errors="replace")
        finally:
            selector.close()
        paths = re.findall(r"PTY is (\S+)", text)
        if "starting data transfer loop" not in text or len(paths) != 2:
            self.close()
            raise AssertionError(f"socat did not start its ptys: {text!r}")
        return paths

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=WAIT_S)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@contextmanager
def pty_pair(links: tuple[Path, Path] | None = None) -> Iterator[PtyPair]:
    pair = PtyPair(links)
    try:
        yield pair
    finally:
        pair.close()


@contextmanager
def started(reader: Rdm6300Reader | Pn532Reader) -> Iterator[queue.Queue[str]]:
    cards: queue.Queue[str] = queue.Queue()
    reader.start(cards.put)
    try:
        assert reader.connected.wait(WAIT_S), "the reader did not open its port"
        yield cards
    finally:
        reader.close()


def next_card(cards: queue.Queue[str]) -> str:
    try:
        return cards.get(timeout=WAIT_S)
    except queue.Empty:
        raise AssertionError("no card reported") from None


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ------------------------------------------------------------------ RDM6300


def test_rdm6300_frame_format():
    frame = rdm6300_frame("0415ab7c3e")
    assert frame[0] == 0x02 and frame[-1] == 0x03 and len(frame) == 14
    assert frame[1:11] == b"0415AB7C3E"
    assert frame[11:13] == f"{0x04 ^ 0x15 ^ 0xAB ^ 0x7C ^ 0x3E:02X}".encode()


def test_rdm6300_reports_a_card_and_drops_bad_frames():
    with pty_pair() as pair, serial.Serial(pair.paths[1], 9600) as tag:
        reader = Rdm6300Reader(pair.paths[0], reopen_s=0.05)
        with started(reader) as cards:
            tag.write(rdm6300_frame("0415AB7C3E"))
            assert next_card(cards) == "0415AB7C3E"
            bad = bytearray(rdm6300_frame("0A0B0C0D0E"))
            bad[12] = ord("0") if bad[12] != ord("0") else ord("1")  # wrong checksum
            tag.write(bytes(bad))
            tag.write(b"\x02123")  # truncated frame, then noise
            tag.write(b"\xff\x00junk")
            tag.write(rdm6300_frame("1122334455"))
            assert next_card(cards) == "1122334455"
            assert reader.bad_frames >= 2
            assert cards.empty()  # the bad frame's card was never reported


def test_rdm6300_reports_a_card_held_in_the_field_once():
    with pty_pair() as pair, serial.Serial(pair.paths[1], 9600) as tag:
        reader = Rdm6300Reader(pair.paths[0], hold_off_s=30.0, reopen_s=0.05)
        with started(reader) as cards:
            for _ in range(5):  # the reader repeats the frame while the card stays
                tag.write(rdm6300_frame("0415AB7C3E"))
            tag.write(rdm6300_frame("99887766AA"))
            assert next_card(cards) == "0415AB7C3E"
            assert next_card(cards) == "99887766AA"
            assert reader.cards == 2 and reader.bad_frames == 0


def test_rdm6300_recovers_after_unplug_and_replug(tmp_path):
    links = (tmp_path / "rfid", tmp_path / "test")
    reader = Rdm6300Reader(str(links[0]), reopen_s=0.05, hold_off_s=0.0)
    with pty_pair(links) as first:
        with started(reader) as cards:
            with serial.Serial(str(links[1]), 9600) as tag:
                tag.write(rdm6300_frame("0415AB7C3E"))
                assert next_card(cards) == "0415AB7C3E"
            first.close()  # unplugged: the pty and its link vanish
            wait_for(lambda: not reader.connected.is_set(), "the reader to notice the unplug")
            with pty_pair(links):  # plugged in again
                wait_for(lambda: reader.connected.is_set() and reader.opens == 2, "the reader to reopen")
                with serial.Serial(str(links[1]), 9600) as tag:
                    tag.write(rdm6300_frame("1122334455"))
                    assert next_card(cards) == "1122334455"


# ------------------------------------------------------------------ PN532


class FakePn532:
    """A PN532 in HSU mode on the test's end of the pty: ACK, then an answer, per command."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, 115200, timeout=0.02)
        self.uid: bytes | None = None
        self.corrupt = 0
        self.commands: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        self.port.close()

    def polls(self) -> int:
        return self.commands.count(CMD_IN_LIST_PASSIVE_TARGET)

    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            try:
                buf.extend(self.port.read(self.port.in_waiting or 1))
            except (serial.SerialException, OSError):
                return
            while True:
                start = buf.find(b"\x00\xff")
                if start < 0 or len(buf) < start + 4:
                    break
                length = buf[start + 2]
                end = start + 4 + length + 2
                if len(buf) < end:
                    break
                body = bytes(buf[start + 4:start + 4 + length])
                del buf[:end]
                if body and body[0] == 0xD4:
                    self._answer(body[1], body[2:])

    def _answer(self, command: int, data: bytes) -> None:
        self.commands.append(command)
        if command == CMD_SAM_CONFIGURATION:
            payload = bytes([0x15])
        elif command == CMD_RF_CONFIGURATION:
            payload = bytes([0x33])
        elif command == CMD_IN_LIST_PASSIVE_TARGET:
            uid = self.uid
            payload = bytes([0x4B, 0x00]) if uid is None else \
                bytes([0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, len(uid)]) + uid
        else:
            return
        frame = bytearray(pn532_frame(0xD5, payload))
        if self.corrupt:
            self.corrupt -= 1
            frame[-2] ^= 0x5A  # bad data checksum
        self.port.write(ACK + bytes(frame))


def test_pn532_polls_and_reports_the_uid_once_per_presentation():
    with pty_pair() as pair:
        fake = FakePn532(pair.paths[1])
        reader = Pn532Reader(pair.paths[0], poll_interval_s=0.02, response_timeout_s=0.5,
                             hold_off_s=30.0, reopen_s=0.05)
        try:
            with started(reader) as cards:
                wait_for(lambda: fake.polls() >= 2, "polling")
                assert fake.commands[:2] == [CMD_SAM_CONFIGURATION, CMD_RF_CONFIGURATION]
                fake.uid = bytes.fromhex("04A1B2C3D4E5F6")
                assert next_card(cards) == "04A1B2C3D4E5F6"
                polled = fake.polls()
                wait_for(lambda: fake.polls() >= polled + 5, "more polls with the card held")
                assert cards.empty()  # held in the field: reported once
                fake.uid = bytes.fromhex("DEADBEEF")
                assert next_card(cards) == "DEADBEEF"
        finally:
            fake.close()


def test_pn532_drops_a_corrupt_answer_and_carries_on():
    with pty_pair() as pair:
        fake = FakePn532(pair.paths[1])
        reader = Pn532Reader(pair.paths[0], poll_interval_s=0.02, response_timeout_s=0.2, reopen_s=0.05)
        try:
            with started(reader) as cards:
                wait_for(lambda: fake.polls() >= 1, "polling")
                fake.corrupt = 2
                fake.uid = bytes.fromhex("0A0B0C0D")
                assert next_card(cards) == "0A0B0C0D"
                assert reader.bad_frames >= 2
        finally:
            fake.close()

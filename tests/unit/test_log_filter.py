"""The log filters: lines capped, tracebacks capped, repeated warnings counted (simulated time)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from chargepoint.app import logfilter
from chargepoint.app.logfilter import BURST, LINE_MAX, TRACEBACK_MAX, RateLimit, Scrub
from tests.loglines import Lines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log() -> Iterator[logging.Logger]:
    """A logger of its own, not propagating: only the handlers a test adds see its records."""
    logger = logging.getLogger("test.logfilter")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.handlers.clear()
    logger.propagate = True


def filtered(log: logging.Logger, clock: Clock, **limits: int | float) -> Lines:
    handler = Lines()
    handler.addFilter(Scrub())
    handler.addFilter(RateLimit(clock=clock, **limits))
    log.addHandler(handler)
    return handler


# ------------------------------------------------------------------ capping

def test_a_long_message_is_capped_and_says_how_long_it_was(log, clock):
    out = filtered(log, clock)
    log.info("received %s from %s", "x" * 900_000, "the CSMS")
    log.info("short %s", "and whole")
    (long, short) = out.lines
    assert len(long) < LINE_MAX + 40
    assert "900" in long and "characters)" in long
    assert short == "INFO test.logfilter: short and whole"


def test_a_traceback_is_capped_keeping_its_start_and_its_end(log, clock):
    out = filtered(log, clock)
    try:
        raise ValueError("bad value " + "y" * 100_000 + " END")
    except ValueError:
        log.exception("handling failed")
    (line,) = out.lines
    assert len(line) < LINE_MAX + TRACEBACK_MAX + 100
    assert "Traceback (most recent call last)" in line and line.endswith(" END")


def test_a_bad_log_call_is_left_to_logging():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "%d items", ("not a number",), None)
    assert Scrub().filter(record) and RateLimit().filter(record)  # the handler reports it, as usual


# ------------------------------------------------------------ rate limiting

def test_repeated_warnings_are_counted_not_repeated(log, clock):
    out = filtered(log, clock)
    for n in range(500):
        log.warning("CALL %s (id %s) answered with %s", "TriggerMessage", f"id-{n}", "NotSupported")
    assert len(out.lines) == BURST
    assert out.lines[-1].endswith(f"id-{BURST - 1}) answered with NotSupported")

    clock.now += 61
    log.warning("CALL %s (id %s) answered with %s", "Foo", "id-x", "NotImplemented")
    assert len(out.lines) == BURST + 1
    assert out.lines[-1] == ("WARNING test.logfilter: CALL Foo (id id-x) answered with NotImplemented "
                             f"(similar line repeated {500 - BURST} times in the last 61 s)")
    # the next window starts from nothing: no count
    clock.now += 61
    log.warning("CALL %s (id %s) answered with %s", "Foo", "id-y", "NotImplemented")
    assert out.lines[-1].endswith("answered with NotImplemented")


def test_kinds_are_logger_level_and_template(log, clock):
    out = filtered(log, clock, burst=1)
    other = logging.getLogger("test.logfilter.other")
    for _ in range(3):
        log.warning("lost: %s", "a")
        log.warning("gone: %s", "b")
        log.error("lost: %s", "c")
        other.warning("lost: %s", "d")
    assert [line.rsplit(" ", 1)[-1] for line in out.lines] == ["a", "b", "c", "d"]


def test_info_and_debug_are_not_limited(log, clock):
    out = filtered(log, clock)
    for n in range(50):
        log.info("sample %d", n)
        log.debug("frame %d", n)
    assert len(out.lines) == 100


def test_two_handlers_count_on_their_own_and_keep_their_counts_apart(log, clock):
    tight = filtered(log, clock, burst=1)
    loose = filtered(log, clock, burst=100)
    for _ in range(3):
        log.warning("again")
    clock.now += 61
    log.warning("again")
    assert tight.lines == ["WARNING test.logfilter: again",
                           "WARNING test.logfilter: again (similar line repeated 2 times in the last 61 s)"]
    assert loose.lines == ["WARNING test.logfilter: again"] * 4


def test_a_capped_line_is_still_one_kind(log, clock):
    out = filtered(log, clock, burst=2)
    for n in range(10):
        log.warning("payload %s", str(n) * 5000)
    assert len(out.lines) == 2


def test_install_puts_the_filters_on_once():
    handler = Lines()
    logfilter.install(handler)
    logfilter.install(handler)
    assert [type(f) for f in handler.filters] == [Scrub, RateLimit]
    quiet = Lines()
    logfilter.install(quiet, rate_limit=False)
    assert [type(f) for f in quiet.filters] == [Scrub]

"""How long the safety loop's steps take: a fixed-bucket histogram, written by the loop alone.

The metrics (``/metrics``) show it as ``chargepoint_safety_tick_seconds``. The
hook must cost the loop next to nothing: one ``perf_counter`` pair, a bisect
over ten bounds and two additions per step, no lock and no allocation. Only
the loop's thread writes; a reader copies the counts, and may see a sum one
observation ahead of the counts, which a scrape does not mind.

The time is real time (``time.perf_counter``), not the injected clock: it
measures what the CPU and the GIL cost the step, which a simulated clock
cannot say.
"""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds of the buckets, in seconds (Prometheus's ``le``), plus +Inf after the last.
BOUNDS = (0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)


class TickTimes:
    """Counts of step durations per bucket, and their sum."""

    __slots__ = ("counts", "sum", "max")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.sum = 0.0
        #: The longest step seen (seconds).
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BOUNDS, seconds)] += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def quantile_bound(self, q: float) -> float | None:
        """The upper bound of the bucket that holds the ``q`` quantile (None before any step;
        the longest step for the last, open bucket): an honest "at most" for the status."""
        total = sum(self.counts)
        if total == 0:
            return None
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= q * total:
                return BOUNDS[index] if index < len(BOUNDS) else self.max
        return self.max

    def snapshot(self) -> tuple[list[int], float]:
        """(counts per bucket, the last being +Inf, not cumulative; sum of seconds)."""
        return list(self.counts), self.sum

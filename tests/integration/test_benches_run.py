"""Every benchmark in bench/ still runs, in its quick mode, on the committed code.

The benches assert nothing about figures (that would make the suite depend on
the machine); this only keeps them from rotting: a bench that crashes on a
renamed setting or a changed id type fails here, not months later when
someone needs its numbers. Helper modules (the baseline charge point, the
loads, the web load, the Pi supervisor and the memory breakdown) run inside
the benches below.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

QUICK_RUNS = {
    # bench: (arguments, a line every complete run prints)
    "footprint.py": (["--quick"], "idle CPU, % of one core"),
    "outbox.py": (["--runs", "1", "--messages", "300", "--bound", "300", "--speed", "1000"], "drain / bound"),
    "call_flood.py": (["--calls", "300", "--runs", "1"], "median of 1 run(s)"),
    "meter_poll.py": (["--quick"], "line limit"),
    # The phases that start each of the loads (loads.py, web_load.py); the rest only vary them.
    "safety_latency.py": (["--events", "10", "--runs", "1", "--phases", "quiet,web,flood,mqtt"],
                          "medians over 1 run(s)"),
}

HELPERS = {"baseline_cp.py", "loads.py", "web_load.py", "pi_supervisor.py", "supervisor_memory.py"}


def test_every_bench_is_run_here_or_inside_one_that_is():
    benches = {path.name for path in (ROOT / "bench").glob("*.py") if path.name != "__init__.py"}
    assert benches == set(QUICK_RUNS) | HELPERS, "a new bench needs a quick run in this file"


@pytest.mark.parametrize("bench", sorted(QUICK_RUNS))
def test_bench_runs_to_its_summary(bench: str):
    arguments, summary_line = QUICK_RUNS[bench]
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # the system temp dir: socket paths stay short
    result = subprocess.run([sys.executable, str(ROOT / "bench" / bench), *arguments],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, f"{bench} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert summary_line in result.stdout, result.stdout[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_supervisor_memory_breakdown_reads_a_live_process():
    """The part of the footprint bench that only its long mode runs: smaps by kind."""
    sys.path.insert(0, str(ROOT))
    try:
        from bench.supervisor_memory import imported_modules, memory_breakdown
    finally:
        sys.path.remove(str(ROOT))
    kinds = memory_breakdown(os.getpid())
    assert kinds["shared libraries"] > 0 and kinds["heap and anonymous"] > 0, kinds
    importtime = ("import time: self [us] | cumulative | imported package\n"
                  "import time:       100 |        100 |   json\n"
                  "import time:        50 |        150 | asyncio.events\n")
    assert imported_modules(importtime) == ["json", "asyncio.events"]

"""What the safety supervisor's memory is made of, for bench/footprint.py.

With mlockall every page a process maps is resident: the whole of each
thread's stack, every shared library's text. ``memory_breakdown`` splits a
process's RSS by kind of mapping (/proc/PID/smaps); ``VARIANTS`` are
supervisors changed in one respect each, and bare interpreters for the floor,
started once by the footprint bench to show what each costs.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Started once each: (label, what runs, code run before it). "sim": ``chargepoint supervise`` on the
#: daemon's configuration; "pi": bench/pi_supervisor.py on the board profile; "floor": the code alone.
MLOCKALL = "import ctypes\nctypes.CDLL(None).mlockall(3)\n"
VARIANTS = (
    ("sim, as shipped", "sim", ""),
    ("sim, thread stacks at glibc's default 8 MiB", "sim",
     "import chargepoint.supervisor.main as m\nm.THREAD_STACK_BYTES = 0\n"),
    ("Pi fakes, as shipped", "pi", ""),
    ("Pi fakes, ssl made unimportable", "pi", "import sys\nsys.modules['ssl'] = None\n"),
    ("Pi fakes, mlockall with MCL_ONFAULT", "pi",  # pages locked once touched, not all made resident
     "import chargepoint.supervisor.realtime as r\nr.MCL_FUTURE = 2 | 4\n"),
    ("floor: python, mlockall", "floor", MLOCKALL),
    ("floor: python, asyncio imported, mlockall", "floor", "import asyncio\n" + MLOCKALL),
    ("floor: the same without ssl", "floor",
     "import sys\nsys.modules['ssl'] = None\nimport asyncio\n" + MLOCKALL),
)


def variant_code(kind: str, prelude: str, pi_supervisor: Path) -> str:
    """``python -c`` code: the prelude, then the supervisor with the command line's arguments."""
    if kind == "sim":
        return (prelude + "import sys\nfrom chargepoint.supervisor.command import main\n"
                "raise SystemExit(main(sys.argv[1:]))\n")
    if kind == "pi":
        return prelude + f"import runpy\nrunpy.run_path({str(pi_supervisor)!r}, run_name='__main__')\n"
    return prelude + "import time\ntime.sleep(60)\n"


def imported_modules(importtime: str) -> list[str]:
    """The modules named in ``-X importtime`` output (one line per module imported)."""
    return [line.rsplit("|", 1)[1].strip() for line in importtime.splitlines()
            if line.startswith("import time:") and "|" in line and "imported package" not in line]


def memory_breakdown(pid: int) -> dict[str, int]:
    """RSS (KiB) by kind of mapping, from /proc/PID/smaps: a thread's stack is the mapping its stack
    pointer (/proc/PID/task/TID/syscall) lies in."""
    pointers = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (task / "syscall").read_text().split()
            if len(fields) > 2:
                pointers.append(int(fields[-2], 16))
    kinds: Counter[str] = Counter()
    kind = "other"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
        if head:
            low, high, name = int(head[1], 16), int(head[2], 16), head[3]
            if name == "[stack]" or any(low <= sp < high for sp in pointers):
                kind = "thread stacks"
            elif name.startswith("/") and ".so" in name:
                kind = "shared libraries"
            elif name.startswith("/"):
                kind = "other mapped files"
            else:
                kind = "heap and anonymous"
        elif line.startswith("Rss:"):
            kinds[kind] += int(line.split()[1])
    kinds["threads"] = len(list(Path(f"/proc/{pid}/task").iterdir()))
    return dict(kinds)


def pi_ready_info(log: Path) -> dict[str, object]:
    """The Pi supervisor's own account (modules, threads) from its ready line."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"ready"'):
            return dict(json.loads(line)["ready"])
    return {}


def print_explanation(breakdown: dict[str, dict[str, int]], variants: list[tuple[str, int, str]],
                      pi: dict[str, Any]) -> None:
    print("\nWhat the supervisor's RSS is made of (last run, /proc/PID/smaps Rss, MiB)")
    names = list(breakdown)
    print(f"{'':<24}" + "".join(f"{n:>15}" for n in names))
    for kind in ("thread stacks", "shared libraries", "other mapped files", "heap and anonymous"):
        print(f"{kind:<24}" + "".join(f"{breakdown[n].get(kind, 0) / 1024:>15.1f}" for n in names))
    print(f"{'threads':<24}" + "".join(f"{breakdown[n]['threads']:>15}" for n in names))
    print("\nvariants, one start each (VmRSS 2 s after the channel opened; a floor: 2 s after its start):")
    for label, rss, importtime in variants:
        modules = imported_modules(importtime)
        print(f"  {label:<46} {rss / 1024:6.1f} MiB   {len(modules)} modules imported")
        if label.endswith("as shipped"):
            top = Counter(m.split(".")[0] for m in modules).most_common(8)
            print("      most by package: " + ", ".join(f"{name} {count}" for name, count in top))
    if pi:
        print(f"Pi supervisor (fakes): {pi.get('modules')} modules, pymodbus imported: {pi.get('pymodbus')}, "
              f"threads {pi.get('threads')}, thread stack "
              f"{int(pi.get('thread_stack_bytes') or 0) // 1024} KiB (0 = glibc's 8 MiB)")


def print_supervisors(median: Callable[[str, Callable[[Any], float]], float], idle_s: float,
                      target_mib: float) -> None:
    """The supervisors' medians (``median(process, metric)``) and the RSS target."""
    print(f"{'the supervisor':<34}  {'sim':>8}  {'Pi fakes':>8}  {'target':>9}  met (sim, Pi)")
    for label, metric, fmt, target in (
            ("max RSS, VmHWM (MiB)", lambda s: s.max_rss_kib / 1024, "{:.1f}", target_mib),
            ("RSS at end of idle (MiB)", lambda s: s.end_rss_kib / 1024, "{:.1f}", None),
            ("startup to channel open (s)", lambda s: s.startup_s, "{:.3f}", None),
            ("idle CPU, % of one core", lambda s: s.idle_cpu_ms / 10 / idle_s, "{:.3f}", None)):
        sim, pi = median("supervisor", metric), median("supervisor-pi", metric)
        verdict = "-" if target is None else ", ".join("yes" if v <= target else
                                                       f"no (+{v - target:.1f})" for v in (sim, pi))
        print(f"{label:<34}  {fmt.format(sim):>8}  {fmt.format(pi):>8}  "
              f"{f'<= {target:g}' if target else '-':>9}  {verdict}")

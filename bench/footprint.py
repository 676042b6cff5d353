"""Footprint of the station daemon against the bare ``ocpp`` library, in the same run.

On a Raspberry Pi the daemon shares a small board with everything else, so
its cost is judged against the least any OCPP 1.6J charge point in Python
costs: ``bench/baseline_cp.py``, the library's example charge point. Both run
side by side as subprocesses against one bench CSMS in this process, so they
see the same machine state, and only ratios are compared with the targets
(RSS <= 1.3x, startup <= 2x); absolute figures depend on the machine. The
daemon's idle CPU has an absolute target instead (<= 1 % of one core with the
sim hal and 1 Hz meter polling), since the baseline does no work while idle.

Per process and run it measures:

* startup: from just before the spawn to the CSMS sending the CALLRESULT that
  accepts its BootNotification (interpreter start, imports, configuration,
  connect and boot: what a technician waits for after a power cycle);
* max RSS: VmHWM from /proc/PID/status, read just before it is stopped;
* RSS at the end of the idle window (VmRSS), to tell start-up peaks from
  the steady state;
* idle CPU: utime + stime from /proc/PID/stat consumed over the idle window
  only, which starts once both have booted (plus a short settle); and the
  same from the scheduler's per-process CPU clock, whose nanoseconds still
  give a ratio when the baseline idles below one 10 ms clock tick.

Before the measured runs one unmeasured boot of both fills a private bytecode
cache (see ``child_env``) and the page cache.

This prints figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chargepoint.protocol.v16.csms import CentralSystem, Frame

BENCH_DIR = Path(__file__).resolve().parent
BASELINE_SCRIPT = BENCH_DIR / "baseline_cp.py"
HOST = "127.0.0.1"
#: Heartbeats the CSMS grants; long enough that neither process heartbeats while idle.
HEARTBEAT_INTERVAL_S = 300
#: Time allowed from spawn to an accepted boot before the run is abandoned.
BOOT_TIMEOUT_S = 60.0
#: Pause after both have booted before the idle window opens, so one-off
#: post-boot traffic (the daemon's StatusNotifications) is not counted as idling.
SETTLE_S = 1.0
#: Time allowed to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)
TARGETS = {"startup": 2.0, "max_rss": 1.3}
#: The daemon's own idle CPU, in percent of one core (sim hal, 1 Hz meter polling): an
#: absolute target, since the baseline does no work to compare with while idle.
IDLE_CPU_TARGET_PERCENT = 1.0


# ------------------------------------------------------------------ /proc readers
def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces; the fields after its ')' are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def cpu_clock_ns(pid: int) -> int:
    """The same process-wide CPU time from the kernel's scheduler clock, in ns.

    /proc/PID/stat counts in clock ticks (10 ms), too coarse for a process that
    idles at a few ms a minute: the baseline reads 0.00 s and no ratio can be
    formed. clock_getcpuclockid gives the exact figure.
    """
    clock = ctypes.c_int()
    if LIBC.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        raise OSError(f"clock_getcpuclockid({pid}) failed")
    return time.clock_gettime_ns(clock.value)


def status_kib(pid: int, key: str) -> int:
    """One ``kB`` line of /proc/PID/status, e.g. VmHWM (peak RSS) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


# ------------------------------------------------------------------ processes
def _die_with_parent() -> None:
    """In the child: get SIGTERM if the benchmark dies, so nothing outlives it."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Contender:
    """One of the two processes measured, and what was seen of it in one run."""

    name: str
    identity: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0
    booted_at: float | None = None
    booted: asyncio.Event = field(default_factory=asyncio.Event)

    def spawn(self, env: dict[str, str]) -> None:
        """Start the process; the startup clock starts just before the spawn."""
        with self.log_path.open("wb") as log:
            self.spawned_at = time.perf_counter()
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        """The end of the process's output, for a failure message."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def stop(contenders: Sequence[Contender]) -> None:
    """SIGTERM all, wait without blocking the loop (the CSMS must answer their
    close handshakes), SIGKILL whatever hangs, and reap everything."""
    running = [c.proc for c in contenders if c.proc is not None and c.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(p.poll() is None for p in running) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for proc in running:
        if proc.poll() is None:
            print(f"  pid {proc.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; killing it", flush=True)
            proc.kill()
        proc.wait()


# ------------------------------------------------------------------ boot detection
def boot_watcher(contenders: Sequence[Contender]) -> Callable[[Frame], None]:
    """A CSMS ``on_frame`` callback noting when each identity's boot is accepted."""
    by_identity = {c.identity: c for c in contenders}

    def on_frame(frame: Frame) -> None:
        contender = by_identity.get(frame.identity)
        if (contender is None or contender.booted_at is not None or frame.direction != "out"
                or frame.message_type != 3 or frame.action != "BootNotification"):
            return
        payload = frame.payload[0] if frame.payload else {}
        if isinstance(payload, dict) and payload.get("status") == "Accepted":
            contender.booted_at = time.perf_counter()
            contender.booted.set()

    return on_frame


async def wait_for_boot(contender: Contender) -> None:
    """Until the boot is accepted; fail early (with its output) if the process dies."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while not contender.booted.is_set():
        assert contender.proc is not None
        if contender.proc.poll() is not None:
            raise RuntimeError(f"{contender.name} exited with {contender.proc.returncode} before "
                               f"booting:\n{contender.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{contender.name} not booted after {BOOT_TIMEOUT_S:.0f} s:\n"
                               f"{contender.log_tail()}")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(contender.booted.wait(), 0.1)


# ------------------------------------------------------------------ one run
@dataclass(frozen=True)
class Sample:
    """One process's figures from one run."""

    startup_s: float
    max_rss_kib: int
    end_rss_kib: int
    idle_cpu_s: float
    idle_cpu_ms: float


def child_env(workdir: Path) -> dict[str, str]:
    """The environment of both processes: a private, writable bytecode cache.

    An installed station has its modules compiled at install time, but a
    checkout run with PYTHONDONTWRITEBYTECODE (or a read-only tree) has none for
    the editable ``chargepoint`` package while the library has them, which
    would charge the daemon for compiling its source on every start. One cache
    for both, filled by the warm-up boot, puts them on the same footing.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def daemon_config(identity: str, port: int) -> str:
    """The daemon's TOML: sim hal at real-time speed, 1 Hz meter polling, local CSMS, OCPP 1.6 only
    (the baseline speaks 1.6: offering 2.0.1 too would load the library's 2.0.1 part besides)."""
    return (f'[station]\nidentity = "{identity}"\n\n'
            f'[ocpp]\ncsms_url = "ws://{HOST}:{port}"\nversions = ["1.6"]\n\n'
            "[simulation]\nspeed = 1.0\n\n"
            "[meter]\npoll_interval_s = 1.0\n")


def chargepoint_command() -> str:
    """The console script next to this interpreter (the venv's), else on PATH."""
    local = Path(sys.executable).parent / "chargepoint"
    return str(local) if local.exists() else "chargepoint"


def contenders_for(run: int, port: int, workdir: Path) -> list[Contender]:
    """The daemon and the baseline with distinct identities, so their frames are told apart."""
    config = workdir / f"daemon-{run}.toml"
    daemon_id, baseline_id = f"BENCH-DAEMON-{run}", f"BENCH-BASELINE-{run}"
    config.write_text(daemon_config(daemon_id, port))
    url = f"ws://{HOST}:{port}"
    return [
        Contender("daemon", daemon_id, [chargepoint_command(), "run", "--config", str(config)],
                  workdir / f"daemon-{run}.log"),
        Contender("baseline", baseline_id, [sys.executable, str(BASELINE_SCRIPT), url, baseline_id],
                  workdir / f"baseline-{run}.log"),
    ]


async def measure_idle(contenders: Sequence[Contender], idle_s: float) -> dict[str, tuple[float, float]]:
    """CPU each consumed over the idle window, read at the same moments: seconds
    from /proc/PID/stat and milliseconds from the scheduler clock."""
    def read(pid: int) -> tuple[float, int]:
        return cpu_seconds(pid), cpu_clock_ns(pid)

    await asyncio.sleep(SETTLE_S)
    before = {c.name: read(c.pid) for c in contenders}
    await asyncio.sleep(idle_s)
    after = {c.name: read(c.pid) for c in contenders}
    return {name: (after[name][0] - ticks, (after[name][1] - ns) / 1e6)
            for name, (ticks, ns) in before.items()}


async def one_run(run: int, idle_s: float, workdir: Path) -> dict[str, Sample]:
    """Both processes side by side against a fresh CSMS; spawn order alternates per run
    so neither always gets the head start."""
    contenders: list[Contender] = []
    csms = CentralSystem(heartbeat_interval_s=HEARTBEAT_INTERVAL_S)
    port = await csms.start(HOST, 0)
    try:
        contenders = contenders_for(run, port, workdir)
        csms.on_frame = boot_watcher(contenders)
        for contender in contenders if run % 2 else reversed(contenders):
            contender.spawn(child_env(workdir))
        await asyncio.gather(*(wait_for_boot(c) for c in contenders))
        idle_cpu = await measure_idle(contenders, idle_s)
        return {
            c.name: Sample(
                startup_s=(c.booted_at or 0.0) - c.spawned_at,
                max_rss_kib=status_kib(c.pid, "VmHWM"),
                end_rss_kib=status_kib(c.pid, "VmRSS"),
                idle_cpu_s=idle_cpu[c.name][0],
                idle_cpu_ms=idle_cpu[c.name][1],
            )
            for c in contenders
        }
    finally:
        await stop(contenders)
        await csms.close()


# ------------------------------------------------------------------ report
def ratio(daemon: float, baseline: float) -> float | None:
    return daemon / baseline if baseline > 0 else None


def print_raw(runs: Sequence[dict[str, Sample]], idle_s: float) -> None:
    """Every run's figures, so a median hiding an outlier can be seen."""
    print("Raw per-run figures")
    print(f"{'run':>3}  {'process':<8}  {'startup s':>9}  {'max RSS MiB':>11}  {'end RSS MiB':>11}  "
          f"{'idle CPU s':>10}  {'idle CPU ms':>11}  {'CPU % core':>10}")
    for index, samples in enumerate(runs, 1):
        for name, s in samples.items():
            print(f"{index:>3}  {name:<8}  {s.startup_s:>9.3f}  {s.max_rss_kib / 1024:>11.1f}  "
                  f"{s.end_rss_kib / 1024:>11.1f}  {s.idle_cpu_s:>10.2f}  {s.idle_cpu_ms:>11.2f}  "
                  f"{s.idle_cpu_ms / 10 / idle_s:>10.3f}")
    print()


def print_medians(runs: Sequence[dict[str, Sample]], idle_s: float) -> None:
    """The table the targets are judged on: medians, ratios, targets, verdicts."""
    def median(name: str, metric: Callable[[Sample], float]) -> float:
        return statistics.median(metric(samples[name]) for samples in runs)

    rows: list[tuple[str, str | None, Callable[[Sample], float], str]] = [
        ("startup to boot accepted (s)", "startup", lambda s: s.startup_s, "{:.3f}"),
        ("max RSS, VmHWM (MiB)", "max_rss", lambda s: s.max_rss_kib / 1024, "{:.1f}"),
        ("RSS at end of idle (MiB)", None, lambda s: s.end_rss_kib / 1024, "{:.1f}"),
        (f"idle CPU over {idle_s:g} s (s)", None, lambda s: s.idle_cpu_s, "{:.2f}"),
        ("  same, scheduler clock (ms)", None, lambda s: s.idle_cpu_ms, "{:.2f}"),
    ]
    print(f"Medians over {len(runs)} run(s), idle window {idle_s:g} s")
    print(f"{'metric':<30}  {'daemon':>8}  {'baseline':>8}  {'ratio':>7}  {'target':>8}  met")
    for label, target_key, metric, fmt in rows:
        daemon, baseline = median("daemon", metric), median("baseline", metric)
        r = ratio(daemon, baseline)
        ratio_text = f"{r:.2f}x" if r is not None else "n/a"
        target = TARGETS.get(target_key or "")
        target_text = f"<= {target:g}x" if target else "-"
        met = "-" if target is None else ("yes" if r is not None and r <= target else "no")
        print(f"{label:<30}  {fmt.format(daemon):>8}  {fmt.format(baseline):>8}  {ratio_text:>7}  "
              f"{target_text:>8}  {met}")
    percent = median("daemon", lambda s: s.idle_cpu_ms) / 10 / idle_s
    baseline_percent = median("baseline", lambda s: s.idle_cpu_ms) / 10 / idle_s
    met = "yes" if percent <= IDLE_CPU_TARGET_PERCENT else "no"
    print(f"{'idle CPU, % of one core':<30}  {percent:>8.3f}  {baseline_percent:>8.3f}  {'-':>7}  "
          f"{f'<= {IDLE_CPU_TARGET_PERCENT:g} %':>8}  {met}")


def print_header(args: argparse.Namespace) -> None:
    """What the figures were taken on, so recorded output can be compared later."""
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"footprint: {command}")
    print(f"date {datetime.date.today().isoformat()}, python {platform.python_version()}, "
          f"{platform.machine()}, nproc {os.cpu_count()}, runs {args.runs}, idle {args.idle:g} s")
    print()


# ------------------------------------------------------------------ main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs to take medians over (default 3)")
    parser.add_argument("--idle", type=float, default=60.0, metavar="SECONDS",
                        help="idle window after boot over which CPU is measured (default 60)")
    parser.add_argument("--quick", action="store_true", help="smoke check: idle 5 s, 1 run")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.idle = 1, 5.0
    if args.runs < 1 or args.idle <= 0:
        parser.error("--runs must be at least 1 and --idle positive")
    return args


def check_config(workdir: Path) -> None:
    """Validate the daemon's configuration once up front, so a schema change fails
    here with the daemon's own message rather than as a boot timeout."""
    path = workdir / "check.toml"
    path.write_text(daemon_config("BENCH-CHECK", 9))
    result = subprocess.run([chargepoint_command(), "check-config", str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"daemon configuration rejected:\n{result.stdout}{result.stderr}")


async def run_all(args: argparse.Namespace, workdir: Path) -> list[dict[str, Sample]]:
    """Every run in turn. SIGTERM cancels like Ctrl-C does, so the processes
    are still stopped and reaped on the way out."""
    current = asyncio.current_task()
    assert current is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    print("warm-up: one unmeasured boot of both (fills the bytecode and page caches) ...", flush=True)
    await one_run(0, 0.0, workdir)
    runs = []
    for run in range(1, args.runs + 1):
        print(f"run {run}/{args.runs}: booting both, then idling {args.idle:g} s ...", flush=True)
        runs.append(await one_run(run, args.idle, workdir))
    print()
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header(args)
    with tempfile.TemporaryDirectory(prefix="chargepoint-footprint-") as tmp:
        workdir = Path(tmp)
        check_config(workdir)
        try:
            runs = asyncio.run(run_all(args, workdir))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted; processes stopped", file=sys.stderr)
            return 130
        except RuntimeError as exc:  # a process that did not boot: its output says why
            print(f"footprint: {exc}", file=sys.stderr)
            return 1
    print_raw(runs, args.idle)
    print_medians(runs, args.idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())

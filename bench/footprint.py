"""Footprint of the station's two processes against the bare ``ocpp`` library, in the same run.

A station is two processes: the safety supervisor (``python -m
chargepoint.supervisor``, as ``chargepoint supervise``: the safety loop, memory
locked) and the daemon (``chargepoint run``, attached over the channel). Their
cost is judged against the least any OCPP 1.6J charge point in Python costs:
``bench/baseline_cp.py``, the library's example charge point. Per run the
supervisor starts first (as systemd starts it), then the daemon and the
baseline side by side against one bench CSMS in this process. Targets: daemon
RSS <= 1.3x and startup <= 2x the baseline's, daemon idle CPU <= 1 % of one
core (sim hal, 1 Hz meter polling), supervisor RSS <= 15 MiB; the two
processes' sum is shown against the baseline. A second supervisor runs beside
them on the Raspberry Pi board profile with fakes at the hardware boundaries
(bench/pi_supervisor.py): that path imports no pymodbus, the sim one does.

Per process and run: startup (spawn to the CSMS accepting its BootNotification;
a supervisor: to its channel's socket), max RSS (VmHWM, just before the stop),
RSS at the end of the idle window (VmRSS), idle CPU over the window (utime +
stime, and the scheduler's CPU clock in ns, which still gives a ratio when the
baseline idles below one 10 ms tick). Then what the supervisor's RSS is made of
(bench/supervisor_memory.py: smaps by kind, modules imported, variants started
once each). One unmeasured boot first fills a private bytecode cache
(``child_env``) and the page cache. It asserts nothing about timing.
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

from chargepoint.protocol.bench_csms.v16 import CentralSystem, Frame

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
from bench.pi_supervisor import pi_profile, toml_text  # noqa: E402
from bench.supervisor_memory import (  # noqa: E402
    VARIANTS,
    memory_breakdown,
    pi_ready_info,
    print_explanation,
    print_supervisors,
    variant_code,
)

BASELINE_SCRIPT = BENCH_DIR / "baseline_cp.py"
PI_SUPERVISOR = BENCH_DIR / "pi_supervisor.py"
HOST = "127.0.0.1"
#: Heartbeats the CSMS grants; long enough that neither process heartbeats while idle.
HEARTBEAT_INTERVAL_S = 300
#: Time allowed from spawn to an accepted boot (or an open channel) before the run is abandoned.
BOOT_TIMEOUT_S = 60.0
#: Pause after all have booted before the idle window opens (post-boot StatusNotifications are not idling).
SETTLE_S = 1.0
#: Time allowed to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)
TARGETS = {"startup": 2.0, "max_rss": 1.3}
#: The daemon's own idle CPU, % of one core (sim hal, 1 Hz meter polling): the baseline does no work idle.
IDLE_CPU_TARGET_PERCENT = 1.0
#: The supervisor's RSS, MiB (absolute: the baseline has no safety process).
SUPERVISOR_RSS_TARGET_MIB = 15.0
SUPERVISORS = ("supervisor", "supervisor-pi")


# ------------------------------------------------------------------ /proc readers
def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces; the fields after its ')' are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def cpu_clock_ns(pid: int) -> int:
    """The same process-wide CPU time from the scheduler clock, in ns (/proc/PID/stat's 10 ms ticks are
    too coarse for the baseline, which idles at a few ms a minute)."""
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
    """One of the processes measured, and what was seen of it in one run."""

    name: str
    identity: str
    argv: list[str]
    log_path: Path
    #: A supervisor is up when its channel's socket appears (None: when the CSMS accepts its boot).
    ready_path: Path | None = None
    #: bench/pi_supervisor.py exits when its stdin closes: keep a pipe open.
    stdin_pipe: bool = False
    proc: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0
    booted_at: float | None = None
    booted: asyncio.Event = field(default_factory=asyncio.Event)

    def spawn(self, env: dict[str, str]) -> None:
        """Start the process; the startup clock starts just before the spawn."""
        with self.log_path.open("wb") as log:
            self.spawned_at = time.perf_counter()
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid  # type: ignore[union-attr]

    def log_tail(self, lines: int = 20) -> str:
        """The end of the process's output, for a failure message."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def stop(contenders: Sequence[Contender]) -> None:
    """SIGTERM all, wait without blocking the loop (the CSMS answers their closes), SIGKILL, reap."""
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
        if proc.stdin is not None:
            proc.stdin.close()


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
    """Until the boot is accepted (a supervisor: its socket exists); fail early (with its output)
    if the process dies."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while not contender.booted.is_set():
        assert contender.proc is not None
        if contender.ready_path is not None and contender.ready_path.exists():
            contender.booted_at = time.perf_counter()
            contender.booted.set()
            break
        if contender.proc.poll() is not None:
            raise RuntimeError(f"{contender.name} exited with {contender.proc.returncode} before "
                               f"booting:\n{contender.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{contender.name} not booted after {BOOT_TIMEOUT_S:.0f} s:\n"
                               f"{contender.log_tail()}")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(contender.booted.wait(), 0.01 if contender.ready_path else 0.1)


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
    """The environment of all processes: a private, writable bytecode cache.

    An installed station has its modules compiled at install time; a checkout run with
    PYTHONDONTWRITEBYTECODE would charge the daemon for compiling its source on every start but
    not the baseline, whose library is compiled. One cache, filled by the warm-up boot, for all.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def daemon_config(identity: str, port: int, state_dir: Path) -> str:
    """The daemon's TOML: sim hal at real-time speed, 1 Hz meter polling, local CSMS, OCPP 1.6 only
    (the baseline speaks 1.6: offering 2.0.1 too would load the library's 2.0.1 part besides).

    Its control socket is in its state directory, not the default /run/chargepoint/control.sock: a
    daemon finding that one served by another (a test suite, a demo on the same machine) serves none,
    and is measured without its control server and the socket's group lookup."""
    return (f'[station]\nidentity = "{identity}"\nstate_dir = "{state_dir}"\n\n'
            f'[ocpp]\ncsms_url = "ws://{HOST}:{port}"\nversions = ["1.6"]\n\n'
            "[simulation]\nspeed = 1.0\n\n"
            "[meter]\npoll_interval_s = 1.0\n\n"
            f'[control]\nsocket = "{state_dir / "control.sock"}"\n')


def chargepoint_command() -> str:
    """The console script next to this interpreter (the venv's), else on PATH."""
    local = Path(sys.executable).parent / "chargepoint"
    return str(local) if local.exists() else "chargepoint"


def supervisors_for(run: int, port: int, workdir: Path) -> tuple[list[Contender], Path]:
    """The sim supervisor (on the daemon's configuration) and the Pi one on fakes; the daemon's config."""
    run_dir = workdir / f"run-{run}"
    (run_dir / "pi").mkdir(parents=True)
    config = run_dir / "daemon.toml"
    config.write_text(daemon_config(f"BENCH-DAEMON-{run}", port, run_dir / "state"))
    pi_config = run_dir / "pi" / "chargepoint.toml"
    pi_config.write_text(toml_text(pi_profile(run_dir / "pi", f"BENCH-PI-{run}")))
    return [
        Contender("supervisor", "-", [sys.executable, "-m", "chargepoint.supervisor", "--config", str(config),
                                      "--log-level", "warning"],
                  run_dir / "supervisor.log", ready_path=run_dir / "state" / "safety.sock"),
        Contender("supervisor-pi", "-", [sys.executable, str(PI_SUPERVISOR), "--config", str(pi_config),
                                         "--fifo", "0"],
                  run_dir / "supervisor-pi.log", ready_path=run_dir / "pi" / "safety.sock", stdin_pipe=True),
    ], config


def contenders_for(run: int, port: int, config: Path, workdir: Path) -> list[Contender]:
    """The daemon and the baseline with distinct identities, so their frames are told apart."""
    daemon_id, baseline_id = f"BENCH-DAEMON-{run}", f"BENCH-BASELINE-{run}"
    url = f"ws://{HOST}:{port}"
    return [
        Contender("daemon", daemon_id, [chargepoint_command(), "run", "--config", str(config)],
                  workdir / f"daemon-{run}.log"),
        Contender("baseline", baseline_id, [sys.executable, str(BASELINE_SCRIPT), url, baseline_id],
                  workdir / f"baseline-{run}.log"),
    ]


async def measure_idle(contenders: Sequence[Contender], idle_s: float) -> dict[str, tuple[float, float]]:
    """CPU each consumed over the idle window: seconds (/proc/PID/stat), ms (scheduler clock)."""
    def read(pid: int) -> tuple[float, int]:
        return cpu_seconds(pid), cpu_clock_ns(pid)

    await asyncio.sleep(SETTLE_S)
    before = {c.name: read(c.pid) for c in contenders}
    await asyncio.sleep(idle_s)
    after = {c.name: read(c.pid) for c in contenders}
    return {name: (after[name][0] - ticks, (after[name][1] - ns) / 1e6)
            for name, (ticks, ns) in before.items()}


@dataclass
class Run:
    samples: dict[str, Sample]
    breakdown: dict[str, dict[str, int]]  # per supervisor, what its RSS is made of at the end


async def one_run(run: int, idle_s: float, workdir: Path) -> Run:
    """The supervisors first (as systemd starts them), then daemon and baseline side by side against
    a fresh CSMS; their spawn order alternates per run so neither always gets the head start."""
    everyone: list[Contender] = []
    csms = CentralSystem(heartbeat_interval_s=HEARTBEAT_INTERVAL_S)
    port = await csms.start(HOST, 0)
    try:
        supervisors, config = supervisors_for(run, port, workdir)
        everyone += supervisors
        for supervisor in supervisors:
            supervisor.spawn(child_env(workdir))
        await asyncio.gather(*(wait_for_boot(c) for c in supervisors))
        contenders = contenders_for(run, port, config, workdir)
        everyone += contenders
        csms.on_frame = boot_watcher(contenders)
        for contender in contenders if run % 2 else reversed(contenders):
            contender.spawn(child_env(workdir))
        await asyncio.gather(*(wait_for_boot(c) for c in contenders))
        idle_cpu = await measure_idle(everyone, idle_s)
        for c in everyone:
            if c.proc is not None and c.proc.poll() is not None:
                raise RuntimeError(f"{c.name} exited with {c.proc.returncode} while idle:\n{c.log_tail()}")
        samples = {
            c.name: Sample(
                startup_s=(c.booted_at or 0.0) - c.spawned_at,
                max_rss_kib=status_kib(c.pid, "VmHWM"),
                end_rss_kib=status_kib(c.pid, "VmRSS"),
                idle_cpu_s=idle_cpu[c.name][0],
                idle_cpu_ms=idle_cpu[c.name][1],
            )
            for c in everyone
        }
        return Run(samples, {c.name: memory_breakdown(c.pid) for c in supervisors})
    finally:
        await stop([c for c in everyone if c.name not in SUPERVISORS])
        await stop([c for c in everyone if c.name in SUPERVISORS])  # after the daemon, as systemd does
        await csms.close()


# ------------------------------------------------------------------ what the supervisor is made of
async def variant_rss(label: str, kind: str, prelude: str, workdir: Path, index: int) -> tuple[int, str]:
    """VmRSS (KiB) of one variant 2 s after its channel opened, and its ``-X importtime`` output."""
    state = workdir / f"variant-{index}"
    state.mkdir()
    config = state / "chargepoint.toml"
    config.write_text(toml_text(pi_profile(state, "-")) if kind == "pi" else
                      daemon_config("-", 9, state / "state"))
    args = {"sim": ["--config", str(config), "--log-level", "warning"],
            "pi": ["--config", str(config), "--fifo", "0"], "floor": []}[kind]
    ready = {"sim": state / "state" / "safety.sock", "pi": state / "safety.sock", "floor": None}[kind]
    supervisor = Contender(label, "-", [sys.executable, "-X", "importtime", "-c",
                                        variant_code(kind, prelude, PI_SUPERVISOR), *args],
                           state / "log", ready_path=ready, stdin_pipe=kind == "pi")
    supervisor.spawn(child_env(workdir))
    try:
        await (wait_for_boot(supervisor) if ready is not None else asyncio.sleep(0))
        await asyncio.sleep(2.0)
        rss = status_kib(supervisor.pid, "VmRSS")
    finally:
        await stop([supervisor])
    return rss, supervisor.log_path.read_text(errors="replace")


async def explain(last: Run, last_index: int, workdir: Path) -> None:
    variants = [(label, *await variant_rss(label, kind, prelude, workdir, index))
                for index, (label, kind, prelude) in enumerate(VARIANTS)]
    pi = pi_ready_info(workdir / f"run-{last_index}" / "supervisor-pi.log")
    print_explanation(last.breakdown, variants, pi)


# ------------------------------------------------------------------ report
def ratio(daemon: float, baseline: float) -> float | None:
    return daemon / baseline if baseline > 0 else None


def print_raw(runs: Sequence[Run], idle_s: float) -> None:
    """Every run's figures, so a median hiding an outlier can be seen."""
    print("Raw per-run figures (a supervisor's startup: to its channel's socket)")
    print(f"{'run':>3}  {'process':<13}  {'startup s':>9}  {'max RSS MiB':>11}  {'end RSS MiB':>11}  "
          f"{'idle CPU s':>10}  {'idle CPU ms':>11}  {'CPU % core':>10}")
    for index, run in enumerate(runs, 1):
        for name, s in run.samples.items():
            print(f"{index:>3}  {name:<13}  {s.startup_s:>9.3f}  {s.max_rss_kib / 1024:>11.1f}  "
                  f"{s.end_rss_kib / 1024:>11.1f}  {s.idle_cpu_s:>10.2f}  {s.idle_cpu_ms:>11.2f}  "
                  f"{s.idle_cpu_ms / 10 / idle_s:>10.3f}")
    print()


def print_medians(runs: Sequence[Run], idle_s: float) -> None:
    """The tables the targets are judged on: medians, ratios, targets, verdicts."""
    def median(name: str, metric: Callable[[Sample], float]) -> float:
        return statistics.median(metric(run.samples[name]) for run in runs)

    rows: list[tuple[str, str | None, Callable[[Sample], float], str]] = [
        ("startup to boot accepted (s)", "startup", lambda s: s.startup_s, "{:.3f}"),
        ("max RSS, VmHWM (MiB)", "max_rss", lambda s: s.max_rss_kib / 1024, "{:.1f}"),
        ("RSS at end of idle (MiB)", None, lambda s: s.end_rss_kib / 1024, "{:.1f}"),
        (f"idle CPU over {idle_s:g} s (s)", None, lambda s: s.idle_cpu_s, "{:.2f}"),
        ("  same, scheduler clock (ms)", None, lambda s: s.idle_cpu_ms, "{:.2f}"),
    ]
    print(f"Medians over {len(runs)} run(s), idle window {idle_s:g} s")
    print(f"{'metric':<34}  {'daemon':>8}  {'baseline':>8}  {'ratio':>7}  {'target':>8}  met")
    for label, target_key, metric, fmt in rows:
        daemon, baseline = median("daemon", metric), median("baseline", metric)
        r = ratio(daemon, baseline)
        ratio_text = f"{r:.2f}x" if r is not None else "n/a"
        target = TARGETS.get(target_key or "")
        target_text = f"<= {target:g}x" if target else "-"
        met = "-" if target is None else ("yes" if r is not None and r <= target else "no")
        print(f"{label:<34}  {fmt.format(daemon):>8}  {fmt.format(baseline):>8}  {ratio_text:>7}  "
              f"{target_text:>8}  {met}")
    percent = median("daemon", lambda s: s.idle_cpu_ms) / 10 / idle_s
    baseline_percent = median("baseline", lambda s: s.idle_cpu_ms) / 10 / idle_s
    met = "yes" if percent <= IDLE_CPU_TARGET_PERCENT else "no"
    print(f"{'idle CPU, % of one core':<34}  {percent:>8.3f}  {baseline_percent:>8.3f}  {'-':>7}  "
          f"{f'<= {IDLE_CPU_TARGET_PERCENT:g} %':>8}  {met}")
    def pair_median(metric: Callable[[Sample], float]) -> float:
        return statistics.median(metric(r.samples["daemon"]) + metric(r.samples["supervisor"]) for r in runs)

    pair, pair_end = pair_median(lambda s: s.max_rss_kib / 1024), pair_median(lambda s: s.end_rss_kib / 1024)
    baseline_rss = median("baseline", lambda s: s.max_rss_kib / 1024)
    pair_cpu = pair_median(lambda s: s.idle_cpu_ms) / 10 / idle_s
    print(f"{'daemon + supervisor: max RSS (MiB)':<34}  {pair:>8.1f}  {baseline_rss:>8.1f}  "
          f"{pair / baseline_rss:>6.2f}x  {'-':>8}  -")
    print(f"{'  same, RSS at end of idle (MiB)':<34}  {pair_end:>8.1f}")
    print(f"{'  same, idle CPU, % of one core':<34}  {pair_cpu:>8.3f}")
    print()
    print_supervisors(median, idle_s, SUPERVISOR_RSS_TARGET_MIB)


def print_header(args: argparse.Namespace) -> None:
    """What the figures were taken on, so recorded output can be compared later."""
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"footprint: {command}")
    print(f"date {datetime.date.today().isoformat()}, python {platform.python_version()}, "
          f"{platform.machine()}, nproc {os.cpu_count()}, runs {args.runs}, idle {args.idle:g} s, "
          f"load average {os.getloadavg()[0]:.2f}")
    print()


# ------------------------------------------------------------------ main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs to take medians over (default 3)")
    parser.add_argument("--idle", type=float, default=60.0, metavar="SECONDS",
                        help="idle window after boot over which CPU is measured (default 60)")
    parser.add_argument("--quick", action="store_true", help="smoke check: idle 5 s, 1 run, no variants")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.idle = 1, 5.0
    if args.runs < 1 or args.idle <= 0:
        parser.error("--runs must be at least 1 and --idle positive")
    return args


def check_config(workdir: Path) -> None:
    """The daemon's configuration checked up front: a schema change fails here in its own words."""
    path = workdir / "check.toml"
    path.write_text(daemon_config("BENCH-CHECK", 9, workdir / "check-state"))
    result = subprocess.run([chargepoint_command(), "check-config", str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"daemon configuration rejected:\n{result.stdout}{result.stderr}")


async def run_all(args: argparse.Namespace, workdir: Path) -> list[Run]:
    """Every run in turn. SIGTERM cancels like Ctrl-C does, so the processes
    are still stopped and reaped on the way out."""
    current = asyncio.current_task()
    assert current is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    print("warm-up: one unmeasured boot of all (fills the bytecode and page caches) ...", flush=True)
    await one_run(0, 0.0, workdir)
    runs = []
    for run in range(1, args.runs + 1):
        print(f"run {run}/{args.runs}: booting the supervisors, then daemon and baseline, then idling "
              f"{args.idle:g} s ...", flush=True)
        runs.append(await one_run(run, args.idle, workdir))
    print()
    print_raw(runs, args.idle)
    print_medians(runs, args.idle)
    if not args.quick:
        await explain(runs[-1], len(runs), workdir)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header(args)
    with tempfile.TemporaryDirectory(prefix="chargepoint-footprint-") as tmp:
        workdir = Path(tmp)
        check_config(workdir)
        try:
            asyncio.run(run_all(args, workdir))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted; processes stopped", file=sys.stderr)
            return 130
        except RuntimeError as exc:  # a process that did not boot: its output says why
            print(f"footprint: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

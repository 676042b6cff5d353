"""The ``[safety]`` section, and where the safety supervisor's channel lives.

Both the daemon's full loader and the supervisor's own narrow view of the file
(``safety_view.py``) read ``[safety]`` through ``parse_safety``, so a value is
accepted or refused in the same words by both processes. ``channel_path`` is
the one place the channel's default is decided: the daemon connects where the
supervisor listens only if both ask the same function.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from chargepoint.config.model import Config, SafetyConfig
from chargepoint.config.reader import Reader, table

#: Longest path of a Unix socket (sun_path holds 108 bytes with the final NUL).
SOCKET_PATH_MAX = 107
#: The channel on a Raspberry Pi: under the supervisor's own runtime directory (its systemd unit's
#: RuntimeDirectory), which the daemon's user may enter but not replace.
RASPBERRYPI_CHANNEL = "/run/chargepoint-safety/channel.sock"
#: The channel's name in the state directory with the simulation (demo, tests: no /run needed).
SIMULATION_CHANNEL = "safety.sock"


def parse_safety(file: str, data: dict[str, Any]) -> SafetyConfig:
    """``[safety]``; errors name ``file``, the key and the reason."""
    r = Reader(file, table(file, data, "safety"), "safety")
    d = SafetyConfig()
    cfg = SafetyConfig(
        tick_s=r.number("tick_s", d.tick_s, low=0.001, high=0.05),
        contactor_settle_s=r.number("contactor_settle_s", d.contactor_settle_s, low=0.01, high=2),
        ventilation_available=r.boolean("ventilation_available", d.ventilation_available),
        rcd_auto_reclose_attempts=r.number(
            "rcd_auto_reclose_attempts", d.rcd_auto_reclose_attempts, low=0, high=10, integer=True
        ),
        orphan_grace_s=r.number("orphan_grace_s", d.orphan_grace_s, low=0),
        orphan_limit_a=r.number("orphan_limit_a", d.orphan_limit_a, low=6, high=80),
        channel=r.string("channel", d.channel),
    )
    if cfg.channel and not cfg.channel.startswith("/"):
        r.problem("channel", f"must be an absolute path (or \"\" for the default), not {cfg.channel!r}", None)
    elif len(cfg.channel.encode()) > SOCKET_PATH_MAX:
        r.problem("channel", f"must be at most {SOCKET_PATH_MAX} bytes long (a Unix socket path)", None)
    r.finish()
    return cfg


def channel_path(config: Config) -> str:
    """The supervisor's Unix socket: ``safety.channel``, or the backend's default.

    On the Raspberry Pi the supervisor runs as its own user with its own runtime
    directory; with the simulation both processes share the station's state
    directory, so a demo or a test needs no system directory.
    """
    if config.safety.channel:
        return config.safety.channel
    if config.hal_backend == "raspberrypi":
        return RASPBERRYPI_CHANNEL
    return str(PurePosixPath(config.station.state_dir) / SIMULATION_CHANNEL)

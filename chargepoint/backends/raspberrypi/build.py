"""Build the station's hardware on a Raspberry Pi from its board profile, in one process.

``build_pi_hardware`` puts the supervisor's safety devices (``chargepoint.supervisor.board``)
beside the meter and the card reader: what tests, the bring-up tool and the benchmark
use, with fakes for the pin factory, the I2C bus, the sysfs tree and the serial port.
``card_reader`` is the daemon's part, which ``chargepoint run`` also builds (through
the supervisor, ``backends/remote.py``). The profile itself (what is wired where) is
parsed and checked by ``chargepoint.config.board``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chargepoint.config.board import BoardConfig

if TYPE_CHECKING:
    from chargepoint.backends.hardware import Hardware
    from chargepoint.config import Config
    from hal.clock import Clock
    from hal.interfaces import Meter

log = logging.getLogger(__name__)


def build_pi_hardware(
    config: Config,
    *,
    pin_factory: Any = None,
    i2c_bus: Any = None,
    sysfs_root: Any = None,
    serial_factory: Callable[..., Any] | None = None,
    clock: Clock | None = None,
    meter: Meter | None = None,
    blocking_sleep: Callable[[float], None] | None = None,
) -> Hardware:
    """The station's hardware on the Raspberry Pi board described by ``config.board``, in one process.

    The safety loop is the supervisor's own (``chargepoint.supervisor.hardware.build_board``)
    with the meter and the card reader beside it: what the tests, the bring-up tool and the
    benchmark run in simulated time. ``chargepoint run`` instead reaches the board through the
    supervisor process (``backends/remote.py``).

    The keyword arguments replace the real thing in tests and benchmarks: a
    gpiozero pin factory (default: gpiozero's, lgpio on a Pi), an smbus2-like
    bus, the root of a sysfs PWM tree, pyserial's ``Serial``, the clock, the
    energy meter (default: built from ``[meter]``) and the sleep used while
    waiting for the hardware (ADC conversions, PWM export; default
    ``time.sleep``), which fakes that answer at once make unnecessary.
    """
    from chargepoint.backends.hardware import Hardware
    from chargepoint.core.connector import ConnectorHardware
    from chargepoint.supervisor.hardware import build_board

    safety = build_board(config, pin_factory=pin_factory, i2c_bus=i2c_bus, sysfs_root=sysfs_root, clock=clock,
                         blocking_sleep=blocking_sleep)
    guarded = safety.connectors[0]
    try:
        if meter is None:
            from chargepoint.backends.metering import build_meter, bus_pool

            meter = build_meter(config, config.connectors[0], safety.clock, pool=bus_pool(config))
        reader = card_reader(config.board, serial_factory)  # type: ignore[arg-type]
    except BaseException:
        safety.close()
        raise
    connector = ConnectorHardware(evse_id=guarded.id, evse=guarded.evse, meter=meter, limits=guarded.limits,
                                  connector_type=config.station.connector_type)
    return Hardware(safety.clock, [connector], reader)


def card_reader(board: BoardConfig, serial_factory: Callable[..., Any] | None) -> Any:
    r = board.rfid
    if r.type == "none":
        return None
    from hal.rfid import Pn532Reader, Rdm6300Reader

    extra: dict[str, Any] = {"hold_off_s": r.hold_off_s, "reopen_s": r.reopen_s}
    if serial_factory is not None:
        extra["serial_factory"] = serial_factory
    if r.type == "rdm6300":
        return Rdm6300Reader(r.port, r.baudrate, **extra)
    return Pn532Reader(r.port, r.baudrate, poll_interval_s=r.poll_interval_s, **extra)

"""The station's configuration file: typed sections, defaults, and errors that name the file, key and reason.

``load`` reads and checks a file; ``parse`` checks an already parsed document
(the demo and the tests build theirs in code). ``load_safety_view`` and
``load_board_view`` read only what the safety supervisor and ``safe-off`` need,
so keys they do not know elsewhere in the file never stop them.
"""

from chargepoint.config.loader import HAL_BACKENDS, TOP_LEVEL, load, parse
from chargepoint.config.meter_parse import BAUD_RATES, METER_KINDS
from chargepoint.config.model import (
    MEASURANDS,
    Config,
    ConnectorConfig,
    ControlConfig,
    MeterConfig,
    MqttConfig,
    OcppConfig,
    SafetyConfig,
    SimulationConfig,
    StationConfig,
)
from chargepoint.config.reader import ConfigError, Reader
from chargepoint.config.safety_parse import channel_path
from chargepoint.config.safety_view import load_board_view, load_safety_view
from chargepoint.config.web import WebConfig

__all__ = [
    "BAUD_RATES", "HAL_BACKENDS", "MEASURANDS", "METER_KINDS", "TOP_LEVEL", "Config", "ConfigError",
    "ConnectorConfig", "ControlConfig", "MeterConfig", "MqttConfig", "OcppConfig", "Reader", "SafetyConfig",
    "SimulationConfig", "StationConfig", "WebConfig", "channel_path", "load", "load_board_view",
    "load_safety_view", "parse",
]

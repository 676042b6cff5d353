"""The station's configuration file: typed sections, defaults, and errors that name the file, key and reason.

``load`` reads and checks a file; ``parse`` checks an already parsed document
(the demo and the tests build theirs in code).
"""

from chargepoint.config.loader import BAUD_RATES, HAL_BACKENDS, METER_KINDS, TOP_LEVEL, load, parse
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
from chargepoint.config.web import WebConfig

__all__ = [
    "BAUD_RATES", "HAL_BACKENDS", "MEASURANDS", "METER_KINDS", "TOP_LEVEL", "Config", "ConfigError",
    "ConnectorConfig", "ControlConfig", "MeterConfig", "MqttConfig", "OcppConfig", "Reader", "SafetyConfig",
    "SimulationConfig", "StationConfig", "WebConfig", "load", "parse",
]

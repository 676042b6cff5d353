"""The vocabulary of register maps: quantities, units, data types, function codes.

Split from :mod:`hal.meters.registermap` because these tables are shared by
everything that touches a meter's values: the map parser validates against
them, the codec converts with them, and ``chargepoint meter`` prints the
canonical units and OCPP measurands from them. They are plain data with no
behaviour, so they sit at the bottom and import nothing of the meter modules.
Import them from :mod:`hal.meters.registermap`.
"""

from __future__ import annotations

from hal.interfaces import Measurand

#: What each quantity measures, which fixes the units its field may be given in.
QUANTITIES: dict[str, str] = {
    "energy_import": "energy",
    "energy_export": "energy",
    "power": "power",
    "power_l1": "power",
    "power_l2": "power",
    "power_l3": "power",
    "current_l1": "current",
    "current_l2": "current",
    "current_l3": "current",
    "voltage_l1": "voltage",
    "voltage_l2": "voltage",
    "voltage_l3": "voltage",
    "frequency": "frequency",
    "power_factor": "ratio",
    "power_factor_l1": "ratio",
    "power_factor_l2": "ratio",
    "power_factor_l3": "ratio",
}

#: Units a map may state per kind, with the factor to the canonical unit (first).
UNITS: dict[str, dict[str, float]] = {
    "energy": {"Wh": 1.0, "kWh": 1000.0},
    "power": {"W": 1.0, "kW": 1000.0},
    "current": {"A": 1.0, "mA": 0.001},
    "voltage": {"V": 1.0},
    "frequency": {"Hz": 1.0},
    "ratio": {"": 1.0},
}

CANONICAL_UNIT = {kind: next(iter(units)) for kind, units in UNITS.items()}

#: The OCPP measurand and phase each quantity is reported as (a negative power goes out
#: as Power.Active.Export, see ``chargepoint.protocol.common.measurands``).
MEASURANDS: dict[str, tuple[Measurand, str | None]] = {
    "energy_import": (Measurand.ENERGY_IMPORT, None),
    "energy_export": (Measurand.ENERGY_EXPORT, None),
    "power": (Measurand.POWER_IMPORT, None),
    "power_l1": (Measurand.POWER_IMPORT, "L1"),
    "power_l2": (Measurand.POWER_IMPORT, "L2"),
    "power_l3": (Measurand.POWER_IMPORT, "L3"),
    "current_l1": (Measurand.CURRENT_IMPORT, "L1"),
    "current_l2": (Measurand.CURRENT_IMPORT, "L2"),
    "current_l3": (Measurand.CURRENT_IMPORT, "L3"),
    "voltage_l1": (Measurand.VOLTAGE, "L1-N"),
    "voltage_l2": (Measurand.VOLTAGE, "L2-N"),
    "voltage_l3": (Measurand.VOLTAGE, "L3-N"),
    "frequency": (Measurand.FREQUENCY, None),
    "power_factor": (Measurand.POWER_FACTOR, None),
    "power_factor_l1": (Measurand.POWER_FACTOR, "L1"),
    "power_factor_l2": (Measurand.POWER_FACTOR, "L2"),
    "power_factor_l3": (Measurand.POWER_FACTOR, "L3"),
}

#: Data types: registers taken, signed, float. Names as pymodbus's DATATYPE.
TYPES: dict[str, tuple[int, bool, bool]] = {
    "int16": (1, True, False),
    "uint16": (1, False, False),
    "int32": (2, True, False),
    "uint32": (2, False, False),
    "int64": (4, True, False),
    "uint64": (4, False, False),
    "float32": (2, True, True),
}

FUNCTIONS = {3: "holding registers", 4: "input registers"}
#: The protocol's ceiling for one read request (FC03/FC04).
PROTOCOL_MAX_REGISTERS = 125

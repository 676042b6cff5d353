"""Energy meters over Modbus RTU and TCP.

* :mod:`hal.meters.registermap`: register maps as data (``maps/*.toml``) and
  the one decoder that serves every meter;
* :mod:`hal.meters.bus`: the RTU and TCP transports (pymodbus async clients),
  one client and one lock per bus, shared by the meters on it;
* :mod:`hal.meters.modbus_meter`: :class:`~hal.meters.modbus_meter.ModbusMeter`,
  the :class:`hal.interfaces.Meter` that reads a map over a bus, with typed
  failures and plausibility checks;
* :mod:`hal.meters.simdevice`: a simulated meter, a pymodbus server holding a
  map's register layout, for tests, the demo and the benchmark.

Only the register-map module is imported here; the others load pymodbus.
"""

from hal.meters.registermap import MapError, RegisterMap, load_map, parse_map, shipped_models

__all__ = ["MapError", "RegisterMap", "load_map", "parse_map", "shipped_models"]

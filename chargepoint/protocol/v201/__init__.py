"""OCPP 2.0.1: the station core spoken in 2.0.1 (adapter, handlers, translation)."""

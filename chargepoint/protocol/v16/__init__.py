"""OCPP 1.6J: the adapter, the configuration keys, and the bench central system."""

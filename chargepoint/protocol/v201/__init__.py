"""OCPP 2.0.1: the device model, the provisioning handlers, and the adapter."""

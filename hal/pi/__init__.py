"""The Raspberry Pi backends: GPIO, hardware PWM, the ADCs, relays, the heartbeat pump's output."""

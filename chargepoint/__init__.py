"""chargepoint: controller software for AC EV charging stations on a Raspberry Pi."""

__version__ = "0.1.0"

"""Hardware abstraction layer: small interfaces for the charger's hardware.

Every driver here has a real backend and a physical simulation. Nothing in this
package imports from ``chargepoint``: a new board is a new backend here, and the
station above never learns which one it runs on.
"""

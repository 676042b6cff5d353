"""The web dashboard and Prometheus metrics, served by the daemon on its event loop.

It reaches the station only through the station service API
(``chargepoint.control.service``), like the control socket; nothing but the
app imports it.
"""

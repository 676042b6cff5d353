"""What ``check-config`` says about a station without a CSMS (``ocpp.csms_url`` empty or absent).

Standalone is a valid configuration (a home station: the local cards or free
vend decide who may charge), so it is no error; but settings that only matter
for the link to a CSMS, set in the file, do nothing then, and a person who set
them probably meant to configure a CSMS: each is a warning naming the key.
Whether any card exists is the daemon's knowledge, not the file's: the
self-test warns when neither cards nor free vend let anyone charge.
"""

from __future__ import annotations

from chargepoint.config.model import Config

#: [ocpp] keys that only the link to a CSMS uses.
LINK_KEYS = ("security_profile", "authorization_key", "basic_auth_password", "ca_bundle")


def standalone_warnings(config: Config) -> list[str]:
    if not config.ocpp.standalone:
        return []
    return [f"ocpp.{key} has no effect without ocpp.csms_url (standalone: no CSMS)"
            for key in LINK_KEYS if f"ocpp.{key}" in config.file_keys]


def authority(config: Config) -> str:
    """Who decides who may charge, in the words of the check-config summary."""
    if not config.ocpp.standalone:
        return f"CSMS {config.ocpp.csms_url}"
    return "no CSMS (standalone: " + ("free vend and local cards)" if config.station.free_vend
                                      else "local cards from chargepoint cards)")

"""A remote start with the charging profile its request carries: the station's sequence, once.

A CSMS may send the TxProfile of the transaction to come with its start
request (1.6 RemoteStartTransaction, 2.0.1/2.1 RequestStartTransaction). The
station decides the same way whatever version asked: a profile the engine would
not take refuses the start (a limit the CSMS asked for is never dropped), and a
start that is taken installs the profile for the EVSE that took it, before any
energy flows. The adapters only translate the profile and the answer.
"""

from __future__ import annotations

import dataclasses
import logging

from chargepoint.core.commands import StartResult
from chargepoint.core.energy.schedule import ChargingProfile, Purpose
from chargepoint.core.energy.smart_charging import SmartCharging
from chargepoint.core.events import IdToken
from chargepoint.core.station import Station

log = logging.getLogger(__name__)


def profile_refusal(engine: SmartCharging | None, profile: ChargingProfile) -> str | None:
    """Why the station's charging profiles (``engine``) would not take ``profile`` for a transaction
    about to begin, or None."""
    if engine is None:
        return "this station has no smart charging"
    if profile.purpose is not Purpose.TX:
        return "its purpose must be TxProfile"
    return engine.refusal(profile, pending=True)


def remote_start(station: Station, engine: SmartCharging | None, token: IdToken, evse_id: int | None,
                 profile: ChargingProfile | None = None, *, replace_same_level: bool = True,
                 remote_start_id: int | None = None) -> StartResult:
    """Start as the operator asks; with ``profile``, only if it is taken, and install it with the start.

    ``replace_same_level``: whether the profile replaces one of the same purpose and stack level
    (1.6 says so; 2.0.1 refuses that case before it gets here)."""
    if profile is not None:
        reason = profile_refusal(engine, profile)
        if reason is not None:
            log.info("remote start: charging profile %d refused: %s", profile.id, reason)
            return StartResult(False, evse_id, f"charging profile {profile.id} refused: {reason}")
    result = station.remote_start(token, evse_id, remote_start_id=remote_start_id)
    if result.accepted and profile is not None and result.evse_id is not None:
        assert engine is not None  # profile_refusal said there is one
        engine.install(dataclasses.replace(profile, evse_id=result.evse_id), pending=True,
                       replace_same_level=replace_same_level)
    return result

"""What a 2.0.1 block is given: every block's context and the device model it reports from."""

from __future__ import annotations

from typing import Protocol

from chargepoint.protocol.common.block import BlockContext
from chargepoint.protocol.v201.device_model import DeviceModel


class Context201(BlockContext, Protocol):
    device_model: DeviceModel

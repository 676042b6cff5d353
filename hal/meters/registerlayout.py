"""A meter model's register layout, and the read requests planned from it.

Split from :mod:`hal.meters.registermap` because :class:`RegisterMap` is the
value every meter module works with once a map is loaded, while the parser
that builds one from a TOML file is needed only at load time. Planning merges
fields with the same function code into as few requests as the meter allows:
two fields share a request if they are adjacent, or if every register between
them lies inside a ``readable`` span, and the request stays within the meter's
``max_registers``. Import these names from :mod:`hal.meters.registermap`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from hal.meters.fieldcodec import Field, decode_field, encode_field


@dataclass(frozen=True)
class Request:
    """One read request of a plan: a contiguous register range."""

    function: int
    address: int
    count: int
    fields: tuple[Field, ...]

    def frame_bytes(self) -> tuple[int, int]:
        """RTU request and normal response length in bytes (with address and CRC)."""
        return 8, 5 + 2 * self.count


@dataclass(frozen=True)
class Span:
    function: int
    first: int
    last: int

    def covers(self, function: int, first: int, last: int) -> bool:
        return function == self.function and self.first <= first and last <= self.last


@dataclass(frozen=True)
class RegisterMap:
    """A meter model's register layout and the read plan that follows from it."""

    model: str
    title: str
    source: str
    max_registers: int
    fields: tuple[Field, ...]
    readable: tuple[Span, ...] = ()
    aliases: tuple[str, ...] = ()

    def field(self, quantity: str) -> Field | None:
        return next((f for f in self.fields if f.quantity == quantity), None)

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(f.quantity for f in self.fields)

    # ------------------------------------------------------------ planning
    def plan(self) -> tuple[Request, ...]:
        """The fewest requests that read every field (cached per map)."""
        return _plan(self)

    def _mergeable(self, function: int, first: int, gap_start: int, gap_end: int, last: int) -> bool:
        if last - first + 1 > self.max_registers:
            return False
        if gap_start == gap_end:
            return True
        return any(span.covers(function, gap_start, gap_end - 1) for span in self.readable)

    # ------------------------------------------------------------- codec
    def decode(self, responses: Sequence[Sequence[int]]) -> dict[str, float | None]:
        """Values in canonical units from the registers of each planned request.

        A float register holding NaN or infinity decodes as None (not
        measured); everything else is a number.
        """
        plan = self.plan()
        if len(responses) != len(plan):
            raise ValueError(f"{len(responses)} responses for a plan of {len(plan)} requests")
        values: dict[str, float | None] = {}
        for request, registers in zip(plan, responses, strict=True):
            if len(registers) != request.count:
                raise ValueError(f"request at {request.address:#06x} returned {len(registers)} "
                                 f"registers, not {request.count}")
            for f in request.fields:
                offset = f.address - request.address
                values[f.quantity] = decode_field(f, registers[offset:offset + f.count])
        return values

    def encode(self, values: Mapping[str, float | None]) -> dict[tuple[int, int], list[int]]:
        """Registers per (function, address) holding ``values`` in this meter's format.

        Quantities missing from ``values`` (or None) are written as zero.
        """
        return {(f.function, f.address): encode_field(f, values.get(f.quantity))
                for f in self.fields}


@cache
def _plan(register_map: RegisterMap) -> tuple[Request, ...]:
    requests: list[Request] = []
    by_function: dict[int, list[Field]] = {}
    for f in register_map.fields:
        by_function.setdefault(f.function, []).append(f)
    for function in sorted(by_function):
        group: list[Field] = []
        for f in sorted(by_function[function], key=lambda f: f.address):
            if group:
                first, end = group[0].address, max(g.end for g in group)
                if register_map._mergeable(function, first, end, f.address, f.end - 1):
                    group.append(f)
                    continue
                requests.append(_request(function, group))
            group = [f]
        if group:
            requests.append(_request(function, group))
    return tuple(requests)


def _request(function: int, group: list[Field]) -> Request:
    first = group[0].address
    return Request(function, first, max(f.end for f in group) - first, tuple(group))

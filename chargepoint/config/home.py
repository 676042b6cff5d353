"""The ``[home]`` section: what the homeowner pays for a kWh, and what exporting one earns.

A home station's session cost is computed from these by the same tariff engine
that prices an operator's tariff (``chargepoint.core.tariffs.tariff``). Prices are
read as exact decimals: ``price_per_kwh = 0.3412`` is 0.3412, not the binary
float nearest to it; a quoted string (``"0.3412"``) is read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from chargepoint.config.reader import Reader, table

#: Highest price per kWh taken (a typo of a decimal point, not a tariff).
MAX_PRICE = 100


@dataclass(frozen=True)
class HomeConfig:
    """The home tariff; None: not configured (no cost is shown unless a CSMS sets a tariff)."""

    #: A kWh from the grid, taxes included, as the electricity bill states it.
    price_per_kwh: Decimal | None = None
    #: What the grid pays for an exported kWh: the price of solar energy charged in pv mode
    #: (the export it replaced). None: pv mode costs price_per_kwh too.
    feed_in_price_per_kwh: Decimal | None = None
    #: ISO 4217 code of the prices.
    currency: str = "EUR"


def _price(r: Reader, name: str) -> Decimal | None:
    if isinstance(r.table.get(name), str):
        text = r.string(name)
        try:
            price = Decimal(text)
        except InvalidOperation:
            return r.problem(name, f"must be a number, not {text!r}", None)
        if not price.is_finite() or not 0 <= price <= MAX_PRICE:
            return r.problem(name, f"must be between 0 and {MAX_PRICE} per kWh, not {text}", None)
        return price
    value = r.number(name, None, low=0, high=MAX_PRICE, optional=True)
    return None if value is None else Decimal(repr(value))


def parse_home(file: str, data: dict[str, Any]) -> HomeConfig:
    r = Reader(file, table(file, data, "home"), "home")
    currency = r.string("currency", HomeConfig.currency)
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        currency = r.problem("currency", f"must be an ISO 4217 code such as EUR, not {currency!r}",
                             HomeConfig.currency)
    cfg = HomeConfig(price_per_kwh=_price(r, "price_per_kwh"),
                     feed_in_price_per_kwh=_price(r, "feed_in_price_per_kwh"), currency=currency)
    r.finish()
    return cfg

"""``[home]``: the homeowner's prices, read as exact decimals, and the mistakes a person makes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chargepoint.config import ConfigError, parse

BASE = {"station": {"identity": "CP-1"}}


def test_prices_are_exact_decimals_whether_written_as_numbers_or_text() -> None:
    config = parse({**BASE, "home": {"price_per_kwh": 0.3412, "feed_in_price_per_kwh": "0.081",
                                     "currency": "CHF"}})
    assert config.home.price_per_kwh == Decimal("0.3412")
    assert config.home.feed_in_price_per_kwh == Decimal("0.081")
    assert config.home.currency == "CHF"


def test_absent_means_no_home_tariff() -> None:
    config = parse(BASE)
    assert (config.home.price_per_kwh, config.home.feed_in_price_per_kwh, config.home.currency) == (
        None, None, "EUR")


@pytest.mark.parametrize(("home", "key", "words"), [
    ({"price_per_kwh": -0.1}, "home.price_per_kwh", "at least 0"),
    ({"price_per_kwh": "thirty"}, "home.price_per_kwh", "must be a number"),
    ({"price_per_kwh": 300}, "home.price_per_kwh", "at most 100"),
    ({"currency": "euro"}, "home.currency", "ISO 4217"),
    ({"price_per_kw": 0.3}, "home.price_per_kw", "price_per_kwh"),
])
def test_mistakes_name_the_key(home: dict, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({**BASE, "home": home})
    assert caught.value.key == key
    assert words in str(caught.value)

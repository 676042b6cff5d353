"""``chargepoint sessions`` shows the sun's share and the cost where the station knows them."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from chargepoint.cli.control_status import _sessions_view


def text_of(result: dict[str, Any]) -> str:
    view = _sessions_view(result)
    if isinstance(view, str):
        return view
    out = Console(file=io.StringIO(), width=200, color_system=None)
    out.print(view)
    return out.file.getvalue()  # type: ignore[attr-defined]


def session(**fields: Any) -> dict[str, Any]:
    base = {"connector": 1, "id_tag": "CAR", "card_name": None, "started_at": 1_800_000_000.0,
            "duration_s": 3600.0, "energy_wh": 7400.0, "reason": "ev_disconnected", "remote_id": None,
            "local_id": "abc", "standalone": True, "solar_share": None, "cost": None}
    return {**base, **fields}


def test_a_home_station_shows_the_solar_share_and_the_cost_per_session():
    cost = {"currency": "EUR", "excl_tax": "1.86", "incl_tax": "2.22", "tariff_id": "home", "kind": "home",
            "energy_wh": 7400.0}
    text = text_of({"running": [session(solar_share=0.25, cost=None)],
                    "finished": [session(solar_share=0.704, cost=cost), session()]})
    header = next(line for line in text.splitlines() if "connector" in line)
    assert "solar" in header and "cost" in header
    assert "25 %" in text and "70 %" in text and "2.22 EUR" in text
    assert "(running)" in text and "ev_disconnected" in text


def test_a_station_without_them_keeps_the_plain_table():
    text = text_of({"running": [], "finished": [session()]})
    header = next(line for line in text.splitlines() if "connector" in line)
    assert "solar" not in header and "cost" not in header
    assert text_of({"running": [], "finished": []}) == "No sessions yet."

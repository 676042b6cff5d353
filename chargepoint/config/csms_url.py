"""The CSMS URL and the charge point identity: where the identity goes, and what a URL may hold.

OCPP-J puts the identity as the last path segment of the URL the station
connects to. Some CSMSs want it elsewhere: before a trailing slash, or in a
query. A ``{identity}`` placeholder in the URL says where; without one the
identity is appended as the last path segment. Either way the identity is
percent-encoded, so an identity with a space or a slash stays one segment.
The same rules serve the configuration file's ``csms_url`` and the URLs a
2.0.1 CSMS stores in network profiles, so both are checked alike.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

PLACEHOLDER = "{identity}"
_BRACED = re.compile(r"\{[^{}]*\}?|\}")


def endpoint(url: str, identity: str) -> str:
    """The URL the station connects to: ``{identity}`` replaced, else the identity appended."""
    encoded = quote(identity, safe="")
    if PLACEHOLDER in url:
        return url.replace(PLACEHOLDER, encoded)
    return url.rstrip("/") + "/" + encoded


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a CSMS URL, in words; None if it can."""
    parts = urlsplit(url.replace(PLACEHOLDER, "identity"))
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"{url!r} is not a ws:// or wss:// URL with a host"
    if PLACEHOLDER in urlsplit(url).netloc:
        return f"{PLACEHOLDER} may stand in the path or the query, not in the host"
    for found in _BRACED.findall(url.replace(PLACEHOLDER, "")):
        return (f"{found!r} is not a placeholder this station knows: the only one is {PLACEHOLDER} "
                f"(where the identity goes; without it the identity is appended as the last path segment)")
    if parts.fragment:
        return "must not have a #fragment (a WebSocket URL has none)"
    return None

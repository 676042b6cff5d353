"""Who may do what on the dashboard: the exposure check at start, logins, and the guards.

The rules, in one place:

* Without a password the server may listen on loopback only (the daemon
  refuses to start otherwise, see ``check_exposure``), and the dashboard is
  then view-only: every action needs a login, so a loopback port cannot be
  a way round the control socket's group permission.
* With a password set, the pages' data and every action need a login.
  Sessions are random cookies (HttpOnly, SameSite=Strict, Secure under TLS);
  every state-changing request carries the session's CSRF token in a header
  and a JSON body, and an Origin header, if sent, must be this server.
* Logins are throttled per client address (an IPv6 client by its /64) and
  per pool (the network, loopback) on the injected clock
  (``auth.LoginThrottle``); each attempt is counted before its password is
  checked, and the scrypt check runs in a thread, one at a time.
* The password file is looked at (a stat, in a thread) before every guarded
  request, so a password set, changed or removed while the daemon runs
  counts at once; a changed password ends every session.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chargepoint.config import Config, ConfigError
from chargepoint.config.web import is_loopback
from chargepoint.web import passwords
from chargepoint.web.auth import LOOPBACK, REMOTE, LoginThrottle, Session, Sessions, csrf_ok
from hal.clock import Clock

log = logging.getLogger(__name__)

COOKIE = "cp_session"
CSRF_HEADER = "X-CSRF-Token"


def check_exposure(config: Config) -> bool:
    """At start: whether a password is set; a ConfigError if the listen address needs one and none is.

    Blocking (reads the state directory): call it in a thread.
    """
    web_config = config.web
    try:
        stored = passwords.read_hash(config.station.state_dir)
    except passwords.PasswordError as exc:
        raise ConfigError(config.source, "web.listen", str(exc)) from None
    if stored is None and not is_loopback(web_config.listen):
        raise ConfigError(config.source, "web.listen",
                          f"listening on {web_config.listen} (beyond this machine) needs a dashboard "
                          f"password first: run `chargepoint web passwd --config {config.source}`")
    return stored is not None


def client_of(request: web.Request) -> str:
    return request.remote or "unknown"


def from_loopback(request: web.Request) -> bool:
    try:
        address = ipaddress.ip_address(client_of(request))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def throttle_key(client: str) -> str:
    """Whose budget a login from ``client`` spends: its address, or for IPv6 its /64 network.

    One IPv6 host usually has a whole /64 to pick addresses from.
    """
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None and not address.is_loopback:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return client


@dataclass
class Access:
    config: Config
    clock: Clock
    #: A password is set (or the server listens beyond loopback): pages need a login.
    protected: bool
    tls: bool = False

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.clock)
        self.throttle = LoginThrottle(self.clock)
        self._checking = asyncio.Lock()
        self._refreshing = asyncio.Lock()
        self._stamp: tuple[int, ...] | None | bool = False  # False: not looked at yet
        self._hash: str | None = None

    async def refresh(self) -> None:
        """Take in a password set, changed or removed since the last look (``chargepoint web passwd``).

        One stat in a thread per guarded request; the file is read only when it
        changed. In order (a lock), so an older look never overwrites a newer one.
        """
        state_dir = self.config.station.state_dir
        async with self._refreshing:
            stamp = await asyncio.to_thread(passwords.stamp, state_dir)
            if stamp == self._stamp:
                return
            try:
                stored = await asyncio.to_thread(passwords.read_hash, state_dir)
            except passwords.PasswordError as exc:
                log.error("web: %s; the dashboard needs a login and none succeeds", exc)
                stored = ""  # fail closed: protected, and no password matches
            first, self._stamp = self._stamp is False, stamp
            if stored == self._hash:
                return
            self._hash = stored
            self.protected = stored is not None or not is_loopback(self.config.web.listen)
            if not first and len(self.sessions):  # whoever knew the old password is out
                log.warning("web: the dashboard password changed: %d session(s) ended", len(self.sessions))
                self.sessions.end_all()

    def session(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def may_view(self, request: web.Request) -> bool:
        return not self.protected or self.session(request) is not None

    def require_view(self, request: web.Request) -> None:
        if not self.may_view(request):
            raise problem(401, "login_required", "log in to see the station")

    def require_action(self, request: web.Request) -> Session:
        """The session of a state-changing request, after the origin and CSRF checks."""
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise problem(403, "bad_origin", "request from another site refused")
        session = self.session(request)
        if session is None:
            if not self.protected:
                raise problem(403, "no_password",
                              "actions need a login, and no dashboard password is set: "
                              "run `chargepoint web passwd`")
            raise problem(401, "login_required", "log in first")
        if not csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise problem(403, "csrf", "missing or wrong CSRF token: reload the page")
        if request.content_type != "application/json":
            raise problem(415, "bad_request", "send JSON")
        return session

    async def login(self, request: web.Request, password: Any) -> Session:
        client = client_of(request)
        if not isinstance(password, str) or not 1 <= len(password) <= 1024:
            raise problem(400, "bad_request", "password must be a string")
        key, pool = throttle_key(client), LOOPBACK if from_loopback(request) else REMOTE
        attempt = self.throttle.reserve(key, pool)  # counted as failed now: parallel guesses meet the limit
        if attempt is None:
            wait = self.throttle.retry_after(key, pool)
            log.warning("web: login from %s refused: too many failed attempts", client)
            raise problem(429, "rate_limited", f"too many failed logins: try again in {wait:.0f} s",
                          headers={"Retry-After": str(int(wait) + 1)})
        ok = False
        try:
            async with self._checking:  # one scrypt at a time: a login flood cannot take every core
                try:
                    stored = await asyncio.to_thread(passwords.read_hash, self.config.station.state_dir)
                except passwords.PasswordError as exc:
                    self.throttle.release(attempt)
                    log.error("web: %s", exc)
                    raise problem(500, "password_file", str(exc)) from None
                if stored is None:
                    self.throttle.release(attempt)
                    raise problem(403, "no_password",
                                  "no dashboard password is set: run `chargepoint web passwd`")
                self.protected = True
                ok = await asyncio.to_thread(passwords.verify_password, password, stored)
        finally:
            if ok:
                self.throttle.succeeded(attempt)
        if not ok:
            log.warning("web: failed login from %s", client)
            raise problem(401, "wrong_password", "wrong password")
        log.info("web: login from %s", client)
        return self.sessions.create(client)

    def set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict", secure=self.tls,
                            path="/")


def problem(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    """An HTTP error with a JSON body ``{"error": {"code", "message"}}``, as the page shows them."""
    cls = web.HTTPException
    for candidate in (web.HTTPBadRequest, web.HTTPUnauthorized, web.HTTPForbidden, web.HTTPConflict,
                      web.HTTPMisdirectedRequest,
                      web.HTTPUnsupportedMediaType, web.HTTPTooManyRequests, web.HTTPServiceUnavailable,
                      web.HTTPInternalServerError, web.HTTPNotFound):
        if candidate.status_code == status:
            cls = candidate
            break
    return cls(text=json.dumps({"error": {"code": code, "message": message}}),
               content_type="application/json", headers=headers)

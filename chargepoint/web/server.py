"""The web server: dashboard, its JSON API and live feed, and ``/metrics``, on the daemon's event loop.

aiohttp serves on the daemon's own loop; nothing here blocks it: the
password check and the TLS files are read in threads, the session history is
read in the store's thread, and the live feed is built once a second for all
pages together (``feed.py``). A slow or hostile client cannot make the daemon
wait or hold more than a bounded amount for it: request bodies are capped,
live streams are capped in number, per client and with slots kept for
loopback (``limits.py``), each holds one snapshot at most, and a write that a
client does not take within ``WRITE_TIMEOUT_S`` ends its stream. Every route
first checks the Host header against this station's names (``hosts.py``).
The safety loops run in their own threads and never wait for this loop
(bench/safety_latency.py measures them with and without web load).

Routes: ``/`` and ``/static/*`` (the page, its web app manifest and icons,
shipped in the package: no asset comes from the internet and nothing is
built), ``/api/session``, ``/api/login``, ``/api/logout``, ``/api/state``,
``/api/live`` (server-sent events), ``/api/cards`` (logged in),
``/api/action/<name>`` and ``/metrics``. Actions are the control socket's own
commands (``actions.py``), so the dashboard can do nothing the ``chargepoint``
CLI could not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from importlib import resources
from typing import Any

from aiohttp import web

from chargepoint.config import Config, ConfigError
from chargepoint.control.commands import COMMANDS
from chargepoint.control.errors import ControlError
from chargepoint.control.service import StationService
from chargepoint.web.access import Access, check_exposure, client_of, from_loopback, problem
from chargepoint.web.actions import ACTIONS, MODE_ORDER, checked
from chargepoint.web.feed import Feed, encode
from chargepoint.web.hosts import allowed_names, host_name, is_allowed
from chargepoint.web.limits import MAX_STREAMS, MAX_STREAMS_PER_CLIENT, StreamSlots
from chargepoint.web.metrics import CONTENT_TYPE, registry_for, render
from chargepoint.web.ocppstats import MessageCounter
from hal.clock import Clock

log = logging.getLogger(__name__)

#: Largest request body (bytes): a login or an action is a few dozen.
MAX_BODY = 16 * 1024
#: A live stream whose client does not take a snapshot within this long is closed.
WRITE_TIMEOUT_S = 15.0
#: /metrics and /api/state answer from a copy at most this old (s), so a client asking
#: back to back costs the daemon HTTP parsing, not a fresh collection each time.
CACHE_S = 1.0
#: At stop, requests still running get this long (the live streams are ended first).
SHUTDOWN_S = 2.0
#: Files under /static/ (and the page itself), read once at start.
ASSETS = {"index.html": "text/html", "style.css": "text/css",
          **{name: "text/javascript" for name in ("util.js", "chart.js", "panels.js", "cards.js", "app.js")},
          "manifest.webmanifest": "application/manifest+json", "icon.svg": "image/svg+xml",
          "icon-192.png": "image/png", "icon-512.png": "image/png"}
#: Assets that are not text (no charset).
BINARY = ("icon-192.png", "icon-512.png")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def load_assets() -> dict[str, bytes]:
    folder = resources.files("chargepoint.web") / "static"
    return {name: (folder / name).read_bytes() for name in ASSETS}


def tls_context(config: Config) -> ssl.SSLContext | None:
    web_config = config.web
    if not web_config.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(web_config.tls_cert, web_config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(config.source, "web.tls_cert",
                          f"cannot use {web_config.tls_cert} with {web_config.tls_key}: {exc}") from None
    return context


class WebServer:
    """One daemon's dashboard and metrics endpoint."""

    def __init__(self, service: StationService, messages: MessageCounter, *, protected: bool,
                 assets: dict[str, bytes], ssl_context: ssl.SSLContext | None = None,
                 feed: Feed | None = None, clock: Clock | None = None) -> None:
        self.service = service
        self.config = service.config
        # Sessions and the login throttle keep time on this clock (the station's unless a test injects one).
        self.access = Access(service.config, clock or service.clock, protected, tls=ssl_context is not None)
        self.assets = assets
        self.ssl_context = ssl_context
        self.feed = feed or Feed(service)
        self.registry = registry_for(service, messages)
        self.streams = StreamSlots()
        self.hosts = allowed_names(service.config.web)
        self._cached: dict[str, tuple[float, bytes]] = {}
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self.port: int | None = None

    @classmethod
    async def prepare(cls, service: StationService, messages: MessageCounter) -> WebServer:
        """Check the exposure rule and read the page and TLS files (in a thread); ConfigError if refused."""
        protected = await asyncio.to_thread(check_exposure, service.config)
        assets = await asyncio.to_thread(load_assets)
        context = await asyncio.to_thread(tls_context, service.config)
        return cls(service, messages, protected=protected, assets=assets, ssl_context=context)

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_headers, self._guard])
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/session", self.session)
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/live", self.live)
        app.router.add_get("/api/cards", self.cards)
        app.router.add_post("/api/action/{name}", self.action)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def start(self) -> None:
        web_config = self.config.web
        # access_log=None: one log line per event, not per request (the recorder keeps events).
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, keepalive_timeout=15.0,
                                     shutdown_timeout=SHUTDOWN_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, web_config.listen, web_config.port, ssl_context=self.ssl_context,
                           backlog=64)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(self.config.source, "web.port",
                              f"cannot listen on {web_config.listen}:{web_config.port}: "
                              f"{exc.strerror or exc}") from None
        server = site._server  # the bound socket: port 0 in tests picks a free one
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else web_config.port
        self._feed_task = asyncio.ensure_future(self.feed.run())
        scheme = "https" if self.ssl_context else "http"
        log.info("web dashboard on %s://%s:%d/ (%s)", scheme, web_config.listen, self.port,
                 "login required" if self.access.protected else "view-only: no password set")

    async def close(self) -> None:
        self.feed.close()  # ends the live streams, which would otherwise wait for the next snapshot
        if self._feed_task is not None:
            self._feed_task.cancel()
            await asyncio.gather(self._feed_task, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ pages
    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=self.assets["index.html"], content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.assets or name == "index.html":
            raise web.HTTPNotFound()
        return web.Response(body=self.assets[name], content_type=ASSETS[name],
                            charset=None if name in BINARY else "utf-8",
                            headers={"Cache-Control": "no-cache"})

    # ------------------------------------------------------------------ login
    async def session(self, request: web.Request) -> web.Response:
        session = self.access.session(request)
        return _json({"identity": self.config.station.identity, "protected": self.access.protected,
                      "logged_in": session is not None, "csrf": session.csrf if session else None,
                      "actions": list(ACTIONS) if session is not None else [], "modes": list(MODE_ORDER),
                      "standalone": self.config.ocpp.standalone})

    async def login(self, request: web.Request) -> web.Response:
        body = await _body(request)
        session = await self.access.login(request, body.get("password"))
        response = _json({"logged_in": True, "csrf": session.csrf, "actions": list(ACTIONS)})
        self.access.set_cookie(response, session)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        session = self.access.require_action(request)
        self.access.sessions.end(session.token)
        response = _json({"logged_in": False})
        response.del_cookie("cp_session", path="/")
        return response

    # ------------------------------------------------------------------- data
    async def state(self, request: web.Request) -> web.Response:
        self.access.require_view(request)
        body = self._cache("state")
        if body is None:
            await self.feed.refresh_sessions()
            body = self._store("state", json.dumps(self.feed.full()).encode())
        return web.Response(body=body, content_type="application/json")

    def _cache(self, name: str) -> bytes | None:
        entry = self._cached.get(name)
        now = asyncio.get_running_loop().time()
        return entry[1] if entry is not None and now - entry[0] < CACHE_S else None

    def _store(self, name: str, body: bytes) -> bytes:
        self._cached[name] = (asyncio.get_running_loop().time(), body)
        return body

    async def live(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the whole state first, then one update a second."""
        self.access.require_view(request)
        client = client_of(request)
        refused = self.streams.take(client, loopback=from_loopback(request))
        if refused == "client":
            raise problem(429, "busy", f"{MAX_STREAMS_PER_CLIENT} pages are open from {client} already")
        if refused is not None:
            raise problem(503, "busy", f"{MAX_STREAMS} pages are open already")
        queue = self.feed.subscribe()
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                                   "Cache-Control": "no-store", **SECURITY_HEADERS})
            await response.prepare(request)
            await self.feed.refresh_sessions()
            await asyncio.wait_for(response.write(encode("full", self.feed.full())), WRITE_TIMEOUT_S)
            while self.access.may_view(request):
                data = await queue.get()
                if not data:
                    break  # the server is stopping
                await asyncio.wait_for(response.write(data), WRITE_TIMEOUT_S)
                await self.access.refresh()  # a password set meanwhile ends a stream it no longer allows
        except (TimeoutError, ConnectionError):
            pass  # the page went away or stopped reading
        finally:
            self.feed.unsubscribe(queue)
            self.streams.give_back(client)
        return response

    async def action(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ACTIONS:
            raise problem(404, "unknown_action",
                          f"no action {name!r}; the dashboard has {', '.join(ACTIONS)}")
        self.access.require_action(request)
        args = await _body(request)
        log.info("web: %s by %s %s", name, client_of(request),
                 json.dumps(args, separators=(",", ":"), sort_keys=True)[:200])
        try:
            result = await COMMANDS[name](self.service, checked(name, args))
        except ControlError as exc:
            raise problem(409 if exc.code != "bad_request" else 400, exc.code, exc.message) from None
        return _json({"result": result})

    async def cards(self, request: web.Request) -> web.Response:
        """The owner's cards (names and tags are personal: a login, even where the page is open to view)."""
        if self.access.session(request) is None:
            raise problem(401, "login_required", "log in to see the cards")
        try:
            return _json(await COMMANDS["cards"](self.service, {}))
        except ControlError as exc:
            raise problem(409, exc.code, exc.message) from None

    async def metrics(self, request: web.Request) -> web.Response:
        rule = self.config.web.metrics
        allowed = (rule == "open" or (rule == "loopback" and from_loopback(request))
                   or (rule == "login" and self.access.session(request) is not None))
        if not allowed:
            raise problem(403 if rule != "off" else 404, "metrics_refused",
                          f"metrics are {'off' if rule == 'off' else 'not served to this client'} "
                          f"(web.metrics = {rule!r})")
        body = self._cache("metrics") or self._store("metrics", render(self.registry))
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every route: a Host this station answers to (DNS rebinding); then the password file's news."""
        host = request.headers.get("Host")
        if not is_allowed(host, self.hosts):
            name = host_name(host or "")[:100]
            raise problem(421, "unknown_host",
                          f"this station does not answer to the name {name!r}: add it to [web] allowed_hosts"
                          if name else "a Host header is required")
        if request.path.startswith("/api/") or request.path == "/metrics":
            await self.access.refresh()
        return await handler(request)


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _json(data: Any) -> web.Response:
    return web.Response(text=json.dumps(data), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, LookupError):  # not JSON, not UTF-8, an unknown charset, a number too long
        raise problem(400, "bad_request", "the body must be a JSON object") from None
    except RecursionError:
        raise problem(400, "bad_request", "the body is nested too deeply") from None
    except ConnectionError:  # the client went away while sending it
        raise problem(400, "bad_request", "the body did not arrive") from None
    if not isinstance(body, dict):
        raise problem(400, "bad_request", "the body must be a JSON object")
    return body

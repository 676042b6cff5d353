"""Peers for the security and robustness tests: a frame-level CSMS, certificates, a TCP proxy.

``RawCsms`` speaks OCPP 1.6J frame by frame instead of through the ``ocpp``
library, so a test can send frames no library would produce and see every
frame the station answers with, byte for byte. It checks the HTTP Basic
``Authorization`` header of the opening handshake, serves ``wss://`` with a
certificate made by ``Authority``, can stop answering the station's CALLs on
one connection, and records the WebSocket pings it receives.

``TcpProxy`` forwards TCP between the station and a server and can freeze the
connections it carries: no byte moves in either direction, nothing is closed.
That is the dead-but-open link a station must notice by itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http
import ipaddress
import itertools
import json
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.http11 import Request

from tests.integration.conftest import until

# ------------------------------------------------------------------ certificates


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Authority:
    """A certificate authority made for one test."""

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, certificate)

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> str:
        """The CA certificate as a PEM file (a station's ``ca_bundle``)."""
        path.write_bytes(self.pem())
        return str(path)

    def issue_server(self, directory: Path, dns_names: Iterable[str] = (),
                     ip_addresses: Iterable[str] = ()) -> tuple[str, str]:
        """A server certificate for the given names; returns (certfile, keyfile)."""
        dns_names, ip_addresses = list(dns_names), list(ip_addresses)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name((dns_names or ip_addresses)[0]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        stem = (dns_names or ip_addresses)[0].replace(":", "_")
        certfile, keyfile = directory / f"{stem}.crt", directory / f"{stem}.key"
        # The chain the server presents: its certificate, then the issuing CA.
        certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM) + self.pem())
        keyfile.write_bytes(_pem_key(key))
        return str(certfile), str(keyfile)


def server_tls(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


# ------------------------------------------------------------------- the CSMS


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Handshake:
    """One opening handshake the server saw (accepted or refused)."""

    path: str
    authorization: str | None
    subprotocols: str | None
    accepted: bool


@dataclass
class StationCall:
    """A CALL the station made."""

    connection: int
    unique_id: str
    action: str
    payload: dict[str, Any]
    answered: bool


@dataclass
class Answer:
    """A CALLRESULT or CALLERROR the station sent."""

    connection: int
    frame: list[Any]
    raw: str


class _RecordingConnection(ServerConnection):
    """A server connection that notes the time of every ping it receives."""

    pings: list[float]

    def process_event(self, event: Any) -> None:
        if self.request is not None and isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings.append(time.monotonic())
        super().process_event(event)


@dataclass
class RawCsms:
    """A websockets server on 127.0.0.1 that speaks OCPP 1.6J frame by frame."""

    #: The ``Authorization`` header a handshake must carry; None: no check.
    authorization: str | None = None
    ssl_context: ssl.SSLContext | None = None
    #: The host name the station is told to connect to (the server listens on 127.0.0.1).
    host: str = "127.0.0.1"
    heartbeat_interval: int = 300
    handshakes: list[Handshake] = field(default_factory=list)
    calls: list[StationCall] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    sockets: list[ServerConnection] = field(default_factory=list)
    #: Connection numbers (1-based) whose CALLs from the station stay unanswered.
    muted: set[int] = field(default_factory=set)
    port: int = 0
    transaction_ids: Any = field(default_factory=lambda: itertools.count(100))
    _server: Any = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self, port: int = 0) -> RawCsms:
        def create_connection(*args: Any, **kwargs: Any) -> ServerConnection:
            connection = _RecordingConnection(*args, **kwargs)
            connection.pings = []
            return connection

        self._server = await serve(
            self._handle, "127.0.0.1", port,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            process_request=self._process_request,
            ssl=self.ssl_context,
            ping_interval=None,  # only the station's pings, and never a server-side timeout
            create_connection=create_connection,  # type: ignore[arg-type]
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}/ocpp"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> RawCsms:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ serving
    def _process_request(self, connection: ServerConnection, request: Request) -> Any:
        header = request.headers.get("Authorization")
        accepted = self.authorization is None or header == self.authorization
        self.handshakes.append(Handshake(request.path, header,
                                         request.headers.get("Sec-WebSocket-Protocol"), accepted))
        if not accepted:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.sockets.append(ws)
        number = len(self.sockets)
        try:
            async for message in ws:
                raw = message if isinstance(message, str) else message.decode("utf-8", "replace")
                frame = json.loads(raw)
                if frame[0] == 2:
                    answered = number not in self.muted
                    self.calls.append(StationCall(number, frame[1], frame[2], frame[3], answered))
                    if answered:
                        await ws.send(json.dumps(self._answer(frame)))
                else:
                    self.answers.append(Answer(number, frame, raw))
        except websockets.exceptions.ConnectionClosed:
            pass

    def _answer(self, frame: list[Any]) -> list[Any]:
        _, unique_id, action, payload = frame
        accepted = {"status": "Accepted"}
        results: dict[str, dict[str, Any]] = {
            "BootNotification": {"currentTime": _now(), "interval": self.heartbeat_interval,
                                 "status": "Accepted"},
            "Heartbeat": {"currentTime": _now()},
            "StatusNotification": {},
            "MeterValues": {},
            "StopTransaction": {},
            "Authorize": {"idTagInfo": accepted},
            "DataTransfer": accepted,
        }
        if action == "StartTransaction":
            return [3, unique_id, {"transactionId": next(self.transaction_ids), "idTagInfo": accepted}]
        if action in results:
            return [3, unique_id, results[action]]
        return [4, unique_id, "NotImplemented", f"{action} is not served here", {}]

    # ------------------------------------------------------------ talking
    @property
    def connection(self) -> int:
        """The number (1-based) of the latest connection."""
        return len(self.sockets)

    async def send(self, frame: str | bytes | list[Any], connection: int | None = None) -> None:
        """Send a frame as is (text or bytes), or a list as JSON."""
        ws = self.sockets[(connection or self.connection) - 1]
        await ws.send(json.dumps(frame) if isinstance(frame, list) else frame)

    def answers_to(self, unique_id: str) -> list[Answer]:
        return [a for a in self.answers if len(a.frame) > 1 and a.frame[1] == unique_id]

    async def wait_answer(self, unique_id: str, timeout: float = 5.0) -> Answer:
        await until(lambda: self.answers_to(unique_id), timeout,
                    f"an answer to CALL {unique_id!r}")
        return self.answers_to(unique_id)[0]

    async def call(self, action: str, payload: dict[str, Any], timeout: float = 5.0) -> list[Any]:
        """A CALL to the station; its answer frame (CALLRESULT or CALLERROR)."""
        unique_id = f"csms-{next(self._ids)}"
        await self.send([2, unique_id, action, payload])
        return (await self.wait_answer(unique_id, timeout)).frame

    async def change_configuration(self, key: str, value: str) -> str:
        answer = await self.call("ChangeConfiguration", {"key": key, "value": value})
        assert answer[0] == 3, answer
        return answer[2]["status"]

    def of(self, action: str, connection: int | None = None, **match: Any) -> list[StationCall]:
        return [c for c in self.calls
                if c.action == action and (connection is None or c.connection == connection)
                and all(c.payload.get(k) == v for k, v in match.items())]

    async def wait_for(self, action: str, count: int = 1, timeout: float = 10.0,
                       connection: int | None = None, **match: Any) -> list[StationCall]:
        what = f"{count} x {action} {match}" + (f" on connection {connection}" if connection else "")
        await until(lambda: len(self.of(action, connection, **match)) >= count, timeout, what)
        return self.of(action, connection, **match)

    def actions(self) -> list[str]:
        return [c.action for c in self.calls]


# -------------------------------------------------------------------- the proxy


class _Pipe:
    """One proxied TCP connection: two pumps and a switch that freezes both."""

    def __init__(self, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 server: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.writers = (client[1], server[1])
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks = [asyncio.ensure_future(self._pump(client[0], server[1])),
                      asyncio.ensure_future(self._pump(server[0], client[1]))]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self.flowing.wait()  # frozen meanwhile: the bytes never arrive
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if self.flowing.is_set():  # a frozen pipe never closes by itself
                for w in self.writers:
                    w.close()

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.transport.abort()


class TcpProxy:
    """Forwards TCP from 127.0.0.1:<port> to a target; can freeze its connections."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.pipes: list[_Pipe] = []
        #: TCP connections accepted so far (connection attempts by the station).
        self.accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            upstream = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.pipes.append(_Pipe((reader, writer), upstream))

    def freeze(self) -> None:
        """Stop forwarding on every current connection, in both directions, closing nothing.

        Connections made later are forwarded normally."""
        for pipe in self.pipes:
            pipe.flowing.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in self.pipes:
            pipe.close()
        await asyncio.gather(*(t for p in self.pipes for t in p.tasks), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

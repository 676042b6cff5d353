"""Load on the station's web server, for bench/safety_latency.py's web phase (a subprocess).

Against http://127.0.0.1:PORT, until a line "quit" comes on stdin:

* readers: workers that fetch /api/state (a full state with the session
  history: a database read each) and /metrics back to back;
* pages: live streams (/api/live) read as a browser reads them;
* stalled: live streams opened and never read (a hostile or dead client);
  the streams come from several loopback addresses (127.0.0.2, .3, ...), as
  the server keeps at most a few per client;
* guessers: wrong-password logins back to back (the throttle answers 429).

Then it prints one line ``STATS {...}`` with the counts and exits.

    python bench/web_load.py --port 8080 --cookie cp_session=...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from collections import Counter
from typing import Any

import aiohttp


async def main(args: argparse.Namespace) -> None:
    base = f"http://127.0.0.1:{args.port}"
    stats: Counter[str] = Counter()
    cookies = dict([args.cookie.split("=", 1)]) if args.cookie else {}
    stop = asyncio.Event()

    async def reader(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            for path in ("/api/state", "/metrics"):
                async with session.get(base + path) as response:
                    await response.read()
                    stats[f"{path} {response.status}"] += 1

    def source(n: int) -> str:
        """The n-th stream's own loopback address: the server takes a few streams per client."""
        return f"127.0.0.{2 + n // 4}"

    async def page(n: int) -> None:
        connector = aiohttp.TCPConnector(local_addr=(source(n), 0))
        async with aiohttp.ClientSession(cookies=cookies, connector=connector) as session, \
                session.get(base + "/api/live") as response:
            async for _ in response.content.iter_any():
                stats["live chunks"] += 1
                if stop.is_set():
                    return

    def stalled(n: int) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", args.port), source_address=(source(n), 0))
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        s.sendall(f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\nCookie: {cookie}\r\n\r\n"
                  .encode())
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return s  # never read

    async def guesser(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            async with session.post(base + "/api/login", json={"password": "wrong-guess"}) as response:
                await response.read()
                stats[f"login {response.status}"] += 1

    async with aiohttp.ClientSession(cookies=cookies) as session:
        held = [stalled(args.pages + n) for n in range(args.stalled)]
        tasks = [asyncio.ensure_future(reader(session)) for _ in range(args.readers)]
        tasks += [asyncio.ensure_future(page(n)) for n in range(args.pages)]
        tasks += [asyncio.ensure_future(guesser(session)) for _ in range(args.guessers)]
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in held:
            s.close()
    print("STATS " + json.dumps(dict(stats)), flush=True)


def parse() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cookie", default="", help="a logged-in session's cookie, NAME=VALUE")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--stalled", type=int, default=6)
    parser.add_argument("--guessers", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))

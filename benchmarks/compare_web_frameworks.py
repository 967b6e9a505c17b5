"""Which web framework for ``sscard serve``: Starlette + uvicorn or aiohttp, measured.

Not part of ``make bench`` (it needs aiohttp, which sscard does not depend on); run it
by hand after ``pip install aiohttp`` to repeat the numbers in docs/reader-service.md:

    python -m benchmarks.compare_web_frameworks

Each candidate serves the same two things in a child process (so the client does not
share the server's GIL): ``POST /v1/echo`` (JSON body in, a Host and Origin check, the
work handed to a worker thread as a card operation is, JSON out) and ``/ws`` (a
message pushed from a worker thread through ``call_soon_threadsafe``, as a card
event from the PC/SC monitor is). The client measures one keep-alive connection's
request latency, 20 concurrent clients' throughput, the WebSocket push round trip,
and the server's import time.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

ORIGIN = "http://127.0.0.1:8080"
CANDIDATES = ("starlette-h11", "starlette-httptools", "aiohttp")


def _work(body: dict[str, Any]) -> dict[str, Any]:
    return {"code": 0, "echo": body.get("n")}


# ----------------------------------------------------------------------------- servers


def _serve_starlette(port: int, http: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    host_ok = {f"127.0.0.1:{port}".encode()}

    def guard(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket"):
                headers = dict(scope["headers"])
                if headers.get(b"host") not in host_ok or headers.get(b"origin") != ORIGIN.encode():
                    if scope["type"] == "websocket":
                        await send({"type": "websocket.close", "code": 1008})
                        return
                    await JSONResponse({"code": -9001}, 403)(scope, receive, send)
                    return
            await app(scope, receive, send)

        return wrapped

    async def echo(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse(await asyncio.to_thread(_work, body))

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        while True:
            message = await websocket.receive()
            text = message.get("text")
            if text is None:
                return
            threading.Thread(
                target=loop.call_soon_threadsafe, args=(queue.put_nowait, text)
            ).start()
            await websocket.send_text(await queue.get())

    app = Starlette(routes=[Route("/v1/echo", echo, methods=["POST"]), WebSocketRoute("/ws", ws)])
    uvicorn.run(guard(app), host="127.0.0.1", port=port, http=http, log_level="warning",
                ws="websockets")  # fmt: skip


def _serve_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    host_ok = {f"127.0.0.1:{port}"}

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Host") not in host_ok or request.headers.get("Origin") != ORIGIN:
            return web.json_response({"code": -9001}, status=403)
        return await handler(request)

    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await asyncio.to_thread(_work, body))

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket_ = web.WebSocketResponse()
        await socket_.prepare(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        async for msg in socket_:
            if msg.type != WSMsgType.TEXT:
                break
            threading.Thread(
                target=loop.call_soon_threadsafe, args=(queue.put_nowait, msg.data)
            ).start()
            await socket_.send_str(await queue.get())
        return socket_

    app = web.Application(middlewares=[guard])
    app.router.add_post("/v1/echo", echo)
    app.router.add_get("/ws", ws)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ----------------------------------------------------------------------------- client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def _import_ms(candidate: str) -> float:
    module = "aiohttp.web" if candidate == "aiohttp" else "uvicorn, starlette.applications"
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        best = min(best, time.perf_counter() - start)
    base = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        base = min(base, time.perf_counter() - start)
    return (best - base) * 1000


def measure(candidate: str) -> dict[str, float]:
    import httpx
    from websockets.sync.client import connect

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.compare_web_frameworks",
                               "--serve", candidate, str(port)])  # fmt: skip
    try:
        _wait_port(port)
        url = f"http://127.0.0.1:{port}/v1/echo"
        headers = {"Origin": ORIGIN}
        with httpx.Client(headers=headers) as client:
            for i in range(100):
                client.post(url, json={"n": i}).raise_for_status()
            lat = []
            for i in range(1500):
                t0 = time.perf_counter()
                client.post(url, json={"n": i})
                lat.append((time.perf_counter() - t0) * 1000)

        def burst(n: int) -> None:
            with httpx.Client(headers=headers) as c:
                for i in range(n):
                    c.post(url, json={"n": i}).raise_for_status()

        threads = [threading.Thread(target=burst, args=(50,)) for _ in range(20)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        throughput = 20 * 50 / (time.perf_counter() - t0)

        ws_lat = []
        with connect(f"ws://127.0.0.1:{port}/ws", origin=ORIGIN) as ws:  # type: ignore[arg-type]
            for i in range(50):
                ws.send(str(i))
                ws.recv()
            for i in range(1000):
                t0 = time.perf_counter()
                ws.send(str(i))
                ws.recv()
                ws_lat.append((time.perf_counter() - t0) * 1000)
    finally:
        server.terminate()
        server.wait(10)
    lat.sort()
    return {
        "http_median_ms": statistics.median(lat),
        "http_p99_ms": lat[int(len(lat) * 0.99)],
        "http_20_clients_rps": throughput,
        "ws_push_median_ms": statistics.median(ws_lat),
        "import_ms": _import_ms(candidate),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        candidate, port = argv[1], int(argv[2])
        if candidate == "aiohttp":
            _serve_aiohttp(port)
        else:
            _serve_starlette(port, candidate.split("-")[1])
        return 0
    results = {c: measure(c) for c in CANDIDATES}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

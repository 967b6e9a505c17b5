"""``sscard serve``: what HTTP and WebSocket cost on top of the card, in the same run.

Through a private pcscd with the vsmartcard-vpcd driver (a 3rd-generation Zhejiang card
in slot 0; in-process simulated slots when this host cannot run a pcscd, and the row
names say so):

* card read over HTTP (``POST /v1/card/read`` from a keep-alive ``http.client``: guard,
  JSON, reader thread, reader lock, masked audit row) vs the same read in-process
  (open the reader, ``ops.read_raw``, close; what the service runs per request), the
  two measured in alternating rounds (A B B A ...) after a warm-up, medians; target:
  at most 1.3x through pcscd;
* WebSocket insert-to-event latency: the card goes into the vpcd slot, the page's
  ``/v1/events`` socket gets ``inserted``; baseline: a PC/SC client blocked in
  SCardGetStatusChange for the same insert (pcscd's own polling is the floor);
* 20 concurrent clients on one reader: with the default wait bound every one is served
  in turn (wall time, slowest client); with a bound shorter than 20 reads (40 ms) the
  late ones get −9004 busy and nothing else.
"""

from __future__ import annotations

import http.client
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.timing import row
from sscard.serve import ReaderService, ServeConfig, ServiceThread, SimBackend, ops
from sscard.serve.backend import Backend
from sscard.simulators.card import build_card
from sscard.simulators.pcscd import PrivatePcscd, free_channel, why_not_private
from sscard.simulators.profile import new_card

ORIGIN = "http://127.0.0.1:8080"
READS = 150
WARMUP = 5
INSERTS = 8
CLIENTS = 20
SHORT_BOUND_S = 0.04  # ~8 reads: the clients after them must get busy


@dataclass
class Bench:
    """A reader with a card, how to put the card in and out, and how long that takes."""

    label: str
    backend: Backend
    reader: str
    insert: Callable[[], None]
    eject: Callable[[], None]
    wait_present: Callable[[bool], None]


def _card() -> Any:
    return build_card(new_card("zhejiang", generation=3, seed=1))


@contextmanager
def _bench() -> Iterator[Bench]:
    reason = why_not_private()  # "" also beside another pcscd, in a mount namespace
    reasons = [reason] if reason else []
    try:
        import smartcard  # noqa: F401
    except ImportError:
        reasons.append("pyscard missing")
    if reasons:
        sim = SimBackend(["bench slot 00"])
        yield Bench(
            f"in-process sim ({'; '.join(reasons)})",
            sim,
            "bench slot 00",
            lambda: sim.insert("bench slot 00", _card()),
            lambda: sim.eject("bench slot 00"),
            lambda present: None,
        )
        return
    from sscard.serve import PcscBackend
    from sscard.simulators.vpcd import VpcdBridge
    from sscard.terminals.pcsc import wait_for_card

    channel = free_channel(0x9C60)
    with PrivatePcscd(friendly_name="sscard bench serve VPCD", channel_id=channel) as daemon:
        name = daemon.reader_names[0]
        with VpcdBridge(port=daemon.ports[0]) as bridge:

            def wait(present: bool) -> None:
                if not wait_for_card(name, present=present, timeout=10):
                    raise RuntimeError("pcscd did not see the benchmark card change")

            yield Bench(
                "pcscd",
                PcscBackend(ignore=[daemon.reader_names[1]]),
                name,
                lambda: bridge.insert(_card()),
                bridge.eject,
                wait,
            )


def _read_rows(bench: Bench, service: ServiceThread, config: ServeConfig) -> list[dict[str, Any]]:
    """The client is the standard library's keep-alive ``http.client``: httpx alone costs
    ~1-5 ms a request on this machine, which is the client's price, not the service's."""
    keys = ops.Keys(config)

    def in_process() -> None:
        """The same read an SDK user makes in-process, to the same answer: the card read
        and the masked card object + ``iReadCardBas`` string the service returns. What
        only the service adds (HTTP, guard, audit row, thread hand-off) is the difference."""
        with keys.provider() as provider:
            conn = bench.backend.open(bench.reader)
            try:
                ops.card_body(ops.read_raw(conn, provider, config), config, full=False)
            finally:
                conn.close()

    headers = {"Origin": ORIGIN, "X-SSCard-Request": "1", "Content-Type": "application/json"}
    request = json.dumps({"reader": bench.reader}).encode()
    local: list[float] = []
    remote: list[float] = []
    bare: list[float] = []
    client = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:

        def over_http() -> None:
            client.request("POST", "/v1/card/read", body=request, headers=headers)
            body = json.loads(client.getresponse().read())
            if body["code"] != 0:
                raise RuntimeError(f"benchmark read failed: {body['code']}")

        def version() -> None:  # the HTTP round trip alone: guard, route, JSON, no card
            client.request("GET", "/v1/version", headers=headers)
            if json.loads(client.getresponse().read())["code"] != 0:
                raise RuntimeError("benchmark version call failed")

        for _ in range(WARMUP):  # all paths: imports, caches, pcscd's and SQLite's pages
            in_process()
            over_http()
            version()
        order = ((in_process, local), (over_http, remote), (version, bare))
        for i in range(READS):  # interleaved A B C C B A ...: drift and order hit all alike
            for fn, out in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1000)
    finally:
        client.close()
    base, value = statistics.median(local), statistics.median(remote)
    return [
        row(f"card read over HTTP ({bench.label})", "ms", value,
            "same read in-process", base, "<= 1.3x"),
        row("HTTP round trip alone (GET /v1/version)", "ms", statistics.median(bare)),
    ]  # fmt: skip


def _event_rows(bench: Bench, service: ServiceThread) -> list[dict[str, Any]]:
    from websockets.sync.client import connect

    direct: list[float] = []
    socket_: list[float] = []
    url = service.url.replace("http", "ws") + "/v1/events"
    with connect(url, origin=ORIGIN) as ws:  # type: ignore[arg-type]

        def next_event(kind: str) -> None:
            while True:
                message = json.loads(ws.recv(timeout=15))
                if message.get("event") == kind and message.get("reader") == bench.reader:
                    return

        ws.recv(timeout=15)  # hello
        for _ in range(INSERTS):
            bench.eject()
            next_event("removed")
            t0 = time.perf_counter()
            bench.insert()
            next_event("inserted")
            socket_.append((time.perf_counter() - t0) * 1000)
            bench.eject()
            bench.wait_present(False)
            next_event("removed")
            t0 = time.perf_counter()
            bench.insert()
            bench.wait_present(True)
            direct.append((time.perf_counter() - t0) * 1000)
            next_event("inserted")
    return [
        row(f"insert -> WebSocket event ({bench.label})", "ms", statistics.median(socket_),
            "insert -> SCardGetStatusChange", statistics.median(direct) or None),
    ]  # fmt: skip


def _concurrent(service: ServiceThread, reader: str) -> tuple[list[int], float, float]:
    import httpx

    codes: list[int] = []
    slowest = [0.0]
    start = threading.Barrier(CLIENTS + 1)

    def one() -> None:
        headers = {"Origin": ORIGIN, "X-SSCard-Request": "1"}
        with httpx.Client(base_url=service.url, headers=headers, timeout=60) as client:
            start.wait()
            t0 = time.perf_counter()
            codes.append(client.post("/v1/card/read", json={"reader": reader}).json()["code"])
            slowest[0] = max(slowest[0], time.perf_counter() - t0)

    threads = [threading.Thread(target=one) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return codes, (time.perf_counter() - t0) * 1000, slowest[0] * 1000


def _concurrency_rows(bench: Bench, config: ServeConfig) -> list[dict[str, Any]]:
    rows = []
    for bound in (config.busy_wait_s, SHORT_BOUND_S):
        service = ReaderService(replace(config, busy_wait_s=bound), bench.backend)
        with ServiceThread(service) as running:
            codes, wall, slowest = _concurrent(running, bench.reader)
        served = codes.count(0)
        busy = codes.count(-9004)
        if served + busy != CLIENTS:
            raise RuntimeError(f"unexpected codes under load: {sorted(set(codes))}")
        rows.append(row(f"{CLIENTS} clients, one reader, wait <= {bound:g} s: served "
                        f"({bench.label})", "clients", served, target=f"busy (-9004): {busy}"))  # fmt: skip
        rows.append(row(f"{CLIENTS} clients, wait <= {bound:g} s: slowest client", "ms",
                        slowest, "wall time for all", wall))  # fmt: skip
    return rows


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp, _bench() as bench:
        config = ServeConfig(
            keys="test",
            audit_db=Path(tmp) / "audit.sqlite3",
            replay_db=Path(tmp) / "replay.sqlite3",
            rate_per_s=10_000,
            rate_burst=10_000,
        ).with_origins([ORIGIN])
        bench.insert()
        bench.wait_present(True)
        with ServiceThread(ReaderService(config, bench.backend)) as service:
            rows = _read_rows(bench, service, config)
            rows += _event_rows(bench, service)
        rows += _concurrency_rows(bench, config)
        bench.eject()
        return rows


if __name__ == "__main__":
    for r in run():
        print(r)

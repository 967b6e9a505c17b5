"""``sscard serve`` in front of the real pcscd: a simulated card in a vsmartcard-vpcd slot.

The acceptance cases that need the real PC/SC stack: events as pcscd reports them, a
card pulled in the middle of a read, and pcscd killed under a running service (clear
errors with a code, the service stays up, events say so, and everything comes back
when pcscd does). Uses the shipped pytest plugin's ``sscard_pcscd``/``sscard_reader``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from sscard.pytest_plugin import VirtualReader
from sscard.serve import PcscBackend, ReaderService, ServeConfig, ServiceThread
from sscard.simulators.card import build_card
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.pcscd import PrivatePcscd
from sscard.simulators.profile import new_card

pytestmark = pytest.mark.pcsc

ORIGIN = "http://127.0.0.1:8080"


@pytest.fixture
def service(tmp_path: Path, sscard_pcscd: PrivatePcscd) -> Iterator[ServiceThread]:
    config = ServeConfig(keys="test", audit_db=tmp_path / "audit.sqlite3", pin_interval_s=0)
    config = config.with_origins([ORIGIN])
    with ServiceThread(ReaderService(config, PcscBackend())) as running:
        yield running


def http(service: ServiceThread) -> httpx.Client:
    headers = {"Origin": ORIGIN, "X-SSCard-Request": "1"}
    return httpx.Client(base_url=service.url, headers=headers, timeout=20)


def until(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        seen.append(message)
        if pred(message):
            return seen


def test_read_events_and_a_card_pulled_mid_read_through_pcscd(
    service: ServiceThread, sscard_reader: VirtualReader
) -> None:
    url = service.url.replace("http", "ws") + "/v1/events?auto_read=1"
    with connect(url, origin=ORIGIN) as ws, http(service) as c:  # type: ignore[arg-type]
        assert json.loads(ws.recv())["type"] == "hello"
        profile = new_card("jiangsu", generation=3, seed=5)
        sscard_reader.insert(build_card(profile))
        until(ws, lambda m: m.get("event") == "inserted" and m["reader"] == sscard_reader.name)
        read = until(ws, lambda m: m["type"] == "read")[-1]
        assert read["code"] == 0 and read["card"]["genuine"] is True and read["masked"] is True
        readers = {r["name"]: r for r in c.get("/v1/readers").json()["readers"]}
        assert readers[sscard_reader.name]["state"] == "card"
        direct = c.post("/v1/card/read", json={"reader": sscard_reader.name}).json()
        assert direct["code"] == 0 and direct["ireadcardbas"]["code"] == 0
        wrong = c.post("/v1/card/pin/verify", json={"pin": "000000"}).json()
        assert wrong["code"] == -51 and wrong["tries_left"] == 2

        sscard_reader.eject()
        until(ws, lambda m: m.get("event") == "removed")
        torn = build_card(profile)
        torn.faults.tear_on(ins_is(0xB2), TearPoint.BEFORE_COMMIT)
        sscard_reader.insert(torn)
        pulled = c.post("/v1/card/read", json={"reader": sscard_reader.name}).json()
        assert pulled["code"] == -2 and pulled["retry"] is True, pulled
        assert c.get("/v1/version").json()["code"] == 0


def test_pcscd_killed_under_the_service_then_back(
    service: ServiceThread, sscard_reader: VirtualReader, sscard_pcscd: PrivatePcscd
) -> None:
    sscard_reader.insert(build_card(new_card("anhui", generation=2, seed=8)))
    url = service.url.replace("http", "ws") + "/v1/events"
    try:
        with connect(url, origin=ORIGIN) as ws, http(service) as c:  # type: ignore[arg-type]
            until(ws, lambda m: m.get("event") == "inserted" or
                  any(r["state"] == "card" for r in m.get("readers", [])))  # fmt: skip
            sscard_pcscd.kill()
            lost = until(ws, lambda m: m["type"] == "status")[-1]
            assert lost["pcsc"] == "unavailable" and "pcscd" in lost["message"]
            for r in (c.get("/v1/readers"), c.post("/v1/card/read", json={})):
                body = r.json()
                assert (
                    r.status_code == 200 and body["code"] == -11 and "pcscd" in body["message_en"]
                )
            assert c.get("/v1/version").json()["code"] == 0  # the service is still up
            sscard_pcscd.start()
            back = until(ws, lambda m: m.get("event") == "inserted", timeout=20)
            assert {"type": "status", "pcsc": "ok"}.items() <= next(
                m for m in back if m["type"] == "status"
            ).items()
            assert c.post("/v1/card/read", json={}).json()["code"] == 0
    finally:
        if not sscard_pcscd.is_running():
            sscard_pcscd.start()

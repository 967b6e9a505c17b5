"""``sscard serve`` over real HTTP and WebSocket on loopback, readers simulated in-process.

The service runs in uvicorn on an ephemeral port (``ServiceThread``); clients are httpx
and the ``websockets`` client, so every request crosses a socket exactly as a
browser's does. The browser itself, pcscd and vpcd are in test_serve_browser.py and
test_serve_pcsc.py; here are the rules that need no browser to check: Host, Origin,
preflight, headers, limits, masking, pairing, busy readers, bad input, audit rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from sscard.errors import ConfigError
from sscard.serve import ReaderService, ServeConfig, ServiceThread, SimBackend, normalize_origin
from sscard.serve.errors import TokenRefused
from sscard.simulators.base import CardWrapper
from sscard.simulators.card import build_card
from sscard.simulators.ecard_issuer import EcardIssuer, IssuerKey, write_trust_store
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.profile import CardProfile, new_card

ORIGIN = "http://127.0.0.1:8080"
FULL = "https://his.example.org"
EVIL = "http://evil.test"
READER = "sim reader 00"
OTHER = "sim reader 01"


class SlowCard(CardWrapper):
    """A simulated card whose every APDU takes ``delay`` seconds (a slow contact reader)."""

    def __init__(self, card: Any, delay: float) -> None:
        super().__init__(card)
        self.delay = delay

    def execute(self, apdu: bytes) -> bytes:
        time.sleep(self.delay)
        return super().execute(apdu)


@pytest.fixture
def profile() -> CardProfile:
    return new_card("zhejiang", generation=3, seed=11)


@pytest.fixture
def sim(profile: CardProfile) -> SimBackend:
    backend = SimBackend([READER, OTHER])
    backend.insert(READER, build_card(profile))
    return backend


def make_config(tmp_path: Path, **overrides: Any) -> ServeConfig:
    config = ServeConfig(
        keys="test",
        audit_db=tmp_path / "audit.sqlite3",
        replay_db=tmp_path / "replay.sqlite3",
        pin_interval_s=0,
        rate_per_s=1000,
        rate_burst=1000,
    )
    return dataclasses.replace(config, **overrides).with_origins([ORIGIN], [FULL])


@pytest.fixture
def running(tmp_path: Path, sim: SimBackend) -> Iterator[ServiceThread]:
    with ServiceThread(ReaderService(make_config(tmp_path), sim)) as service:
        yield service


def client(service: ServiceThread, origin: str | None = ORIGIN, **headers: str) -> httpx.Client:
    base = {"X-SSCard-Request": "1"}
    if origin is not None:
        base["Origin"] = origin
    return httpx.Client(base_url=service.url, headers={**base, **headers}, timeout=10)


def ws_url(service: ServiceThread, query: str = "") -> str:
    return service.url.replace("http://", "ws://") + "/v1/events" + query


def audit_rows(tmp_path: Path) -> list[tuple[str, str, str, str, str, str]]:
    with sqlite3.connect(tmp_path / "audit.sqlite3") as db:
        return db.execute(
            "SELECT scenario, result, subject_name, subject_ssn, subject_card, reasons FROM audit"
        ).fetchall()


# =========================================================================== configuration


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://HIS.example.org/", "https://his.example.org"),
        ("https://his.example.org:443", "https://his.example.org"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ],
)
def test_an_origin_is_normalised_as_a_browser_sends_it(given: str, normal: str) -> None:
    assert normalize_origin(given) == normal


@pytest.mark.parametrize(
    "bad", ["*", "null", "https://*.example.org", "his.example.org", "https://h.example/app",
            "file:///c:/his.html", "https://user:pw@h.example", "ftp://h.example"],
)  # fmt: skip
def test_wildcards_paths_and_null_origins_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalize_origin(bad)


def test_the_config_file_refuses_typos_and_non_loopback_binds(tmp_path: Path) -> None:
    good = tmp_path / "serve.toml"
    good.write_text(
        'schema = "sscard-serve/1"\nport = 27400\nkeys = "test"\n'
        '[[origin]]\nurl = "https://his.example.org"\nfull_data = true\n',
        encoding="utf-8",
    )
    config = ServeConfig.load(good)
    assert config.port == 27400 and config.origin("https://his.example.org").full_data  # type: ignore[union-attr]
    for text in ('bind = "0.0.0.0"\n', "prot = 1\n", "busy_wait_s = -1\n", 'port = "x"\n'):
        bad = tmp_path / "bad.toml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError):
            ServeConfig.load(bad)


def test_the_shipped_example_config_loads() -> None:
    config = ServeConfig.load(Path(__file__).parent.parent / "examples" / "serve.toml")
    assert config.bind == "127.0.0.1" and all(r.url.startswith("http") for r in config.origins)


# =========================================================================== Host, Origin, CORS


def test_a_forged_host_is_refused_before_any_handler(running: ServiceThread) -> None:
    with client(running) as c:
        for host in (
            f"evil.test:{running.port}",
            "127.0.0.1",
            "localhost:1",
            f"127.0.0.2:{running.port}",
        ):
            r = c.get("/v1/readers", headers={"Host": host})
            assert r.status_code == 403 and r.json()["code"] == -9003, host
        assert (
            c.get("/v1/readers", headers={"Host": f"localhost:{running.port}"}).json()["code"] == 0
        )
    assert raw_handshake(running.port, f"evil.test:{running.port}", ORIGIN).startswith(
        b"HTTP/1.1 403"
    )
    assert raw_handshake(running.port, f"127.0.0.1:{running.port}", ORIGIN).startswith(
        b"HTTP/1.1 101"
    )
    assert running.service.stats["card_ops"] == 0


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_ambiguous_requests_are_refused_whichever_http_parser_runs(
    tmp_path: Path, sim: SimBackend, monkeypatch: pytest.MonkeyPatch, parser: str
) -> None:
    """The service runs httptools when installed, h11 otherwise: the same refusals either
    way. Request smuggling shapes get 400 from the parser; a second Host or Origin header
    (h11 refuses a second Host, httptools passes both on) gets 403 from the guard, so
    which header counts never depends on the parser. No card operation in any case."""
    pytest.importorskip(parser)
    from sscard.serve import server

    monkeypatch.setattr(server, "http_implementation", lambda: parser)
    with ServiceThread(ReaderService(make_config(tmp_path), sim)) as service:
        port, body = service.port, b'{"reader": 0}'
        ours, evil = f"Host: 127.0.0.1:{port}\r\n", f"Host: evil.test:{port}\r\n"
        start = "POST /v1/card/read HTTP/1.1\r\nX-SSCard-Request: 1\r\n"
        start += "Content-Type: application/json\r\n"
        length = f"Content-Length: {len(body)}\r\n"
        cases = {
            "two lengths": (ours + f"Origin: {ORIGIN}\r\n" + length + "Content-Length: 3\r\n"),
            "length and chunked": (
                ours + f"Origin: {ORIGIN}\r\n" + length + "Transfer-Encoding: chunked\r\n"
            ),
            "space before colon": ours + f"Origin: {ORIGIN}\r\nContent-Length : 13\r\n",
            "evil host last": ours + evil + f"Origin: {ORIGIN}\r\n" + length,
            "evil host first": evil + ours + f"Origin: {ORIGIN}\r\n" + length,
            "two origins": ours + f"Origin: {EVIL}\r\nOrigin: {ORIGIN}\r\n" + length,
        }
        for name, headers in cases.items():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall((start + headers + "\r\n").encode() + body)
                sock.shutdown(socket.SHUT_WR)
                answer = sock.recv(4096)
            assert not answer.startswith(b"HTTP/1.1 2"), name
            if name not in ("length and chunked",):  # h11 just drops that connection
                assert answer.split(b" ")[1] in (b"400", b"403"), (name, answer[:40])
            if b"403" in answer.split(b"\r\n")[0]:
                assert b"access-control-allow-origin" not in answer.lower(), name
        assert service.service.stats["card_ops"] == 0
        with client(service) as c:  # and the service still serves a plain request
            assert c.post("/v1/card/read", json={}).json()["code"] == 0


def raw_handshake(port: int, host: str, origin: str) -> bytes:
    """A WebSocket upgrade with a chosen Host (a client library always sends its own)."""
    request = (
        f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        return sock.recv(4096)


def test_a_page_from_another_origin_cannot_touch_the_card(
    running: ServiceThread, sim: SimBackend
) -> None:
    with client(running, EVIL) as c:
        r = c.post("/v1/card/pin/verify", json={"pin": "000000"})
        assert r.status_code == 403 and r.json()["code"] == -9001
        assert "access-control-allow-origin" not in r.headers
        pre = c.options(
            "/v1/card/read",
            headers={"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Private-Network": "true"},
        )  # fmt: skip
        assert pre.status_code == 403
        assert "access-control-allow-private-network" not in pre.headers
        assert "access-control-allow-origin" not in pre.headers
    with pytest.raises(InvalidStatus) as exc:
        connect(ws_url(running), origin=EVIL).close()  # type: ignore[arg-type]
    assert exc.value.response.status_code == 403
    assert running.service.stats["card_ops"] == 0
    with client(running) as c:  # the card's PIN counter was never touched
        assert c.post("/v1/card/pin/verify", json={"pin": "123456"}).json()["code"] == 0


def test_an_allowed_origin_gets_its_preflight_and_the_private_network_answer(
    running: ServiceThread,
) -> None:
    with client(running) as c:
        pre = c.options(
            "/v1/card/read",
            headers={"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type,x-sscard-request",
                     "Access-Control-Request-Private-Network": "true"},
        )  # fmt: skip
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        assert pre.headers["access-control-allow-private-network"] == "true"
        assert "x-sscard-request" in pre.headers["access-control-allow-headers"].lower()
        r = c.get("/v1/readers")
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert r.headers["cache-control"] == "no-store" and r.headers["vary"] == "Origin"


def test_browser_requests_without_origin_and_requests_without_the_header_are_refused(
    running: ServiceThread,
) -> None:
    with client(running, None) as c:  # a local program: allowed by default, masked
        assert c.post("/v1/card/read", json={}).json()["masked"] is True
        # an <img> or no-cors fetch from a web page: no Origin, but Sec-Fetch-Site says so
        r = c.get("/v1/readers", headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403 and r.json()["code"] == -9001
    with httpx.Client(base_url=running.url, headers={"Origin": ORIGIN}) as c:
        r = c.post("/v1/card/read", json={})
        assert r.status_code == 403 and "X-SSCard-Request" in r.json()["message_en"]
        assert c.get("/v1/version").json()["code"] == 0  # open path, no card


# =========================================================================== card operations


def test_read_is_masked_unless_the_origin_is_configured_for_full_data(
    running: ServiceThread, profile: CardProfile, tmp_path: Path
) -> None:
    ef06 = profile.ssse.ef06
    with client(running) as c:
        masked = c.post("/v1/card/read", json={}).json()
    assert masked["code"] == 0 and masked["masked"] is True and masked["reader"] == READER
    text = json.dumps(masked, ensure_ascii=False)
    assert ef06.ssn not in text and ef06.full_name not in text
    assert (
        masked["card"]["holder"]["ssn"].startswith(ef06.ssn[:4])
        and "*" in masked["card"]["holder"]["ssn"]
    )
    assert masked["card"]["genuine"] is True
    bas = masked["ireadcardbas"]
    assert bas["code"] == 0 and bas["out"].count("|") == 11 and ef06.ssn not in bas["out"]
    with client(running, FULL) as c:
        full = c.post("/v1/card/read", json={"reader": 0}).json()
    assert full["masked"] is False and full["card"]["holder"]["ssn"] == ef06.ssn
    fields = full["ireadcardbas"]["out"].split("|")
    assert fields[1] == ef06.ssn and fields[4] == ef06.full_name  # §4.2 field order
    rows = audit_rows(tmp_path)
    assert [r[0] for r in rows] == ["serve.card_read", "serve.card_read"]
    assert "data:masked" in rows[0][5] and "data:full" in rows[1][5]
    assert "origin:https:his.example.org" in rows[1][5]
    raw = (tmp_path / "audit.sqlite3").read_bytes()
    assert ef06.ssn.encode() not in raw and ef06.full_name.encode() not in raw
    assert all("*" in r[3] for r in rows)


def test_pin_verify_reports_tries_left_and_is_never_logged(
    running: ServiceThread, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    with client(running) as c:
        wrong = c.post("/v1/card/pin/verify", json={"pin": "654321"}).json()
        assert (
            wrong["code"] == -51 and wrong["tries_left"] == 2 and wrong["error"] == "pin_incorrect"
        )
        assert "654321" not in json.dumps(wrong)
        assert c.post("/v1/card/pin/verify", json={"pin": "12345"}).json()["code"] == -42
        assert c.post("/v1/card/pin/verify", json={"pin": "12a456"}).json()["code"] == -41
        assert c.post("/v1/card/pin/verify", json={"pin": "123456"}).json() == {
            "code": 0,
            "pin": "verified",
        }
        changed = c.post("/v1/card/pin/change", json={"old_pin": "123456", "new_pin": "246810"})
        assert changed.json()["code"] == 0
        assert c.post("/v1/card/pin/verify", json={"pin": "246810"}).json()["code"] == 0
        assert c.post("/v1/card/pin/verify", json={}).json()["code"] == -23
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for pin in ("654321", "123456", "246810", "12a456"):
        assert pin not in logged
        assert pin.encode() not in (tmp_path / "audit.sqlite3").read_bytes()


def test_pin_tries_are_rate_limited_per_reader(tmp_path: Path, sim: SimBackend) -> None:
    config = make_config(tmp_path, pin_interval_s=30)
    with ServiceThread(ReaderService(config, sim)) as service, client(service) as c:
        assert c.post("/v1/card/pin/verify", json={"pin": "000000"}).json()["code"] == -51
        second = c.post("/v1/card/pin/verify", json={"pin": "000001"})
        assert second.status_code == 429 and second.json()["code"] == -9006
    card = sim.open(READER)
    from sscard.applets.ssse import SsseReader

    assert SsseReader(card).pin_tries_left() == 2  # the limited try never reached the card


def test_identity_check_runs_a_policy_scenario(running: ServiceThread, tmp_path: Path) -> None:
    with client(running) as c:
        hotel = c.post("/v1/identity/check", json={"scenario": "hotel"}).json()
        assert hotel["code"] == 0 and hotel["outcome"] == "accepted"
        assert (
            "*" in hotel["released"]["ssn"] and hotel["notes"][0]["note"] == "face_match_required"
        )
        counter = c.post("/v1/identity/check", json={"scenario": "counter", "pin": "999999"}).json()
        assert counter["outcome"] == "refused" and "pin_wrong" in counter["reasons"]
        unknown = c.post("/v1/identity/check", json={"scenario": "casino"}).json()
        assert unknown["code"] == -14
    scenarios = [r[0] for r in audit_rows(tmp_path)]
    assert scenarios.count("hotel.card") == 1 and scenarios.count("serve.identity") == 3


def test_qr_verify_accepts_a_code_once(
    tmp_path: Path, sim: SimBackend, profile: CardProfile
) -> None:
    key = IssuerKey.generate()
    write_trust_store(tmp_path / "trust.json", [key])
    payload = EcardIssuer(key).issue_for(profile).encode()
    config = make_config(tmp_path, ecard_trust=tmp_path / "trust.json")
    with ServiceThread(ReaderService(config, sim)) as service, client(service) as c:
        first = c.post("/v1/qr/verify", json={"payload": payload}).json()
        assert (
            first["code"] == 0 and first["outcome"] == "accepted" and "*" in first["card_id_code"]
        )
        again = c.post("/v1/qr/verify", json={"payload": payload}).json()
        assert again["outcome"] == "rejected" and again["reason"] == "replayed"
        other = c.post("/v1/qr/verify", json={"payload": "https://pay.example/x"}).json()
        assert other["outcome"] == "relay"
    with ServiceThread(ReaderService(make_config(tmp_path), sim)) as service, client(service) as c:
        assert c.post("/v1/qr/verify", json={"payload": payload}).json()["code"] == -14


# =========================================================================== bad input


def test_bad_input_gets_a_clear_code_and_the_service_stays_up(
    running: ServiceThread, sim: SimBackend
) -> None:
    with client(running) as c:
        r = c.post(
            "/v1/card/read", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["code"] == -14
        r = c.post("/v1/card/read", content=b"[1,2]", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        r = c.post("/v1/card/read", content=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        r = c.post("/v1/card/read", content=b" " * (10 * 1024 * 1024),
                   headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 413 and r.json()["code"] == -9007

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(200):
                yield b" " * 4096

        r = c.post("/v1/card/read", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        r = c.post("/v1/card/read", json={"reader": "no such reader"})
        assert r.status_code == 200 and r.json()["code"] == -11
        assert c.post("/v1/card/read", json={"reader": OTHER}).json()["code"] == -2  # empty slot
        assert c.post("/v1/card/read", json={"reader": [1]}).json()["code"] == -23
        assert c.get("/v1/nothing").status_code == 404
        assert c.get("/v1/card/read").status_code == 405
        assert c.get("/v1/readers").json()["code"] == 0  # still up
    assert running.service.stats["card_ops"] == 1  # only the empty slot reached a reader


def test_a_card_pulled_mid_read_is_an_error_and_nothing_is_written(
    tmp_path: Path, sim: SimBackend, profile: CardProfile
) -> None:
    card = build_card(profile)
    card.faults.tear_on(ins_is(0xB2), TearPoint.BEFORE_COMMIT)
    sim.insert(READER, card)
    with ServiceThread(ReaderService(make_config(tmp_path), sim)) as service, client(service) as c:
        r = c.post("/v1/card/read", json={})
        assert r.status_code == 200 and r.json()["code"] == -2 and r.json()["retry"] is True
        sim.insert(READER, build_card(profile))
        assert c.post("/v1/card/read", json={}).json()["code"] == 0
    rows = audit_rows(tmp_path)
    assert rows[0][:2] == ("serve.card_read", "error") and "code:-2" in rows[0][5]


def test_requests_over_the_rate_get_429(tmp_path: Path, sim: SimBackend) -> None:
    config = make_config(tmp_path, rate_per_s=1.0, rate_burst=3)
    with ServiceThread(ReaderService(config, sim)) as service, client(service) as c:
        codes = [c.get("/v1/version").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        with client(service, FULL) as other:  # per origin: another page is not starved
            assert other.get("/v1/version").status_code == 200


# =========================================================================== one operation per reader


def test_one_operation_per_reader_others_wait_then_busy(
    tmp_path: Path, profile: CardProfile
) -> None:
    sim = SimBackend([READER, OTHER])
    sim.insert(READER, SlowCard(build_card(profile), 0.05))  # ~0.6 s per read
    sim.insert(OTHER, build_card(new_card("anhui", generation=2, seed=3)))
    config = make_config(tmp_path, busy_wait_s=0.3)
    with ServiceThread(ReaderService(config, sim)) as service:
        results: list[int] = []

        def read(reader: str) -> None:
            with client(service) as c:
                results.append(c.post("/v1/card/read", json={"reader": reader}).json()["code"])

        threads = [threading.Thread(target=read, args=(READER,)) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        with client(service) as c:  # another reader is not blocked by the busy one
            t0 = time.perf_counter()
            assert c.post("/v1/card/read", json={"reader": OTHER}).json()["code"] == 0
            assert time.perf_counter() - t0 < 0.5
        for t in threads:
            t.join()
    assert sorted(results) == [-9004, -9004, 0]


def test_a_timed_out_operation_keeps_the_reader_locked_until_it_ends(
    tmp_path: Path, profile: CardProfile
) -> None:
    sim = SimBackend([READER])
    sim.insert(READER, SlowCard(build_card(profile), 0.05))
    config = make_config(tmp_path, op_timeout_s=0.2, busy_wait_s=5)
    with ServiceThread(ReaderService(config, sim)) as service, client(service) as c:
        first = c.post("/v1/card/read", json={})
        assert first.status_code == 504 and first.json()["code"] == -9005
        sim.insert(READER, build_card(profile))
        t0 = time.perf_counter()
        assert c.post("/v1/card/read", json={}).json()["code"] == 0  # waited for the first
        assert time.perf_counter() - t0 > 0.1


# =========================================================================== pairing


def test_pairing_gives_a_token_bound_to_the_origin(tmp_path: Path, sim: SimBackend) -> None:
    announced: list[str] = []
    service = ReaderService(make_config(tmp_path, pairing=True), sim, announce=announced.append)
    with ServiceThread(service) as running, client(running) as c:
        assert c.get("/v1/version").json()["pairing"] is True
        r = c.get("/v1/readers")
        assert r.status_code == 401 and r.json()["code"] == -9002
        assert r.headers["access-control-allow-origin"] == ORIGIN  # the page can read why
        code = service.pairing.code
        assert code in announced[-1]
        assert (
            c.post("/v1/pair", json={"code": "000000" if code != "000000" else "1"}).status_code
            == 401
        )
        paired = c.post("/v1/pair", json={"code": code}).json()
        token = paired["token"]
        assert paired["code"] == 0 and paired["expires_in"] > 0
        assert c.post("/v1/pair", json={"code": code}).status_code == 401  # single use
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/v1/readers", headers=auth).json()["code"] == 0
        with client(running, FULL) as other:
            assert other.get("/v1/readers", headers=auth).status_code == 401
        with connect(ws_url(running), origin=ORIGIN) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"type": "auth", "token": "forged"}))
            assert json.loads(ws.recv())["code"] == -9002
        with connect(ws_url(running), origin=ORIGIN) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(ws.recv())["type"] == "hello"


def test_five_wrong_pairing_codes_replace_the_code(tmp_path: Path, sim: SimBackend) -> None:
    service = ReaderService(make_config(tmp_path, pairing=True), sim, announce=lambda _t: None)
    first = service.pairing.new_code()
    wrong = "111111" if first != "111111" else "222222"
    for _ in range(5):
        with pytest.raises(TokenRefused):
            service.pairing.pair(wrong, ORIGIN)
    assert service.pairing.code != first or first == wrong


# =========================================================================== events


def test_events_report_insert_and_remove_and_auto_read_masked(
    running: ServiceThread, sim: SimBackend, profile: CardProfile
) -> None:
    with connect(ws_url(running, "?auto_read=1"), origin=ORIGIN) as ws:  # type: ignore[arg-type]
        hello = json.loads(ws.recv())
        assert hello["type"] == "hello" and hello["masked"] is True
        assert {r["name"]: r["state"] for r in hello["readers"]}[READER] == "card"
        sim.eject(READER)
        assert json.loads(ws.recv())["event"] == "removed"
        sim.insert(READER, build_card(profile))
        inserted = json.loads(ws.recv())
        assert inserted["type"] == "card" and inserted["event"] == "inserted" and inserted["atr"]
        read = json.loads(ws.recv(timeout=10))
        assert read["type"] == "read" and read["code"] == 0 and read["masked"] is True
        assert profile.ssse.ef06.ssn not in json.dumps(read)
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv())["type"] == "pong"


def socket_reads(ws: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` answers to ``read`` commands (other messages skipped)."""
    out = []
    while len(out) < count:
        message = json.loads(ws.recv(timeout=15))
        if message["type"] == "read" and "id" in message:
            out.append(message)
    return out


def test_a_read_on_the_events_socket_is_the_post_read_with_its_mask_audit_and_lock(
    running: ServiceThread, profile: CardProfile, tmp_path: Path
) -> None:
    """A browser's fetch costs milliseconds the open socket does not: the page may send
    ``{"type": "read"}`` on ``/v1/events``. The answer is the POST read's body, masked
    by the same origin rule, with one ``serve.card_read`` audit row each."""
    ef06 = profile.ssse.ef06
    with client(running) as c:
        posted = c.post("/v1/card/read", json={"reader": READER}).json()
    with connect(ws_url(running), origin=ORIGIN) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv())["type"] == "hello"
        ws.send(json.dumps({"type": "read", "id": "r1", "reader": READER}))
        ws.send(json.dumps({"type": "read", "id": 2}))  # no reader: the one with a card
        ws.send(json.dumps({"type": "read", "id": 3, "reader": OTHER}))  # empty reader
        ws.send(json.dumps({"type": "read", "id": {"x": 1}}))
        answers = {json.dumps(m["id"]): m for m in socket_reads(ws, 4)}
    first, second = answers['"r1"'], answers["2"]
    posted["card"].pop("elapsed_ms")
    for answer in (first, second):
        assert answer["code"] == 0 and answer["masked"] is True and answer["reader"] == READER
        answer["card"].pop("elapsed_ms")  # the one field that differs between two reads
        assert {k: v for k, v in answer.items() if k not in ("type", "id")} == posted
        assert ef06.ssn not in json.dumps(answer, ensure_ascii=False)
    assert answers["3"]["code"] == -2  # no card
    assert answers["null"]["code"] == -23 and answers["null"]["error"] == "bad_request"
    with connect(ws_url(running), origin=FULL) as ws:  # type: ignore[arg-type]
        ws.recv()
        ws.send(json.dumps({"type": "read", "id": 1}))
        (full,) = socket_reads(ws, 1)
    assert full["masked"] is False and full["card"]["holder"]["ssn"] == ef06.ssn
    rows = audit_rows(tmp_path)  # POST, r1, 2, the empty reader, the full read; not the bad id
    assert [r[0] for r in rows] == ["serve.card_read"] * 5
    assert sorted(r[1] for r in rows) == ["error", "ok", "ok", "ok", "ok"]  # the socket's
    assert "code:-2" in json.loads(next(r[5] for r in rows if r[1] == "error"))  # run at once
    assert "data:full" in rows[-1][5] and all("data:masked" in r[5] for r in rows[:-1])
    assert running.service.stats["card_ops"] == 5  # POST, r1, 2, the empty reader, full


def test_socket_reads_are_rate_limited_bounded_and_take_turns_on_the_reader(
    tmp_path: Path, profile: CardProfile
) -> None:
    sim = SimBackend([READER])
    card = SlowCard(build_card(profile), 0.01)
    sim.insert(READER, card)  # type: ignore[arg-type]
    config = make_config(tmp_path, rate_per_s=0.001, rate_burst=12)
    with (
        ServiceThread(ReaderService(config, sim)) as running,
        connect(ws_url(running), origin=ORIGIN) as ws,  # type: ignore[arg-type]
    ):
        ws.recv()  # hello (the handshake took one token of 12)
        for i in range(12):
            ws.send(json.dumps({"type": "read", "id": i}))
        ws.send(json.dumps({"type": "ping"}))  # answered while the reads wait their turn
        seen_pong = False
        codes: dict[int, int] = {}
        while len(codes) < 12:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "pong":
                seen_pong = 0 not in codes.values()  # before the first read is done
            elif message["type"] == "read":
                codes[message["id"]] = message["code"]
        assert seen_pong
        # 8 in flight at most: the 9th to 12th get busy at once; of the 8, the bucket
        # (12 - 1 for the handshake) lets all run, one after another on the one reader
        assert sorted(codes.values()) == [-9004] * 4 + [0] * 8, codes
        for _ in range(4):  # 12 tokens - handshake - 8 reads = 3 left (busy took none)
            ws.send(json.dumps({"type": "read", "id": "late"}))
        late = [m["code"] for m in socket_reads(ws, 4)]
        assert sorted(late) == [-9006, 0, 0, 0], late


def test_a_paired_socket_reads_only_while_its_token_is_valid(
    tmp_path: Path, sim: SimBackend
) -> None:
    """The token is checked on every socket read, as on every HTTP call: when it expires
    the read gets −9002 and the socket is closed with 4401 (the page pairs again)."""
    service = ReaderService(make_config(tmp_path, pairing=True), sim, announce=lambda _t: None)
    with ServiceThread(service) as running:
        with client(running) as c:
            token = c.post("/v1/pair", json={"code": service.pairing.code}).json()["token"]
        with connect(ws_url(running), origin=ORIGIN) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(ws.recv())["type"] == "hello"
            ws.send(json.dumps({"type": "read", "id": 1}))
            assert socket_reads(ws, 1)[0]["code"] == 0
            service.pairing.token_ttl = 0  # tokens issued from now on expire at once ...
            service.pairing._tokens.clear()  # ... and this one is gone (a restart)
            ws.send(json.dumps({"type": "read", "id": 2}))
            assert socket_reads(ws, 1)[0]["code"] == -9002
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert service.stats["card_ops"] == 1 and service.stats["refused"] == 1


def test_a_socket_that_stops_reading_is_closed_not_left_deaf(
    running: ServiceThread, sim: SimBackend, profile: CardProfile
) -> None:
    """A page that does not read its socket fills its queue (256 messages): it is closed
    with 1013 so it reconnects, instead of staying open with its answers dropped."""
    with connect(ws_url(running), origin=ORIGIN) as ws:  # type: ignore[arg-type]
        ws.recv()  # hello
        hub, loop = running.service.hub, running.service.loop
        (sub,) = hub.subscribers
        assert loop is not None

        def flood() -> None:  # in the loop: more than the queue holds, before it drains
            for _ in range(300):
                hub.send(sub, {"type": "card", "event": "removed", "reader": READER})

        loop.call_soon_threadsafe(flood)
        received = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
                received += 1
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert received < 300 and sub not in hub.subscribers


def test_the_starlette_cors_middleware_alone_would_have_run_the_handler() -> None:
    """Why the guard exists (reader-service.md §2), from Starlette's own CORSMiddleware.

    Its public behaviour: a request from an origin outside ``allow_origins`` is passed
    to the app; only the Access-Control-Allow-Origin header is left out. A card
    operation would already have happened; the guard refuses before any handler.
    """
    import asyncio

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    calls: list[str] = []

    async def pin(request: Any) -> JSONResponse:
        calls.append("pin")
        return JSONResponse({"code": 0})

    app = Starlette(
        routes=[Route("/v1/card/pin/verify", pin, methods=["POST"])],
        middleware=[Middleware(CORSMiddleware, allow_origins=[ORIGIN])],
    )

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ac:
            return await ac.post("/v1/card/pin/verify", json={"pin": "0"}, headers={"Origin": EVIL})

    r = asyncio.run(call())
    assert r.status_code == 200 and calls == ["pin"]  # the handler ran for evil.test
    assert "access-control-allow-origin" not in r.headers


def test_the_cli_refuses_a_bad_config_with_exit_status_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sscard.cli import main

    bad = tmp_path / "serve.toml"
    bad.write_text('bind = "0.0.0.0"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(bad)])
    assert result.exit_code == 2 and "127.0.0.1" in result.output
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["serve", "--allow-origin", "*"])
    assert result.exit_code == 2 and "exact" in result.output


def test_test_keys_are_announced_loudly_and_in_the_version(
    tmp_path: Path, profile: CardProfile
) -> None:
    """``sscard serve --keys test`` (and ``--sim``, which implies it) warns on stderr in
    both languages, and ``GET /v1/version`` says ``test_keys: true`` so a page can show it;
    a service without TEST keys says false and prints no warning."""
    profile.save(tmp_path / "card.json")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["serve", "--sim", str(tmp_path / "card.json"), "--keys", "test", "--port",
            str(port), "--audit-db", str(tmp_path / "audit.sqlite3")]  # fmt: skip
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    code += f"from sscard.cli import main; main({args!r})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/version", timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and proc.poll() is None, "no service"
                time.sleep(0.1)
        assert r.json()["code"] == 0 and r.json()["test_keys"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    console = err.decode()
    assert "WARNING: card keys = TEST" in console and "警告：正在使用测试卡密钥" in console
    announced: list[str] = []
    service = ReaderService(make_config(tmp_path, keys=None), SimBackend([READER]),
                            announce=announced.append)  # fmt: skip
    with ServiceThread(service) as running, client(running) as c:
        assert c.get("/v1/version").json()["test_keys"] is False
    assert not any("TEST" in line for line in announced)


def test_sim_backend_watch_blocks_after_a_previous_service_stopped(sim: SimBackend) -> None:
    """A second service on the same backend (the benchmark's load rows, a restarted
    demo) must not inherit the first one's wake-up: a watcher that spins holds the GIL
    and made every HTTP read ~20 ms slower."""
    sim.wake()  # what the first service's shutdown does
    stop = threading.Event()
    cpu: list[float] = []

    def watcher() -> None:
        t0 = time.thread_time()
        sim.watch(lambda event: None, stop)
        cpu.append(time.thread_time() - t0)

    thread = threading.Thread(target=watcher)
    thread.start()
    time.sleep(0.3)
    stop.set()
    sim.wake()
    thread.join(5)
    assert not thread.is_alive()
    assert cpu[0] < 0.05  # blocked, not spinning (a spin burns most of the 0.3 s)

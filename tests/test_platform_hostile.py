"""The simulated insurance platform's HTTP transport against a hostile client.

Each request gets a reply (never a worker thread that dies and a client left
waiting), and the server answers normally afterwards: a signed-in 2204 whose
``input`` is a list, an amount ``"NaN"``, 100 000-deep JSON, ``Content-Length: abc``,
a 50 MB body (413 before it is read), more connections than workers (503 from a
bounded queue, a fixed number of threads). ``/admin/faults`` needs the token and
bounds its values.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sscard.services.insurance import (
    ClientConfig,
    InsuranceClient,
    PersonInfoRequest,
    RegisterRequest,
    VisitUploadRequest,
)
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.insurance_platform import server as server_module

FIXMEDINS = "H31010400001"
SHANGHAI = "310000"
CERT = "340104199001010011"  # test data, not a real person


def address(platform: InsurancePlatform) -> tuple[str, int]:
    parts = urlsplit(platform.url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def request(
    platform: InsurancePlatform,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*address(platform), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data
    finally:
        conn.close()


def raw_exchange(platform: InsurancePlatform, data: bytes) -> bytes:
    """Send raw bytes, return everything the server answers before it closes."""
    with socket.create_connection(address(platform), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def alive(platform: InsurancePlatform) -> None:
    """The server still answers, and every worker thread is still there."""
    status, body = request(platform, "GET", "/admin/health")
    assert (status, body) == (200, {"ok": True})
    server = platform._server
    assert server is not None
    assert all(w.is_alive() for w in server._workers)
    assert len(server._workers) == server_module.WORKERS


@pytest.fixture
def signed_in(platform: InsurancePlatform, tmp_path: Path) -> Iterator[tuple[InsuranceClient, str]]:
    """A signed-in client with a registered, uploaded visit: (client, mdtrt_id)."""
    psn_no = platform.add_person(CERT, "测试甲", "1", "1990-01-01", "340100", "310", "1000")
    platform.add_filing(psn_no, "340100", SHANGHAI, date.today(), date(2099, 12, 31), "11")
    config = ClientConfig(platform.url, FIXMEDINS, "x", SHANGHAI, timeout=5)
    with InsuranceClient(config, tmp_path / "o.db") as client:
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        person = client.person_info(PersonInfoRequest("02", CERT))
        insu = person.insurance("310")
        reg = client.register(
            RegisterRequest(psn_no, insu.insutype, insu.insuplc_admdvs, now, "02", CERT, "OTP-1")
        )
        client.upload_visit(
            VisitUploadRequest(reg.mdtrt_id, psn_no, insu.insuplc_admdvs, "11", now)
        )
        yield client, reg.mdtrt_id


_seq = iter(range(1, 10_000))


def envelope(client: InsuranceClient, infno: str, input_: Any) -> bytes:
    msgid = f"{FIXMEDINS}{datetime.now():%Y%m%d%H%M%S}{9000 + next(_seq):04d}"
    env = {"infno": infno, "msgid": msgid, "fixmedins_code": FIXMEDINS,
           "mdtrtarea_admvs": SHANGHAI, "sign_no": client.sign_no, "input": input_}  # fmt: skip
    return json.dumps(env).encode()


def assert_error_reply(status: int, body: Any) -> None:
    """A proper reply: HTTP 200 with a refusal, or an HTTP error with an envelope body."""
    assert isinstance(body, dict), body
    assert body.get("infcode") == -1 and " / " in str(body.get("err_msg")), body
    assert status in (200, 400, 500), status


def test_signed_in_2204_whose_input_is_a_list(
    platform: InsurancePlatform, signed_in: tuple[InsuranceClient, str]
) -> None:
    client, _ = signed_in
    status, body = request(platform, "POST", "/callService", envelope(client, "2204", [1, 2]))
    assert_error_reply(status, body)
    alive(platform)


def test_an_amount_that_is_nan(
    platform: InsurancePlatform, signed_in: tuple[InsuranceClient, str]
) -> None:
    client, mdtrt_id = signed_in
    psn_no = client.person_info(PersonInfoRequest("02", CERT)).psn_no
    item = {"feedetl_sn": "1", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "1",
            "med_list_codg": "XA01AA", "det_item_fee_sumamt": "NaN", "cnt": "1", "pric": "NaN"}  # fmt: skip
    body_bytes = envelope(client, "2204", {"feedetail": [item]})
    status, body = request(platform, "POST", "/callService", body_bytes)
    assert_error_reply(status, body)
    alive(platform)
    assert platform.ledger.settlements() == []


def test_json_nested_100k_deep(platform: InsurancePlatform) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body = request(platform, "POST", "/callService", deep)
    assert_error_reply(status, body)
    status, body = request(platform, "POST", "/admin/faults", deep, admin(platform))
    assert status == 400
    alive(platform)


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "", " 12x"])
def test_a_content_length_that_is_not_a_number(platform: InsurancePlatform, length: str) -> None:
    answer = raw_exchange(
        platform,
        f"POST /callService HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode(),
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert json.loads(body)["infcode"] == -1
    alive(platform)


def test_a_body_over_the_limit_is_refused_before_it_is_read(platform: InsurancePlatform) -> None:
    """413 at once for a 50 MB announcement (unbounded, 8 x 50 MB took 563 MB)."""
    start = time.monotonic()
    with socket.create_connection(address(platform), timeout=10) as sock:
        sock.sendall(
            b"POST /callService HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n"
            + b"{" * 1000
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - start < 5
    alive(platform)


def test_more_connections_than_workers_get_503_not_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "WORKERS", 2)
    monkeypatch.setattr(server_module, "QUEUE", 2)
    with InsurancePlatform(tmp_path / "l.db") as platform:
        threads_before = threading.active_count()
        conns = [socket.create_connection(address(platform), timeout=10) for _ in range(12)]
        try:
            time.sleep(0.5)  # accepted: 2 with the workers, up to 2 queued, the rest refused
            refused = 0
            for sock in conns:
                sock.settimeout(0.2)
                with contextlib.suppress(TimeoutError):  # held by a worker, or queued
                    refused += sock.recv(64).startswith(b"HTTP/1.1 503")
            assert refused >= 12 - 2 - 2, refused
            assert threading.active_count() <= threads_before  # no thread per connection
        finally:
            for sock in conns:
                sock.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the idle ones are gone: served again
            try:
                if request(platform, "GET", "/admin/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert request(platform, "GET", "/admin/health") == (200, {"ok": True})


# --------------------------------------------------------------------------- admin


def admin(platform: InsurancePlatform, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token if token is not None else platform.admin_token}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ""}])
def test_admin_faults_need_the_token(platform: InsurancePlatform, headers: dict[str, str]) -> None:
    spec = json.dumps({"infno": "2207", "kind": "drop"}).encode()
    assert request(platform, "POST", "/admin/faults", spec, headers)[0] == 403
    assert request(platform, "DELETE", "/admin/faults", b"", headers)[0] == 403
    assert platform.take_fault("2207") is None
    assert request(platform, "POST", "/admin/faults", spec, admin(platform))[0] == 200
    assert platform.take_fault("2207") is not None


@pytest.mark.parametrize(
    "spec",
    [
        {"infno": "2207", "kind": "delay", "delay": 1e9},
        {"infno": "2207", "kind": "delay", "delay": "nan"},
        {"infno": "2207", "kind": "delay", "delay": "inf"},
        {"infno": "2207", "kind": "delay", "delay": -1},
        {"infno": "2207", "kind": "drop", "count": 10**9},
        {"infno": "2207", "kind": "drop", "count": 0},
        {"infno": "2207", "kind": "drop", "count": 10**400},
        {"infno": "x" * 100, "kind": "drop"},
        {"infno": "2207", "kind": "explode"},
        [1, 2, 3],
    ],
)
def test_admin_fault_values_are_bounded(platform: InsurancePlatform, spec: Any) -> None:
    body = json.dumps(spec).encode()
    assert request(platform, "POST", "/admin/faults", body, admin(platform))[0] == 400
    assert platform.take_fault("2207") is None and platform.take_fault("*") is None
    alive(platform)


def test_the_largest_fault_delay_is_accepted(platform: InsurancePlatform) -> None:
    spec = {"infno": "2207", "kind": "delay", "delay": server_module.MAX_FAULT_DELAY, "count": 1000}
    body = json.dumps(spec).encode()
    assert request(platform, "POST", "/admin/faults", body, admin(platform))[0] == 200
    fault = platform.take_fault("2207")
    assert fault is not None and fault.delay == Decimal("30") and fault.remaining == 999


# --------------------------------------------------------------------------- keep-alive


def test_a_kept_alive_connection_is_served_request_after_request(
    platform: InsurancePlatform,
) -> None:
    """HTTP/1.1 keep-alive: three replies on one TCP connection, each whole (the
    reply's headers and body are one write now, and the framing stays intact)."""
    conn = http.client.HTTPConnection(*address(platform), timeout=10)
    try:
        socks = set()
        for i in range(3):
            conn.request("POST", urlsplit(platform.url).path, body=envelope_9001(i))
            resp = conn.getresponse()
            reply = json.loads(resp.read())
            assert resp.status == 200 and reply["infcode"] == 0, reply
            assert not resp.will_close
            socks.add(id(conn.sock))
        assert len(socks) == 1  # never reconnected
    finally:
        conn.close()
    assert platform.ledger.message_count("9001") == 3


def test_a_kept_alive_connection_gives_its_worker_up_while_others_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker: the reply to A says ``Connection: close`` because B is queued, and B
    is then served (a kept-alive client cannot hold the only worker)."""
    monkeypatch.setattr(server_module, "WORKERS", 1)
    with InsurancePlatform(tmp_path / "l.db") as platform:
        platform.inject("9001", "delay", delay=0.5)
        a = http.client.HTTPConnection(*address(platform), timeout=10)
        b = http.client.HTTPConnection(*address(platform), timeout=10)
        try:
            body = envelope_9001(1)
            a.request("POST", "/", body=body)
            time.sleep(0.1)  # A is with the worker, delayed
            b.request("GET", "/admin/health")  # B waits in the queue
            first = a.getresponse()
            first.read()
            assert first.status == 200 and first.will_close
            assert first.getheader("Connection") == "close"
            second = b.getresponse()
            assert (second.status, json.loads(second.read())) == (200, {"ok": True})
        finally:
            a.close()
            b.close()


def envelope_9001(seq: int) -> bytes:
    env = {"infno": "9001", "msgid": f"{FIXMEDINS}{datetime.now():%Y%m%d%H%M%S}{seq:04d}",
           "fixmedins_code": FIXMEDINS, "mdtrtarea_admvs": SHANGHAI,
           "input": {"signIn": {"opter_no": "x"}}}  # fmt: skip
    return json.dumps(env).encode()

"""The insurance client's contract at its edges: one side-effects answer per transaction,
replies read bounded and typed (a real HTTP server that answers badly), and an outbox
read by column name through the Store base (real SQLite files)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sscard.errors import ExitStatus
from sscard.services.insurance import (
    MAX_REPLY_BYTES,
    REVERSIBLE_INFNOS,
    CancelRegistrationRequest,
    ClientConfig,
    InsuranceClient,
    MalformedReply,
    Outbox,
    OutboxError,
    OutboxState,
    OutcomeUnknown,
    PersonInfoRequest,
    PlatformError,
    side_effect_free,
)
from sscard.services.insurance.models import Request, request_types
from sscard.services.insurance.reconcile import RESENDABLE

FIXMEDINS = "H31010400001"

#: Does the platform change anything when it applies the transaction? From the
#: national interface's catalogue (medical-insurance.md §1.2): sign-in, the person
#: query, the pre-settlement trial calculation (预结算, no setl_id) and the statement
#: check (对总账) change nothing; registration, uploads, settlement, cancellations and
#: reversal do. 5261 and 2599 are the sscard profile's queries.
SIDE_EFFECTS = {
    "9001": False, "1101": False, "2201": True, "2202": True, "2203": True, "2204": True,
    "2205": True, "2206": False, "2207": True, "2208": True, "2601": True, "3201": False,
    "5261": False, "2599": False,
}  # fmt: skip


def test_every_transaction_has_exactly_one_side_effects_answer() -> None:
    types = request_types()
    assert sorted(types) == sorted(SIDE_EFFECTS)
    assert {infno: cls.side_effects for infno, cls in types.items()} == SIDE_EFFECTS
    for infno, effects in SIDE_EFFECTS.items():
        assert side_effect_free(infno) is not effects
    assert not side_effect_free("3505")  # unknown to this client: assume side effects
    # A recovery reverses or resends only what has side effects.
    assert not any(side_effect_free(i) for i in REVERSIBLE_INFNOS | RESENDABLE)


def test_a_second_class_for_a_transaction_number_is_refused() -> None:
    with pytest.raises(TypeError, match="2206 is already SettleRequest"):

        @dataclass(frozen=True)
        class Trial(Request[None]):  # a second, contradicting answer for 2206
            infno: ClassVar[str] = "2206"
            side_effects: ClassVar[bool] = True

    assert not side_effect_free("2207") and side_effect_free("2206")


# -- replies from a platform that answers badly ------------------------------------------


class BadPlatform(ThreadingHTTPServer):
    """A real HTTP server whose every answer is ``body`` (chunked when ``chunked``)."""

    daemon_threads = True
    body: bytes = b""
    chunked = False
    requests = 0


class Handler(BaseHTTPRequestHandler):
    server: BadPlatform

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        body = self.server.body
        try:
            if self.server.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), 65536):
                    part = body[i : i + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what a bounded reader does

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bad() -> Iterator[BadPlatform]:
    server = BadPlatform(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def client(bad: BadPlatform, tmp_path: Path) -> Iterator[InsuranceClient]:
    config = ClientConfig(f"http://127.0.0.1:{bad.server_address[1]}/fsi", FIXMEDINS,
                          "测试诊所", "310000", timeout=5.0, query_backoff=0.0)  # fmt: skip
    with InsuranceClient(config, tmp_path / "outbox.db", auto_sign_in=False) as c:
        yield c


#: A request with side effects (sent once) and no personal data.
CANCEL = CancelRegistrationRequest("P1", "MD1", "OTP-1", "340100")

BAD_REPLIES = [
    (b"[1, 2]", "malformed reply (not a JSON object)", "不是JSON对象"),
    (b'"infcode"', "malformed reply (not a JSON object)", "不是JSON对象"),
    (b"null", "malformed reply (not a JSON object)", "不是JSON对象"),
    (b'{"output": {}}', "malformed reply (no infcode)", "缺少 infcode"),
    (b'{"infcode": null}', "malformed reply (no infcode)", "缺少 infcode"),
    (b'{"infcode": "abc"}', "malformed reply (infcode not an integer)", "不是整数"),
    (b'{"infcode": 0.5}', "malformed reply (infcode not an integer)", "不是整数"),
    (b'{"infcode": true}', "malformed reply (infcode not an integer)", "不是整数"),
    (b'{"infcode": {"a": 0}}', "malformed reply (infcode not an integer)", "不是整数"),
    (b"<html>502 Bad Gateway</html>", "malformed reply (not JSON)", "不是JSON"),
    (b'{"infcode": 0, "output": ', "malformed reply (not JSON)", "不是JSON"),
    (b'{"infcode": 0, "err_msg": "\xff\xfe"}', "malformed reply (not JSON)", "不是JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "malformed reply (not JSON)", "不是JSON"),
]


@pytest.mark.parametrize(("body", "reason", "zh"), BAD_REPLIES)
def test_a_reply_that_is_not_an_envelope_is_a_typed_unknown_outcome(
    client: InsuranceClient, bad: BadPlatform, body: bytes, reason: str, zh: str
) -> None:
    bad.body = body
    with pytest.raises(MalformedReply) as error:
        client.send(CANCEL)
    assert isinstance(error.value, OutcomeUnknown) and error.value.reason == reason
    assert error.value.exit_status == ExitStatus.UNKNOWN
    assert zh in error.value.message_zh and "reply" not in error.value.message_zh
    assert bad.requests == 1  # side effects: sent once
    row = client.outbox.get(error.value.msgid)
    assert (row.state, row.response) == (OutboxState.UNKNOWN, None)  # the reconciliation's


@pytest.mark.parametrize("chunked", [False, True])
def test_a_reply_over_the_limit_is_refused_without_reading_it_all(
    client: InsuranceClient, bad: BadPlatform, chunked: bool
) -> None:
    bad.body = b'{"infcode": 0, "output": {"x": "' + b"a" * (4 * MAX_REPLY_BYTES) + b'"}}'
    bad.chunked = chunked
    with pytest.raises(MalformedReply) as error:
        client.send(PersonInfoRequest("02", "340104199001010011"))  # a query: retried
    assert error.value.reason == f"reply over {MAX_REPLY_BYTES:,} bytes"
    assert "应答超过 1,048,576 字节" in error.value.message_zh
    assert bad.requests == client.config.query_attempts
    assert client.outbox.get(error.value.msgid).state == OutboxState.FAILED  # changed nothing


def test_a_reply_just_under_the_limit_and_a_string_infcode_are_read(
    client: InsuranceClient, bad: BadPlatform
) -> None:
    head, tail = b'{"infcode": "0", "output": {"pad": "', b'"}}'
    bad.body = head + b"a" * (MAX_REPLY_BYTES - len(head) - len(tail)) + tail
    assert len(bad.body) == MAX_REPLY_BYTES
    assert client.send(CANCEL) is None
    assert client.outbox.rows()[-1].state == OutboxState.DONE
    bad.body = '{"infcode": "-1", "err_msg": "就诊信息不存在"}'.encode()
    with pytest.raises(PlatformError) as refused:
        client.send(CANCEL)
    assert refused.value.infcode == -1 and "就诊信息不存在" in refused.value.message_zh


# -- the outbox: one SQLite dialect -------------------------------------------------------


def _columns(db: sqlite3.Connection) -> list[str]:
    return [r[1] for r in db.execute("PRAGMA table_info(outbox)")]


def test_rows_are_read_by_column_name_whatever_the_column_order(tmp_path: Path) -> None:
    """A file whose table has the columns in another order and one more in the middle
    (another version's layout) reads the same: nothing depends on positions."""
    path = tmp_path / "outbox.db"
    with Outbox(path, FIXMEDINS, clock=lambda: datetime(2026, 3, 2, 9, 0)) as box:
        msgid, _ = box.create("2202", lambda m, now: {"msgid": m, "input": {"data": {"x": 1}}},
                              psn_no="P1", insuplc_admdvs="340100")  # fmt: skip
        box.finish(msgid, OutboxState.DONE, response={"infcode": 0, "output": {}}, note="ok")
        expected = box.get(msgid)
        order = _columns(box._connection())
    shuffled = [*order[::-1][:8], "extra", *order[::-1][8:]]
    with sqlite3.connect(path) as db:
        decl = {r[1]: f"{r[1]} {r[2]}" for r in db.execute("PRAGMA table_info(outbox)")}
        decl["extra"] = "extra TEXT DEFAULT 'x'"
        db.execute(f"CREATE TABLE moved ({', '.join(decl[c] for c in shuffled)})")
        db.execute(f"INSERT INTO moved ({', '.join(order)}) SELECT {', '.join(order)} FROM outbox")
        db.execute("DROP TABLE outbox")
        db.execute("ALTER TABLE moved RENAME TO outbox")
        assert _columns(db) == shuffled
    with Outbox(path, FIXMEDINS) as box:
        row = box.get(msgid)
        assert row == expected and row.request == expected.request
        assert (row.state, row.psn_no, row.note, row.infcode) == ("done", "P1", "ok", 0)
        assert row.state is OutboxState.DONE


def test_an_outbox_of_the_first_release_gains_its_columns_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Outbox(path, FIXMEDINS) as box:
        msgid, _ = box.create("2201", lambda m, now: {"msgid": m, "input": {}}, psn_no="P2",
                              insuplc_admdvs="340100")  # fmt: skip
    with sqlite3.connect(path) as db:  # back to the first release's layout
        for column in ("clr_optins", "clr_type", "insutype", "unseen", "session"):
            db.execute(f"ALTER TABLE outbox DROP COLUMN {column}")
        assert "session" not in _columns(db)
    with Outbox(path, FIXMEDINS) as box:
        row = box.get(msgid)
        assert (row.session, row.unseen, row.state) == ("", False, OutboxState.PENDING)
        assert box.unresolved() == [row]
        assert not box.is_live(row.session)  # rows from before sessions: no live owner
    with sqlite3.connect(path) as db:
        assert {"session", "unseen", "insutype", "clr_type", "clr_optins"} <= set(_columns(db))


def test_states_are_the_enum_and_a_closed_outbox_says_so(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", FIXMEDINS)
    msgid, _ = box.create("2202", lambda m, now: {"msgid": m, "input": {}})
    with pytest.raises(ValueError):
        box.finish(msgid, "half-done")  # type: ignore[arg-type]
    with sqlite3.connect(tmp_path / "outbox.db") as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE outbox SET state = 'half-done'")  # the schema's CHECK, from the enum
    assert box.rows(states=(OutboxState.PENDING,))[0].state is OutboxState.PENDING
    box.close()
    box.close()  # a second close does nothing
    with pytest.raises(OutboxError, match="closed"):
        box.rows()
    with pytest.raises(OutboxError, match="closed"):
        box.finish(msgid, OutboxState.DONE)

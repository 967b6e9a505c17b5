"""Connection, tracing, replay and the in-process simulator transport (no pcscd needed)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from helpers import connect
from hypothesis import given
from hypothesis import strategies as st
from pcsc_harness import INS_ECHO, INS_LOOP, RECORD, SELECT_AID, T0_ATR, TestCard

from sscard.apdu import ApduFormatError, Command, Response
from sscard.apdu.errors import FileNotFound
from sscard.errors import DependencyMissing
from sscard.simulators.base import EchoCard
from sscard.terminals import (
    CardRemoved,
    Connection,
    GetResponseLoop,
    NoCard,
    NotConnected,
    ReplayMismatch,
    ReplayTransport,
    SimulatorTransport,
    TraceFormatError,
    Tracer,
)
from sscard.terminals.atr import AtrFormatError, parse_atr
from sscard.terminals.tracing import Redaction, format_record

SELECT = Command(0x00, 0xA4, 0x04, 0x00, SELECT_AID, le=256)
FCI = bytes.fromhex("6F0A8408") + SELECT_AID


class RecordingTransport(SimulatorTransport):
    """Counts raw exchanges (to see what the Connection really sent)."""

    def __init__(self, card: object, extended: bool | None = None) -> None:
        super().__init__(card, supports_extended=extended)  # type: ignore[arg-type]
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return super().transmit(apdu)


# -- protocol follow-up (61xx / 6Cxx) ------------------------------------------------


@pytest.mark.parametrize("t0", [True, False])
def test_select_same_answer_in_t0_and_t1_modes(t0: bool) -> None:
    conn = connect(TestCard(t0=t0))
    assert conn.protocol == ("T=0" if t0 else "T=1")
    response = conn.send(SELECT)
    assert response == Response(FCI, 0x9000)


def test_t0_get_response_is_sent_with_the_announced_length() -> None:
    card = TestCard(t0=True)
    transport = RecordingTransport(card)
    conn = Connection(transport).connect()
    assert (
        conn.transmit(Command(0, INS_ECHO, 0, 0, b"\x01\x02\x03", le=256)).data == b"\x01\x02\x03"
    )
    assert transport.sent[1] == bytes.fromhex("00C0000003")


def test_6cxx_resends_with_the_right_le_once() -> None:
    transport = RecordingTransport(TestCard(t0=False))
    conn = Connection(transport).connect()
    response = conn.send(Command(0, 0xB2, 1, 4, le=256))
    assert response.data == RECORD
    assert [a.hex().upper() for a in transport.sent] == ["00B2010400", "00B2010412"]


def test_strict_mode_returns_raw_61xx_and_6cxx() -> None:
    conn = connect(TestCard(t0=True), strict=True)
    assert conn.transmit(SELECT).sw == 0x610C
    assert conn.transmit(Command(0, 0xB2, 1, 4, le=256)).sw == 0x6C12


def test_endless_61xx_is_bounded() -> None:
    transport = RecordingTransport(TestCard(t0=True))
    conn = Connection(transport, max_get_response=5).connect()
    with pytest.raises(GetResponseLoop) as info:
        conn.transmit(Command(0, INS_LOOP, 0, 0))
    assert len(transport.sent) == 1 + 5
    assert info.value.code == -4


def test_get_response_answering_6cxx_is_followed() -> None:
    card = TestCard(t0=True)
    conn = connect(card, strict=True)
    assert conn.transmit(Command(0, INS_ECHO, 0, 0, b"abc", le=256)).sw == 0x6103
    lenient = Connection(conn.transport)
    # GET RESPONSE asking for 0x10 bytes gets 6C03 and is re-sent with Le=03.
    assert lenient.transmit(Command(0, 0xC0, 0, 0, le=0x10)) == Response(b"abc")


def test_send_raises_the_typed_status_error() -> None:
    conn = connect(TestCard(t0=False))
    with pytest.raises(FileNotFound):
        conn.send(Command(0, 0xA4, 4, 0, b"\x01\x02"))


class ShortAnswerCard(EchoCard):
    def execute(self, apdu: bytes) -> bytes:
        return b"\x90"


def test_response_shorter_than_two_bytes() -> None:
    with pytest.raises(ApduFormatError):
        connect(ShortAnswerCard()).transmit(SELECT)


# -- extended length and chaining ---------------------------------------------------


@given(st.binary(min_size=256, max_size=900))
def test_extended_command_falls_back_to_chaining(data: bytes) -> None:
    transport = RecordingTransport(EchoCard(), extended=False)
    conn = Connection(transport).connect()
    response = conn.transmit(Command(0x00, 0xDA, 0x01, 0x02, data))
    assert response.sw == 0x9000
    pieces = transport.sent
    assert len(pieces) == -(-len(data) // 255)
    assert all(p[0] == 0x10 for p in pieces[:-1]) and pieces[-1][0] == 0x00
    assert b"".join(p[5:] for p in pieces) == data  # no Le: case 3


def test_extended_command_sent_as_is_when_supported() -> None:
    transport = RecordingTransport(EchoCard(), extended=True)
    conn = Connection(transport).connect()
    data = bytes(300)
    conn.transmit(Command(0x00, 0xDA, 0x01, 0x02, data))
    assert transport.sent == [bytes(Command(0x00, 0xDA, 0x01, 0x02, data))]


# -- simulator transport ------------------------------------------------------------


def test_simulator_eject_then_transmit_is_card_removed() -> None:
    transport = SimulatorTransport(TestCard(t0=False))
    conn = Connection(transport).connect()
    conn.send(SELECT)
    transport.eject()
    with pytest.raises(CardRemoved):
        conn.transmit(SELECT)
    transport.insert(TestCard(t0=True))
    with pytest.raises(CardRemoved):  # a new card: the old session is gone
        conn.transmit(SELECT)
    conn.reconnect()
    assert conn.protocol == "T=0" and conn.atr == T0_ATR
    assert conn.send(SELECT).data == FCI


def test_simulator_without_card_and_before_connect() -> None:
    with pytest.raises(NoCard):
        SimulatorTransport().connect()
    with pytest.raises(NotConnected):
        SimulatorTransport(EchoCard()).transmit(b"\x00\xa4\x00\x00")


def test_simulator_reset_on_reconnect_powers_the_card() -> None:
    card = TestCard(t0=True)
    transport = SimulatorTransport(card)
    transport.connect()
    transport.reconnect(reset=True)
    assert card.powered == 2


# -- tracing and redaction ----------------------------------------------------------


def test_trace_lines_have_time_direction_name_status_duration() -> None:
    stream = io.StringIO()
    conn = Connection(SimulatorTransport(TestCard(t0=True)), tracer=Tracer(stream)).connect()
    conn.send(SELECT)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["dir"] for r in lines] == ["S", "C", "R", "C", "R"]
    assert lines[1]["name"] == "SELECT" and lines[1]["hex"] == bytes(SELECT).hex().upper()
    assert lines[3]["name"] == "GET RESPONSE"
    assert lines[4]["sw"] == "9000" and "duration_us" in lines[4] and "time" in lines[4]
    assert lines[2]["status"].startswith("610C")


PIN = bytes.fromhex("123456")


@pytest.mark.parametrize(
    ("command", "secret_in"),
    [
        (Command(0x00, 0x20, 0x00, 0x00, PIN), "both"),  # VERIFY
        (Command(0x80, 0x5E, 0x01, 0x00, PIN + b"\xff" + bytes.fromhex("654321")), "both"),
        (Command(0x00, 0x82, 0x00, 0x0A, bytes(range(16))), "both"),  # EXTERNAL AUTH
        (Command(0x00, 0x88, 0x00, 0x01, bytes(range(16)), le=8), "both"),  # INTERNAL AUTH
        (Command(0x80, 0x54, 0x01, 0x00, bytes(range(15)), le=8), "both"),  # purse MAC
        (Command(0x80, 0x70, 0x00, 0x00, bytes(range(20)), le=8), "both"),  # PSAM MAC1
        (Command(0x00, 0xB2, 0x01, 0x04, le=0x12), "response"),  # READ RECORD (EF06)
    ],
)
def test_redaction_by_default(command: Command, secret_in: str) -> None:
    class Leaky(EchoCard):
        def execute(self, apdu: bytes) -> bytes:
            return b"SECRET-ANSWER\x90\x00"

    tracer = Tracer()
    Connection(SimulatorTransport(Leaky()), tracer=tracer).connect().transmit(command)
    cmd_line, rsp_line = tracer.records[1], tracer.records[2]
    text = json.dumps(tracer.records)
    assert b"SECRET-ANSWER".hex().upper() not in text or secret_in == "command"
    if secret_in in ("command", "both"):
        assert cmd_line["hex"] == command.header().hex().upper()
        assert cmd_line["redacted"] == len(command.data)
    if secret_in in ("response", "both"):
        assert rsp_line["hex"] == "9000" and rsp_line["redacted"] == len(b"SECRET-ANSWER")


def test_no_redact_and_sensitive_flags() -> None:
    tracer = Tracer(redact=False)
    conn = Connection(SimulatorTransport(EchoCard()), tracer=tracer).connect()
    conn.transmit(Command(0x00, 0x20, 0x00, 0x00, PIN))
    assert tracer.records[1]["hex"].endswith("123456")
    tracer = Tracer()
    conn = Connection(SimulatorTransport(EchoCard()), tracer=tracer).connect()
    conn.transmit(Command(0x00, 0xEE, 0x00, 0x00, b"secret"), sensitive=True)
    conn.transmit(Command(0x00, 0xB2, 0x01, 0x2C, le=2), sensitive=False)  # EF05: public
    assert tracer.records[1]["redacted"] == 6 and tracer.records[2]["hex"] == "9000"
    assert "redacted" not in tracer.records[4]


def test_get_response_inherits_the_redaction_of_its_command() -> None:
    tracer = Tracer()
    conn = Connection(SimulatorTransport(TestCard(t0=True)), tracer=tracer).connect()
    conn.transmit(Command(0x00, INS_ECHO, 0, 0, b"private", le=256), sensitive=True)
    get_response = tracer.records[4]
    assert get_response["dir"] == "R" and get_response["hex"] == "9000"
    assert Redaction.for_command(bytes(SELECT)) == Redaction()


def test_trace_show_format(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with Tracer(path) as tracer:
        Connection(SimulatorTransport(TestCard()), tracer=tracer).connect().send(SELECT)
    from sscard.terminals.tracing import read_trace

    lines = [format_record(r) for r in read_trace(path)]
    assert "SELECT" in lines[1] and "GET RESPONSE" in lines[3] and "9000" in lines[4]


# -- replay -------------------------------------------------------------------------


def record_session(path: Path, redact: bool) -> None:
    with Tracer(path, redact=redact) as tracer:
        conn = Connection(SimulatorTransport(TestCard(t0=True)), tracer=tracer).connect()
        conn.send(SELECT)
        conn.send(Command(0x00, 0x20, 0x00, 0x00, PIN))
        conn.send(Command(0x00, 0xB2, 0x01, 0x04, le=0x12))


def replay_session(conn: Connection) -> list[Response]:
    return [
        conn.send(SELECT),
        conn.send(Command(0x00, 0x20, 0x00, 0x00, PIN)),
        conn.send(Command(0x00, 0xB2, 0x01, 0x04, le=0x12)),
    ]


def test_replay_reproduces_the_recorded_session(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path, redact=False)
    transport = ReplayTransport(path)
    conn = Connection(transport).connect()
    assert conn.atr == T0_ATR and conn.protocol == "T=0"
    answers = replay_session(conn)
    assert answers[0].data == FCI and answers[2].data == RECORD
    transport.assert_complete()


def test_replay_fails_loudly_on_a_different_command(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path, redact=False)
    conn = Connection(ReplayTransport(path)).connect()
    conn.send(SELECT)
    with pytest.raises(ReplayMismatch, match="exchange #3"):
        conn.send(Command(0x00, 0x20, 0x00, 0x00, b"\x99\x99\x99"))


def test_replay_of_redacted_trace(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path, redact=True)
    conn = Connection(ReplayTransport(path)).connect()
    conn.send(SELECT)
    conn.transmit(Command(0x00, 0x20, 0x00, 0x00, b"\x65\x43\x21"))  # redacted: header+len match
    with pytest.raises(TraceFormatError, match="no-redact"):
        conn.send(Command(0x00, 0xB2, 0x01, 0x04, le=0x12))


def test_replay_reraises_recorded_errors_and_checks_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    transport = SimulatorTransport(TestCard(t0=False))
    with Tracer(path, redact=False) as tracer:
        conn = Connection(transport, tracer=tracer).connect()
        conn.send(SELECT)
        transport.eject()
        with pytest.raises(CardRemoved):
            conn.send(SELECT)
    replay = ReplayTransport(path)
    conn = Connection(replay).connect()
    conn.send(SELECT)
    with pytest.raises(CardRemoved):
        conn.send(SELECT)
    replay.assert_complete()
    with pytest.raises(ReplayMismatch, match="not recorded"):
        conn.send(SELECT)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(TraceFormatError, match="line 1"):
        ReplayTransport(tmp_path / "bad.jsonl")


# -- ATR ------------------------------------------------------------------------------


def test_atr_social_security_pattern() -> None:
    atr = parse_atr(T0_ATR)
    assert atr.protocols == (0,) and [b.name for b in atr.interface] == ["TB1", "TC1"]
    assert atr.ssc is not None
    assert atr.ssc.chip_maker_name and "Huada" in atr.ssc.chip_maker_name
    assert atr.ssc.cos_name == "TurboCOS" and atr.ssc.card_maker == "8660"
    assert atr.ssc.serial == "331100000048"


def test_atr_t1_and_malformed() -> None:
    atr = parse_atr(bytes.fromhex("3B80800101"))
    assert atr.protocols == (0, 1) and atr.tck_ok is True and atr.ssc is None
    for bad in ("3B", "3C00", "3B6D0000", "3B808001", "3B00FF"):
        with pytest.raises(AtrFormatError):
            parse_atr(bytes.fromhex(bad))


@given(st.binary(max_size=40))
def test_atr_parser_never_raises_anything_else(raw: bytes) -> None:
    try:
        atr = parse_atr(raw)
    except AtrFormatError:
        return
    assert atr.raw == raw and len(atr.historical) == atr.t0 & 0x0F


# -- lazy pyscard ---------------------------------------------------------------------


def test_missing_pyscard_is_a_typed_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from sscard.terminals import pcsc

    monkeypatch.setattr(pcsc, "_scard_module", None)
    monkeypatch.setitem(sys.modules, "smartcard", None)  # fault: import fails
    with pytest.raises(DependencyMissing, match="pip install pyscard") as info:
        pcsc.PcscTransport()
    assert "libpcsclite-dev" in info.value.message_en

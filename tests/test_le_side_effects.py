"""Le on every command with side effects: nothing committed twice, nothing reported failed
that was committed.

For each command that changes a card or a PSAM, and each Le (absent, 00, too short,
too long, exact), on a fresh card:

* raw bytes to the card OS: an error SW means nothing changed (the OS judges Le before
  the commit, card_os.py "Le before side effects"); 9000 means exactly one execution;
* through ``Connection`` (not strict): success is one execution; a 6Cxx on a command
  with side effects raises ``CommandOutcomeUnknown`` and is never re-sent
  (sscard.apdu.repeat), the card unchanged;
* through ``Connection`` to a *legacy* card that commits first and answers 6Cxx after
  (the card of the issue): one execution, reported unknown, never failed, never twice.

Then the same through the validator (8054) and the load (8052), the terminal's
recovery path deciding what the card did. APPLICATION BLOCK is not simulated (no
handler), so it has no row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
from helpers import connect, run
from test_transit_support import Rig, accepted, bus, refused

from sscard.apdu import CardError, Command, Response
from sscard.apdu.repeat import COMMAND_REPEAT, repeat_key, safe_to_repeat
from sscard.applets.transit import LoadInterrupted, Psam, Purse, Refusal, load
from sscard.cards.ids import TxnType
from sscard.cards.purse import DebitData, SamPurchaseInitData, TripRecord
from sscard.crypto.ssse import sm_mac
from sscard.services.journal import TapState
from sscard.simulators.base import CardWrapper
from sscard.simulators.cos import (
    FREE,
    Applet,
    CardOS,
    DedicatedFile,
    Key,
    KeyUse,
    Pin,
    RecordFile,
    RecordStructure,
    TransparentFile,
)
from sscard.simulators.keys import default_key_set
from sscard.simulators.load_host import LoadHost
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.simulators.purse_applet import find_purse, purse_card
from sscard.terminals import CommandOutcomeUnknown, Connection, SimulatorTransport

KEYS = default_key_set()
TID = bytes.fromhex("310000000077")
WHEN = datetime(2025, 3, 1, 8, 30, 15)
LES = ("absent", "00", "short", "long", "exact")
H = bytes.fromhex


def le_value(name: str, n: int) -> int | None:
    """The Le of variant ``name`` for a command answering ``n`` data bytes (a command
    without answer data has no "too short" Le: it is not generated)."""
    return {"absent": None, "00": 256, "short": n - 1, "long": n + 1, "exact": n or None}[name]


@dataclass
class Case:
    """One side-effecting command ready to send on a fresh card, through ``conn`` (not
    strict; to the card itself or to a :class:`Legacy` wrapper) or raw to ``card``."""

    card: CardOS
    conn: Connection
    command: Command  # without Le
    answer: int  # data bytes of a successful answer
    probe: Callable[[], object]  # the persistent state the command changes
    finish: Callable[[], None] = lambda: None  # completes a volatile effect (80DC)


# --------------------------------------------------------------------------- purse, PSAM


def _open(card: CardOS, legacy: bool) -> Connection:
    """Power the card on once; set-up and the command under test share this session."""
    target: Any = Legacy(card) if legacy else card
    return Connection(SimulatorTransport(target)).connect()


def _purse(t0: bool, legacy: bool) -> tuple[CardOS, Connection, Purse, Psam]:
    profile = new_card("jiangsu", seed=1, today=date(2025, 3, 1), balance=5_000)
    assert profile.purse is not None
    card = purse_card(profile.purse, KEYS, t0=t0)
    conn = _open(card, legacy)
    purse = Purse(conn)
    purse.select()
    return card, conn, purse, Psam(connect(psam_card(new_psam(TID, keys=KEYS)))).open()


def _state(card: CardOS) -> object:
    df, applet = find_purse(card)
    st = applet.state
    files = tuple(tuple(df.ef_by_sfi(sfi).records) for sfi in (0x18, 0x1E))  # type: ignore[union-attr]
    return (st.value, st.offline_counter, st.online_counter, files)


def _debit_data(purse: Purse, psam: Psam, *, composite: bool) -> bytes:
    ef15 = purse.ef0015
    init = purse.init_purchase(
        composite=composite, key_index=psam.key_index, amount=150, terminal_id=psam.terminal_id
    )
    if composite:
        purse.update_cache(0x1E, 0, _trip(init.balance - 150).encode())
    sam = psam.init_purchase(_sam_data(init, ef15, composite))
    return DebitData(terminal_seq=sam.terminal_seq, time=WHEN, mac1=sam.mac1).encode()


def _sam_data(init: Any, ef15: Any, composite: bool) -> SamPurchaseInitData:
    txn = TxnType.CAPP_PURCHASE if composite else TxnType.EP_PURCHASE
    return SamPurchaseInitData(
        random=init.random, offline_counter=init.offline_counter, amount=150,
        txn_type=int(txn), time=WHEN, key_version=init.key_version,
        algorithm_id=init.algorithm_id, asn8=ef15.asn_right8, issuer_id=ef15.issuer_id,
    )  # fmt: skip


def _trip(balance: int) -> TripRecord:
    return TripRecord(
        record_type=6, terminal_id=bytes(2) + TID, industry=2, line_station=bytes(7),
        amount=150, balance=balance, time=WHEN, city_code="2000", institution_id=bytes(8),
    )  # fmt: skip


def debit_case(t0: bool, legacy: bool) -> Case:
    card, conn, purse, psam = _purse(t0, legacy)
    data = _debit_data(purse, psam, composite=False)
    return Case(card, conn, Command(0x80, 0x54, 0x01, 0x00, data), 8, lambda: _state(card))


def load_case(t0: bool, legacy: bool) -> Case:
    card, conn, purse, _ = _purse(t0, legacy)
    ef15 = purse.ef0015
    raw = purse.init_load_raw(key_index=1, amount=700, terminal_id=TID)
    auth = LoadHost(KEYS).authorize(
        init_response=raw, issuer_id=ef15.issuer_id, asn=bytes.fromhex(ef15.asn), amount=700,
        terminal_id=TID, date_time=WHEN,
    )  # fmt: skip
    command = Command(0x80, 0x52, 0x00, 0x00, auth.credit_data)
    return Case(card, conn, command, 4, lambda: _state(card))


def cache_case(t0: bool, legacy: bool) -> Case:
    """80DC answers no data; its effect shows when the 8054 that follows commits it."""
    card, conn, purse, psam = _purse(t0, legacy)
    ef15 = purse.ef0015
    init = purse.init_purchase(
        composite=True, key_index=psam.key_index, amount=150, terminal_id=psam.terminal_id
    )

    def finish() -> None:
        sam = psam.init_purchase(_sam_data(init, ef15, True))
        debit = DebitData(terminal_seq=sam.terminal_seq, time=WHEN, mac1=sam.mac1).encode()
        conn.transmit(Command(0x80, 0x54, 0x01, 0x00, debit, le=8))

    command = Command(0x80, 0xDC, 0x00, 0x1E << 3, _trip(init.balance - 150).encode())
    return Case(card, conn, command, 0, lambda: _state(card), finish)


def psam_case(t0: bool, legacy: bool) -> Case:
    image = new_psam(TID, keys=KEYS, t0=t0)
    card = psam_card(image)
    conn = _open(card, legacy)
    run(card, "00A40000021001")
    profile = new_card("jiangsu", seed=1, today=date(2025, 3, 1))
    assert profile.purse is not None
    ef15 = profile.purse.ef0015
    data = SamPurchaseInitData(
        random=H("11223344"), offline_counter=3, amount=150, txn_type=6, time=WHEN,
        key_version=KEYS.purse_key_version, algorithm_id=0x04, asn8=ef15.asn_right8,
        issuer_id=ef15.issuer_id,
    ).encode()  # fmt: skip
    return Case(card, conn, Command(0x80, 0x70, 0x00, 0x00, data), 8, lambda: image.next_seq)


# --------------------------------------------------------------------------- ISO commands

PIN_KEY, AUTH_KEY = H("00112233445566778899AABBCCDDEEFF"), H("FFEEDDCCBBAA99887766554433221100")


def _iso_card(legacy: bool) -> tuple[CardOS, Connection, DedicatedFile]:
    mf = DedicatedFile(fid=0x3F00)
    df = DedicatedFile(
        fid=0xDF01, name=H("A0000000010203"), pin=Pin(H("123456"), initial=H("111111")),
        keys={
            0x05: Key(0x05, PIN_KEY, 0x01, KeyUse.PIN_RELOAD | KeyUse.PIN_UNBLOCK),
            0x0A: Key(0x0A, AUTH_KEY, 0x01, KeyUse.EXTERNAL_AUTH),
        },
    )  # fmt: skip
    df.add_all(
        TransparentFile(fid=0xEF01, sfi=1, data=bytearray(8), write=FREE),
        RecordFile(fid=0xEF02, sfi=2, structure=RecordStructure.LINEAR_FIXED, record_size=3,
                   records=[H("000000")], write=FREE),
        RecordFile(fid=0xEF03, sfi=3, structure=RecordStructure.LINEAR_VARIABLE,
                   records=[H("01")], max_records=8, write=FREE),
    )  # fmt: skip
    mf.add(df)
    card = CardOS(mf, atr=H("3B8080010101"))
    conn = _open(card, legacy)
    run(card, "00A4040007A0000000010203")
    return card, conn, df


def _iso_state(df: DedicatedFile) -> object:
    pin = df.pin
    assert pin is not None
    files = (
        bytes(df.ef_by_sfi(1).data),  # type: ignore[union-attr]
        tuple(df.ef_by_sfi(2).records),  # type: ignore[union-attr]
        tuple(df.ef_by_sfi(3).records),  # type: ignore[union-attr]
    )
    return (files, pin.value, pin.tries, df.keys[0x0A].tries)


def iso_case(name: str, legacy: bool) -> Case:
    card, conn, df = _iso_card(legacy)
    pin = df.pin
    assert pin is not None
    commands = {
        "UPDATE BINARY": Command(0x00, 0xD6, 0x81, 0x00, H("A1A2")),
        "UPDATE RECORD": Command(0x00, 0xDC, 0x01, (2 << 3) | 4, H("ABCDEF")),
        "APPEND RECORD": Command(0x00, 0xE2, 0x00, 3 << 3, H("0203")),
        "VERIFY (wrong PIN)": Command(0x00, 0x20, 0x00, 0x00, H("999999")),
        "CHANGE PIN": Command(0x80, 0x5E, 0x01, 0x00, H("123456") + b"\xff" + H("654321")),
        "RELOAD PIN": Command(
            0x80, 0x5E, 0x00, 0x00, H("222222") + sm_mac(PIN_KEY, bytes(8), H("222222"), 1)
        ),
    }
    if name in commands:
        return Case(card, conn, commands[name], 0, lambda: _iso_state(df))
    challenge = run(card, "0084000008")[0]
    if name == "UNBLOCK PIN":
        pin.tries = 0
        mac = sm_mac(PIN_KEY, challenge, H("8424000004"), 1)
        command = Command(0x84, 0x24, 0x00, 0x00, mac)
        return Case(card, conn, command, 0, lambda: _iso_state(df))
    assert name == "EXTERNAL AUTHENTICATE (wrong)"
    command = Command(0x00, 0x82, 0x00, 0x0A, bytes(16))
    return Case(card, conn, command, 0, lambda: _iso_state(df))


ISO = ("UPDATE BINARY", "UPDATE RECORD", "APPEND RECORD", "VERIFY (wrong PIN)", "CHANGE PIN",
       "RELOAD PIN", "UNBLOCK PIN", "EXTERNAL AUTHENTICATE (wrong)")  # fmt: skip
T01 = (("T=1", False), ("T=0", True))
BUILDERS: dict[str, Callable[[bool], Case]] = {
    **{f"8054 DEBIT {p}": (lambda lg, t0=t0: debit_case(t0, lg)) for p, t0 in T01},
    **{f"8052 CREDIT {p}": (lambda lg, t0=t0: load_case(t0, lg)) for p, t0 in T01},
    "80DC CACHE": lambda lg: cache_case(False, lg),
    **{f"8070 PSAM {p}": (lambda lg, t0=t0: psam_case(t0, lg)) for p, t0 in T01},
    **{name: (lambda lg, name=name: iso_case(name, lg)) for name in ISO},
}


class Legacy(CardWrapper):
    """A card OS that commits first and judges Le after (the card that once charged twice): the
    command runs with the exact Le, then a wrong Le turns its 9000 into 6Cxx."""

    card: CardOS

    def execute(self, apdu: bytes) -> bytes:
        cmd = Command.parse(apdu)
        size = _answer_size(self.card, cmd)
        if size is None or cmd.le in (None, 256, size):
            return self.card.execute(apdu)
        answer = self.card.execute(bytes(cmd.with_le(size)))
        return bytes([0x6C, size]) if answer[-2:] == b"\x90\x00" else answer


def _answer_size(card: CardOS, cmd: Command) -> int | None:
    for df in card.mf.walk():
        if isinstance(df.applet, Applet) and cmd.ins in {i for _, i in df.applet.instructions}:
            size = df.applet.answer_size(cmd)
            if size is not None:
                return size
    return None


def _reference(builder: Callable[[bool], Case]) -> tuple[object, object]:
    """State before and after one execution with the exact Le."""
    case = builder(False)
    before = case.probe()
    _, sw = run(case.card, bytes(case.command.with_le(case.answer or None)))
    assert sw in (0x9000, 0x6108, 0x6104) or sw >> 8 in (0x63,), f"{sw:04X}"
    if sw >> 8 == 0x61:
        run(case.card, f"00C00000{sw & 0xFF:02X}")
    case.finish()
    return before, case.probe()


NO_DATA = {*ISO, "80DC CACHE"}
CASES = [(name, le) for name in BUILDERS for le in LES if not (le == "short" and name in NO_DATA)]


@pytest.mark.parametrize(("name", "le"), CASES)
def test_le_on_every_side_effecting_command(name: str, le: str) -> None:
    builder = BUILDERS[name]
    before, once = _reference(builder)
    if "wrong" not in name:
        assert once != before  # the reference execution did change the card

    # 1. raw to the card OS: an error SW never follows a commit
    case = builder(False)
    command = case.command.with_le(le_value(le, case.answer))
    _, sw = run(case.card, bytes(command))
    ok = sw == 0x9000 or sw >> 8 == 0x61 or (sw >> 8 == 0x63 and "wrong" in name)
    if sw >> 8 == 0x61:
        run(case.card, f"00C00000{sw & 0xFF:02X}")
    case.finish()
    assert case.probe() == (once if ok else before), f"SW {sw:04X}"
    if sw >> 8 == 0x6C:
        assert sw & 0xFF == case.answer

    # 2. through Connection: success once, or not re-sent and nothing changed
    case = builder(False)
    command = case.command.with_le(le_value(le, case.answer))  # this card's session
    try:
        case.conn.send(command)
        outcome = "ok"
    except CommandOutcomeUnknown:
        outcome = "unknown"
    except CardError:
        outcome = "error"  # only the wrong-PIN/cryptogram cases (63Cx)
    case.finish()
    if outcome == "ok" or (outcome == "error" and "wrong" in name):
        assert case.probe() == once
    else:
        assert outcome == "unknown" and case.probe() == before

    # 3. a legacy card (commit, then 6Cxx): executed once, reported unknown, not failed
    case = builder(True)
    command = case.command.with_le(le_value(le, case.answer))
    try:
        case.conn.send(command)
        outcome = "ok"
    except CommandOutcomeUnknown:
        outcome = "unknown"
    except CardError:
        outcome = "error"
    case.finish()
    assert case.probe() == once
    assert outcome == "ok" or (outcome == "error" and "wrong" in name) or outcome == "unknown"


# --------------------------------------------------------------------------- the one table


def test_the_repeat_table_is_the_one_place() -> None:
    safe = {name for (name, ok) in COMMAND_REPEAT.values() if ok}
    assert {"SELECT", "READ BINARY", "READ RECORD", "GET BALANCE", "GET TRANSACTION PROVE"} <= safe
    for cla, ins in ((0x80, 0x54), (0x80, 0x52), (0x80, 0xDC), (0x80, 0x70), (0x00, 0xD6),
                     (0x00, 0xDC), (0x00, 0xE2), (0x00, 0x20), (0x80, 0x5E), (0x84, 0x24)):  # fmt: skip
        assert not safe_to_repeat(Command(cla, ins, 0, 0, b"\x00")), (cla, ins)
    assert safe_to_repeat(Command(0x00, 0xB2, 1, 0x1C, le=256))
    assert not safe_to_repeat(Command(0x04, 0xB0, 0x81, 0, b"\x00" * 4))  # SM: never
    assert not safe_to_repeat(Command(0x80, 0x42))  # not in the table: never
    assert repeat_key(0x84, 0x24) == (0x80, 0x24) and repeat_key(0x01, 0xB0) == (0x00, 0xB0)


class Recording(SimulatorTransport):
    def __init__(self, card: object) -> None:
        super().__init__(card)  # type: ignore[arg-type]
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return super().transmit(apdu)


def test_connection_resends_a_read_but_never_a_debit() -> None:
    card, _, purse, psam = _purse(False, False)
    transport = Recording(Legacy(card))
    conn = Connection(transport).connect()
    purse = Purse(conn)
    purse.select()
    data = _debit_data(purse, psam, composite=False)
    del transport.sent[:]
    reply = conn.transmit(Command(0x00, 0xB2, 1, (0x18 << 3) | 4, le=5))  # 6C17, re-sent
    assert isinstance(reply, Response) and reply.sw == 0x9000 and len(transport.sent) == 2
    with pytest.raises(CommandOutcomeUnknown) as info:
        conn.transmit(Command(0x80, 0x54, 0x01, 0x00, data, le=4))
    assert info.value.sw == 0x6C08 and info.value.exit_status == 5
    assert [a[:2] for a in transport.sent[2:]] == [b"\x80\x54"]  # sent once, never again


# --------------------------------------------------------------------------- the terminals


class LeRewriter(CardWrapper):
    """Rewrites the Le of one INS on its way to the card (a reader or middleware that
    botches Le), around a fixed or a legacy card."""

    def __init__(self, card: Any, ins: int, le: int | None) -> None:
        super().__init__(card)
        self.ins, self.le = ins, le

    def execute(self, apdu: bytes) -> bytes:
        if len(apdu) > 4 and apdu[1] == self.ins and apdu[0] == 0x80:
            apdu = bytes(Command.parse(apdu).with_le(self.le))
        return self.card.execute(apdu)

    @property
    def faults(self) -> Any:
        return self.card.faults


@pytest.fixture
def rig(tmp_path: Any) -> Rig:
    return Rig(tmp_path)


def _rewritten(rig: Rig, ins: int, le: str, n: int, legacy: bool) -> tuple[Any, Connection]:
    from sscard.simulators.card import build_card

    card = build_card(rig.profile(balance=1_000), rig.keys)
    inner: Any = Legacy(card) if legacy else card
    wrapped = LeRewriter(inner, ins, le_value(le, n))
    return card, Connection(SimulatorTransport(wrapped)).connect()  # type: ignore[arg-type]


@pytest.mark.parametrize("legacy", [False, True], ids=["fixed card", "legacy card"])
@pytest.mark.parametrize("le", LES)
def test_validator_debit_per_le(rig: Rig, le: str, legacy: bool) -> None:
    _, conn = _rewritten(rig, 0x54, le, 8, legacy)
    v = rig.validator(bus(fare=150))
    result = v.tap(conn)
    purse = Purse(conn)
    purse.select()
    balance = purse.balance()
    rows = rig.rows()
    assert len(rows) == 1
    if balance == 1_000 - 150:  # taken once: the journal says so
        assert accepted(result).balance == 850
        assert rows[0].state is TapState.COMPLETED
    else:  # not taken: the journal says that, proven by 805A and the counter
        assert balance == 1_000 and not legacy and le in ("short", "long")
        assert refused(result, Refusal.CARD_ERROR).detail == "SW 6C08"
        assert rows[0].state is TapState.FAILED
        assert rows[0].fail_reason == "805A SW 9406; card counter still 0: not debited"
    if le in ("short", "long") and legacy:
        assert accepted(result).recovered  # committed, 6C08, proven by 805A + MAC2


@pytest.mark.parametrize("legacy", [False, True], ids=["fixed card", "legacy card"])
@pytest.mark.parametrize("le", LES)
def test_load_per_le(rig: Rig, le: str, legacy: bool) -> None:
    _, conn = _rewritten(rig, 0x52, le, 4, legacy)
    try:
        result = load(conn, 500, LoadHost(rig.keys), terminal_id=TID, clock=rig.clock)
        assert result.balance == 1_500
        outcome = "ok"
    except LoadInterrupted as exc:  # exit status 5: outcome unknown, check the balance
        assert exc.exit_status == 5
        outcome = "unknown"
    purse = Purse(conn)
    purse.select()
    balance = purse.balance()
    assert balance in (1_000, 1_500)  # never twice
    if outcome == "unknown":
        assert le in ("short", "long") and balance == (1_500 if legacy else 1_000)
    else:
        assert balance == 1_500

"""End to end through a private pcscd + vsmartcard-vpcd (see tests/pcsc_harness.py)."""

from __future__ import annotations

import subprocess
import threading

import pytest
from pcsc_harness import (
    INS_BLOCK,
    RECORD,
    SELECT_AID,
    T0_ATR,
    T1_ATR,
    PcscdControl,
    TestCard,
    VirtualReader,
)
from setup_table import require_program

from sscard.apdu import Command
from sscard.simulators.pcscd import PrivatePcscd
from sscard.terminals import (
    CardRemoved,
    Connection,
    NoCard,
    NoReader,
    PcscUnavailable,
    ReaderAmbiguous,
    ReaderBusy,
)
from sscard.terminals.pcsc import PcscTransport, choose_reader, list_readers

pytestmark = pytest.mark.pcsc

SELECT = Command(0x00, 0xA4, 0x04, 0x00, SELECT_AID, le=256)
FCI = bytes.fromhex("6F0A8408") + SELECT_AID


@pytest.fixture(autouse=True)
def _no_user_reader_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSCARD_READER", raising=False)
    monkeypatch.delenv("SSCARD_READER_IGNORE", raising=False)


def test_both_vpcd_readers_are_listed(pcscd: PrivatePcscd) -> None:
    assert list_readers() == ["sscard test VPCD 00 00", "sscard test VPCD 00 01"]


@pytest.mark.parametrize(("t0", "atr"), [(True, T0_ATR), (False, T1_ATR)])
def test_select_and_read_record_in_both_card_modes(
    vreader: VirtualReader, t0: bool, atr: bytes
) -> None:
    vreader.insert(TestCard(t0=t0))
    with Connection(PcscTransport(vreader.name)) as conn:
        assert conn.protocol == ("T=0" if t0 else "T=1")
        assert conn.atr == atr
        assert conn.send(SELECT).data == FCI
        assert conn.send(Command(0x00, 0xB2, 0x01, 0x04, le=256)).data == RECORD  # 6Cxx
        strict = Connection(conn.transport, strict=True)
        assert strict.transmit(SELECT).sw == (0x610C if t0 else 0x9000)


def test_card_and_psam_on_the_two_slots(vreader: VirtualReader, vreader2: VirtualReader) -> None:
    card, psam = TestCard(t0=True), TestCard(t0=False)
    vreader.insert(card)
    vreader2.insert(psam)
    with (
        Connection(PcscTransport(vreader.name)) as user,
        Connection(PcscTransport(vreader2.name)) as sam,
    ):
        assert user.send(SELECT).data == sam.send(SELECT).data == FCI
        assert (user.protocol, sam.protocol) == ("T=0", "T=1")
    # SELECT reached each card; the T=0 one also got its GET RESPONSE.
    assert [a[1] for a in card.received] == [0xA4, 0xC0]
    assert [a[1] for a in psam.received] == [0xA4]


def test_reader_choice_ambiguous_index_ignore(
    pcscd: PrivatePcscd, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ReaderAmbiguous, match=r"00 00.*00 01"):
        PcscTransport("sscard test").connect()
    with pytest.raises(NoReader):
        PcscTransport("no such reader").connect()
    monkeypatch.setenv("SSCARD_READER_IGNORE", "VPCD 00 00")
    with pytest.raises(NoCard):  # only slot 1 is left, and it is empty
        PcscTransport().connect()
    assert choose_reader(list_readers(), 0) == "sscard test VPCD 00 01"


def test_no_choice_picks_the_only_reader_with_a_card(vreader2: VirtualReader) -> None:
    vreader2.insert(TestCard(t0=False))
    transport = PcscTransport()
    with Connection(transport) as conn:
        assert transport.name == vreader2.name
        assert conn.send(SELECT).data == FCI


def test_empty_reader_is_no_card_and_wait_is_bounded(vreader: VirtualReader) -> None:
    with pytest.raises(NoCard):
        PcscTransport(vreader.name).connect()
    with pytest.raises(NoCard, match=r"after 0\.5 s"):
        PcscTransport(vreader.name, wait=0.5).connect()


def test_eject_then_transmit_is_card_removed(vreader: VirtualReader) -> None:
    vreader.insert(TestCard(t0=False))
    conn = Connection(PcscTransport(vreader.name)).connect()
    conn.send(SELECT)
    vreader.eject()
    with pytest.raises(CardRemoved):
        conn.send(SELECT)
    vreader.insert(TestCard(t0=True))
    conn.reconnect()
    assert conn.protocol == "T=0" and conn.send(SELECT).data == FCI
    conn.close()


def test_card_removed_mid_apdu(vreader: VirtualReader) -> None:
    card = TestCard(t0=False)
    vreader.insert(card)
    conn = Connection(PcscTransport(vreader.name)).connect()
    pull = threading.Timer(0.2, vreader.bridge.eject)
    pull.start()
    try:
        with pytest.raises(CardRemoved):
            conn.transmit(Command(0x00, INS_BLOCK, 0x00, 0x00))
    finally:
        card.release.set()
        pull.join()
        conn.close()


def test_exclusive_mode_and_transaction(vreader: VirtualReader) -> None:
    vreader.insert(TestCard(t0=False))
    with Connection(PcscTransport(vreader.name, share="exclusive")) as conn:
        with pytest.raises(ReaderBusy):
            PcscTransport(vreader.name).connect()
        with conn.transaction(), conn.transaction():  # re-entrant
            assert conn.send(SELECT).data == FCI
    with Connection(PcscTransport(vreader.name)) as conn, conn.transaction():
        assert conn.send(SELECT).data == FCI


def test_pcscd_not_running_is_pcsc_unavailable(pcscd_control: PcscdControl) -> None:
    pcscd_control.stop()
    with pytest.raises(PcscUnavailable) as info:
        list_readers()
    assert "pcscd" in info.value.message_en and "sscard doctor" in info.value.message_en
    with pytest.raises(PcscUnavailable):
        PcscTransport().connect()


def test_scriptor_from_pcsc_tools_drives_the_simulated_card(vreader: VirtualReader) -> None:
    """A client no one here wrote (Debian pcsc-tools) talks to our card through pcscd."""
    scriptor = require_program("scriptor")
    vreader.insert(TestCard(t0=True))
    script = "00 A4 04 00 08 A0 00 00 06 32 01 01 05 00\n00 C0 00 00 0C\n00 B2 01 04 12\n"
    run = subprocess.run(
        [scriptor, "-r", vreader.name],
        input=script,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert "Using T=0 protocol" in lines
    assert "< 61 0C : 0x0C bytes of response still available." in lines
    assert "< 6F 0A 84 08 A0 00 00 06 32 01 01 05 90 00 : Normal processing." in lines
    record = " ".join(f"{b:02X}" for b in RECORD)
    flat = " ".join(run.stdout.split())  # scriptor wraps long answers
    assert f"> 00 B2 01 04 12 < {record} 90 00 : Normal processing." in flat, run.stdout


def test_opensc_tool_send_apdu(vreader: VirtualReader) -> None:
    opensc_tool = require_program("opensc-tool")
    vreader.insert(TestCard(t0=False))
    run = subprocess.run(
        [opensc_tool, "--reader", vreader.name, "--send-apdu", "00A4040008A00000063201010500"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert "Received (SW1=0x90, SW2=0x00)" in run.stdout
    assert "6F 0A 84 08 A0 00 00 06 32 01 01 05" in run.stdout


@pytest.mark.parametrize("t0", [True, False])
def test_ssse_card_and_psam_through_pcscd(
    vreader: VirtualReader, vreader2: VirtualReader, t0: bool
) -> None:
    """Acceptance: the real simulated card and PSAM, on the two vpcd slots, via pyscard."""
    from sscard.cards.ids import SSSE_DDF_NAME
    from sscard.simulators.card import build_card
    from sscard.simulators.keys import default_key_set
    from sscard.simulators.profile import new_card
    from sscard.simulators.psam import new_psam, psam_card

    keys = default_key_set()
    terminal = bytes.fromhex("000000123456")
    vreader.insert(build_card(new_card("zhejiang", 3, seed=7), keys, t0=t0))
    vreader2.insert(psam_card(new_psam(terminal, keys=keys, t0=t0)))
    with (
        Connection(PcscTransport(vreader.name)) as user,
        Connection(PcscTransport(vreader2.name)) as sam,
    ):
        strict = Connection(user.transport, strict=True)
        select = Command(0x00, 0xA4, 0x04, 0x00, SSSE_DDF_NAME, le=256)
        assert strict.transmit(select).sw1 == (0x61 if t0 else 0x90)
        fci = user.send(select).data
        assert fci.startswith(bytes.fromhex("6F19840F") + SSSE_DDF_NAME)
        user.send(Command(0x00, 0xA4, 0x02, 0x00, bytes.fromhex("EF05")))
        record = user.send(Command(0x00, 0xB2, 0x01, 0x04, le=256)).data  # 6Cxx followed
        assert record[:2] == b"\x01\x10" and record[5:10] == bytes.fromhex("D156000005")
        sam.send(Command(0x00, 0xA4, 0x00, 0x00, bytes.fromhex("1001")))
        assert sam.send(Command(0x00, 0xB0, 0x96, 0x00, le=6)).data == terminal

"""Reader choice and PC/SC error mapping (pure functions; no pcscd needed)."""

from __future__ import annotations

import pytest

from sscard.terminals import (
    CardRemoved,
    CardReset,
    NoCard,
    NoReader,
    PcscError,
    PcscUnavailable,
    ReaderAmbiguous,
    ReaderBusy,
    ReaderGone,
    TerminalTimeout,
)
from sscard.terminals.pcsc import choose_reader, error_for

READERS = ["Yubico YubiKey OTP+FIDO+CCID 00 00", "ACS ACR39U ICC Reader 00 00", "Virtual PCD 00 00"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSCARD_READER", raising=False)
    monkeypatch.delenv("SSCARD_READER_IGNORE", raising=False)


def test_choice_by_index_substring_and_exact_name() -> None:
    assert choose_reader(READERS, 1) == READERS[1]
    assert choose_reader(READERS, "2") == READERS[2]
    assert choose_reader(READERS, "acr39") == READERS[1]
    assert choose_reader(["PCD 00 00", "PCD 00 00 extra"], "PCD 00 00") == "PCD 00 00"


def test_ambiguous_and_missing_are_typed() -> None:
    with pytest.raises(ReaderAmbiguous) as info:
        choose_reader(READERS)
    assert "0: Yubico" in info.value.message_en and "-r/--reader" in info.value.message_en
    with pytest.raises(ReaderAmbiguous):
        choose_reader(READERS, "00 00")
    with pytest.raises(NoReader, match="index 7"):
        choose_reader(READERS, 7)
    with pytest.raises(NoReader, match="gemalto"):
        choose_reader(READERS, "gemalto")
    with pytest.raises(NoReader):
        choose_reader([])


def test_env_choice_and_ignore_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSCARD_READER", "virtual")
    assert choose_reader(READERS) == READERS[2]
    monkeypatch.delenv("SSCARD_READER")
    monkeypatch.setenv("SSCARD_READER_IGNORE", "yubico, virtual")
    assert choose_reader(READERS) == READERS[1]
    assert choose_reader(READERS, 0) == READERS[1]  # indexes count usable readers only
    monkeypatch.setenv("SSCARD_READER_IGNORE", "00 00")
    with pytest.raises(NoReader, match="all ignored"):
        choose_reader(READERS)


def test_the_one_reader_with_a_card_wins_when_no_choice() -> None:
    assert choose_reader(READERS, with_card=[READERS[1]]) == READERS[1]
    with pytest.raises(ReaderAmbiguous):
        choose_reader(READERS, with_card=READERS[:2])


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0x8010001D, PcscUnavailable),  # no service
        (0x8010001E, PcscUnavailable),  # service stopped
        (0x80100069, CardRemoved),
        (0x80100068, CardReset),
        (0x8010000C, NoCard),
        (0x80100017, ReaderGone),  # reader unavailable (unplugged)
        (0x80100009, ReaderGone),  # unknown reader
        (0x8010000B, ReaderBusy),
        (0x8010000A, TerminalTimeout),
        (0x80100001, PcscError),
    ],
)
def test_pcsc_codes_become_typed_errors(code: int, kind: type) -> None:
    signed = code - (1 << 32)  # pyscard hands out negative ints on some builds
    assert type(error_for("SCardTransmit", code)) is kind
    assert type(error_for("SCardTransmit", signed)) is kind
    assert f"{code:08X}" in str(error_for("X", code)) or kind is not PcscError

"""The one command table (sscard.apdu.catalog) against the five tables it replaced.

The expected values below are the former tables, copied verbatim (apdu/command.py
names, terminals/tracing.py redaction sets, apdu/errors.py PIN INS, apdu/repeat.py
COMMAND_REPEAT): the merge must not change one name, redaction, PIN mapping or
repeat decision for any CLA/INS.
"""

from __future__ import annotations

import itertools

import pytest

from sscard.apdu import Command, error_for_sw, errors
from sscard.apdu.catalog import COMMANDS, PIN_INS, Ins, lookup, spec_for
from sscard.apdu.repeat import safe_to_repeat
from sscard.terminals.tracing import Redaction

_OLD_NAMES = {
    (False, 0xA4): "SELECT", (False, 0xB0): "READ BINARY", (False, 0xB2): "READ RECORD",
    (False, 0xD6): "UPDATE BINARY", (False, 0xDC): "UPDATE RECORD",
    (False, 0xE2): "APPEND RECORD", (False, 0x20): "VERIFY",
    (False, 0x24): "CHANGE REFERENCE DATA", (False, 0x2C): "RESET RETRY COUNTER",
    (False, 0x84): "GET CHALLENGE", (False, 0x88): "INTERNAL AUTHENTICATE",
    (False, 0x82): "EXTERNAL AUTHENTICATE", (False, 0xC0): "GET RESPONSE",
    (False, 0xCA): "GET DATA", (False, 0x1E): "APPLICATION BLOCK",
    (True, 0x1E): "APPLICATION BLOCK", (True, 0x24): "UNBLOCK PIN", (True, 0x5C): "GET BALANCE",
    (True, 0x54): "DEBIT FOR PURCHASE", (True, 0x52): "CREDIT FOR LOAD",
    (True, 0x5A): "GET TRANSACTION PROVE", (True, 0x5E): "CHANGE PIN",
    (True, 0xDC): "UPDATE CAPP DATA CACHE", (True, 0x70): "INIT SAM FOR PURCHASE",
    (True, 0x72): "CREDIT SAM FOR PURCHASE", (True, 0x1A): "INIT FOR DESCRYPT",
    (True, 0xFA): "CIPHER DATA", (True, 0xC4): "PKI VERIFY PIN", (True, 0xB0): "READ BINARY",
    (True, 0xB2): "READ RECORD", (True, 0xA4): "SELECT", (True, 0x84): "GET CHALLENGE",
    (True, 0x82): "EXTERNAL AUTHENTICATE", (True, 0x88): "INTERNAL AUTHENTICATE",
    (True, 0xD6): "UPDATE BINARY",
}  # fmt: skip
_OLD_INIT = {0x00: "INITIALIZE FOR LOAD", 0x01: "INITIALIZE FOR PURCHASE",
             0x03: "INITIALIZE FOR CAPP PURCHASE"}  # fmt: skip
_OLD_PIN_INS = {0x20, 0x24, 0x5E, 0xC4}
_OLD_SAFE = {(0x00, i) for i in (0xA4, 0xB0, 0xB2, 0xCA, 0xC0, 0x84, 0x88)} | {
    (0x80, i) for i in (0xA4, 0xB0, 0xB2, 0xCA, 0x5C, 0x5A, 0x50)
}


def _old_name(cla: int, ins: int, p1: int) -> str:
    proprietary = bool(cla & 0x80)
    if proprietary and ins == 0x50:
        return _OLD_INIT.get(p1, "INITIALIZE")
    if ins == 0xDC and proprietary and cla & 0x0C == 0:
        return "UPDATE CAPP DATA CACHE"
    return _OLD_NAMES.get((proprietary, ins)) or _OLD_NAMES.get((False, ins), f"INS {ins:02X}")


def _old_redaction(cla: int, ins: int) -> tuple[bool, bool]:
    proprietary = bool(cla & 0x80)
    both_p = {0x50, 0x52, 0x54, 0x5A, 0x70, 0x72, 0xD4, 0x4A, 0xC2, 0x1A, 0xFA, 0xC4}
    if ins in {0x82, 0x88} or (proprietary and ins in both_p):
        return (True, True)
    if ins in {0x20, 0x24, 0x2C} or (proprietary and ins == 0x5E):
        return (True, True)
    if ins in {0xD6, 0xDC, 0xE2}:
        return (True, True)
    if ins in {0xB0, 0xB2}:
        return (False, True)
    return (False, False)


_CLAS = (0x00, 0x01, 0x04, 0x0C, 0x80, 0x84, 0x8C, 0x83)
_INS = [i for i in range(256) if i & 0xF0 not in (0x60, 0x90)]


@pytest.mark.parametrize("cla", _CLAS)
def test_names_redaction_and_repeat_unchanged_for_every_ins(cla: int) -> None:
    for ins, p1 in itertools.product(_INS, (0x00, 0x01, 0x03, 0x07)):
        cmd = Command(cla, ins, p1, 0)
        assert cmd.name == _old_name(cla, ins, p1), (cla, ins, p1)
        r = Redaction.for_command(bytes(cmd))
        assert (r.command, r.response) == _old_redaction(cla, ins), (cla, ins)
        expected_safe = not cmd.secure_messaging and ((0x80 if cla & 0x80 else 0, ins) in _OLD_SAFE)
        assert safe_to_repeat(cmd) == expected_safe, (cla, ins)


def test_pin_status_words_unchanged() -> None:
    assert set(PIN_INS) == _OLD_PIN_INS
    for ins in _INS:
        err = error_for_sw(0x63C2, ins)
        if ins in _OLD_PIN_INS:
            assert isinstance(err, errors.PinIncorrect)
            assert isinstance(error_for_sw(0x6983, ins), errors.PinBlocked)
        elif ins == 0x82:
            assert isinstance(err, errors.AuthenticationFailed)
        else:
            assert type(err) is errors.VerificationFailed


def test_table_rows_are_consistent() -> None:
    keys = [spec.key for spec in COMMANDS]
    assert len(keys) == len(set(keys))
    for spec in COMMANDS:
        assert lookup(spec.cla, spec.ins) is spec
        assert spec_for(spec.cla, spec.ins) is spec
        assert set(spec.cases) <= {1, 2, 3, 4} and spec.cases
        # a repeatable command never carries a PIN and never writes
        assert not (spec.repeat and spec.pin_tries)
    assert Ins.UNBLOCK_PIN == Ins.CHANGE_REFERENCE_DATA == 0x24  # the CLA class decides


def test_the_simulators_dispatch_only_commands_of_the_table() -> None:
    """Every (CLA, INS) a simulated card or PSAM serves has a row (so it is named,
    redacted and judged for repeats like the terminal's commands)."""
    from sscard.simulators.cos import iso
    from sscard.simulators.psam import PsamApplet, new_psam
    from sscard.simulators.purse_applet import PurseApplet, vector_keys

    served = set(iso.INSTRUCTIONS)
    served |= set(PurseApplet(vector_keys()).instructions)
    served |= set(PsamApplet(new_psam("310000000042")).instructions)
    for cla, ins in served:
        assert spec_for(cla, ins) is not None, f"{cla:02X}{ins:02X} has no row"

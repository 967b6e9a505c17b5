"""The SSSE reader end to end through a private pcscd (vpcd): card in slot 0, PSAM in slot 1.

One session of inserts: the eight cards (four provinces x 2nd/3rd generation) in the
same reader, the PSAM supplying the keys over PC/SC; then the CLI on the same readers.
"""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

from sscard.applets.keyprovider import PsamKeyProvider
from sscard.applets.ssse import IllegalCard, SsseReader
from sscard.applets.unified import read_card_bas
from sscard.cli.card import read_command
from sscard.cli.common import common_options
from sscard.simulators.card import build_card
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import CardRemoved, Connection

pytestmark = pytest.mark.pcsc

KEYS = default_key_set()
TERMINAL = bytes.fromhex("320000000077")
CARDS = [(p, g) for p in ("shanghai", "jiangsu", "zhejiang", "anhui") for g in (2, 3)]


def pcsc(name: str) -> Connection:
    from sscard.terminals.pcsc import PcscTransport

    return Connection(PcscTransport(name)).connect()


@pytest.mark.slow  # 9 inserts and ejects, ~0.4 s each
def test_eight_cards_over_pcscd_with_psam(vreader, vreader2) -> None:  # type: ignore[no-untyped-def]
    vreader2.insert(psam_card(new_psam(TERMINAL, key_index=1, keys=KEYS, t0=True)))
    psam = pcsc(vreader2.name)
    keys = PsamKeyProvider(psam)
    try:
        for i, (province, generation) in enumerate(CARDS):
            profile = new_card(province, generation=generation, seed=100 + i)
            vreader.eject()  # wait until pcscd saw the previous card go
            vreader.insert(build_card(profile, t0=i % 2 == 0))
            conn = pcsc(vreader.name)
            read = SsseReader(conn, keys).read(verify_pin="123456")
            assert read.application.generation == generation
            assert read.issuer.ef05 == profile.ssse.ef05
            assert read.holder is not None and read.holder.ef06 == profile.ssse.ef06
            assert read.issuer.region is not None
            assert read.issuer.region.province.key == province
            assert read.genuine is True and read.atr == profile.ssse.atr
            code, out = read_card_bas(conn, keys)
            assert code == 0 and out.split("|")[1] == profile.ssse.ef06.ssn
            assert out.split("|")[9] == TERMINAL.hex()
            conn.close()
        fake = new_card("zhejiang", generation=3, seed=7)
        vreader.eject()
        vreader.insert(build_card(dataclasses.replace(fake, counterfeit=True)))
        conn = pcsc(vreader.name)
        with pytest.raises(IllegalCard):
            SsseReader(conn, keys).read()
        conn.close()
    finally:
        psam.close()


def test_card_pulled_mid_read_over_pcscd(vreader) -> None:  # type: ignore[no-untyped-def]
    card = build_card(new_card("anhui", generation=2, seed=9))
    card.faults.tear_on(ins_is(0xB2), TearPoint.BEFORE_COMMIT)
    vreader.insert(card)
    conn = pcsc(vreader.name)
    with pytest.raises(CardRemoved) as exc:
        SsseReader(conn).read()
    assert exc.value.code == -2
    conn.close()


@click.group()
@common_options
def cli() -> None:
    pass


cli.add_command(read_command)


def test_cli_read_over_pcsc_without_and_with_psam(vreader, vreader2) -> None:  # type: ignore[no-untyped-def]
    profile = new_card("shanghai", generation=3, seed=40)
    vreader.insert(build_card(profile))
    result = CliRunner().invoke(cli, ["read", "-r", vreader.name])
    assert result.exit_code == 0, result.output
    assert "skipped / 未读取: holder data" in result.output
    assert "未验证 not checked" in result.output and "社会保障号码 SSN" not in result.output
    result = CliRunner().invoke(cli, ["read", "-r", vreader.name, "--psam-reader", vreader2.name])
    assert result.exit_code == 1 and "[-2201]" in result.output  # slot 1 is empty
    vreader2.insert(psam_card(new_psam(TERMINAL, keys=KEYS, has_rkssse=False)))
    result = CliRunner().invoke(cli, ["read", "-r", vreader.name, "--psam-reader", vreader2.name])
    assert result.exit_code == 1 and "[-2203]" in result.output and "RKSSSE" in result.output
    vreader2.eject()
    vreader2.insert(psam_card(new_psam(TERMINAL, keys=KEYS)))
    result = CliRunner().invoke(
        cli, ["read", "-r", vreader.name, "--psam-reader", vreader2.name, "--format",
              "ireadcardbas"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fields = result.output.strip().split("|")
    card_id = profile.ssse.ef05.card_id.hex  # masked by default
    assert fields[3] == card_id[:6] + "*" * 22 + card_id[-4:] and fields[9] == TERMINAL.hex()


def test_a_read_without_keys_says_what_it_skipped_and_how_to_give_keys(vreader) -> None:  # type: ignore[no-untyped-def]
    """A 3rd-generation card read with no keys names what it skipped, in both
    languages and in every format, with the option that supplies keys."""
    import json

    from sscard.cli import main
    from sscard.simulators.card import build_card
    from sscard.simulators.profile import new_card

    vreader.insert(build_card(new_card("shanghai", generation=3, seed=8)))
    result = CliRunner().invoke(main, ["read", "-r", vreader.name, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["holder"] is None and set(data["skipped"]) == {"holder", "authentication"}
    assert all("--keys" in w["en"] and "--keys" in w["zh"] for w in data["skipped_why"])
    text = CliRunner().invoke(main, ["read", "-r", vreader.name]).output
    assert "skipped / 未读取: holder data" in text and "--psam-reader" in text

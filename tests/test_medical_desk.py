"""At the desk: personal data at rest, Excel fee files, Beijing time, messages.

Real HTTP platform, real SQLite outbox and ledger, cards read through the SSSE reader;
the CLI through click's runner.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import journal_and_die
from helpers import read_card as read
from pytest_mock import MockerFixture

from sscard.applets.medical import (
    CardNotUsable,
    FrontDesk,
    SettlementDeclined,
    VisitAborted,
    VisitPlan,
)
from sscard.cli.medical import command
from sscard.services.insurance import (
    ClientConfig,
    FeeFileError,
    InsuranceClient,
    InsuranceError,
    OutcomeUnknown,
    PersonInfoRequest,
    PlatformError,
    PlatformFilingCheck,
    PlatformUnreachable,
    ReconciliationBlocked,
    SettleConfirmRequest,
    load_fee_items,
)
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.profile import CardProfile, new_card

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VISIT_CSV = EXAMPLES / "visit.csv"


def enrol(platform: InsurancePlatform, profile: CardProfile) -> str:
    return platform.enrol_card(profile, filing_to="310000")


def make_desk(platform: InsurancePlatform, outbox: Path) -> FrontDesk:
    config = ClientConfig(platform.url, "H31010400001", "clinic", "310000", timeout=2.0)
    client = InsuranceClient(config, outbox, sleep=lambda s: None)
    return FrontDesk(client, filing_check=PlatformFilingCheck(client), acct_used_flag="1")


# -- personal data at rest: one choke point, every row ------------------------------------


def secrets_of(profile: CardProfile) -> list[str]:
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    return [ef06.ssn, ef06.full_name, ef05.card_number, ef05.card_id.hex,
            ef06.birth_date.isoformat()]  # fmt: skip


def test_every_row_of_the_outbox_is_free_of_personal_data(
    platform: InsurancePlatform, tmp_path: Path, mocker: MockerFixture
) -> None:
    """Settle (incl. a reply lost after 2207: recorded from 5261), a lost request
    (2601), cancel, reconcile and a crash recovery: then scan every column of every
    row, and the raw bytes of the database and its WAL."""
    a, b = new_card("anhui", seed=61), new_card("zhejiang", seed=62)
    enrol(platform, a), enrol(platform, b)
    outbox = tmp_path / "outbox.db"
    desk = make_desk(platform, outbox)
    with desk.client:
        first = desk.settle(read(a), VisitPlan.from_file(VISIT_CSV), confirm=lambda p: True)
        platform.inject("2207", "drop")  # settled, reply lost: the 5261 record path
        desk.settle(read(b), VisitPlan.from_file(VISIT_CSV), confirm=lambda p: True)
        platform.inject("2207", "lose")  # never arrived: 2601, not made
        with pytest.raises(VisitAborted):
            desk.settle(read(a), VisitPlan.from_file(VISIT_CSV), confirm=lambda p: True)
        desk.cancel(first.setl_id)
        # A crash: a 2207 journalled and never answered, found by the next desk.
        pre = desk.pre_settle(
            desk.identify(read(b)),
            desk.register(desk.identify(read(b)), VisitPlan.from_file(VISIT_CSV)),
            VisitPlan.from_file(VISIT_CSV),
        )
        journal_and_die(
            desk.client, SettleConfirmRequest.from_pre(pre.request, pre.settlement), mocker
        )
    later = make_desk(platform, outbox)
    with later.client:
        assert later.reconcile(date.today()).balanced
        rows = later.client.outbox.rows()
    assert {r.infno for r in rows} >= {"9001", "1101", "2201", "2204", "2206", "2207", "2208",
                                       "5261", "2601", "3201"}  # fmt: skip
    with sqlite3.connect(outbox) as db:
        cells = [str(v) for table in ("outbox", "meta", "reconciliations")
                 for row in db.execute(f"SELECT * FROM {table}") for v in row]  # fmt: skip
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("outbox.db*") if p.is_file())
    for secret in secrets_of(a) + secrets_of(b):
        assert not [c for c in cells if secret in c], secret
        assert secret.encode("utf-8") not in raw, secret
    # The masks are still useful to a person reconciling by hand.
    query = next(r for r in rows if r.infno == "1101")
    assert query.request_input["data"]["certno"].startswith(a.ssse.ef06.ssn[:4])


# -- fee files as Excel writes them ----------------------------------------------------------


CSV_TEXT = (
    "feedetl_sn,med_list_codg,medins_list_codg,medins_list_name,cnt,pric\n"
    "1,XA01AA001,H-ZC-001,普通门诊诊查费,1,30.00\n"
    "2,BN02BE001,H-YP-377,布洛芬缓释胶囊（袋装）,2,21.00\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_fee_csv_in_utf8_bom_gbk_and_gb18030(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "visit.csv"
    path.write_bytes(CSV_TEXT.encode(encoding))
    items = load_fee_items(path)
    assert [i.medins_list_name for i in items] == ["普通门诊诊查费", "布洛芬缓释胶囊（袋装）"]
    assert sum(i.det_item_fee_sumamt for i in items) == Decimal("72.00")


def test_a_gbk_file_keeps_line_and_column_errors(tmp_path: Path) -> None:
    path = tmp_path / "visit.csv"
    path.write_bytes((CSV_TEXT + "3,XA02,H-3,药品,1,abc\n").encode("gbk"))
    with pytest.raises(FeeFileError) as bad:
        load_fee_items(path)
    assert (bad.value.line, bad.value.column, bad.value.field) == (4, 6, "pric")


def test_a_file_in_no_known_encoding_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "visit.csv"
    path.write_bytes(CSV_TEXT.encode("utf-8") + b"3,XA\xff\xfe,H-3,x,1,1\n")
    with pytest.raises(FeeFileError) as bad:
        load_fee_items(path)
    assert bad.value.line == 4 and "GBK" in bad.value.message_en


# -- Beijing time whatever TZ ----------------------------------------------------------------


@pytest.mark.parametrize("zone", ["America/New_York", "UTC", "Pacific/Kiritimati"])
def test_settlement_and_receipt_times_are_beijing_time_whatever_tz(
    platform: InsurancePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        profile = new_card("jiangsu", seed=63)
        enrol(platform, profile)
        desk = make_desk(platform, tmp_path / "outbox.db")
        with desk.client:
            receipt = desk.settle(read(profile), VisitPlan.from_file(VISIT_CSV),
                                  confirm=lambda p: True)  # fmt: skip
            row = desk.client.outbox.get(receipt.settlement.msgid)
        beijing = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8)
        local = datetime.now()
        assert abs(local - beijing) > timedelta(hours=1)  # the host clock is elsewhere
        settled_at = datetime.strptime(receipt.setlinfo.setl_time, "%Y-%m-%d %H:%M:%S")
        stamped = datetime.strptime(receipt.settlement.msgid[12:26], "%Y%m%d%H%M%S")
        for moment in (settled_at, stamped):
            assert abs(moment - beijing) < timedelta(minutes=2)
        assert row.day == beijing.date().isoformat()
        assert (
            "结算时间 Settled at" in receipt.text() and receipt.setlinfo.setl_time in receipt.text()
        )
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# -- messages staff can act on -----------------------------------------------------------------


def test_pin_locked_says_unblock_at_the_issuer_or_12333() -> None:
    with pytest.raises(CardNotUsable) as locked:
        read(new_card("anhui", seed=64, state="pin-locked"), pin="123456")
    err = locked.value
    assert err.message_en.startswith("card PIN locked") and "12333" in err.message_en
    assert "12333" in err.message_zh and "重置" in err.message_zh and err.code == -52


def test_blocked_card_says_what_to_do_not_a_status_word() -> None:
    with pytest.raises(CardNotUsable) as blocked:
        read(new_card("anhui", seed=65, state="blocked"))
    err = blocked.value
    assert err.message_en.startswith("the card's social security application is locked")
    assert not err.bilingual().startswith(("6A81", "[")) and "12333" in err.message_zh


def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(command, list(args), input=stdin,
                                env={"SSCARD_INSURANCE_URL": ""})  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "en", "zh"),
    [
        (["settle"], "Missing option '--items'", "缺少选项 '--items'"),
        (["settle", "--items", "x.csv", "--bogus"], "No such option '--bogus'",
         "没有此选项：--bogus"),
        (["reconcile", "--date", "2025-13-01"], "Invalid value for '--date'",
         "'--date' 的值无效"),
        (["frobnicate"], "No such command 'frobnicate'", "没有此命令"),
        (["cancel"], "Missing argument 'IDENT'", "缺少参数 'IDENT'"),
    ],
)  # fmt: skip
def test_clicks_own_errors_are_bilingual(args: list[str], en: str, zh: str) -> None:
    code, out = cli(*args)
    assert code == 2, out
    first = out.splitlines()[0]
    assert first.startswith("error: ") and en in first and zh in first, out
    assert "Usage:" not in out


def test_no_input_at_the_pin_prompt_is_a_bilingual_abort(tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    new_card("anhui", seed=66).save(card)
    config = tmp_path / "m.toml"
    config.write_text(f'[platform]\nurl = "http://127.0.0.1:9/x"\n[desk]\noutbox = '
                      f'"{tmp_path / "o.db"}"\n', encoding="utf-8")  # fmt: skip
    code, out = cli("settle", "--sim", str(card), "--items", str(VISIT_CSV), "--ask-pin",
                    "--config", str(config), stdin="")  # fmt: skip
    assert code == 1 and "aborted by the operator" in out and "操作员已中止" in out
    assert "Aborted!" not in out


def test_no_answer_at_the_confirmation_cancels_the_registration(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    card = tmp_path / "card.json"
    profile = new_card("anhui", seed=67)
    profile.save(card)
    psn_no = enrol(platform, profile)
    config = tmp_path / "m.toml"
    config.write_text(f'[platform]\nurl = "{platform.url}"\n[desk]\noutbox = '
                      f'"{tmp_path / "o.db"}"\n', encoding="utf-8")  # fmt: skip
    code, out = cli("settle", "--sim", str(card), "--items", str(VISIT_CSV),
                    "--config", str(config), stdin="")  # fmt: skip
    assert code == 1, out
    assert "not confirmed at the desk: registration cancelled" in out and "挂号已撤销" in out
    assert "Aborted!" not in out
    assert platform.ledger.settlements() == [] and platform.balance(psn_no) == Decimal("1000.00")


_ALLOWED = re.compile(r"`[^`]*`|\b[0-9A-Z]{12}[0-9]{18}\b|H[0-9]{11}|[0-9]+")


def english_words(zh: str) -> list[str]:
    """ASCII words left in a Chinese half, once commands in backticks, msgids and numbers
    are set aside (those are meant to be copied as they are)."""
    return re.findall(r"[A-Za-z]{3,}", _ALLOWED.sub(" ", zh))


def test_no_english_fragments_inside_the_chinese_half(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    profile = new_card("anhui", seed=68)
    enrol(platform, profile)
    errors: list[InsuranceError] = []
    desk = make_desk(platform, tmp_path / "o.db")
    with desk.client:
        card = read(profile)
        with pytest.raises(SettlementDeclined) as declined:
            desk.settle(card, VisitPlan.from_file(VISIT_CSV), confirm=lambda p: False)
        errors.append(declined.value)
        platform.inject("2207", "http500")  # 2207 unanswered, and its 5261 and 2601 too
        platform.inject("5261", "http500", count=100)
        platform.inject("2601", "http500", count=100)
        with pytest.raises(OutcomeUnknown) as unknown:
            desk.settle(card, VisitPlan.from_file(VISIT_CSV), confirm=lambda p: True)
        errors.append(unknown.value)
        platform.clear_faults()
        with pytest.raises(PlatformError) as refused:
            desk.client.person_info(PersonInfoRequest("02", "110101200001019999"))
        errors.append(refused.value)
        with pytest.raises(ReconciliationBlocked) as blocked:
            desk.reconcile(date.today())
        errors.append(blocked.value)
    config = ClientConfig("http://127.0.0.1:9/x", "H31010400001", "clinic", "310000")
    with (
        InsuranceClient(config, tmp_path / "o2.db") as dead,
        pytest.raises(PlatformUnreachable) as down,
    ):
        dead.sign_in()
    errors.append(down.value)
    for err in errors:
        assert english_words(err.message_zh) == [], (type(err).__name__, err.message_zh)

"""What an interrupted desk leaves behind, and the command after it.

A "crash" here is a client closed in the middle of a flow (its session lock is
released exactly as when the process dies); the next desk on the same outbox must
resolve or refuse. Real HTTP platform and SQLite files; the SIGKILL version of these
scenes with real processes is tests/test_medical_crash.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import journal_and_die
from helpers import read_card as read
from pytest_mock import MockerFixture

from sscard.applets.medical import (
    CardIdentity,
    FrontDesk,
    RecoveredSettlement,
    UnresolvedSettlement,
    VisitPlan,
)
from sscard.cli.medical import command
from sscard.services.insurance import (
    CancelSettlementRequest,
    ClientConfig,
    InsuranceClient,
    ManualReconciliationRequired,
    OutcomeUnknown,
    PlatformFilingCheck,
    PlatformUnreachable,
    ReconciliationBlocked,
    SettleConfirmRequest,
)
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.profile import CardProfile, new_card

VISIT_CSV = Path(__file__).resolve().parent.parent / "examples" / "visit.csv"


@pytest.fixture
def holder(platform: InsurancePlatform) -> tuple[CardProfile, str]:
    profile = new_card("zhejiang", seed=71)
    return profile, platform.enrol_card(profile, filing_to="310000")


def make_desk(url: str, outbox: Path, notes: list[str] | None = None) -> FrontDesk:
    config = ClientConfig(url, "H31010400001", "clinic", "310000", timeout=2.0)
    client = InsuranceClient(config, outbox, sleep=lambda s: None)
    notify = (lambda en, zh: notes.append(en)) if notes is not None else None
    return FrontDesk(client, filing_check=PlatformFilingCheck(client), acct_used_flag="1",
                     notify=notify)  # fmt: skip


def visit() -> VisitPlan:
    return VisitPlan.from_file(VISIT_CSV)


def up_to_2207(desk: FrontDesk, card: CardIdentity) -> SettleConfirmRequest:
    patient = desk.identify(card)
    reg = desk.register(patient, visit())
    pre = desk.pre_settle(patient, reg, visit())
    return SettleConfirmRequest.from_pre(pre.request, pre.settlement)


def test_a_settlement_made_after_the_desk_died_stops_the_next_settle_of_that_patient(
    platform: InsurancePlatform, tmp_path: Path, holder: tuple[CardProfile, str]
) -> None:
    profile, psn_no = holder
    outbox = tmp_path / "outbox.db"
    dying = make_desk(platform.url, outbox)
    request = up_to_2207(dying, read(profile))
    platform.inject("2207", "drop")  # the platform settles; the desk never hears of it
    with pytest.raises(OutcomeUnknown):
        dying.client.settle(request, resolve_unknown=False)
    dying.client.close()  # the process is gone

    notes: list[str] = []
    desk = make_desk(platform.url, outbox, notes)
    with desk.client:
        with pytest.raises(RecoveredSettlement) as stopped:
            desk.settle(read(profile), visit(), confirm=lambda p: True)
        (settled,) = platform.ledger.settlements("settled")
        err = stopped.value
        assert err.setl_ids == (settled["setl_id"],) and err.exit_status == 1
        assert f"sscard medical cancel {settled['setl_id']}" in err.message_en
        assert "--settle-again" in err.message_en and "请勿重复结算" in err.message_zh
        assert any("recorded" in n for n in notes)  # the desk was told what recovery did
        assert platform.ledger._query(
            "SELECT count(*) FROM visits WHERE state = 'registered'", ()
        ) == [(1,)]  # the settled visit only: nothing new registered
        # A different visit: the operator says so.
        receipt = desk.settle(read(profile), visit(), confirm=lambda p: True, settle_again=True)
        assert receipt.setl_id != settled["setl_id"]
        assert desk.client.outbox.blockers(psn_no) == []
    assert len(platform.ledger.settlements("settled")) == 2


def test_an_unresolved_settlement_stops_the_next_settle_and_the_day_stays_open(
    platform: InsurancePlatform, tmp_path: Path, holder: tuple[CardProfile, str]
) -> None:
    profile, psn_no = holder
    desk = make_desk(platform.url, tmp_path / "outbox.db")
    with desk.client:
        request = up_to_2207(desk, read(profile))
        for infno in ("2207", "5261", "2601"):
            platform.inject(infno, "http500", count=100)
        with pytest.raises(ManualReconciliationRequired):
            desk.client.settle(request)
        platform.clear_faults()
        with pytest.raises(UnresolvedSettlement) as stopped:
            desk.settle(read(profile), visit(), confirm=lambda p: True)
        assert (
            stopped.value.exit_status == 5 and "sscard medical recover" in stopped.value.message_en
        )
        with pytest.raises(ReconciliationBlocked):
            desk.reconcile(date.today())
        assert platform.ledger.message_count("3201") == 0
        # `recover --retry-manual` asks again now the platform answers: not made.
        recovery = desk.recover(retry_manual=True)
        assert recovery.complete and desk.client.outbox.blockers(psn_no) == []
        assert desk.reconcile(date.today()).balanced
    assert platform.ledger.settlements() == []


def test_a_visit_left_registered_by_a_dead_desk_is_cancelled_by_the_next_command(
    platform: InsurancePlatform, tmp_path: Path, holder: tuple[CardProfile, str]
) -> None:
    profile, psn_no = holder
    outbox = tmp_path / "outbox.db"
    dying = make_desk(platform.url, outbox)
    patient = dying.identify(read(profile))
    reg = dying.register(patient, visit())
    dying.pre_settle(patient, reg, visit())  # 2203, 2204, 2206 done; then the desk dies
    dying.client.close()
    desk = make_desk(platform.url, outbox)
    with desk.client:
        recovery = desk.recover()
        assert [(v.mdtrt_id, v.steps) for v in recovery.visits] == [
            (reg.mdtrt_id, ("2205", "2202"))
        ]
        assert desk.recover().empty  # nothing left
        receipt = desk.settle(read(profile), visit(), confirm=lambda p: True)
    assert platform.ledger._query("SELECT mdtrt_id, state FROM visits ORDER BY 1", ()) == [
        (reg.mdtrt_id, "cancelled"),
        (receipt.setlinfo.mdtrt_id, "registered"),
    ]
    assert psn_no == receipt.patient.psn_no


def test_a_cancel_interrupted_after_2208_is_finished_by_the_next_command(
    platform: InsurancePlatform,
    tmp_path: Path,
    holder: tuple[CardProfile, str],
    mocker: MockerFixture,
) -> None:
    profile, psn_no = holder
    outbox = tmp_path / "outbox.db"
    desk = make_desk(platform.url, outbox)
    with desk.client:
        receipt = desk.settle(read(profile), visit(), confirm=lambda p: True)
    dying = make_desk(platform.url, outbox)
    info = receipt.setlinfo
    cancel = journal_and_die(
        dying.client,
        CancelSettlementRequest(info.setl_id, info.mdtrt_id, psn_no, info.clr_optins),
        mocker,
    )  # journalled, then the process died before sending it
    dying.client.close()
    assert platform.ledger.settlements("settled")
    notes: list[str] = []
    later = make_desk(platform.url, outbox, notes)
    with later.client:
        recovery = later.recover()
        resent = [r for r in recovery.resolutions if r.msgid == cancel]
        assert [(r.action, r.state) for r in resent] == [("resent", "done")]
        assert [v.steps for v in recovery.visits] == [("2205", "2202")]
        assert later.client.outbox.get(receipt.settlement.msgid).cancelled_by == cancel
    assert [s["state"] for s in platform.ledger.settlements()] == ["cancelled"]
    assert platform.balance(psn_no) == Decimal("1000.00")
    assert notes


def test_rows_of_a_desk_that_still_runs_are_left_alone(
    platform: InsurancePlatform,
    tmp_path: Path,
    holder: tuple[CardProfile, str],
    mocker: MockerFixture,
) -> None:
    profile, _psn = holder
    outbox = tmp_path / "outbox.db"
    busy = make_desk(platform.url, outbox)
    with busy.client:
        request = up_to_2207(busy, read(profile))
        msgid = journal_and_die(busy.client, request, mocker)  # on the wire, as far as anyone knows
        other = make_desk(platform.url, outbox)
        with other.client:
            recovery = other.recover()
            assert [(r.msgid, r.action) for r in recovery.resolutions] == [(msgid, "skipped")]
            assert recovery.visits == ()  # its visit is in use too
            assert other.client.outbox.get(msgid).state == "pending"


def test_recover_command_exit_status_and_platform_down(
    platform: InsurancePlatform,
    tmp_path: Path,
    holder: tuple[CardProfile, str],
    mocker: MockerFixture,
) -> None:
    profile, _psn = holder
    outbox = tmp_path / "outbox.db"
    dying = make_desk(platform.url, outbox)
    journal_and_die(dying.client, up_to_2207(dying, read(profile)), mocker)
    dying.client.close()
    config = tmp_path / "m.toml"

    def run(url: str) -> tuple[int, str]:
        config.write_text(f'[platform]\nurl = "{url}"\ntimeout = 2.0\n[desk]\n'
                          f'outbox = "{outbox}"\n', encoding="utf-8")  # fmt: skip
        result = CliRunner().invoke(command, ["recover", "--config", str(config)],
                                    env={"SSCARD_INSURANCE_URL": ""})  # fmt: skip
        return result.exit_code, result.output

    code, out = run("http://127.0.0.1:9/fsi")  # the platform cannot be reached
    assert code == 4 and "unreachable" in out and "无法连接医保平台" in out
    assert {r.state for r in make_outbox_rows(outbox)} >= {"pending"}  # left for next time
    code, out = run(platform.url)
    assert code == 0, out
    assert "not_made" in out and "2205" in out  # the 2207 was not made; its visit cancelled
    code, out = run(platform.url)
    assert code == 0 and "nothing to do" in out


def make_outbox_rows(outbox: Path):  # type: ignore[no-untyped-def]
    from sscard.services.insurance import Outbox

    with Outbox(outbox, "H31010400001") as box:
        return box.rows()


def test_a_recovery_that_cannot_reach_the_platform_refuses_the_command(
    platform: InsurancePlatform,
    tmp_path: Path,
    holder: tuple[CardProfile, str],
    mocker: MockerFixture,
) -> None:
    profile, _psn = holder
    outbox = tmp_path / "outbox.db"
    dying = make_desk(platform.url, outbox)
    msgid = journal_and_die(dying.client, up_to_2207(dying, read(profile)), mocker)
    dying.client.close()
    desk = make_desk("http://127.0.0.1:9/fsi", outbox)
    with desk.client, pytest.raises(PlatformUnreachable):
        desk.settle(read(profile), visit(), confirm=lambda p: True)
    with make_desk(platform.url, outbox).client as client:
        assert client.outbox.get(msgid).state == "pending"  # untouched, resolved next time

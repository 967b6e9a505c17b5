"""Making hospital and platform agree after a lost reply or a crash, and the daily check.

After :class:`OutcomeUnknown` on a 2207 (medical-insurance.md §1.5 and the
sscard profile row "Reversible transactions and window"):

1. ask the platform (profile 5261) whether a settlement with
   ``medins_setl_id`` = our msgid exists; if it does, record it as done
   (the patient was settled; nothing is charged twice);
2. otherwise send 2601 for the original msgid, which undoes it; 2601 only for
   oinfno 2201/2207/2304, the same day, and not for a settlement a 3201 already
   reconciled; at most 3 attempts with backoff 2/8/30 s. A 2601 that the
   platform refuses (infcode -1: it never saw the original, §1.7) is followed by
   a second 5261: still nothing there means the settlement was not made;
3. if that fails, flag the row for manual reconciliation.

After a crash (:func:`resolve_orphans`) the rows a dead process left
``pending`` or ``unknown`` are settled the same way; requests whose effect a
repeat cannot double (2202-2205, 2208, 2601: the platform answers a known msgid
with its first reply, §1.5) are resent byte-exact to learn their outcome;
side-effect-free queries are dropped. Rows of a process that still runs are
never touched.

:func:`reconcile` resolves first, then sends one spec 3201 per insurance type,
clearing type and clearing institution of the day; it never sends one while a
row of the day is unresolved (after the 3201 the day's reversals are closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sscard.errors import ExitStatus
from sscard.services.insurance.errors import (
    InsuranceError,
    OutcomeUnknown,
    PlatformError,
    PlatformUnreachable,
    ReversalRefused,
)
from sscard.services.insurance.models import (
    FILING_CHECK_INFNO,
    REVERSIBLE_INFNOS,
    SETTLEMENT_QUERY_INFNO,
    DailyTotalsRequest,
    DailyTotalsResult,
    ReversalRequest,
    ReversalResult,
    Settlement,
    SettlementQueryResult,
    SettlementState,
    Totals,
)
from sscard.services.insurance.outbox import OutboxRow, has_personal

if TYPE_CHECKING:
    from sscard.services.insurance.client import InsuranceClient

#: Transactions without side effects: an unknown outcome is simply dropped.
SIDE_EFFECT_FREE = frozenset(
    {"9001", "1101", "2206", "3201", SETTLEMENT_QUERY_INFNO, FILING_CHECK_INFNO}
)
#: Transactions a recovery resends under the same msgid to learn their outcome.
RESENDABLE = frozenset({"2202", "2203", "2204", "2205", "2208", "2601"})


@dataclass(frozen=True)
class Resolution:
    """What :func:`resolve` did: ``none`` (row already final), ``recorded``
    (platform had settled; row done), ``reversed`` (2601 acknowledged),
    ``not_made`` (the platform never applied it; row failed), ``resent`` (sent
    again under its msgid; ``state`` says how it ended), ``dropped``
    (side-effect free; row failed), ``skipped`` (its process still runs) or
    ``manual`` (flagged)."""

    msgid: str
    infno: str
    action: str
    state: str
    detail: str = ""
    settlement: Settlement | None = None

    def text(self) -> tuple[str, str]:
        """One bilingual line for the desk (no personal data)."""
        zh = {
            "none": "已是最终状态",
            "recorded": "平台已结算，已补记",
            "reversed": "已冲正",
            "not_made": "平台未受理，未扣费",
            "resent": "已重发并取得结果",
            "dropped": "查询类交易，已作废",
            "skipped": "其进程仍在运行，未处理",
            "manual": "需人工对账",
        }.get(self.action, self.action)
        state_zh = {"done": "完成", "failed": "失败", "reversed": "已冲正", "unknown": "结果未知",
                    "pending": "待定"}.get(self.state, self.state)  # fmt: skip
        return (
            f"{self.infno} {self.msgid}: {self.action} ({self.state}) {self.detail}".rstrip(),
            f"{self.infno} {self.msgid}：{zh}（{state_zh}）",
        )


@dataclass(frozen=True)
class StatementResult:
    """One 3201 of the day: our totals of one group and the platform's verdict."""

    insutype: str
    clr_type: str
    setl_optins: str
    local: Totals
    stmt_rslt: str
    stmt_rslt_dscr: str
    msgid: str

    @property
    def balanced(self) -> bool:
        return self.stmt_rslt == "0"


@dataclass(frozen=True)
class ReconcileReport:
    """The day's outbox against the platform's 3201 verdicts."""

    day: date
    local: Totals
    statements: tuple[StatementResult, ...]
    unbalanced: tuple[str, ...]  # settlements whose split does not add up
    resolutions: tuple[Resolution, ...] = ()

    @property
    def balanced(self) -> bool:
        return all(s.balanced for s in self.statements) and not self.unbalanced

    @property
    def stmt_rslt(self) -> str:
        return "0" if all(s.balanced for s in self.statements) else "1"

    @property
    def differences(self) -> dict[str, str]:
        """``{"insutype/clr_type/setl_optins": stmt_rslt_dscr}`` of the groups that differ."""
        return {
            f"{s.insutype}/{s.clr_type}/{s.setl_optins}": s.stmt_rslt_dscr
            for s in self.statements
            if not s.balanced
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "balanced": self.balanced,
            "local": {k: str(v) for k, v in self.local.__dict__.items()},
            "statements": [
                {
                    "insutype": s.insutype,
                    "clr_type": s.clr_type,
                    "setl_optins": s.setl_optins,
                    "fixmedins_setl_cnt": s.local.count,
                    "medfee_sumamt": str(s.local.medfee_sumamt),
                    "fund_pay_sumamt": str(s.local.fund_pay_sumamt),
                    "acct_pay": str(s.local.acct_pay),
                    "stmt_rslt": s.stmt_rslt,
                    "stmt_rslt_dscr": s.stmt_rslt_dscr,
                }
                for s in self.statements
            ],
            "unbalanced": list(self.unbalanced),
            "resolved": [
                {"msgid": r.msgid, "infno": r.infno, "action": r.action, "state": r.state}
                for r in self.resolutions
            ],
        }


class ReconciliationBlocked(OutcomeUnknown):
    """The day has rows whose outcome is not known: no 3201 is sent.

    A 3201 closes the day's reversals (sscard profile), so it waits until every
    row is resolved; the message lists them and says how to finish.
    """

    exit_status = ExitStatus.UNKNOWN

    def __init__(self, day: date, rows: list[OutboxRow]) -> None:
        self.day = day
        self.rows = tuple(rows)
        listed = ", ".join(f"{r.infno} {r.msgid}" for r in rows[:5])
        more = f" (+{len(rows) - 5})" if len(rows) > 5 else ""
        super().__init__(rows[0].msgid if rows else "", "3201", "unresolved rows")
        self.message_en = (
            f"{day.isoformat()} not reconciled: {len(rows)} transaction(s) with unknown outcome "
            f"({listed}{more}); run `sscard medical recover` once the platform answers, or "
            "reconcile them by hand with the platform; no 3201 was sent"
        )
        self.message_zh = (
            f"{day.isoformat()} 未对账：{len(rows)} 笔交易结果未知（{listed}{more}）；"
            "请在平台可用时执行 `sscard medical recover`，或与医保平台人工核对；未发送3201"
        )
        self.args = (self.message_en,)


def _reversal_problem(client: InsuranceClient, row: OutboxRow) -> tuple[str, str] | None:
    """Why the profile forbids a 2601 of ``row`` (English, Chinese), or None."""
    if row.infno not in REVERSIBLE_INFNOS:
        return (f"{row.infno} is not reversible", f"交易 {row.infno} 不可冲正")
    if row.state == "reversed":
        return ("already reversed", "已冲正")
    if row.state == "failed":
        return ("the original was refused or never sent", "原交易失败或未发送，无需冲正")
    day = client.clock().date()
    if row.day != day.isoformat():
        return ("reversal only on the day of the original", "仅可当日冲正")
    closed_by = client.outbox.reconciliation(day)
    if row.infno != "2201" and closed_by is not None and closed_by > row.msgid:
        return ("the day is already reconciled (3201)", "当日已对账（3201）")
    return None


def _reversal_request(row: OutboxRow) -> ReversalRequest:
    return ReversalRequest(
        psn_no=row.psn_no, omsgid=row.msgid, oinfno=row.infno, insuplc_admdvs=row.insuplc_admdvs
    )


def _parse_reversal(_msgid: str, output: dict[str, Any]) -> ReversalResult:
    return ReversalResult.from_output(output)


def reverse_once(client: InsuranceClient, omsgid: str) -> ReversalResult:
    """One 2601 of a journalled request; raises :class:`ReversalRefused` if the
    profile forbids it, PlatformError/OutcomeUnknown like any call."""
    row = client.outbox.get(omsgid)
    problem = _reversal_problem(client, row)
    if problem:
        raise ReversalRefused(
            f"cannot reverse {omsgid}: {problem[0]}", f"不能冲正 {omsgid}：{problem[1]}"
        )
    msgid, envelope = client._prepare(_reversal_request(row), ref_msgid=omsgid)
    result = client._transmit(msgid, envelope, False, _parse_reversal)
    client.outbox.mark_reversed(omsgid, msgid)
    return result


def _query(
    client: InsuranceClient, row: OutboxRow, *, recovered: bool = False
) -> SettlementQueryResult | None:
    """5261 for ``row``; None when it cannot tell. A recovery stops (PlatformUnreachable)
    when the platform cannot be reached at all: it leaves the row for the next try."""
    try:
        return client.query_settlement(row.psn_no, row.insuplc_admdvs, row.msgid)
    except PlatformUnreachable:
        if recovered:
            raise
        return None
    except (OutcomeUnknown, PlatformError):
        return None  # cannot tell


def _record_found(
    client: InsuranceClient,
    row: OutboxRow,
    found: SettlementQueryResult,
    *,
    recovered: bool,
    unseen: bool = False,
) -> Resolution | None:
    """Make the row agree with what 5261 found; None if the platform has nothing."""
    if found.setlinfo is None or found.setl_stas is SettlementState.NONE:
        return None
    if found.setl_stas is SettlementState.REVERSED:
        client.outbox.mark_reversed(row.msgid, "platform")
        return Resolution(row.msgid, row.infno, "reversed", "reversed", "already reversed")
    note = "recorded from settlement query (5261) after no reply"
    client.outbox.record_settlement(
        row.msgid,
        found.setlinfo,
        fund_total_includes_acct=client.config.fund_total_includes_acct,
        note=note,
        unseen=(recovered or unseen) and found.setl_stas is SettlementState.SETTLED,
    )
    if found.setl_stas is SettlementState.CANCELLED:
        client.outbox.mark_cancelled(found.setlinfo.setl_id, "platform")
        return Resolution(row.msgid, row.infno, "recorded", "done", "cancelled on platform")
    return Resolution(
        row.msgid, row.infno, "recorded", "done", note, Settlement(row.msgid, found.setlinfo)
    )


def _not_made(client: InsuranceClient, row: OutboxRow, detail: str) -> Resolution:
    client.outbox.finish(row.msgid, "failed", error=None, note=f"not made: {detail}")
    return Resolution(row.msgid, row.infno, "not_made", "failed", detail)


def reverse_with_retries(
    client: InsuranceClient, row: OutboxRow, *, recovered: bool = False
) -> Resolution:
    """2601 with the profile's backoff; the same 2601 msgid on every attempt, so
    the platform's duplicate check makes a repeat harmless."""
    problem = _reversal_problem(client, row)
    if problem:
        client.outbox.flag_manual(row.msgid, problem[0])
        return Resolution(row.msgid, row.infno, "manual", row.state, problem[0])
    request = _reversal_request(row)
    prepared: tuple[str, dict[str, Any]] | None = None
    last = ""
    for delay in client.reversal_backoff:
        client.sleep(delay)
        try:
            first = prepared is None
            if prepared is None:
                prepared = client._prepare(request, ref_msgid=row.msgid)
            result = client._transmit(*prepared, False, _parse_reversal, attempts=1, counted=first)
        except PlatformUnreachable as exc:
            if recovered:
                raise  # the platform is down: leave the row for the next try
            last = exc.reason
            continue
        except OutcomeUnknown as exc:
            last = exc.reason
            continue
        except PlatformError as exc:
            return _reversal_refused(client, row, exc, recovered=recovered)
        client.outbox.mark_reversed(row.msgid, prepared[0])
        return Resolution(row.msgid, row.infno, "reversed", "reversed", result.rvs_rslt)
    note = f"2601 unanswered after {len(client.reversal_backoff)} attempts ({last})"
    client.outbox.flag_manual(row.msgid, note)
    return Resolution(row.msgid, row.infno, "manual", row.state, note)


def _reversal_refused(
    client: InsuranceClient, row: OutboxRow, exc: PlatformError, *, recovered: bool
) -> Resolution:
    """2601 answered infcode != 0: the platform holds no reversible original (§1.7).

    A 2207 is asked about once more (5261): nothing there means it was not made.
    A 2201 moves no money and cannot be queried: it is taken as not made (a
    registration that arrives late only holds an outpatient number).
    """
    if row.infno == "2207":
        found = _query(client, row, recovered=recovered)
        if found is None:
            note = f"2601 refused ({exc.err_msg}) and 5261 unanswered"
            client.outbox.flag_manual(row.msgid, note)
            return Resolution(row.msgid, row.infno, "manual", row.state, note)
        recorded = _record_found(client, row, found, recovered=recovered)
        if recorded is not None:
            return recorded
    return _not_made(client, row, f"2601 answered: {exc.err_msg}")


def _resend(client: InsuranceClient, row: OutboxRow) -> Resolution:
    """Send a journalled request again under its own msgid (RESENDABLE only)."""
    if has_personal(row.request):
        note = f"{row.infno} cannot be resent (stored masked)"
        client.outbox.flag_manual(row.msgid, note)
        return Resolution(row.msgid, row.infno, "manual", row.state, note)

    def parse(_msgid: str, output: dict[str, Any]) -> dict[str, Any]:
        return output

    attempts = max(1, client.config.query_attempts)
    try:
        output = client._transmit(
            row.msgid, row.request, False, parse, attempts=attempts, counted=False
        )
    except PlatformError as exc:
        return Resolution(row.msgid, row.infno, "resent", "failed", exc.err_msg)
    except PlatformUnreachable:
        raise  # left as it was (unknown) for the next try
    except OutcomeUnknown as exc:
        return Resolution(row.msgid, row.infno, "resent", "unknown", exc.reason)
    data = (row.request_input.get("data") or {}) if row.infno in ("2208", "2601") else {}
    if row.infno == "2208":
        info = output.get("setlinfo") if isinstance(output, dict) else None
        client.outbox.mark_cancelled(
            str(data.get("setl_id") or ""), row.msgid if info is not None else "platform"
        )
    if row.infno == "2601" and row.ref_msgid:
        original = client.outbox.get(row.ref_msgid)
        if original.state in ("pending", "unknown"):
            client.outbox.mark_reversed(original.msgid, row.msgid)
    return Resolution(row.msgid, row.infno, "resent", "done")


def resolve(
    client: InsuranceClient,
    msgid: str,
    *,
    keep_settled: bool = True,
    recovered: bool = False,
    unseen: bool = False,
) -> Resolution:
    """Settle the fate of an ``unknown`` (or crashed ``pending``) outbox row.

    ``keep_settled=False`` reverses a settlement even if the platform has it
    (for a desk that has already sent the patient away). ``recovered``: the
    sending process died, so nobody has seen what the row produced; ``unseen``:
    a settlement found is recorded as not yet handed out.
    """
    row = client.outbox.get(msgid)
    if row.state not in ("unknown", "pending"):
        return Resolution(msgid, row.infno, "none", row.state)
    if row.infno == "2207":
        found = _query(client, row, recovered=recovered)
        if found is not None and (keep_settled or found.setl_stas is SettlementState.CANCELLED):
            recorded = _record_found(client, row, found, recovered=recovered, unseen=unseen)
            if recorded is not None:
                return recorded
    if row.infno in REVERSIBLE_INFNOS:
        return reverse_with_retries(client, row, recovered=recovered)
    if row.infno in RESENDABLE:
        return _resend(client, row)
    if row.infno in SIDE_EFFECT_FREE:
        client.outbox.finish(msgid, "failed", error="no reply; side-effect free, dropped")
        return Resolution(msgid, row.infno, "dropped", "failed")
    note = f"{row.infno} cannot be queried or reversed"
    client.outbox.flag_manual(msgid, note)
    return Resolution(msgid, row.infno, "manual", row.state, note)


def resolve_unknown(
    client: InsuranceClient, day: date | None = None, *, include_pending: bool = False
) -> list[Resolution]:
    """Resolve every ``unknown`` row (not yet flagged manual).

    ``include_pending`` also takes ``pending`` rows, of any process: only when no
    other thread or process is sending with this outbox (prefer
    :func:`resolve_orphans`, which knows).
    """
    states = ("unknown", "pending") if include_pending else ("unknown",)
    rows = [r for r in client.outbox.rows(day=day, states=states) if not r.manual]
    return [resolve(client, r.msgid, recovered=r.session != client.outbox.session) for r in rows]


def resolve_orphans(
    client: InsuranceClient, day: date | None = None, *, retry_manual: bool = False
) -> list[Resolution]:
    """Resolve what ended processes left unresolved (and this process's unknown rows).

    A ``pending`` row of a live process may be on the wire: skipped. 2601 rows
    first (their answer settles the row they reverse), then by msgid.
    ``retry_manual`` tries rows flagged for a person again (the platform may
    answer now). Raises :class:`PlatformUnreachable` (nothing more done, the
    remaining rows as they were) when the platform cannot be reached.
    """
    own = client.outbox.session
    todo: list[OutboxRow] = []
    skipped: list[Resolution] = []
    dead: set[str] = set()
    for row in client.outbox.unresolved(day):
        if row.manual and not retry_manual:
            continue
        if row.session != own and client.outbox.is_live(row.session):
            skipped.append(Resolution(row.msgid, row.infno, "skipped", row.state))
            continue
        if row.session == own and row.state == "pending":
            continue  # this process's own request on the wire (another thread)
        if row.session != own:
            dead.add(row.session)
        todo.append(row)
    todo.sort(key=lambda r: (r.infno != "2601", r.msgid))
    done: list[Resolution] = []
    for row in todo:
        if row.manual:
            client.outbox.clear_manual(row.msgid)
        if row.manual and row.state not in ("pending", "unknown"):
            done.append(Resolution(row.msgid, row.infno, "none", row.state, "manual flag cleared"))
            continue
        done.append(resolve(client, row.msgid, recovered=row.session != own))
    for session in dead:
        if not any(r.session == session for r in client.outbox.unresolved()):
            client.outbox.forget_session(session)
    return done + skipped


def reconcile(client: InsuranceClient, day: date, *, resolve_first: bool = True) -> ReconcileReport:
    """Send the day's 3201s (one per group) once every row of the day is resolved.

    ``resolve_first`` resolves what ended processes left first
    (:func:`resolve_orphans`), since after the 3201 the profile forbids 2601 for
    what it covered. Raises :class:`ReconciliationBlocked` (nothing sent) while
    a row of the day stays unresolved.
    """
    resolutions = tuple(resolve_orphans(client, day)) if resolve_first else ()
    blocking = client.outbox.unresolved(day)
    if blocking:
        raise ReconciliationBlocked(day, blocking)
    results: list[StatementResult] = []
    for group in client.outbox.settlement_groups(day):
        local = client.outbox.group_totals(day, group)
        insutype, clr_type, optins = group
        answer: DailyTotalsResult = client.daily_totals(day, local, insutype, clr_type, optins)
        results.append(
            StatementResult(
                insutype,
                clr_type,
                answer.setl_optins or optins,
                local,
                answer.stmt_rslt,
                answer.stmt_rslt_dscr,
                answer.msgid,
            )
        )
    report = ReconcileReport(
        day,
        client.outbox.day_totals(day),
        tuple(results),
        tuple(client.outbox.unbalanced(day)),
        resolutions,
    )
    if results:
        client.outbox.record_reconciliation(day, results[-1].msgid, report.balanced)
    if report.balanced:  # old rows of the day masked too, free pages scrubbed (privacy.md)
        client.outbox.purge_resend_data(day)
    return report


def daily_totals_request(
    day: date, local: Totals, insutype: str, clr_type: str, setl_optins: str
) -> DailyTotalsRequest:
    if not (insutype and clr_type and setl_optins):
        raise InsuranceError(
            "3201 needs insutype, clr_type and setl_optins", "3201 须有险种、清算类别和结算经办机构"
        )
    return DailyTotalsRequest(day, local, insutype, clr_type, setl_optins)

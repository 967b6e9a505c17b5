"""Making hospital and platform agree after a lost reply or a crash, and the daily check.

After :class:`OutcomeUnknown` on a 2207 (§M1.5 and the
sscard profile row "Reversible transactions and window", docs/reference.md):

1. ask the platform (profile 5261) whether a settlement with
   ``medins_setl_id`` = our msgid exists; if it does, record it as done
   (the patient was settled; nothing is charged twice);
2. otherwise send 2601 for the original msgid, which undoes it; 2601 only for
   oinfno 2201/2207/2304, the same day, and not for a settlement a 3201 already
   reconciled; at most 3 attempts with backoff 2/8/30 s. A 2601 that the
   platform refuses (infcode -1: it never saw the original, §M1.7) is followed by
   a second 5261: still nothing there means the settlement was not made;
3. if that fails, flag the row for manual reconciliation.

After a crash (:meth:`Reconciler.resolve_orphans`) the rows a dead process left
``pending`` or ``unknown`` are settled the same way; requests whose effect a
repeat cannot double (2202-2205, 2208, 2601: the platform answers a known msgid
with its first reply, §M1.5) are resent byte-exact to learn their outcome;
requests without side effects (:func:`side_effect_free`, from the one attribute
``Request.side_effects``) are dropped. Rows of a process that still runs are
never touched.

:meth:`Reconciler.reconcile` resolves first, then sends one spec 3201 per
insurance type, clearing type and clearing institution of the day; it never sends
one while a row of the day is unresolved (after the 3201 the day's reversals are
closed).

The :class:`Reconciler` works through a client's public API only (``send``,
``resend``, ``outbox``; the :class:`PlatformClient` protocol): this module does
not import the client, which holds a Reconciler and offers it as shortcuts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from sscard.errors import ExitStatus
from sscard.services.insurance.errors import (
    OutcomeUnknown,
    PlatformError,
    PlatformUnreachable,
    ReversalRefused,
)
from sscard.services.insurance.models import (
    REVERSIBLE_INFNOS,
    DailyTotalsRequest,
    DailyTotalsResult,
    Request,
    ReversalRequest,
    ReversalResult,
    Settlement,
    SettlementQueryRequest,
    SettlementQueryResult,
    SettlementState,
    Totals,
    side_effect_free,
)
from sscard.services.insurance.outbox import Outbox, OutboxRow, OutboxState, has_personal

T = TypeVar("T")

#: Transactions with side effects that a recovery resends under the same msgid to
#: learn their outcome (the platform answers a known msgid with its first reply).
RESENDABLE = frozenset({"2202", "2203", "2204", "2205", "2208", "2601"})


class _Settings(Protocol):
    @property
    def fund_total_includes_acct(self) -> bool: ...


class PlatformClient(Protocol):
    """What a :class:`Reconciler` uses of a client: the public API of
    :class:`~sscard.services.insurance.client.InsuranceClient`, nothing private."""

    @property
    def outbox(self) -> Outbox: ...

    @property
    def config(self) -> _Settings: ...

    @property
    def reversal_backoff(self) -> tuple[float, ...]: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def sleep(self) -> Callable[[float], None]: ...

    def send(
        self,
        request: Request[T],
        *,
        ref_msgid: str | None = None,
        attempts: int | None = None,
        unseen: bool = False,
    ) -> T: ...

    def resend(self, msgid: str, *, attempts: int | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Resolution:
    """What :meth:`Reconciler.resolve` did: ``none`` (row already final), ``recorded``
    (platform had settled; row done), ``reversed`` (2601 acknowledged),
    ``not_made`` (the platform never applied it; row failed), ``resent`` (sent
    again under its msgid; ``state`` says how it ended), ``dropped``
    (side-effect free; row failed), ``skipped`` (its process still runs) or
    ``manual`` (flagged)."""

    msgid: str
    infno: str
    action: str
    state: OutboxState
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


class Reconciler:
    """Settles unknown outcomes and runs the day-end check for one client.

    Constructed with the client whose outbox and platform it reconciles
    (``InsuranceClient`` builds its own as ``client.reconciler``); it sends only
    through ``client.send`` and ``client.resend``.
    """

    def __init__(self, client: PlatformClient) -> None:
        self.client = client

    @property
    def outbox(self) -> Outbox:
        return self.client.outbox

    # -- reversal (2601) ---------------------------------------------------

    def _reversal_problem(self, row: OutboxRow) -> tuple[str, str] | None:
        """Why the profile forbids a 2601 of ``row`` (English, Chinese), or None."""
        if row.infno not in REVERSIBLE_INFNOS:
            return (f"{row.infno} is not reversible", f"交易 {row.infno} 不可冲正")
        if row.state is OutboxState.REVERSED:
            return ("already reversed", "已冲正")
        if row.state is OutboxState.FAILED:
            return ("the original was refused or never sent", "原交易失败或未发送，无需冲正")
        day = self.client.clock().date()
        if row.day != day.isoformat():
            return ("reversal only on the day of the original", "仅可当日冲正")
        closed_by = self.outbox.reconciliation(day)
        if row.infno != "2201" and closed_by is not None and closed_by > row.msgid:
            return ("the day is already reconciled (3201)", "当日已对账（3201）")
        return None

    def reverse(self, omsgid: str) -> ReversalResult:
        """One 2601 of a journalled request; raises :class:`ReversalRefused` if the
        profile forbids it, PlatformError/OutcomeUnknown like any call."""
        row = self.outbox.get(omsgid)
        problem = self._reversal_problem(row)
        if problem:
            raise ReversalRefused(
                f"cannot reverse {omsgid}: {problem[0]}", f"不能冲正 {omsgid}：{problem[1]}"
            )
        result = self.client.send(_reversal_request(row), ref_msgid=omsgid)
        self.outbox.mark_reversed(omsgid, result.msgid)
        return result

    def reverse_with_retries(self, row: OutboxRow, *, recovered: bool = False) -> Resolution:
        """2601 with the profile's backoff; the same 2601 msgid on every attempt
        (the first sent, the others resent), so the platform's duplicate check
        makes a repeat harmless."""
        problem = self._reversal_problem(row)
        if problem:
            self.outbox.flag_manual(row.msgid, problem[0])
            return Resolution(row.msgid, row.infno, "manual", row.state, problem[0])
        request = _reversal_request(row)
        sent: str | None = None  # msgid of the journalled 2601
        last = ""
        for delay in self.client.reversal_backoff:
            self.client.sleep(delay)
            try:
                if sent is None:
                    result = self.client.send(request, ref_msgid=row.msgid, attempts=1)
                    sent = result.msgid
                else:
                    output = self.client.resend(sent, attempts=1)
                    result = ReversalResult.from_output(output)
            except OutcomeUnknown as exc:  # PlatformUnreachable too
                if sent is None and exc.infno == ReversalRequest.infno:
                    sent = exc.msgid  # journalled; an automatic 9001 before it is not
                if isinstance(exc, PlatformUnreachable) and recovered:
                    raise  # the platform is down: leave the row for the next try
                last = exc.reason
                continue
            except PlatformError as exc:
                return self._reversal_refused(row, exc, recovered=recovered)
            self.outbox.mark_reversed(row.msgid, sent)
            return Resolution(
                row.msgid, row.infno, "reversed", OutboxState.REVERSED, result.rvs_rslt
            )
        note = f"2601 unanswered after {len(self.client.reversal_backoff)} attempts ({last})"
        self.outbox.flag_manual(row.msgid, note)
        return Resolution(row.msgid, row.infno, "manual", row.state, note)

    def _reversal_refused(
        self, row: OutboxRow, exc: PlatformError, *, recovered: bool
    ) -> Resolution:
        """2601 answered infcode != 0: the platform holds no reversible original (§M1.7).

        A 2207 is asked about once more (5261): nothing there means it was not made.
        A 2201 moves no money and cannot be queried: it is taken as not made (a
        registration that arrives late only holds an outpatient number).
        """
        if row.infno == "2207":
            found = self._query(row, recovered=recovered)
            if found is None:
                note = f"2601 refused ({exc.err_msg}) and 5261 unanswered"
                self.outbox.flag_manual(row.msgid, note)
                return Resolution(row.msgid, row.infno, "manual", row.state, note)
            recorded = self._record_found(row, found, recovered=recovered)
            if recorded is not None:
                return recorded
        return self._not_made(row, f"2601 answered: {exc.err_msg}")

    # -- what the platform holds (5261) ------------------------------------

    def _query(self, row: OutboxRow, *, recovered: bool = False) -> SettlementQueryResult | None:
        """5261 for ``row``; None when it cannot tell. A recovery stops (PlatformUnreachable)
        when the platform cannot be reached at all: it leaves the row for the next try."""
        try:
            return self.client.send(
                SettlementQueryRequest(row.psn_no, row.msgid, row.insuplc_admdvs)
            )
        except PlatformUnreachable:
            if recovered:
                raise
            return None
        except (OutcomeUnknown, PlatformError):
            return None  # cannot tell

    def _record_found(
        self,
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
            self.outbox.mark_reversed(row.msgid, "platform")
            return Resolution(
                row.msgid, row.infno, "reversed", OutboxState.REVERSED, "already reversed"
            )
        note = "recorded from settlement query (5261) after no reply"
        self.outbox.record_settlement(
            row.msgid,
            found.setlinfo,
            fund_total_includes_acct=self.client.config.fund_total_includes_acct,
            note=note,
            unseen=(recovered or unseen) and found.setl_stas is SettlementState.SETTLED,
        )
        if found.setl_stas is SettlementState.CANCELLED:
            self.outbox.mark_cancelled(found.setlinfo.setl_id, "platform")
            return Resolution(
                row.msgid, row.infno, "recorded", OutboxState.DONE, "cancelled on platform"
            )
        return Resolution(
            row.msgid,
            row.infno,
            "recorded",
            OutboxState.DONE,
            note,
            Settlement(row.msgid, found.setlinfo),
        )

    def _not_made(self, row: OutboxRow, detail: str) -> Resolution:
        self.outbox.finish(row.msgid, OutboxState.FAILED, error=None, note=f"not made: {detail}")
        return Resolution(row.msgid, row.infno, "not_made", OutboxState.FAILED, detail)

    def _resend(self, row: OutboxRow) -> Resolution:
        """Send a journalled request again under its own msgid (RESENDABLE only)."""
        if has_personal(row.request):
            note = f"{row.infno} cannot be resent (stored masked)"
            self.outbox.flag_manual(row.msgid, note)
            return Resolution(row.msgid, row.infno, "manual", row.state, note)
        try:
            output = self.client.resend(row.msgid)
        except PlatformError as exc:
            return Resolution(row.msgid, row.infno, "resent", OutboxState.FAILED, exc.err_msg)
        except PlatformUnreachable:
            raise  # left as it was (unknown) for the next try
        except OutcomeUnknown as exc:
            return Resolution(row.msgid, row.infno, "resent", OutboxState.UNKNOWN, exc.reason)
        data = (row.request_input.get("data") or {}) if row.infno in ("2208", "2601") else {}
        if row.infno == "2208":
            info = output.get("setlinfo")
            self.outbox.mark_cancelled(
                str(data.get("setl_id") or ""), row.msgid if info is not None else "platform"
            )
        if row.infno == "2601" and row.ref_msgid:
            original = self.outbox.get(row.ref_msgid)
            if original.state in (OutboxState.PENDING, OutboxState.UNKNOWN):
                self.outbox.mark_reversed(original.msgid, row.msgid)
        return Resolution(row.msgid, row.infno, "resent", OutboxState.DONE)

    # -- resolving rows ----------------------------------------------------

    def resolve(
        self,
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
        row = self.outbox.get(msgid)
        if row.state not in (OutboxState.UNKNOWN, OutboxState.PENDING):
            return Resolution(msgid, row.infno, "none", row.state)
        if row.infno == "2207":
            found = self._query(row, recovered=recovered)
            if found is not None and (keep_settled or found.setl_stas is SettlementState.CANCELLED):
                recorded = self._record_found(row, found, recovered=recovered, unseen=unseen)
                if recorded is not None:
                    return recorded
        if row.infno in REVERSIBLE_INFNOS:
            return self.reverse_with_retries(row, recovered=recovered)
        if row.infno in RESENDABLE:
            return self._resend(row)
        if side_effect_free(row.infno):
            self.outbox.finish(
                msgid, OutboxState.FAILED, error="no reply; side-effect free, dropped"
            )
            return Resolution(msgid, row.infno, "dropped", OutboxState.FAILED)
        note = f"{row.infno} cannot be queried or reversed"
        self.outbox.flag_manual(msgid, note)
        return Resolution(msgid, row.infno, "manual", row.state, note)

    def resolve_unknown(
        self, day: date | None = None, *, include_pending: bool = False
    ) -> list[Resolution]:
        """Resolve every ``unknown`` row (not yet flagged manual).

        ``include_pending`` also takes ``pending`` rows, of any process: only when no
        other thread or process is sending with this outbox (prefer
        :meth:`resolve_orphans`, which knows).
        """
        states = (
            (OutboxState.UNKNOWN, OutboxState.PENDING)
            if include_pending
            else (OutboxState.UNKNOWN,)
        )
        rows = [r for r in self.outbox.rows(day=day, states=states) if not r.manual]
        own = self.outbox.session
        return [self.resolve(r.msgid, recovered=r.session != own) for r in rows]

    def resolve_orphans(
        self, day: date | None = None, *, retry_manual: bool = False
    ) -> list[Resolution]:
        """Resolve what ended processes left unresolved (and this process's unknown rows).

        A ``pending`` row of a live process may be on the wire: skipped. 2601 rows
        first (their answer settles the row they reverse), then by msgid.
        ``retry_manual`` tries rows flagged for a person again (the platform may
        answer now). Raises :class:`PlatformUnreachable` (nothing more done, the
        remaining rows as they were) when the platform cannot be reached.
        """
        own = self.outbox.session
        todo: list[OutboxRow] = []
        skipped: list[Resolution] = []
        dead: set[str] = set()
        for row in self.outbox.unresolved(day):
            if row.manual and not retry_manual:
                continue
            if row.session != own and self.outbox.is_live(row.session):
                skipped.append(Resolution(row.msgid, row.infno, "skipped", row.state))
                continue
            if row.session == own and row.state is OutboxState.PENDING:
                continue  # this process's own request on the wire (another thread)
            if row.session != own:
                dead.add(row.session)
            todo.append(row)
        todo.sort(key=lambda r: (r.infno != ReversalRequest.infno, r.msgid))
        done: list[Resolution] = []
        for row in todo:
            if row.manual:
                self.outbox.clear_manual(row.msgid)
            if row.manual and row.state not in (OutboxState.PENDING, OutboxState.UNKNOWN):
                done.append(
                    Resolution(row.msgid, row.infno, "none", row.state, "manual flag cleared")
                )
                continue
            done.append(self.resolve(row.msgid, recovered=row.session != own))
        for session in dead:
            if not any(r.session == session for r in self.outbox.unresolved()):
                self.outbox.forget_session(session)
        return done + skipped

    # -- the day-end check (3201) -------------------------------------------

    def reconcile(self, day: date, *, resolve_first: bool = True) -> ReconcileReport:
        """Send the day's 3201s (one per group) once every row of the day is resolved.

        ``resolve_first`` resolves what ended processes left first
        (:meth:`resolve_orphans`), since after the 3201 the profile forbids 2601 for
        what it covered. Raises :class:`ReconciliationBlocked` (nothing sent) while
        a row of the day stays unresolved.
        """
        resolutions = tuple(self.resolve_orphans(day)) if resolve_first else ()
        blocking = self.outbox.unresolved(day)
        if blocking:
            raise ReconciliationBlocked(day, blocking)
        results: list[StatementResult] = []
        for group in self.outbox.settlement_groups(day):
            local = self.outbox.group_totals(day, group)
            insutype, clr_type, optins = group
            answer: DailyTotalsResult = self.client.send(
                DailyTotalsRequest(day, local, insutype, clr_type, optins)
            )
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
            self.outbox.day_totals(day),
            tuple(results),
            tuple(self.outbox.unbalanced(day)),
            resolutions,
        )
        if results:
            self.outbox.record_reconciliation(day, results[-1].msgid, report.balanced)
        if report.balanced:  # old rows of the day masked too, free pages scrubbed (privacy.md)
            self.outbox.purge_resend_data(day)
        return report


def _reversal_request(row: OutboxRow) -> ReversalRequest:
    return ReversalRequest(
        psn_no=row.psn_no, omsgid=row.msgid, oinfno=row.infno, insuplc_admdvs=row.insuplc_admdvs
    )

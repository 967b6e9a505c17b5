"""Making hospital and platform agree after a lost reply, and the daily check.

After :class:`OutcomeUnknown` on a 2207 (medical-insurance.md §1.5 and the
sscard profile row "Reversible transactions and window"):

1. ask the platform (profile 5261) whether a settlement with
   ``medins_setl_id`` = our msgid exists; if it does, record it as done
   (the patient was settled; nothing is charged twice);
2. otherwise send 2601 for the original msgid, which undoes it or, if it never
   arrived, bars a late arrival; 2601 only for oinfno 2201/2207/2304, the same
   day, before the day's 3201, at most 3 attempts with backoff 2/8/30 s;
3. if that fails, flag the row for manual reconciliation.

:func:`reconcile` compares the day's outbox with the platform's 3201 totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sscard.services.insurance.errors import OutcomeUnknown, PlatformError, ReversalRefused
from sscard.services.insurance.models import (
    FILING_CHECK_INFNO,
    REVERSIBLE_INFNOS,
    SETTLEMENT_QUERY_INFNO,
    ReversalRequest,
    ReversalResult,
    Settlement,
    SettlementQueryResult,
    SettlementState,
    Totals,
)
from sscard.services.insurance.outbox import OutboxRow

if TYPE_CHECKING:
    from sscard.services.insurance.client import InsuranceClient

#: Transactions without side effects: an unknown outcome is simply dropped.
SIDE_EFFECT_FREE = frozenset(
    {"9001", "1101", "2206", "3201", SETTLEMENT_QUERY_INFNO, FILING_CHECK_INFNO}
)


@dataclass(frozen=True)
class Resolution:
    """What :func:`resolve` did: ``none`` (row already final), ``recorded``
    (platform had settled; row done), ``reversed`` (2601 acknowledged),
    ``dropped`` (side-effect free; row failed) or ``manual`` (flagged)."""

    msgid: str
    infno: str
    action: str
    state: str
    detail: str = ""
    settlement: Settlement | None = None


@dataclass(frozen=True)
class ReconcileReport:
    """Local outbox vs platform 3201 totals for one day."""

    day: date
    local: Totals
    platform: Totals
    differences: dict[str, tuple[Any, Any]]
    stmt_rslt: str
    unresolved: tuple[str, ...]  # msgids still unknown/pending (incl. manual)
    unbalanced: tuple[str, ...]  # settlements whose split does not add up

    @property
    def balanced(self) -> bool:
        return not self.differences and not self.unresolved and not self.unbalanced

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "balanced": self.balanced,
            "local": self.local.__dict__,
            "platform": self.platform.__dict__,
            "differences": {k: [str(a), str(b)] for k, (a, b) in self.differences.items()},
            "stmt_rslt": self.stmt_rslt,
            "unresolved": list(self.unresolved),
            "unbalanced": list(self.unbalanced),
        }


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
    if client.outbox.reconciled(day):
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


def reverse_with_retries(client: InsuranceClient, row: OutboxRow) -> Resolution:
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
            if prepared is None:
                prepared = client._prepare(request, ref_msgid=row.msgid)
            result = client._transmit(*prepared, False, _parse_reversal, attempts=1)
        except OutcomeUnknown as exc:
            last = exc.reason
            continue
        except PlatformError as exc:
            note = f"2601 refused: {exc.err_msg}"
            client.outbox.flag_manual(row.msgid, note)
            return Resolution(row.msgid, row.infno, "manual", row.state, note)
        client.outbox.mark_reversed(row.msgid, prepared[0])
        return Resolution(row.msgid, row.infno, "reversed", "reversed", result.rvs_rslt)
    note = f"2601 unanswered after {len(client.reversal_backoff)} attempts ({last})"
    client.outbox.flag_manual(row.msgid, note)
    return Resolution(row.msgid, row.infno, "manual", row.state, note)


def resolve(client: InsuranceClient, msgid: str, *, keep_settled: bool = True) -> Resolution:
    """Settle the fate of an ``unknown`` (or crashed ``pending``) outbox row.

    ``keep_settled=False`` reverses a settlement even if the platform has it
    (for a desk that has already sent the patient away).
    """
    row = client.outbox.get(msgid)
    if row.state not in ("unknown", "pending"):
        return Resolution(msgid, row.infno, "none", row.state)
    if row.infno == "2207":
        found: SettlementQueryResult | None
        try:
            found = client.query_settlement(row.psn_no, row.insuplc_admdvs, msgid)
        except (OutcomeUnknown, PlatformError):
            found = None  # cannot tell: reversing is safe either way
        if found is not None and found.setlinfo is not None:
            if found.setl_stas is SettlementState.REVERSED:
                client.outbox.mark_reversed(msgid, "platform")
                return Resolution(msgid, row.infno, "reversed", "reversed", "already reversed")
            if found.setl_stas is SettlementState.CANCELLED or keep_settled:
                note = "recorded from settlement query (5261) after no reply"
                client.outbox.record_settlement(
                    msgid,
                    found.setlinfo,
                    fund_total_includes_acct=client.config.fund_total_includes_acct,
                    note=note,
                )
                if found.setl_stas is SettlementState.CANCELLED:
                    client.outbox.mark_cancelled(found.setlinfo.setl_id, "platform")
                    return Resolution(msgid, row.infno, "recorded", "done", "cancelled on platform")
                return Resolution(
                    msgid, row.infno, "recorded", "done", note, Settlement(msgid, found.setlinfo)
                )
    if row.infno in REVERSIBLE_INFNOS:
        return reverse_with_retries(client, row)
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

    ``include_pending`` also takes ``pending`` rows: only after a crash, when
    no other thread or process is sending with this outbox.
    """
    states = ("unknown", "pending") if include_pending else ("unknown",)
    rows = [r for r in client.outbox.rows(day=day, states=states) if not r.manual]
    return [resolve(client, r.msgid) for r in rows]


def reconcile(client: InsuranceClient, day: date, *, resolve_first: bool = True) -> ReconcileReport:
    """Compare the day's valid settlements with the platform's 3201 totals.

    ``resolve_first`` resolves the day's unknown rows first, since after the
    3201 the profile forbids 2601 for that day.
    """
    if resolve_first:
        resolve_unknown(client, day)
    local = client.outbox.day_totals(day)
    answer = client.daily_totals(day, local)
    differences = local.differences(answer.platform)
    unresolved = tuple(r.msgid for r in client.outbox.rows(day=day, states=("unknown", "pending")))
    unbalanced = tuple(client.outbox.unbalanced(day))
    client.outbox.record_reconciliation(day, answer.msgid, not differences)
    report = ReconcileReport(
        day, local, answer.platform, differences, answer.stmt_rslt, unresolved, unbalanced
    )
    if report.balanced:  # nothing of the day is resent any more (docs/privacy.md)
        client.outbox.purge_resend_data(day)
    return report

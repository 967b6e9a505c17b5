"""The front desk: the outpatient transaction sequence over an insurance client.

recover → 1101 → same person as the card? → patient guard → area case → filing
check → 2201 → 2203 → 2204 → 2206 → confirm → 2207, and the undo paths 2205 →
2202 and 2208 → 2205 → 2202 (§M1.2, §M1.5, §M1.6, §M1.7;
sscard profile, "Cross-province filing check" and "Area codes"). The package
docstring (:mod:`sscard.applets.medical`) walks the flow.

Every step that talks to the platform (settle, cancel, reconcile) first runs
:meth:`FrontDesk.recover` on what an interrupted session (a killed desk, a
power cut) left behind: rows of ended processes are resolved with the platform,
and visits they left registered but unsettled are cancelled, so nothing
half-done survives the next command. A patient with a settlement whose outcome
is unknown, or one the platform completed after such an interruption, is not
settled again without the desk saying so.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sscard.applets.medical.errors import (
    CancelIncomplete,
    Cleanup,
    FilingRequired,
    RecoveredSettlement,
    SettlementDeclined,
    UnresolvedSettlement,
    VisitAborted,
    WrongPerson,
)
from sscard.applets.medical.inputs import CardIdentity, VisitPlan
from sscard.applets.medical.results import (
    Cancellation,
    Patient,
    PreSettlement,
    Receipt,
    Recovery,
    Registration,
)
from sscard.clock import beijing_now
from sscard.errors import ConfigError
from sscard.services.audit import AuditLog
from sscard.services.insurance import (
    AreaCase,
    CancelRegistrationRequest,
    CancelSettlementRequest,
    DeleteFeesRequest,
    Diagnosis,
    FeeUploadRequest,
    FilingCheck,
    FilingStatus,
    InsuranceClient,
    InsuranceError,
    InvalidRequest,
    ManualReconciliationRequired,
    NoFilingCheck,
    OutboxRow,
    OutboxState,
    OutcomeUnknown,
    PersonInfo,
    PersonInfoRequest,
    PlatformUnreachable,
    ReconcileReport,
    RegisterRequest,
    SettleConfirmRequest,
    SettleRequest,
    VisitUploadRequest,
    split_fee_upload,
)
from sscard.services.insurance.outbox import OPEN_STATES

#: SSC as the visit medium (§M2.1).
CERT_TYPE_SSC = "03"
#: Citizen ID number as the person's certificate (psn_cert_type 01).
PSN_CERT_ID = "01"

Confirm = Callable[[PreSettlement], bool]
#: Where the desk tells the operator what recovery did: (English, Chinese).
Notify = Callable[[str, str], None]
#: Audit scenario of a refused person match (sscard.services.audit codes).
AUDIT_SCENARIO = "medical_1101"


def person_mismatch(card: CardIdentity, person: PersonInfo) -> tuple[str, ...]:
    """Reasons the 1101 person is not the cardholder: SSN (= citizen ID, EF06) and name.

    Compared exactly, apart from surrounding spaces and the case of a final
    check character ``x``; an empty answer from the platform counts as a mismatch.
    """
    reasons = []
    if card.ssn.strip().upper() != person.certno.strip().upper():
        reasons.append("ssn_mismatch")
    if "".join(card.name.split()) != "".join(person.psn_name.split()):
        reasons.append("name_mismatch")
    return tuple(reasons)


class FrontDesk:
    """The outpatient settlement flow over an :class:`InsuranceClient`.

    ``filing_check``: the profile's adapter (default :class:`NoFilingCheck`, i.e.
    ``UNKNOWN``: the desk confirms by hand, the platform still refuses an unfiled
    visit). ``acct_used_flag`` / ``psn_setlway``: profile defaults ``0`` / ``01``.
    ``insutype`` "" takes the person's first insurance from 1101. ``audit``: the
    privacy audit log (or its path, opened when needed) that records a refused
    person match. ``notify`` hears what :meth:`recover` did. ``clock``: Beijing
    wall-clock time by default.
    """

    def __init__(
        self,
        client: InsuranceClient,
        *,
        filing_check: FilingCheck | None = None,
        mdtrtarea_admvs: str | None = None,
        insutype: str = "",
        acct_used_flag: str = "0",
        psn_setlway: str = "01",
        clock: Callable[[], datetime] = beijing_now,
        audit: AuditLog | str | Path | None = None,
        notify: Notify | None = None,
    ) -> None:
        area = mdtrtarea_admvs or client.config.mdtrtarea_admvs
        if area != client.config.mdtrtarea_admvs:
            raise ConfigError(
                f"treatment area {area} differs from the client's {client.config.mdtrtarea_admvs}",
                "就医地医保区划与客户端配置不一致",
            )
        self.client = client
        self.filing_check: FilingCheck = filing_check or NoFilingCheck()
        self.mdtrtarea_admvs = area
        self.insutype = insutype
        self.acct_used_flag = acct_used_flag
        self.psn_setlway = psn_setlway
        self.clock = clock
        self.audit = audit
        self.notify = notify

    # -- recovery ------------------------------------------------------------

    def recover(self, *, retry_manual: bool = False) -> Recovery:
        """Finish what interrupted sessions left: resolve their rows, cancel their visits.

        Rows of processes that still run are left alone. A visit is cancelled
        (2205 → 2202) when the outbox shows it registered with no live settlement
        and no cancellation, and the last process that touched it has ended (a
        settle killed before 2207, a cancel killed after 2208) or is this one (a
        clean-up that failed earlier). Returns what was done; ``notify`` hears it.
        """
        resolutions = tuple(self.client.resolve_orphans(retry_manual=retry_manual))
        visits: list[Cleanup] = []
        for reg in self.client.outbox.open_visits():
            mdtrt_id = reg.mdtrt_id or ""
            touched = self.client.outbox.of_visit(mdtrt_id)
            last = max(touched, key=lambda r: r.msgid) if touched else reg
            own = last.session == self.client.outbox.session
            if not own and self.client.outbox.is_live(last.session):
                continue  # another desk is in the middle of this visit
            if any(r.state in OPEN_STATES or r.manual for r in touched):
                continue  # its rows need a person first
            visits.append(self._cancel_visit(mdtrt_id))
        unresolved = tuple(
            r.msgid
            for r in self.client.outbox.unresolved()
            if r.manual or not self.client.outbox.is_live(r.session)
        )
        recovery = Recovery(resolutions, tuple(visits), unresolved)
        if self.notify is not None and not recovery.empty:
            for en, zh in recovery.lines():
                self.notify(en, zh)
        return recovery

    # -- steps -------------------------------------------------------------

    def identify(self, card: CardIdentity, *, med_type: str = "11") -> Patient:
        """1101 by card (type 03, card_sn), the cardholder check, area case, filing check.

        The person the platform answers with must be the one on the card (SSN
        and name from EF06): otherwise :class:`WrongPerson`, audited, and nothing
        registered (§M1.7: card numbers are not unique across provinces).
        """
        person = self.client.person_info(
            PersonInfoRequest(
                CERT_TYPE_SSC,
                card.card_number,
                card_sn=card.card_id_code,
                psn_cert_type=PSN_CERT_ID,
                certno=card.ssn,
                psn_name=card.name,
            )
        )
        reasons = person_mismatch(card, person)
        if reasons:
            self._audit_refusal(card, reasons)
            if person.msgid:
                self.client.outbox.add_note(
                    person.msgid, f"refused: person does not match the card ({', '.join(reasons)})"
                )
            raise WrongPerson(reasons)
        insurance = person.insurance(self.insutype or None)
        case = AreaCase.of(insurance.insuplc_admdvs, self.mdtrtarea_admvs)
        filing = None
        if case is AreaCase.CROSS_PROVINCE:
            filing = self.filing_check.check(
                person.psn_no,
                insurance.insuplc_admdvs,
                self.mdtrtarea_admvs,
                med_type,
                self._now(),
            )
        return Patient(card, person, insurance, self.mdtrtarea_admvs, case, filing)

    def register(self, patient: Patient, visit: VisitPlan) -> Registration:
        """2201. A lost reply is resolved at once (2601 of the 2201, profile) so no
        registration is left behind unknown."""
        if patient.filing is FilingStatus.NOT_FILED:
            raise FilingRequired(patient.insuplc_admdvs, patient.mdtrtarea_admvs, visit.med_type)
        begntime = self._now()
        otp = visit.ipt_otp_no or f"MZ{self.clock():%Y%m%d%H%M%S}{uuid.uuid4().hex[:6].upper()}"
        request = RegisterRequest(
            psn_no=patient.psn_no,
            insutype=patient.insurance.insutype,
            insuplc_admdvs=patient.insuplc_admdvs,
            begntime=begntime,
            mdtrt_cert_type=CERT_TYPE_SSC,
            mdtrt_cert_no=patient.card.card_number,
            ipt_otp_no=otp,
            atddr_no=visit.atddr_no,
            dr_name=visit.dr_name,
            dept_code=visit.dept_code,
            dept_name=visit.dept_name,
            card_sn=patient.card.card_id_code,
            psn_cert_type=PSN_CERT_ID,
            certno=patient.card.ssn,
        )
        try:
            result = self.client.register(request)
        except PlatformUnreachable:
            raise  # nothing sent
        except OutcomeUnknown as exc:
            resolution = self.client.resolve(exc.msgid)  # 2601 of the 2201
            if resolution.action != "reversed":
                raise ManualReconciliationRequired(exc.msgid, "2201", resolution.detail) from exc
            raise VisitAborted("2201", exc, Cleanup("", ("2601",))) from exc
        batch = visit.batch or f"{self.clock():%H%M%S}01"
        return Registration(result.mdtrt_id, otp, batch, begntime, result.msgid)

    def pre_settle(self, patient: Patient, reg: Registration, visit: VisitPlan) -> PreSettlement:
        """2203 visit, 2204 fee items (in as many uploads as the 40,000-character
        ``input`` limit needs, §M1.7), 2206 pre-settlement."""
        self.client.upload_visit(
            VisitUploadRequest(
                mdtrt_id=reg.mdtrt_id,
                psn_no=patient.psn_no,
                insuplc_admdvs=patient.insuplc_admdvs,
                med_type=visit.med_type,
                begntime=reg.begntime,
                main_cond_dscr=visit.main_cond_dscr,
                dise_codg=visit.dise_codg,
                dise_name=visit.dise_name,
                diseinfo=self._diagnoses(visit, reg),
            )
        )
        upload = FeeUploadRequest(
            reg.mdtrt_id,
            patient.psn_no,
            patient.insuplc_admdvs,
            reg.chrg_bchno,
            reg.begntime,
            visit.items,
        )
        for part in split_fee_upload(upload):
            self.client.upload_fees(part)
        request = SettleRequest(
            psn_no=patient.psn_no,
            insuplc_admdvs=patient.insuplc_admdvs,
            mdtrt_cert_type=CERT_TYPE_SSC,
            mdtrt_cert_no=patient.card.card_number,
            med_type=visit.med_type,
            medfee_sumamt=visit.total,
            mdtrt_id=reg.mdtrt_id,
            chrg_bchno=reg.chrg_bchno,
            insutype=patient.insurance.insutype,
            psn_setlway=self.psn_setlway,
            acct_used_flag=self.acct_used_flag,
        )
        return PreSettlement(patient, reg, visit, request, self.client.pre_settle(request))

    def confirm(self, pre: PreSettlement, *, seen: bool = True) -> Receipt:
        """2207 for a confirmed 2206; a lost reply is resolved by the client (§M1.5).

        ``seen=False``: the receipt is handed out later (:meth:`settle` marks it seen
        once ``deliver`` returned), so a desk killed in between leaves it *unseen*.
        """
        invono = f"INV{pre.registration.ipt_otp_no}"
        settlement = self.client.settle(
            SettleConfirmRequest.from_pre(pre.request, pre.settlement, invono), seen=seen
        )
        config = self.client.config
        return Receipt(
            config.fixmedins_code,
            config.fixmedins_name,
            pre.patient,
            pre.registration,
            pre.visit,
            settlement,
        )

    def abort(self, patient: Patient, reg: Registration, *, fees: bool = True) -> Cleanup:
        """Undo an unsettled visit: 2205 (all unsettled details) then 2202."""
        steps: list[str] = []
        try:
            if fees:
                self.client.delete_fees(
                    DeleteFeesRequest(reg.mdtrt_id, patient.psn_no, patient.insuplc_admdvs)
                )
                steps.append("2205")
            self.client.cancel_registration(
                CancelRegistrationRequest(
                    patient.psn_no, reg.mdtrt_id, reg.ipt_otp_no, patient.insuplc_admdvs
                )
            )
            steps.append("2202")
        except InsuranceError as exc:
            return Cleanup(reg.mdtrt_id, tuple(steps), exc.message_en, exc.message_zh)
        return Cleanup(reg.mdtrt_id, tuple(steps))

    # -- the whole flow ----------------------------------------------------

    def settle(
        self,
        card: CardIdentity,
        visit: VisitPlan,
        *,
        confirm: Confirm,
        settle_again: bool = False,
        deliver: Callable[[Receipt], None] | None = None,
    ) -> Receipt:
        """Recover, identify, check the patient, register, upload, pre-settle, ask
        ``confirm``, settle, hand the receipt to ``deliver`` (print it, say), and only
        then mark it seen: a desk that dies before the patient got the receipt leaves
        an *unseen* settlement, which stops a second settlement of the same visit.

        Raises :class:`WrongPerson` or :class:`FilingRequired` (nothing registered),
        :class:`UnresolvedSettlement` / :class:`RecoveredSettlement` (the patient has
        a settlement the desk has not seen through; ``settle_again`` acknowledges a
        recovered one for a different visit), :class:`VisitAborted` (a step after
        2201 failed; the visit was cancelled, or the error says how to finish),
        :class:`ManualReconciliationRequired` (2207 outcome unknown; visit kept for
        the day-end reconciliation), or the client's errors before 2201.
        """
        self.recover()
        patient = self.identify(card, med_type=visit.med_type)
        self._check_patient(patient.psn_no, settle_again=settle_again)
        reg = self.register(patient, visit)
        try:
            pre = self.pre_settle(patient, reg, visit)
            try:
                accepted = confirm(pre)
            except BaseException:
                self.abort(patient, reg)
                raise
            if not accepted:
                raise SettlementDeclined(self.abort(patient, reg))
            receipt = self.confirm(pre, seen=False)
        except (SettlementDeclined, ManualReconciliationRequired):
            raise
        except InsuranceError as exc:
            cleanup = self.abort(patient, reg)
            raise VisitAborted(self._failed_infno(exc), exc, cleanup) from exc
        if deliver is not None:
            deliver(receipt)
        self.client.outbox.mark_seen(receipt.settlement.msgid)
        return receipt

    # -- cancellation ------------------------------------------------------

    def cancel(self, setl_id: str) -> Cancellation:
        """2208 → 2205 → 2202 for a settlement made through this outbox (after recovery)."""
        self.recover()
        settled = self._find("2207", lambda r: r.setl_id == setl_id)
        if settled is None:
            raise InvalidRequest(
                f"settlement {setl_id} is not in this desk's outbox",
                f"本机交易日志中无结算 {setl_id}",
            )
        if settled.cancelled_by is not None:
            raise InvalidRequest(
                f"settlement {setl_id} is already cancelled (by {settled.cancelled_by})",
                f"结算 {setl_id} 已撤销（{settled.cancelled_by}）",
            )
        data = settled.request_input.get("data") or {}
        mdtrt_id = str(data.get("mdtrt_id") or "")
        reversal = self.client.cancel_settlement(
            CancelSettlementRequest(setl_id, mdtrt_id, settled.psn_no, settled.insuplc_admdvs)
        )
        cleanup = self._cancel_visit(mdtrt_id)
        if not cleanup.complete:
            raise CancelIncomplete(setl_id, cleanup)
        return Cancellation(setl_id, mdtrt_id, reversal, ("2208", *cleanup.steps))

    def cancel_visit(self, mdtrt_id: str) -> Cleanup:
        """2205 → 2202 for a registered, unsettled visit (after a failed clean-up).

        The recovery that runs first may already have cancelled it: that is reported.
        """
        recovery = self.recover()
        done = next((v for v in recovery.visits if v.mdtrt_id == mdtrt_id and v.complete), None)
        if done is not None:
            return done
        cleanup = self._cancel_visit(mdtrt_id)
        if not cleanup.complete:
            en, zh = cleanup.summary()
            raise InsuranceError(en, zh)
        return cleanup

    def reconcile(self, day: date) -> ReconcileReport:
        """Day-end: recover, then the 3201s (never while a row of the day is unresolved)."""
        recovery = self.recover()
        report = self.client.reconcile(day)
        if recovery.resolutions:
            from dataclasses import replace

            report = replace(report, resolutions=recovery.resolutions + report.resolutions)
        return report

    # -- helpers -----------------------------------------------------------

    def _check_patient(self, psn_no: str, *, settle_again: bool) -> None:
        """Stop before a second settlement of what may be the same service."""
        blockers = self.client.outbox.blockers(psn_no)
        unknown = [r for r in blockers if r.state in OPEN_STATES or r.manual]
        if unknown:
            raise UnresolvedSettlement(unknown)
        if blockers and not settle_again:
            raise RecoveredSettlement(blockers)
        if blockers:
            self.client.outbox.acknowledge_unseen(psn_no)

    def _audit_refusal(self, card: CardIdentity, reasons: tuple[str, ...]) -> None:
        """One masked audit row for a refused person match (regulation Art. 18)."""
        if self.audit is None:
            return
        config = self.client.config
        fields = {
            "terminal_id": f"{config.fixmedins_code}:{config.opter}",
            "scenario": AUDIT_SCENARIO,
            "result": "refused",
            "reasons": reasons,
            "name": card.name,
            "ssn": card.ssn,
            "card_id_code": card.card_id_code,
        }
        if isinstance(self.audit, AuditLog):
            self.audit.record(**fields)  # type: ignore[arg-type]
        else:
            with AuditLog(self.audit) as log:
                log.record(**fields)  # type: ignore[arg-type]

    def _cancel_visit(self, mdtrt_id: str) -> Cleanup:
        reg_row = self._find("2201", lambda r: _reply_data(r).get("mdtrt_id") == mdtrt_id)
        if reg_row is None:
            raise InvalidRequest(
                f"visit {mdtrt_id} is not in this desk's outbox", f"本机交易日志中无就诊 {mdtrt_id}"
            )
        steps: list[str] = []
        data = reg_row.request_input.get("data") or {}
        psn_no, area = reg_row.psn_no, reg_row.insuplc_admdvs
        try:
            self.client.delete_fees(DeleteFeesRequest(mdtrt_id, psn_no, area))
            steps.append("2205")
            otp = str(data.get("ipt_otp_no") or "")
            self.client.cancel_registration(CancelRegistrationRequest(psn_no, mdtrt_id, otp, area))
            steps.append("2202")
        except InsuranceError as exc:
            return Cleanup(mdtrt_id, tuple(steps), exc.message_en, exc.message_zh)
        return Cleanup(mdtrt_id, tuple(steps))

    def _find(self, infno: str, match: Callable[[OutboxRow], bool]) -> OutboxRow | None:
        rows = self.client.outbox.rows(infno=infno, states=(OutboxState.DONE,))
        return next((r for r in reversed(rows) if match(r)), None)

    def _failed_infno(self, exc: InsuranceError) -> str:
        """The transaction that failed, for the message (from the error or its outbox row)."""
        if isinstance(exc, OutcomeUnknown):
            return exc.infno
        msgid = getattr(exc, "msgid", "")
        if msgid:
            try:
                return self.client.outbox.get(msgid).infno
            except InsuranceError:
                pass
        return "visit"

    def _now(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M:%S")

    def _diagnoses(self, visit: VisitPlan, reg: Registration) -> tuple[Diagnosis, ...]:
        if not visit.dise_codg:
            return ()
        return (
            Diagnosis(
                "1", "1", visit.dise_codg, visit.dise_name, visit.dept_name, diag_time=reg.begntime
            ),
        )


def _reply_data(row: OutboxRow) -> Mapping[str, Any]:
    output = (row.response or {}).get("output") or {}
    data = output.get("data") if isinstance(output, dict) else None
    return data if isinstance(data, dict) else {}

"""Client of the national medical security platform's JSON-over-HTTP envelope.

One method per transaction (medical-insurance.md §1.2), each taking a typed
request and returning a typed result, so the front-desk flow is a short
sequence of calls: ``sign_in`` → ``person_info`` (1101) → ``register`` (2201)
→ ``upload_visit`` (2203) → ``upload_fees`` (2204) → ``pre_settle`` (2206) →
``settle`` (2207); cancel: ``cancel_settlement`` (2208) → ``delete_fees``
(2205) → ``cancel_registration`` (2202).

Every request is committed to the :class:`Outbox` before the first byte is
sent. Failure handling follows the sscard profile ("infcode table"):
``infcode != 0`` → :class:`PlatformError`, never retried; no usable reply →
:class:`OutcomeUnknown`; only side-effect-free queries are retried (same msgid,
so the platform's duplicate check makes the retry harmless).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sscard.clock import beijing_now
from sscard.services.insurance.errors import (
    InvalidRequest,
    ManualReconciliationRequired,
    OutcomeUnknown,
    PlatformError,
    PlatformUnreachable,
    SettlementNotMade,
)
from sscard.services.insurance.models import (
    AreaCase,
    CancelRegistrationRequest,
    CancelSettlementRequest,
    DailyTotalsResult,
    DeleteFeesRequest,
    FeeDetailResult,
    FeeUploadRequest,
    FilingCheckRequest,
    FilingStatus,
    PersonInfo,
    PersonInfoRequest,
    RegisterRequest,
    RegisterResult,
    Request,
    ReversalResult,
    SettleConfirmRequest,
    Settlement,
    SettlementQueryRequest,
    SettlementQueryResult,
    SettleRequest,
    SignInRequest,
    SignInResult,
    Totals,
    VisitUploadRequest,
    fee_results,
)
from sscard.services.insurance.money import dumps, loads
from sscard.services.insurance.outbox import Outbox

if TYPE_CHECKING:
    from sscard.services.insurance.reconcile import ReconcileReport, Resolution

T = TypeVar("T")

#: Path of the platform's single service endpoint, as seen in public HIS code.
DEFAULT_PATH = "/fsi/api/rsfComIfsService/callService"


@dataclass(frozen=True)
class ClientConfig:
    """Envelope constants of one institution (medical-insurance.md §1.1).

    ``url`` is the full endpoint (a bare ``http://host:port`` gets
    :data:`DEFAULT_PATH`). ``fund_total_includes_acct`` is the per-province
    reconciliation flag of the profile (default false, Hunan style).
    """

    url: str
    fixmedins_code: str
    fixmedins_name: str
    mdtrtarea_admvs: str
    opter: str = "0001"
    opter_name: str = "front desk"
    opter_type: str = "1"
    recer_sys_code: str = "MBS_LOCAL"
    infver: str = "V1.0"
    dev_no: str = ""
    dev_safe_info: str = ""
    cainfo: str = ""
    signtype: str = ""
    timeout: float = 15.0
    query_attempts: int = 3
    query_backoff: float = 0.2
    fund_total_includes_acct: bool = False

    def __post_init__(self) -> None:
        if len(self.fixmedins_code) != 12:
            raise InvalidRequest("fixmedins_code must be 12 characters", "定点医药机构编号须为12位")
        if len(self.mdtrtarea_admvs) != 6 or not self.mdtrtarea_admvs.isdigit():
            raise InvalidRequest("mdtrtarea_admvs must be 6 digits", "就医地医保区划须为6位数字")
        if self.opter_type not in ("1", "2", "3"):
            raise InvalidRequest("opter_type must be 1, 2 or 3", "经办人类别须为 1、2 或 3")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(
                "platform URL must be http(s)://host[:port]/path", "医保平台地址无效"
            )


class _NotSent(Exception):
    """connect() failed: not one byte of the request left this host."""


class _NoReply(Exception):
    """Sent (at least partly), but no usable reply came back."""


class InsuranceClient:
    """Thread-safe client; one outbox file per institution."""

    def __init__(
        self,
        config: ClientConfig,
        outbox: Outbox | str | Path,
        *,
        clock: Callable[[], datetime] = beijing_now,
        sleep: Callable[[float], None] = time.sleep,
        reversal_backoff: tuple[float, ...] = (2.0, 8.0, 30.0),
        auto_sign_in: bool = True,
    ) -> None:
        """``reversal_backoff``: delays before each 2601 attempt (profile: 2 s, 8 s,
        30 s, i.e. at most 3 attempts); tests inject zeros and a fake ``sleep``.
        ``clock``: Beijing wall-clock time by default (msgid, ``inf_time``, days)."""
        self.config = config
        self.outbox = (
            outbox
            if isinstance(outbox, Outbox)
            else Outbox(outbox, config.fixmedins_code, clock=clock)
        )
        self.clock = clock
        self.sleep = sleep
        self.reversal_backoff = reversal_backoff
        self.auto_sign_in = auto_sign_in
        self.sign_no = ""
        self._sign_lock = threading.Lock()
        parts = urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH

    def close(self) -> None:
        self.outbox.close()

    def __enter__(self) -> InsuranceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------

    def _post(self, payload: bytes) -> dict[str, Any]:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.config.timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise _NotSent(type(exc).__name__) from None
            try:
                conn.request(
                    "POST",
                    self._path,
                    body=payload,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
                resp = conn.getresponse()
                data = resp.read()
            except TimeoutError:
                raise _NoReply(f"timeout after {self.config.timeout:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise _NoReply(type(exc).__name__) from None
        finally:
            conn.close()
        if resp.status != 200:
            raise _NoReply(f"HTTP {resp.status}")
        try:
            reply = loads(data)
            int(reply["infcode"])
        except (ValueError, KeyError, TypeError):
            raise _NoReply("malformed reply") from None
        if not isinstance(reply, dict):
            raise _NoReply("malformed reply")
        return reply

    def _envelope(self, request: Request, msgid: str, now: datetime) -> dict[str, Any]:
        c = self.config
        return {
            "infno": request.infno,
            "msgid": msgid,
            "mdtrtarea_admvs": c.mdtrtarea_admvs,
            "insuplc_admdvs": request.route_admdvs,
            "recer_sys_code": c.recer_sys_code,
            "dev_no": c.dev_no,
            "dev_safe_info": c.dev_safe_info,
            "cainfo": c.cainfo,
            "signtype": c.signtype,
            "infver": c.infver,
            "opter_type": c.opter_type,
            "opter": c.opter,
            "opter_name": c.opter_name,
            "inf_time": now.strftime("%Y-%m-%d %H:%M:%S"),
            "fixmedins_code": c.fixmedins_code,
            "fixmedins_name": c.fixmedins_name,
            "sign_no": self.sign_no,
            "input": request.body(),
        }

    def _call(
        self,
        request: Request,
        parse: Callable[[str, dict[str, Any]], T],
        *,
        ref_msgid: str | None = None,
        unseen: bool = False,
    ) -> T:
        """Journal, send, classify the reply, journal the outcome."""
        if request.person and not request.route_admdvs:
            raise InvalidRequest(
                "insuplc_admdvs is required with psn_no (take it from 1101)",
                "含人员编号的交易须填参保地医保区划（取自1101）",
            )
        msgid, envelope = self._prepare(request, ref_msgid=ref_msgid)
        return self._transmit(msgid, envelope, request.idempotent, parse, unseen=unseen)

    def _prepare(
        self, request: Request, *, ref_msgid: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Check the size, sign in if needed, then commit the request to the outbox
        (before sending; the first attempt is counted in the same commit)."""
        request.check_size()
        if request.infno != "9001" and not self.sign_no and self.auto_sign_in:
            with self._sign_lock:
                if not self.sign_no:
                    self.sign_in()
        return self.outbox.create(
            request.infno,
            lambda m, now: self._envelope(request, m, now),
            psn_no=request.person,
            insuplc_admdvs=request.route_admdvs,
            ref_msgid=ref_msgid,
        )

    def _transmit(
        self,
        msgid: str,
        envelope: dict[str, Any],
        idempotent: bool,
        parse: Callable[[str, dict[str, Any]], T],
        *,
        attempts: int | None = None,
        counted: bool = True,
        unseen: bool = False,
    ) -> T:
        """Send (and for queries retry) a journalled envelope; ``counted``: its first
        attempt was already counted when it was journalled (:meth:`_prepare`);
        ``unseen``: a 2207 is recorded as not yet handed out."""
        infno = str(envelope["infno"])
        payload = dumps(envelope).encode("utf-8")
        tries = attempts or (max(1, self.config.query_attempts) if idempotent else 1)
        for attempt in range(1, tries + 1):
            if attempt > 1 or not counted:
                self.outbox.attempt(msgid)
            try:
                reply = self._post(payload)
            except (_NotSent, _NoReply) as exc:
                if attempt < tries:
                    self.sleep(self.config.query_backoff * attempt)
                    continue
                if isinstance(exc, _NotSent):
                    # Nothing left this time; a resend (not counted) may have gone out before.
                    state = "failed" if counted and tries == 1 else "unknown"
                    if idempotent:
                        state = "failed"
                    self.outbox.finish(msgid, state, error=f"not sent: {exc}")
                    raise PlatformUnreachable(msgid, infno, str(exc)) from None
                # A query without reply changed nothing: failed, not unknown.
                self.outbox.finish(msgid, "failed" if idempotent else "unknown", error=str(exc))
                raise OutcomeUnknown(msgid, infno, str(exc)) from None
            break
        infcode = int(reply["infcode"])
        if infcode != 0:
            self.outbox.finish(msgid, "failed", response=reply)
            raise PlatformError(
                infcode, str(reply.get("err_msg") or ""), str(reply.get("warn_msg") or ""), msgid
            )
        output = reply.get("output") or {}
        try:
            result = parse(msgid, output if isinstance(output, dict) else {})
        except (ValueError, TypeError, KeyError) as exc:
            # infcode 0 but unreadable: the platform may have applied it.
            self.outbox.finish(msgid, "failed" if idempotent else "unknown", response=reply)
            raise OutcomeUnknown(msgid, infno, f"unreadable reply ({exc})") from None
        if infno == "2207" and isinstance(result, Settlement):
            self.outbox.record_settlement(
                msgid,
                result.setlinfo,
                response=reply,
                fund_total_includes_acct=self.config.fund_total_includes_acct,
                unseen=unseen,
            )
        else:
            self.outbox.finish(msgid, "done", response=reply)
        return result

    # -- transactions ------------------------------------------------------

    def sign_in(self, mac: str = "", ip: str = "") -> SignInResult:
        """9001; the ``sign_no`` goes into every later envelope."""
        result = self._call(
            SignInRequest(opter_no=self.config.opter, mac=mac, ip=ip),
            lambda _m, out: _checked(SignInResult.from_output(out), "sign_no"),
        )
        self.sign_no = result.sign_no
        return result

    def person_info(self, request: PersonInfoRequest) -> PersonInfo:
        """1101; ``insuplc_admdvs`` of the result routes everything after it."""
        return self._call(
            request, lambda m, out: _checked(PersonInfo.from_output(out, m), "psn_no")
        )

    def register(self, request: RegisterRequest) -> RegisterResult:
        """2201 outpatient registration; returns the platform's ``mdtrt_id``.

        Cross-province (first 2 digits of ``insuplc_admdvs`` differ from ours) a
        registration with the SSC (``mdtrt_cert_type`` 03) must carry ``card_sn``, the
        card identification code ("跨省异地必传", medical-insurance.md §1.6): refused
        before anything is journalled or sent.
        """
        cross = AreaCase.of(request.insuplc_admdvs, self.config.mdtrtarea_admvs)
        ssc = request.mdtrt_cert_type == "03"
        if cross is AreaCase.CROSS_PROVINCE and ssc and not request.card_sn:
            raise InvalidRequest(
                "cross-province registration (2201) with the SSC needs card_sn",
                "跨省异地社保卡挂号（2201）必须提供 card_sn（卡识别码）",
            )
        return self._call(request, RegisterResult.from_output)

    def cancel_registration(self, request: CancelRegistrationRequest) -> None:
        """2202 (last step of a business cancellation)."""
        self._call(request, lambda _m, _out: None)

    def upload_visit(self, request: VisitUploadRequest) -> None:
        """2203 visit and diagnoses."""
        self._call(request, lambda _m, _out: None)

    def upload_fees(self, request: FeeUploadRequest) -> tuple[FeeDetailResult, ...]:
        """2204 fee details; the platform's per-item classification comes back."""
        return self._call(request, lambda _m, out: fee_results(out))

    def delete_fees(self, request: DeleteFeesRequest) -> None:
        """2205; ``chrg_bchno="0000"`` deletes all unsettled details."""
        self._call(request, lambda _m, _out: None)

    def pre_settle(self, request: SettleRequest) -> Settlement:
        """2206: the split (fund, personal account, cash) to show before confirming."""
        if request.infno != "2206":
            raise InvalidRequest("pre_settle takes a 2206 SettleRequest", "预结算须为2206请求")
        return self._call(request, Settlement.from_output)

    def settle(
        self, request: SettleConfirmRequest, *, resolve_unknown: bool = True, seen: bool = True
    ) -> Settlement:
        """2207. On :class:`OutcomeUnknown` the outcome is resolved at once
        (query by msgid, then 2601 if needed, see reconcile.py); if the platform
        did settle, that settlement is returned as if the reply had arrived.

        ``seen=False``: the caller hands the receipt out later and says so with
        ``outbox.mark_seen(msgid)``; until then the settlement counts as unseen, so
        a desk that dies in between does not settle the same visit again.
        """
        try:
            return self._call(request, _settlement_2207, unseen=not seen)
        except PlatformUnreachable:
            raise
        except OutcomeUnknown as exc:
            if not resolve_unknown or exc.infno != "2207":
                raise  # (e.g. the automatic 9001 before it had no reply)
            from sscard.services.insurance.reconcile import resolve

            resolution = resolve(self, exc.msgid, unseen=not seen)
            if resolution.settlement is not None:
                return resolution.settlement
            if resolution.action in ("reversed", "not_made"):
                raise SettlementNotMade(exc.msgid, resolution.detail) from exc
            raise ManualReconciliationRequired(exc.msgid, "2207", resolution.detail) from exc

    def cancel_settlement(self, request: CancelSettlementRequest) -> Settlement:
        """2208; the journal marks the original 2207 as cancelled."""
        result = self._call(request, Settlement.from_output)
        self.outbox.mark_cancelled(request.setl_id, result.msgid)
        return result

    def query_settlement(
        self, psn_no: str, insuplc_admdvs: str, msgid: str
    ) -> SettlementQueryResult:
        """Profile 5261: what the platform holds for the 2207 with this msgid."""
        request = SettlementQueryRequest(psn_no, msgid, insuplc_admdvs)
        return self._call(request, lambda _m, out: SettlementQueryResult.from_output(out))

    def filing_check(self, request: FilingCheckRequest) -> FilingStatus:
        """Profile 2599: is a cross-province visit filed (备案) in the insured area?"""
        return self._call(
            request, lambda _m, out: FilingStatus(str((out.get("data") or {}).get("filing_stas")))
        )

    def daily_totals(
        self, day: date, local: Totals, insutype: str, clr_type: str, setl_optins: str
    ) -> DailyTotalsResult:
        """3201: our totals of one insurance type, clearing type and clearing
        institution; the platform answers balanced or not (``stmtinfo``)."""
        from sscard.services.insurance.reconcile import daily_totals_request

        request = daily_totals_request(day, local, insutype, clr_type, setl_optins)
        return self._call(request, DailyTotalsResult.from_output)

    def reverse(self, omsgid: str) -> ReversalResult:
        """2601 of a journalled request, one attempt, profile rules enforced."""
        from sscard.services.insurance.reconcile import reverse_once

        return reverse_once(self, omsgid)

    # -- reconciliation (reconcile.py) -------------------------------------

    def resolve(self, msgid: str, *, keep_settled: bool = True) -> Resolution:
        """Find out what happened to an ``unknown`` row and make both sides agree."""
        from sscard.services.insurance.reconcile import resolve

        row = self.outbox.get(msgid)
        return resolve(
            self, msgid, keep_settled=keep_settled, recovered=row.session != self.outbox.session
        )

    def resolve_orphans(
        self, day: date | None = None, *, retry_manual: bool = False
    ) -> list[Resolution]:
        """Resolve what ended processes (crashes) left pending or unknown."""
        from sscard.services.insurance.reconcile import resolve_orphans

        return resolve_orphans(self, day, retry_manual=retry_manual)

    def resolve_unknown(
        self, day: date | None = None, *, include_pending: bool = False
    ) -> list[Resolution]:
        from sscard.services.insurance.reconcile import resolve_unknown

        return resolve_unknown(self, day, include_pending=include_pending)

    def reconcile(self, day: date, *, resolve_first: bool = True) -> ReconcileReport:
        """Day-end: resolve, then one 3201 per group (never with unresolved rows)."""
        from sscard.services.insurance.reconcile import reconcile

        return reconcile(self, day, resolve_first=resolve_first)


def _checked(result: T, name: str) -> T:
    if not getattr(result, name):
        raise ValueError(f"reply without {name}")
    return result


def _settlement_2207(msgid: str, output: dict[str, Any]) -> Settlement:
    """2207 replies must carry setl_id and echo our msgid as medins_setl_id (§1.5)."""
    result = Settlement.from_output(msgid, output)
    if not result.setlinfo.setl_id:
        raise ValueError("2207 reply without setl_id")
    if result.setlinfo.medins_setl_id != msgid:
        raise ValueError("2207 reply for another msgid")
    return result

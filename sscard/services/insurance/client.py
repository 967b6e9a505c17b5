"""Client of the national medical security platform's JSON-over-HTTP envelope.

One method per transaction (§M1.2), each taking a typed
request and returning a typed result, so the front-desk flow is a short
sequence of calls: ``sign_in`` → ``person_info`` (1101) → ``register`` (2201)
→ ``upload_visit`` (2203) → ``upload_fees`` (2204) → ``pre_settle`` (2206) →
``settle`` (2207); cancel: ``cancel_settlement`` (2208) → ``delete_fees``
(2205) → ``cancel_registration`` (2202).

All of them go through :meth:`InsuranceClient.send`, the one way a request
reaches the platform: it commits the request to the :class:`Outbox` before the
first byte is sent, then sends it and reads the reply. Failure handling follows
the sscard profile (docs/reference.md, "infcode table"): ``infcode != 0`` →
:class:`PlatformError`, never retried; no usable reply → :class:`OutcomeUnknown`
(:class:`MalformedReply` when the platform answered with something that is not
an envelope; a reply is read up to :data:`MAX_REPLY_BYTES`). Whether a request
is retried is decided by one attribute, :attr:`Request.side_effects`: only
requests without side effects are (same msgid, so the platform's duplicate
check, §M1.5, makes the retry harmless).

After an unknown outcome the client's :class:`Reconciler` (reconcile.py) makes
both sides agree; it uses only this public API (``send``, ``resend``,
``outbox``), and ``settle``, ``reverse``, ``resolve*`` and ``reconcile`` here
are shortcuts to it.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sscard.clock import beijing_now
from sscard.services.insurance.errors import (
    InvalidRequest,
    MalformedReply,
    ManualReconciliationRequired,
    OutboxError,
    OutcomeUnknown,
    PlatformError,
    PlatformUnreachable,
    SettlementNotMade,
)
from sscard.services.insurance.models import (
    AreaCase,
    CancelRegistrationRequest,
    CancelSettlementRequest,
    DailyTotalsRequest,
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
    side_effect_free,
)
from sscard.services.insurance.money import dumps, loads
from sscard.services.insurance.outbox import Outbox, OutboxState, has_personal
from sscard.services.insurance.reconcile import Reconciler, ReconcileReport, Resolution

T = TypeVar("T")

#: Path of the platform's single service endpoint, as seen in public HIS code.
DEFAULT_PATH = "/fsi/api/rsfComIfsService/callService"
#: The largest reply read (1 MiB). The biggest real answers (a 2204 ``result[]`` of a
#: 40,000-character upload, a 1101 with many insurances) are tens of kilobytes; a
#: platform or proxy that sends more is broken, and reading it all would let it
#: exhaust the desk's memory.
MAX_REPLY_BYTES = 1 << 20


@dataclass(frozen=True)
class ClientConfig:
    """Envelope constants of one institution (§M1.1).

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


class _Malformed(_NoReply):
    """A reply came back, but it is not an envelope (see :func:`parse_reply`)."""


_INFCODE = re.compile(r"\s*-?[0-9]{1,18}\s*")


def _infcode(value: object) -> int:
    """``infcode`` as the platform sends it (a number, in some HIS code a string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INFCODE.fullmatch(value):
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise _Malformed("malformed reply (infcode not an integer)")


def parse_reply(data: bytes) -> tuple[int, dict[str, Any]]:
    """``(infcode, envelope)`` of a reply body, bounded and typed.

    At most :data:`MAX_REPLY_BYTES`; UTF-8 JSON whose top level is an object with
    an integer ``infcode`` (§M1.1). Anything else raises
    ``_Malformed``, which :meth:`InsuranceClient.send` turns into
    :class:`MalformedReply` (never a KeyError or TypeError, nor a RecursionError
    for a deeply nested body).
    """
    if len(data) > MAX_REPLY_BYTES:
        raise _Malformed(f"reply over {MAX_REPLY_BYTES:,} bytes")
    try:
        reply = loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise _Malformed("malformed reply (not JSON)") from None
    if not isinstance(reply, dict):
        raise _Malformed("malformed reply (not a JSON object)")
    if reply.get("infcode") is None:
        raise _Malformed("malformed reply (no infcode)")
    return _infcode(reply["infcode"]), reply


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
        #: Settles unknown outcomes and runs the day-end check with this client.
        self.reconciler = Reconciler(self)

    def close(self) -> None:
        self.outbox.close()

    def __enter__(self) -> InsuranceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -------------------------------------------------------------

    def send(
        self,
        request: Request[T],
        *,
        ref_msgid: str | None = None,
        attempts: int | None = None,
        unseen: bool = False,
    ) -> T:
        """Journal ``request``, send it and return its typed result.

        The request is committed to the outbox (as ``pending``, its first attempt
        counted in the same commit) before one byte is sent, signing in first if
        needed. The retry policy follows :attr:`Request.side_effects` alone:

        * without side effects: up to ``config.query_attempts`` attempts (backoff
          ``query_backoff`` × attempt) under the same msgid; still no usable reply
          → row ``failed`` (nothing to reconcile) and :class:`OutcomeUnknown`;
        * with side effects: one attempt; no usable reply → row ``unknown`` and
          :class:`OutcomeUnknown`, for the :class:`Reconciler` (query, 2601 or a
          resend under the same msgid).

        ``attempts`` overrides the count. ``infcode != 0`` → row ``failed`` and
        :class:`PlatformError`, never retried. connect() failing on the last
        attempt → :class:`PlatformUnreachable` (row ``failed``: nothing left this
        host). A reply that is not an envelope → :class:`MalformedReply`; an
        ``infcode`` 0 reply whose ``output`` :meth:`Request.result` cannot read →
        :class:`OutcomeUnknown` (the platform may have applied it).
        ``ref_msgid``: the journalled request this one refers to (a 2601's
        original). ``unseen``: a 2207 is recorded as not yet handed out.
        """
        if request.person and not request.route_admdvs:
            raise InvalidRequest(
                "insuplc_admdvs is required with psn_no (take it from 1101)",
                "含人员编号的交易须填参保地医保区划（取自1101）",
            )
        request.check_size()
        if request.infno != "9001" and not self.sign_no and self.auto_sign_in:
            with self._sign_lock:
                if not self.sign_no:
                    self.sign_in()
        msgid, envelope = self.outbox.create(
            request.infno,
            lambda m, now: self._envelope(request, m, now),
            psn_no=request.person,
            insuplc_admdvs=request.route_admdvs,
            ref_msgid=ref_msgid,
        )
        return self._exchange(
            msgid,
            envelope,
            side_effects=request.side_effects,
            parse=request.result,
            attempts=attempts,
            counted=True,
            unseen=unseen,
        )

    def resend(self, msgid: str, *, attempts: int | None = None) -> dict[str, Any]:
        """Send a journalled request again, byte-exact from the outbox and under its
        own msgid, to learn what became of it; returns the reply's ``output``.

        The platform answers a msgid it already has with its first reply (§M1.5), so
        a resend cannot apply a request twice: this is how the :class:`Reconciler`
        repeats a 2601 and finds out what became of a 2202-2205 or 2208 whose reply
        was lost. Up to ``attempts`` tries (default ``config.query_attempts``), each
        counted; the row ends as :meth:`send` would leave it (its side effects
        looked up by infno, :func:`side_effect_free`), except that a connect()
        failure leaves a request with side effects ``unknown``: an earlier copy may
        have arrived. A row stored masked (it carries personal data,
        :func:`~sscard.services.insurance.outbox.has_personal`) is refused with
        :class:`OutboxError`: it cannot be sent byte-exact.
        """
        row = self.outbox.get(msgid)
        if has_personal(row.request):
            raise OutboxError(
                f"{row.infno} {msgid} cannot be resent (stored masked)",
                f"交易 {row.infno}（报文 {msgid}）含个人信息，已脱敏保存，不能重发",
            )

        def output(_msgid: str, out: dict[str, Any]) -> dict[str, Any]:
            return out

        return self._exchange(
            msgid,
            row.request,
            side_effects=not side_effect_free(row.infno),
            parse=output,
            attempts=attempts or max(1, self.config.query_attempts),
            counted=False,
        )

    # -- transport ---------------------------------------------------------

    def _post(self, payload: bytes) -> tuple[int, dict[str, Any]]:
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
                try:  # the response may own the socket (HTTP/1.0): close it too
                    if resp.status != 200:
                        raise _NoReply(f"HTTP {resp.status}")  # the body is not read
                    declared = resp.length  # None when chunked or delimited by close
                    if declared is not None and declared > MAX_REPLY_BYTES:
                        raise _Malformed(f"reply over {MAX_REPLY_BYTES:,} bytes")
                    data = resp.read(MAX_REPLY_BYTES + 1)
                finally:
                    resp.close()
            except TimeoutError:
                raise _NoReply(f"timeout after {self.config.timeout:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise _NoReply(type(exc).__name__) from None
        finally:
            conn.close()
        return parse_reply(data)

    def _envelope(self, request: Request[Any], msgid: str, now: datetime) -> dict[str, Any]:
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

    def _exchange(
        self,
        msgid: str,
        envelope: dict[str, Any],
        *,
        side_effects: bool,
        parse: Callable[[str, dict[str, Any]], T],
        attempts: int | None,
        counted: bool,
        unseen: bool = False,
    ) -> T:
        """Send a journalled envelope (retried only without side effects), classify
        the reply, journal the outcome. ``counted``: the first attempt was counted
        when the row was written (:meth:`send`); a :meth:`resend` counts each."""
        infno = str(envelope["infno"])
        payload = dumps(envelope).encode("utf-8")
        tries = attempts or (1 if side_effects else max(1, self.config.query_attempts))
        for attempt in range(1, tries + 1):
            if attempt > 1 or not counted:
                self.outbox.attempt(msgid)
            try:
                infcode, reply = self._post(payload)
            except (_NotSent, _NoReply) as exc:
                if attempt < tries:
                    self.sleep(self.config.query_backoff * attempt)
                    continue
                if isinstance(exc, _NotSent):
                    # Nothing left this time; a resend (not counted) may have gone out before.
                    sent_before = not (counted and tries == 1)
                    state = (
                        OutboxState.UNKNOWN if side_effects and sent_before else OutboxState.FAILED
                    )
                    self.outbox.finish(msgid, state, error=f"not sent: {exc}")
                    raise PlatformUnreachable(msgid, infno, str(exc)) from None
                # A request without side effects and without a reply changed nothing.
                state = OutboxState.UNKNOWN if side_effects else OutboxState.FAILED
                self.outbox.finish(msgid, state, error=str(exc))
                error = MalformedReply if isinstance(exc, _Malformed) else OutcomeUnknown
                raise error(msgid, infno, str(exc)) from None
            break
        if infcode != 0:
            self.outbox.finish(msgid, OutboxState.FAILED, response=reply)
            raise PlatformError(
                infcode, str(reply.get("err_msg") or ""), str(reply.get("warn_msg") or ""), msgid
            )
        output = reply.get("output") or {}
        try:
            result = parse(msgid, output if isinstance(output, dict) else {})
        except (ValueError, TypeError, KeyError) as exc:
            # infcode 0 but unreadable: the platform may have applied it.
            state = OutboxState.UNKNOWN if side_effects else OutboxState.FAILED
            self.outbox.finish(msgid, state, response=reply)
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
            self.outbox.finish(msgid, OutboxState.DONE, response=reply)
        return result

    # -- transactions ------------------------------------------------------

    def sign_in(self, mac: str = "", ip: str = "") -> SignInResult:
        """9001; the ``sign_no`` goes into every later envelope."""
        result = self.send(SignInRequest(opter_no=self.config.opter, mac=mac, ip=ip))
        self.sign_no = result.sign_no
        return result

    def person_info(self, request: PersonInfoRequest) -> PersonInfo:
        """1101; ``insuplc_admdvs`` of the result routes everything after it."""
        return self.send(request)

    def register(self, request: RegisterRequest) -> RegisterResult:
        """2201 outpatient registration; returns the platform's ``mdtrt_id``.

        Cross-province (first 2 digits of ``insuplc_admdvs`` differ from ours) a
        registration with the SSC (``mdtrt_cert_type`` 03) must carry ``card_sn``, the
        card identification code ("跨省异地必传", §M1.6): refused
        before anything is journalled or sent.
        """
        cross = AreaCase.of(request.insuplc_admdvs, self.config.mdtrtarea_admvs)
        ssc = request.mdtrt_cert_type == "03"
        if cross is AreaCase.CROSS_PROVINCE and ssc and not request.card_sn:
            raise InvalidRequest(
                "cross-province registration (2201) with the SSC needs card_sn",
                "跨省异地社保卡挂号（2201）必须提供 card_sn（卡识别码）",
            )
        return self.send(request)

    def cancel_registration(self, request: CancelRegistrationRequest) -> None:
        """2202 (last step of a business cancellation)."""
        self.send(request)

    def upload_visit(self, request: VisitUploadRequest) -> None:
        """2203 visit and diagnoses."""
        self.send(request)

    def upload_fees(self, request: FeeUploadRequest) -> tuple[FeeDetailResult, ...]:
        """2204 fee details; the platform's per-item classification comes back."""
        return self.send(request)

    def delete_fees(self, request: DeleteFeesRequest) -> None:
        """2205; ``chrg_bchno="0000"`` deletes all unsettled details."""
        self.send(request)

    def pre_settle(self, request: SettleRequest) -> Settlement:
        """2206: the split (fund, personal account, cash) to show before confirming."""
        if request.infno != "2206":
            raise InvalidRequest("pre_settle takes a 2206 SettleRequest", "预结算须为2206请求")
        return self.send(request)

    def settle(
        self, request: SettleConfirmRequest, *, resolve_unknown: bool = True, seen: bool = True
    ) -> Settlement:
        """2207. On :class:`OutcomeUnknown` the outcome is resolved at once by the
        :class:`Reconciler` (query by msgid, then 2601 if needed); if the platform
        did settle, that settlement is returned as if the reply had arrived.

        ``seen=False``: the caller hands the receipt out later and says so with
        ``outbox.mark_seen(msgid)``; until then the settlement counts as unseen, so
        a desk that dies in between does not settle the same visit again.
        """
        try:
            return self.send(request, unseen=not seen)
        except PlatformUnreachable:
            raise
        except OutcomeUnknown as exc:
            if not resolve_unknown or exc.infno != "2207":
                raise  # (e.g. the automatic 9001 before it had no reply)
            resolution = self.reconciler.resolve(exc.msgid, unseen=not seen)
            if resolution.settlement is not None:
                return resolution.settlement
            if resolution.action in ("reversed", "not_made"):
                raise SettlementNotMade(exc.msgid, resolution.detail) from exc
            raise ManualReconciliationRequired(exc.msgid, "2207", resolution.detail) from exc

    def cancel_settlement(self, request: CancelSettlementRequest) -> Settlement:
        """2208; the journal marks the original 2207 as cancelled."""
        result = self.send(request)
        self.outbox.mark_cancelled(request.setl_id, result.msgid)
        return result

    def query_settlement(
        self, psn_no: str, insuplc_admdvs: str, msgid: str
    ) -> SettlementQueryResult:
        """Profile 5261: what the platform holds for the 2207 with this msgid."""
        return self.send(SettlementQueryRequest(psn_no, msgid, insuplc_admdvs))

    def filing_check(self, request: FilingCheckRequest) -> FilingStatus:
        """Profile 2599: is a cross-province visit filed (备案) in the insured area?"""
        return self.send(request)

    def daily_totals(
        self, day: date, local: Totals, insutype: str, clr_type: str, setl_optins: str
    ) -> DailyTotalsResult:
        """3201: our totals of one insurance type, clearing type and clearing
        institution; the platform answers balanced or not (``stmtinfo``)."""
        return self.send(DailyTotalsRequest(day, local, insutype, clr_type, setl_optins))

    # -- reconciliation: shortcuts to self.reconciler (reconcile.py) ----------

    def reverse(self, omsgid: str) -> ReversalResult:
        """2601 of a journalled request, one attempt, profile rules enforced."""
        return self.reconciler.reverse(omsgid)

    def resolve(self, msgid: str, *, keep_settled: bool = True) -> Resolution:
        """Find out what happened to an ``unknown`` row and make both sides agree."""
        row = self.outbox.get(msgid)
        return self.reconciler.resolve(
            msgid, keep_settled=keep_settled, recovered=row.session != self.outbox.session
        )

    def resolve_orphans(
        self, day: date | None = None, *, retry_manual: bool = False
    ) -> list[Resolution]:
        """Resolve what ended processes (crashes) left pending or unknown."""
        return self.reconciler.resolve_orphans(day, retry_manual=retry_manual)

    def resolve_unknown(
        self, day: date | None = None, *, include_pending: bool = False
    ) -> list[Resolution]:
        """Resolve this outbox's ``unknown`` rows (see :meth:`Reconciler.resolve_unknown`)."""
        return self.reconciler.resolve_unknown(day, include_pending=include_pending)

    def reconcile(self, day: date, *, resolve_first: bool = True) -> ReconcileReport:
        """Day-end: resolve, then one 3201 per group (never with unresolved rows)."""
        return self.reconciler.reconcile(day, resolve_first=resolve_first)

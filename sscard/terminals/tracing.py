"""Structured APDU traces (JSON lines) with redaction on by default.

Why JSON lines: one exchange per line is greppable, streams to disk as the
session runs, and is exactly what ``ReplayTransport`` re-runs (cardpeek's
replay driver).

Line kinds (``dir``):
- ``S`` session: reader, ATR, protocol, ``redacted`` (is redaction on), version;
- ``C`` command: ``hex`` (header only when redacted), ``name``, ``lc``/``le``;
- ``R`` response: ``hex`` (SW only when redacted), ``sw``, ``status``, ``duration_us``;
- ``E`` the transport raised: ``error`` (type name), ``message``.
A redacted line has ``"redacted": N`` = number of data bytes left out.

Redaction rule (keys, PINs and personal data never leave the process unredacted;
the table is the ``redact`` column of :mod:`sscard.apdu.catalog`):
- both directions of PIN commands: VERIFY 20, CHANGE REFERENCE DATA/UNBLOCK 24,
  RESET RETRY COUNTER 2C, CHANGE/RELOAD PIN 8x5E, PKI VERIFY PIN 80C4 (its answer
  is the PIN hash) (reference §C2);
- both directions of authentication and MAC exchanges: EXTERNAL/INTERNAL
  AUTHENTICATE 82/88, purse/PSAM 8x50/52/54/5A/70/72 (reference part P), key
  loading 8x D4/4A/C2/1A/FA;
- data written to files: UPDATE BINARY/RECORD, APPEND RECORD;
- answers of READ RECORD / READ BINARY (EF06 holds name and SSN, §C1.5): redacted
  unless the caller says the exchange is not sensitive (``sensitive=False``).
``sensitive=True`` redacts both directions of any command; ``redact=False``
(``--no-redact``) turns all of it off.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sscard.apdu import ApduFormatError, Command, Response
from sscard.apdu.catalog import Redact, spec_for
from sscard.files import MAX_TRACE_BYTES, open_private, parse_json, read_text
from sscard.terminals.errors import TraceFormatError, TraceWriteError

TRACE_VERSION = 1


@dataclass(frozen=True)
class Redaction:
    """What to leave out of one exchange (and of its GET RESPONSE follow-ups)."""

    command: bool = False
    response: bool = False

    @classmethod
    def for_command(cls, apdu: bytes, sensitive: bool | None = None) -> Redaction:
        if sensitive is not None:
            return cls(sensitive, sensitive)
        if len(apdu) < 2:
            return cls()
        spec = spec_for(apdu[0], apdu[1])  # the redaction column of sscard.apdu.catalog
        if spec is None or spec.redact is Redact.NONE:
            return cls()
        if spec.redact is Redact.ANSWER:
            return cls(False, True)
        return cls(True, True)  # PIN commands too: a buggy card must not leak one


NONE = Redaction()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _command_name(apdu: bytes) -> str:
    try:
        return Command.parse(apdu).name
    except ApduFormatError:
        return "malformed"


def command_record(apdu: bytes, redact: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"time": _now(), "dir": "C", "name": _command_name(apdu)}
    if not redact:
        record["hex"] = apdu.hex().upper()
        return record
    try:
        cmd = Command.parse(apdu)
    except ApduFormatError:
        record.update(hex=apdu[:4].hex().upper(), redacted=max(0, len(apdu) - 4))
        return record
    record.update(hex=cmd.header().hex().upper(), lc=len(cmd.data), le=cmd.le)
    record["redacted"] = len(cmd.data)
    return record


def response_record(response: bytes, duration_us: int, redact: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"time": _now(), "dir": "R"}
    if len(response) >= 2:
        parsed = Response.parse(response)
        record.update(sw=f"{parsed.sw:04X}", status=parsed.text)
    else:
        record.update(sw=None, status="malformed response (less than 2 bytes)")
    if redact and len(response) > 2:
        record.update(hex=response[-2:].hex().upper(), redacted=len(response) - 2)
    else:
        record["hex"] = response.hex().upper()
    record["duration_us"] = duration_us
    return record


class Tracer:
    """Writes one JSON line per command, response, error and session start.

    ``sink``: a path (opened for append), an open text stream, or None to keep
    the records in memory only (``records``).
    """

    def __init__(self, sink: str | Path | IO[str] | None = None, *, redact: bool = True) -> None:
        self.redact = redact
        self.records: list[dict[str, Any]] = []
        self._own = isinstance(sink, str | Path)
        self._stream: IO[str] | None
        if isinstance(sink, str | Path):
            try:
                self._stream = open_private(sink, "a")  # 0600: a --no-redact trace holds everything
            except OSError as exc:
                name = Path(sink).name
                raise TraceWriteError(
                    f"cannot write trace file {name}: {exc.strerror}",
                    f"无法写入跟踪文件 {name}：{exc.strerror}",
                ) from None
        else:
            self._stream = sink

    def _write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self._stream is not None:
            self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._stream.flush()

    def session(self, reader: str, atr: bytes, protocol: str | None) -> None:
        self._write(
            {
                "time": _now(),
                "dir": "S",
                "version": TRACE_VERSION,
                "reader": reader,
                "atr": atr.hex().upper(),
                "protocol": protocol,
                "redacted": self.redact,
            }
        )

    def command(self, apdu: bytes, redaction: Redaction = NONE) -> None:
        self._write(command_record(apdu, self.redact and redaction.command))

    def response(self, response: bytes, duration_us: int, redaction: Redaction = NONE) -> None:
        self._write(response_record(response, duration_us, self.redact and redaction.response))

    def error(self, exc: BaseException, duration_us: int) -> None:
        self._write(
            {
                "time": _now(),
                "dir": "E",
                "error": type(exc).__name__,
                "message": str(exc),
                "duration_us": duration_us,
            }
        )

    def close(self) -> None:
        if self._own and self._stream is not None:
            self._stream.close()
        self._stream = None

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The type every field of a record must have (``None`` allowed for all). A trace is
#: user input: a dict where a string belongs must be one error line, not a traceback.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "dir": (str,),
    "time": (str,),
    "name": (str,),
    "hex": (str,),
    "sw": (str,),
    "status": (str,),
    "reader": (str,),
    "atr": (str,),
    "protocol": (str,),
    "error": (str,),
    "message": (str,),
    "lc": (int,),
    "le": (int,),
    "duration_us": (int, float),
    "redacted": (int, bool),
    "version": (int,),
}


def _check_record(record: Any, number: int) -> dict[str, Any]:
    if not isinstance(record, dict) or record.get("dir") not in ("S", "C", "R", "E"):
        raise TraceFormatError(
            f"line {number} is not a trace record", f"第 {number} 行不是跟踪记录"
        )
    for key, value in record.items():
        types = _FIELD_TYPES.get(key, (str, int, float, bool))
        if value is not None and not isinstance(value, types):
            shown = key if len(key) <= 24 else key[:24] + "…"
            raise TraceFormatError(
                f"line {number}: field {shown!r} has the wrong type",
                f"第 {number} 行：字段 {shown!r} 类型错误",
            )
    return record


def read_trace(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a trace file; TraceFormatError (with the line number) on bad lines.

    The file is read through the bounded reader (regular file, at most
    ``MAX_TRACE_BYTES``); every field must have its type (:data:`_FIELD_TYPES`).
    """
    try:
        lines = read_text(path, max_bytes=MAX_TRACE_BYTES).splitlines()
    except OSError as exc:
        raise TraceFormatError(
            f"cannot read trace file: {exc.strerror}", f"无法读取跟踪文件：{exc.strerror}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise TraceFormatError(
            f"trace file is not UTF-8 text (byte {exc.start})",
            f"跟踪文件不是 UTF-8 文本（第 {exc.start} 字节）",
        ) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except json.JSONDecodeError as exc:
            raise TraceFormatError(
                f"line {number} is not JSON", f"第 {number} 行不是 JSON"
            ) from exc
        yield _check_record(record, number)


def redact_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply the redaction rule to a trace recorded with ``--no-redact``, for display.

    ``sscard trace show`` shows what a default trace would hold unless it is itself
    run with ``--no-redact``: one masking policy for every output path.
    A response is judged by the command before it, as when recording.
    """
    out: list[dict[str, Any]] = []
    redaction = NONE
    for record in records:
        kind, raw = record.get("dir"), record.get("hex")
        if kind == "C":
            redaction = NONE
            if not record.get("redacted") and "lc" not in record and isinstance(raw, str):
                try:
                    apdu = bytes.fromhex(raw)
                except ValueError:
                    apdu = b""
                redaction = Redaction.for_command(apdu)
                if redaction.command:
                    masked = command_record(apdu, True)
                    record = {**record, **{k: masked[k] for k in masked if k != "time"}}
        elif kind == "R" and redaction.response and isinstance(raw, str) and len(raw) > 4:
            record = {**record, "hex": raw[-4:], "redacted": (len(raw) - 4) // 2}
        elif kind == "S":
            redaction = NONE
        out.append(record)
    return out


def format_record(record: dict[str, Any]) -> str:
    """One human line per record, for ``sscard trace show``."""
    kind = record.get("dir")
    time = str(record.get("time", ""))[11:26]
    hidden = f" <{record['redacted']} bytes redacted>" if record.get("redacted") else ""
    if kind == "S":
        return (
            f"{time} == session {record.get('reader')} ATR {record.get('atr')} "
            f"{record.get('protocol')} (redaction {'on' if record.get('redacted') else 'off'})"
        )
    if kind == "C":
        return f"{time} >> {record.get('name', '?'):<24} {record.get('hex', '')}{hidden}"
    if kind == "R":
        return (
            f"{time} << {record.get('status', '')} [{record.get('duration_us', '?')} µs] "
            f"{record.get('hex', '')}{hidden}"
        )
    return f"{time} !! {record.get('error')}: {record.get('message')}"

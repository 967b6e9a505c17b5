"""Re-run a saved trace without hardware (cardpeek's replay driver, lessons pattern 6).

The trace is the JSON-lines file ``Tracer`` writes. Each command sent must
match the next recorded command; any difference raises ``ReplayMismatch`` at
once (a test that silently diverged would prove nothing). A recorded error
(``E`` line, e.g. CardRemoved) is raised again. Redacted commands match on
header and lengths only; a redacted *response* cannot be replayed, so record
with ``--no-redact`` (``TraceFormatError`` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sscard.apdu import ApduFormatError, Command
from sscard.terminals import errors as terminal_errors
from sscard.terminals.base import ProtocolName, Transport
from sscard.terminals.errors import (
    NotConnected,
    ReplayMismatch,
    TerminalError,
    TraceFormatError,
)
from sscard.terminals.tracing import read_trace


class ReplayTransport(Transport):
    """A transport whose card is a recording."""

    def __init__(self, trace: str | Path | Sequence[dict[str, Any]]) -> None:
        super().__init__()
        records = list(read_trace(trace) if isinstance(trace, str | Path) else trace)
        session = next((r for r in records if r.get("dir") == "S"), {})
        self.name = f"replay:{session.get('reader', 'trace')}"
        self._recorded_atr = bytes.fromhex(str(session.get("atr") or ""))
        proto = session.get("protocol")
        self._recorded_protocol: ProtocolName | None = proto if proto in ("T=0", "T=1") else None
        self._exchanges = self._pair(records)
        self._position = 0
        self._connected = False

    @staticmethod
    def _pair(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        pending: dict[str, Any] | None = None
        for number, record in enumerate(records, 1):
            kind = record.get("dir")
            if kind == "C":
                if pending is not None:
                    raise TraceFormatError(
                        f"record {number}: command without a response",
                        f"第 {number} 条记录：命令缺少响应",
                    )
                pending = record
            elif kind in ("R", "E"):
                if pending is None:
                    raise TraceFormatError(
                        f"record {number}: response without a command",
                        f"第 {number} 条记录：响应缺少命令",
                    )
                pairs.append((pending, record))
                pending = None
        return pairs

    @property
    def atr(self) -> bytes:
        return self._recorded_atr if self._connected else b""

    @property
    def protocol(self) -> ProtocolName | None:
        return self._recorded_protocol if self._connected else None

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def remaining(self) -> int:
        return len(self._exchanges) - self._position

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def reconnect(self, reset: bool = False) -> None:
        self._connected = True

    def assert_complete(self) -> None:
        """ReplayMismatch when recorded exchanges were never replayed."""
        if self.remaining:
            raise ReplayMismatch(
                f"{self.remaining} recorded exchanges were not replayed",
                f"尚有 {self.remaining} 条记录的交互未重放",
            )

    def transmit(self, apdu: bytes) -> bytes:
        if not self._connected:
            raise NotConnected()
        index = self._position
        if index >= len(self._exchanges):
            raise ReplayMismatch(
                f"exchange #{index + 1} was not recorded (the trace has {index})",
                f"第 {index + 1} 次交互未被记录（跟踪仅有 {index} 次）",
            )
        command, answer = self._exchanges[index]
        if not _matches(command, apdu):
            raise ReplayMismatch(
                f"exchange #{index + 1}: expected {command.get('name')} "
                f"{str(command.get('hex', ''))[:8]}, got {_describe(apdu)}",
                f"第 {index + 1} 次交互：应为 {command.get('name')}，实际为 {_describe(apdu)}",
            )
        self._position += 1
        if answer.get("dir") == "E":
            raise _recorded_error(answer)
        if answer.get("redacted"):
            raise TraceFormatError(
                f"exchange #{index + 1}: the response was redacted; record with --no-redact",
                f"第 {index + 1} 次交互的响应已脱敏；请用 --no-redact 录制",
            )
        try:
            return bytes.fromhex(str(answer.get("hex", "")))
        except ValueError as exc:
            raise TraceFormatError(
                f"exchange #{index + 1}: response is not hex",
                f"第 {index + 1} 次交互响应非十六进制",
            ) from exc


def _describe(apdu: bytes) -> str:
    try:
        return f"{Command.parse(apdu).name} {apdu[:4].hex().upper()}"
    except ApduFormatError:
        return apdu[:4].hex().upper()


def _matches(record: dict[str, Any], apdu: bytes) -> bool:
    if not record.get("redacted") and "lc" not in record:
        return str(record.get("hex", "")).upper() == apdu.hex().upper()
    try:
        cmd = Command.parse(apdu)
    except ApduFormatError:
        return False
    return (
        str(record.get("hex", "")).upper() == cmd.header().hex().upper()
        and record.get("lc") == len(cmd.data)
        and record.get("le") == cmd.le
    )


def _recorded_error(answer: dict[str, Any]) -> TerminalError:
    kind = getattr(terminal_errors, str(answer.get("error")), None)
    if isinstance(kind, type) and issubclass(kind, TerminalError):
        try:
            return kind()
        except TypeError:
            pass
    return TerminalError(
        f"recorded error {answer.get('error')}", f"记录中的错误 {answer.get('error')}"
    )

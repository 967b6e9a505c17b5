"""``Connection``: Command in, Response out, over any ``Transport``.

Why one class: pyscard leaves T=0 ``61xx``/``6Cxx`` to each application, and
pySim's ``LinkBase.send_apdu`` follows ``61xx`` without a bound and re-sends *any*
command on ``6Cxx`` (OpenSC #1731 is an endless ``6100`` loop). Here it is done once,
for every backend, below the applications (the transports of
:mod:`sscard.terminals.base` only move bytes):

- ``61xx``: GET RESPONSE (``00 C0 00 00 xx``, xx = 00 means 256) until the card
  stops saying 61, at most ``max_get_response`` rounds, then ``GetResponseLoop``;
- ``6Cxx``: the same command once more with Le = xx, **only** when
  :func:`sscard.apdu.repeat.safe_to_repeat` says a repeat changes nothing (reads,
  SELECT, GET BALANCE, 805A ...). A command with side effects (8054 debit, 8052
  load, updates, PIN changes, PSAM 8070 ...) is never sent twice by this class, on
  6Cxx or on anything else: it raises :class:`CommandOutcomeUnknown` and the
  application recovers (a card may commit before it checks Le);
- ``strict=True`` turns both off (to test a card's raw behaviour);
- an extended-length command on a transport that cannot carry it (T=0, or a
  reader without extended APDUs) is sent with command chaining (CLA bit
  ``10``, ISO 7816-4 §5.3.3) in 255-byte pieces, with a short Le and 61xx to
  fetch long answers;
- a response shorter than 2 bytes raises ``ApduFormatError``.

Every raw exchange goes to the ``Tracer`` (if any) with the redaction decided
from the *original* command, so a GET RESPONSE carrying EF06 data is redacted too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from sscard.apdu import Command, Response
from sscard.apdu.repeat import safe_to_repeat
from sscard.terminals.base import ProtocolName, Transport
from sscard.terminals.errors import CommandOutcomeUnknown, GetResponseLoop
from sscard.terminals.tracing import NONE, Redaction, Tracer

MAX_GET_RESPONSE = 64
CHAIN_BLOCK = 255
CLA_CHAINING = 0x10


class Connection:
    """A session with one card; thread-safe only inside ``transaction()``."""

    def __init__(
        self,
        transport: Transport,
        *,
        strict: bool = False,
        tracer: Tracer | None = None,
        max_get_response: int = MAX_GET_RESPONSE,
    ) -> None:
        self.transport = transport
        self.strict = strict
        self.tracer = tracer
        self.max_get_response = max_get_response

    # -- session --------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.transport.atr

    @property
    def protocol(self) -> ProtocolName | None:
        return self.transport.protocol

    @property
    def reader(self) -> str:
        return self.transport.name

    def connect(self) -> Connection:
        self.transport.connect()
        self._trace_session()
        return self

    def reconnect(self, reset: bool = False) -> None:
        self.transport.reconnect(reset)
        self._trace_session()

    def disconnect(self) -> None:
        self.transport.disconnect()

    def close(self) -> None:
        self.transport.disconnect()
        if self.tracer is not None:
            self.tracer.close()

    def _trace_session(self) -> None:
        if self.tracer is not None:
            self.tracer.session(self.transport.name, self.atr, self.protocol)

    def __enter__(self) -> Connection:
        if not self.transport.connected:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Several APDUs no other application may interleave with (PC/SC transaction)."""
        with self.transport.transaction():
            yield self

    # -- exchanges ------------------------------------------------------------------

    def send(self, command: Command, *, sensitive: bool | None = None) -> Response:
        """``transmit`` then ``check``: the typed status-word error unless 9000."""
        return self.transmit(command, sensitive=sensitive).check(command.ins)

    def transmit(self, command: Command, *, sensitive: bool | None = None) -> Response:
        """Send a command, following 61xx/6Cxx unless strict; returns the final Response.

        ``sensitive``: True redacts both directions in the trace, False marks the
        exchange public (e.g. READ RECORD of EF05), None applies the default rule.
        """
        if command.is_extended and not self.transport.supports_extended:
            return self._chained(command, self._redaction(command, sensitive))
        if self.tracer is None:  # hot path: one exchange, no follow-up (most APDUs)
            response = Response.parse(self.transport.transmit(bytes(command)))
            sw1 = response.sw >> 8
            if self.strict or (sw1 != 0x61 and sw1 != 0x6C):
                return response
            return self._follow(command, NONE, response)
        return self._follow(command, self._redaction(command, sensitive))

    def _redaction(self, command: Command, sensitive: bool | None) -> Redaction:
        if self.tracer is None:
            return NONE
        return Redaction.for_command(bytes(command), sensitive)

    def _chained(self, command: Command, redaction: Redaction) -> Response:
        data = command.data
        blocks = [data[i : i + CHAIN_BLOCK] for i in range(0, len(data), CHAIN_BLOCK)] or [b""]
        for block in blocks[:-1]:
            part = Command(command.cla | CLA_CHAINING, command.ins, command.p1, command.p2, block)
            response = self._raw(part, redaction)
            if response.sw != 0x9000:
                return response
        le = None if command.le is None else min(command.le, 256)
        last = Command(command.cla, command.ins, command.p1, command.p2, blocks[-1], le=le)
        return self._follow(last, redaction)

    def _follow(
        self, command: Command, redaction: Redaction, first: Response | None = None
    ) -> Response:
        response = first if first is not None else self._raw(command, redaction)
        if self.strict:
            return response
        if response.sw1 == 0x6C:
            if not safe_to_repeat(command):
                raise CommandOutcomeUnknown(command.name, response.sw)
            response = self._raw(command.with_le(response.sw2 or 256), redaction)
        if response.sw1 != 0x61:
            return response
        data = bytearray(response.data)
        cla = 0x00 if command.cla & 0x80 else command.cla & 0x03  # keep the logical channel
        rounds = 0
        while response.sw1 == 0x61:
            rounds += 1
            if rounds > self.max_get_response:
                raise GetResponseLoop(
                    f"card still answered 61xx after {self.max_get_response} GET RESPONSE",
                    f"{self.max_get_response} 次 GET RESPONSE 后卡片仍返回 61xx",
                )
            get = Command(cla, 0xC0, 0x00, 0x00, le=response.sw2 or 256)
            response = self._raw(get, redaction)
            if response.sw1 == 0x6C:  # asked for too much: the card says how much
                response = self._raw(get.with_le(response.sw2 or 256), redaction)
            data += response.data
        return replace(response, data=bytes(data))

    def _raw(self, command: Command, redaction: Redaction) -> Response:
        apdu = bytes(command)
        tracer = self.tracer
        if tracer is None:
            return Response.parse(self.transport.transmit(apdu))
        tracer.command(apdu, redaction)
        start = time.perf_counter_ns()
        try:
            raw = self.transport.transmit(apdu)
        except Exception as exc:
            tracer.error(exc, (time.perf_counter_ns() - start) // 1000)
            raise
        tracer.response(raw, (time.perf_counter_ns() - start) // 1000, redaction)
        return Response.parse(raw)

    def transmit_raw(self, apdu: bytes, *, sensitive: bool | None = None) -> bytes:
        """One traced exchange of raw bytes, no status-word handling at all."""
        if self.tracer is None:
            return self.transport.transmit(apdu)
        redaction = Redaction.for_command(apdu, sensitive)
        self.tracer.command(apdu, redaction)
        start = time.perf_counter_ns()
        try:
            raw = self.transport.transmit(apdu)
        except Exception as exc:
            self.tracer.error(exc, (time.perf_counter_ns() - start) // 1000)
            raise
        self.tracer.response(raw, (time.perf_counter_ns() - start) // 1000, redaction)
        return raw

    def __repr__(self) -> str:
        return f"<Connection {self.transport!r}{' strict' if self.strict else ''}>"

"""How bytes reach a card: transports, the robust ``Connection``, tracing, monitoring.

pyscard is only imported when a PC/SC object is used (``PcscTransport``,
``list_readers``), so everything else here works where pyscard is not built.
"""

from sscard.terminals.base import ProtocolName, Transport
from sscard.terminals.connection import Connection
from sscard.terminals.errors import (
    CardRemoved,
    CardReset,
    CommandOutcomeUnknown,
    GetResponseLoop,
    NoCard,
    NoReader,
    NotConnected,
    PcscError,
    PcscUnavailable,
    ReaderAmbiguous,
    ReaderBusy,
    ReaderGone,
    ReplayMismatch,
    TerminalError,
    TerminalTimeout,
    TraceFormatError,
    TraceWriteError,
)
from sscard.terminals.pcsc import PcscTransport, list_readers
from sscard.terminals.replay import ReplayTransport
from sscard.terminals.simulator import SimulatorTransport
from sscard.terminals.tracing import Redaction, Tracer, read_trace

__all__ = [
    "CardRemoved",
    "CardReset",
    "CommandOutcomeUnknown",
    "Connection",
    "GetResponseLoop",
    "NoCard",
    "NoReader",
    "NotConnected",
    "PcscError",
    "PcscTransport",
    "PcscUnavailable",
    "ProtocolName",
    "ReaderAmbiguous",
    "ReaderBusy",
    "ReaderGone",
    "Redaction",
    "ReplayMismatch",
    "ReplayTransport",
    "SimulatorTransport",
    "TerminalError",
    "TerminalTimeout",
    "TraceFormatError",
    "TraceWriteError",
    "Tracer",
    "Transport",
    "list_readers",
    "read_trace",
]

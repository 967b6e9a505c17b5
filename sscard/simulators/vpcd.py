"""The simulator as a real PC/SC reader: a vicc client for pcscd's vsmartcard-vpcd driver.

Wire protocol (reference §N3.2): vpcd is the TCP server
(slot 0 on CHANNELID/35963, slot 1 on +1); we connect as a client. Every frame
is a 2-byte big-endian length + payload. A 1-byte payload is a control message
(``00`` power off, ``01`` power on, ``02`` reset, ``04`` get ATR -> reply ATR);
anything else is a C-APDU answered with the R-APDU.

Card presence = a connected socket, so ``eject()`` closes it and ``insert()``
connects again; pcscd sees either within its 400 ms poll (§N3.3).

Latency (§N3.4): vpcd writes the length and the body in two ``send()`` calls
without TCP_NODELAY, so Linux's delayed ACK would stall every APDU ~40 ms. We set
TCP_NODELAY, re-arm TCP_QUICKACK before *every* ``recv`` (Linux clears it), and
answer with one ``sendall``. ``VICC_NOQUICKACK=1`` disables the re-arming to
reproduce the stall.

The card side is any ``SimulatedCard`` (user card or PSAM); the model is
vsmartcard's ``VirtualICC`` (socket loop) kept separate from the card OS.

Robustness: waiting for the *first* byte of a frame has no time limit
(an idle reader sends nothing), but once a frame has begun the rest must arrive
within ``FRAME_TIMEOUT`` seconds, else the link is dropped and re-established
instead of blocking forever on a half frame. An APDU that reaches a powered-off
card is not answered (a card without power is mute, ``CardNotPowered``): the link is
dropped, as for a tear, so pcscd sees the card leave instead of waiting for an answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time

from sscard.simulators.base import CardNotPowered, CardTorn, SimulatedCard

log = logging.getLogger(__name__)

DEFAULT_PORT = 35963
CONNECT_TIMEOUT = 1.0
TEAR_ABSENCE = 0.6  # seconds a torn card stays out of the field (> pcscd's 400 ms poll)
FRAME_TIMEOUT = 2.0  # seconds for the rest of a frame once its first byte arrived

_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0x00, 0x01, 0x02, 0x04


def _quickack_enabled() -> bool:
    return os.environ.get("VICC_NOQUICKACK", "") not in ("1", "true", "yes")


class VpcdBridge:
    """Connects one simulated card to one vpcd slot; runs in a thread or the foreground.

    ``insert(card)`` / ``eject()`` emulate putting a card in the reader and
    pulling it out. When pcscd goes away (restart, crash) the bridge keeps
    trying to reconnect until ``stop()`` (every attempt has a timeout).
    """

    def __init__(
        self,
        card: SimulatedCard | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        retry_interval: float = 0.05,
        quickack: bool | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.retry_interval = retry_interval
        self.quickack = _quickack_enabled() if quickack is None else quickack
        self._card = card
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._torn = threading.Event()
        self.tears = 0
        #: Links dropped because a frame stalled half-way (``FRAME_TIMEOUT``).
        self.stalled_frames = 0
        #: APDUs refused because the card was powered off.
        self.unpowered_apdus = 0
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        #: Number of successful connections to vpcd (tests watch reconnections).
        self.connections = 0
        #: Number of C-APDUs answered.
        self.apdus = 0

    # -- public control -------------------------------------------------------------

    @property
    def card(self) -> SimulatedCard | None:
        return self._card

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Block until the socket to vpcd is up (not until pcscd noticed the card)."""
        return self._connected.wait(timeout)

    def insert(self, card: SimulatedCard | None = None) -> None:
        """Put ``card`` (or the previous one) in the reader: connect to vpcd."""
        with self._lock:
            if card is not None:
                self._card = card
            self._drop_socket()
        self._wake.set()

    def eject(self) -> None:
        """Pull the card out: close the socket and stay disconnected until ``insert``."""
        with self._lock:
            self._card = None
            self._drop_socket()
        self._wake.set()

    def start(self) -> VpcdBridge:
        """Serve in a daemon thread; returns immediately."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.serve_forever, name=f"vpcd-bridge:{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; returns within ``timeout``."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            self._drop_socket()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> VpcdBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop -------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Connect, serve until the socket drops, reconnect; until ``stop()``."""
        while not self._stop.is_set():
            card = self._card
            if card is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            sock = self._connect()
            if sock is None:
                self._wake.wait(self.retry_interval)
                self._wake.clear()
                continue
            try:
                self._serve(sock, card)
            except OSError as exc:  # ConnectionError included: pcscd went away or eject
                log.debug("vpcd connection on port %d closed: %s", self.port, exc)
            finally:
                self._connected.clear()
                with self._lock:
                    if self._sock is sock:
                        self._drop_socket()
            if self._torn.is_set():
                self._torn.clear()
                self._stop.wait(TEAR_ABSENCE)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        except OSError:
            return None
        sock.settimeout(None)  # eject/stop wake a blocking recv via shutdown()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stop.is_set() or self._card is None:
                sock.close()
                return None
            self._sock = sock
        self.connections += 1
        self._connected.set()
        return sock

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            if self.quickack:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("vpcd closed the connection")
            buf += chunk
        return buf

    def _serve(self, sock: socket.socket, card: SimulatedCard) -> None:
        while not self._stop.is_set():
            sock.settimeout(None)  # idle between frames: no limit (eject/stop use shutdown)
            first = self._recv_exact(sock, 1)
            sock.settimeout(FRAME_TIMEOUT)  # a frame has begun: the rest must follow
            try:
                size = int.from_bytes(first + self._recv_exact(sock, 1), "big")
                payload = self._recv_exact(sock, size) if size else b""
            except TimeoutError:
                self.stalled_frames += 1
                log.warning("vpcd frame on port %d stalled half-way; dropping the link", self.port)
                raise
            sock.settimeout(None)
            reply = self._answer(card, payload)
            if reply is not None:
                sock.sendall(len(reply).to_bytes(2, "big") + reply)

    def _answer(self, card: SimulatedCard, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            control = payload[0]
            if control == _POWER_OFF:
                card.power_off()
            elif control == _POWER_ON:
                card.power_on()
            elif control == _RESET:
                card.reset()
            elif control == _GET_ATR:
                return card.atr
            else:
                log.warning("unknown vpcd control byte %02X", control)
            return None
        self.apdus += 1
        try:
            return card.execute(payload)
        except CardNotPowered:
            # pcscd sent an APDU to a card it powered off: a mute card, not an answer.
            self.unpowered_apdus += 1
            self._torn.set()
            raise ConnectionAbortedError("APDU to a powered-off card") from None
        except CardTorn:
            # Power lost mid-APDU: the card leaves the field. Drop the link so
            # pcscd reports the card removed; serve_forever re-inserts it after
            # TEAR_ABSENCE seconds (longer than pcscd's 400 ms poll).
            self.tears += 1
            self._torn.set()
            raise ConnectionAbortedError("card torn") from None


def serve(
    card: SimulatedCard,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    until: threading.Event | None = None,
) -> None:
    """Run a bridge in the foreground until ``until`` is set or Ctrl-C."""
    bridge = VpcdBridge(card, host=host, port=port).start()
    try:
        while until is None or not until.is_set():
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()

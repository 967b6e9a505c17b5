"""A private pcscd for tests and benchmarks: started, awaited and stopped by pid.

Why a module of its own: the pytest harness and ``benchmarks/bench_terminals.py``
both need exactly the same careful dance (reference §N2):

- pcscd runs in the foreground (``--foreground --info``) so our pid is the real
  pid; ``-c DIR`` points it at a private reader.conf.d holding one vsmartcard-vpcd
  entry with its own FRIENDLYNAME and CHANNELID (so its own TCP ports);
- readiness = our pid alive **and** "daemon ready" in its log, never the socket
  (it can be stale);
- stop = SIGTERM by pid, bounded wait, SIGKILL only as a last resort, then no
  socket or pid file left behind.

pcscd 1.9 hard-codes its socket directory (``/run/pcscd``), so two daemons would
fight over one socket. Where the host allows it, the private pcscd therefore runs
in its own mount namespace (``unshare --mount``; as a normal user with
``--user --map-root-user``) with a private directory bound over ``/run/pcscd``,
and clients find it through ``PCSCLITE_CSOCK_NAME``, which libpcsclite reads on
its first call in a process. So the tests, the demo and the benchmarks run beside
a host pcscd that serves real readers, and beside each other. Where namespaces are
not allowed, ``start`` refuses to run while another pcscd is alive instead of
fighting over the socket.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sscard.errors import ExitStatus, SscardError
from sscard.files import open_private

PCSCD_BINARY = Path("/usr/sbin/pcscd")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
RUN_DIR = Path("/run/pcscd")
SOCKET_PATH = RUN_DIR / "pcscd.comm"
PID_PATH = RUN_DIR / "pcscd.pid"
UNSHARE = "unshare"
#: libpcsclite's environment variable for the daemon's socket path (pcsc-lite
#: winscard_msg.c ``getSocketName``); read once per process, on its first call.
SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
#: Runs inside the new mount namespace: the private run directory over
#: /run/pcscd, then pcscd itself (exec keeps the pid ours).
_BIND_AND_EXEC = 'mount --bind "$0" /run/pcscd && exec "$@"'


class PcscdError(SscardError):
    """The private pcscd could not be started or stopped."""

    exit_status = ExitStatus.READER
    code = -11
    message_en = "could not run pcscd"
    message_zh = "无法运行 pcscd"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): look at its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def running_pcscd_pids() -> list[int]:
    """Pids of every live pcscd on this host (from /proc; any owner)."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == "pcscd" and _pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return sorted(pids)


def _unshare_flags() -> list[str]:
    """A new mount namespace; as a normal user inside a user namespace as well."""
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return [*user, "--mount", "--propagation", "private"]


@functools.cache
def can_isolate() -> bool:
    """Can a pcscd run in its own mount namespace here (root, or user namespaces)?"""
    if not RUN_DIR.is_dir():
        return False
    try:
        probe = subprocess.run(
            [UNSHARE, *_unshare_flags(), "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def why_not_private() -> str:
    """Why a private pcscd cannot start on this host now ("" when it can)."""
    problems = PrivatePcscd.missing_prerequisites()
    if problems:
        return "; ".join(problems)
    if can_isolate():
        return ""
    others = running_pcscd_pids()
    if others:
        return (
            f"another pcscd is running (pid {', '.join(map(str, others))}) and this host "
            "does not allow a private mount namespace (unshare): stop it to run these"
        )
    return ""


def socket_live(path: Path) -> bool:
    """Does a daemon accept connections on this Unix socket?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def vpcd_ports(channel_id: int) -> tuple[int, int]:
    """TCP ports vpcd listens on for slot 0 and 1: CHANNELID and CHANNELID + 1 (§N2)."""
    return channel_id, channel_id + 1


def ports_free(channel_id: int) -> bool:
    """Can vpcd bind both of this channel's ports? (A port in TIME-WAIT after a
    previous run cannot be bound by the driver, which does not set SO_REUSEADDR.)"""
    for port in vpcd_ports(channel_id):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def free_channel(preferred: int, tries: int = 32) -> int:
    """``preferred`` if its two ports are free, else the next free pair above it."""
    for step in range(tries):
        candidate = preferred + 2 * step
        if ports_free(candidate):
            return candidate
    raise PcscdError(
        f"no free vpcd port pair from {preferred} to {preferred + 2 * tries - 1}",
        "找不到空闲的 vpcd 端口",
    )


@dataclass
class PrivatePcscd:
    """One pcscd process with a private vpcd reader configuration.

    Reader names are ``f"{friendly_name} 00 00"`` and ``"... 00 01"``; the vicc
    (``sscard.simulators.vpcd.VpcdBridge``) connects to ``ports[slot]``.
    ``isolated`` (default: whenever :func:`can_isolate`) runs it in its own mount
    namespace; :meth:`start` then points this process's PC/SC clients, and the
    programs it starts, at it through ``PCSCLITE_CSOCK_NAME``.
    """

    friendly_name: str = "sscard test VPCD"
    channel_id: int = 0x9C40
    workdir: Path | None = None
    extra_args: tuple[str, ...] = ()
    isolated: bool | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _ports_chosen: bool = field(default=False, init=False, repr=False)
    _chosen_run_dir: Path | None = field(default=None, init=False, repr=False)
    _own_workdir: tempfile.TemporaryDirectory[str] | None = field(
        default=None, init=False, repr=False
    )

    @property
    def ports(self) -> tuple[int, int]:
        return vpcd_ports(self.channel_id)

    @property
    def reader_names(self) -> tuple[str, str]:
        return f"{self.friendly_name} 00 00", f"{self.friendly_name} 00 01"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def socket_path(self) -> Path:
        """Where clients reach this pcscd (``PCSCLITE_CSOCK_NAME``)."""
        return self._run_dir() / "pcscd.comm" if self._isolated() else SOCKET_PATH

    def client_env(self) -> dict[str, str]:
        """Environment for a PC/SC client process (pcsc_scan, ``sscard serve``, …)."""
        return {SOCKET_ENV: str(self.socket_path)}

    def _isolated(self) -> bool:
        if self.isolated is None:
            self.isolated = can_isolate()
        return self.isolated

    def _run_dir(self) -> Path:
        """Where the isolated pcscd's /run/pcscd lives, seen from outside.

        If this process already says where its PC/SC clients look
        (``PCSCLITE_CSOCK_NAME`` set before their first call, as the test suite
        does at start-up), the daemon serves there; otherwise in its work directory.
        """
        if self._chosen_run_dir is None:
            preset = os.environ.get(SOCKET_ENV)
            if preset and Path(preset).name == "pcscd.comm":
                self._chosen_run_dir = Path(preset).parent
            else:
                self._chosen_run_dir = self._dir() / "run"
        return self._chosen_run_dir

    @property
    def log_path(self) -> Path:
        return self._dir() / "pcscd.log"

    def _dir(self) -> Path:
        if self.workdir is None:
            self._own_workdir = tempfile.TemporaryDirectory(prefix="sscard-pcscd-")
            self.workdir = Path(self._own_workdir.name)
        return self.workdir

    @staticmethod
    def missing_prerequisites() -> list[str]:
        """Human-readable reasons this host cannot run the private pcscd."""
        problems = []
        if not PCSCD_BINARY.exists():
            problems.append(f"{PCSCD_BINARY} missing (apt-get install pcscd)")
        if not VPCD_DRIVER.exists():
            problems.append(f"{VPCD_DRIVER} missing (apt-get install vsmartcard-vpcd)")
        return problems

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def write_config(self) -> Path:
        conf_dir = self._dir() / "reader.conf.d"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "sscard-vpcd").write_text(
            f'FRIENDLYNAME "{self.friendly_name}"\n'
            f"DEVICENAME /dev/null:0x{self.channel_id:04X}\n"
            f"LIBPATH {VPCD_DRIVER}\n"
            f"CHANNELID 0x{self.channel_id:04X}\n"
        )
        return conf_dir

    def start(self, timeout: float = 5.0) -> None:
        """Start pcscd and return once it logged "daemon ready" (bounded by ``timeout``)."""
        if self.is_running():
            return
        problems = self.missing_prerequisites()
        if problems:
            raise PcscdError("; ".join(problems), "缺少 pcscd 或 vpcd 驱动")
        others = [] if self._isolated() else running_pcscd_pids()
        if others:
            raise PcscdError(
                f"another pcscd is running (pid {', '.join(map(str, others))}); "
                "only one pcscd can run per host: stop it first",
                "已有另一个 pcscd 在运行；每台主机只能运行一个，请先停止它",
            )
        self._clean_stale_files()
        if not self._ports_chosen:  # a restart keeps its ports: bridges reconnect to them
            self.channel_id = free_channel(self.channel_id)
            self._ports_chosen = True
        conf_dir = self.write_config()
        argv = [str(PCSCD_BINARY), "--foreground", "--info", "-c", str(conf_dir), *self.extra_args]
        if self._isolated():
            self._point_clients()
            self._run_dir().mkdir(mode=0o755, parents=True, exist_ok=True)
            argv = [
                UNSHARE,
                *_unshare_flags(),
                "sh",
                "-c",
                _BIND_AND_EXEC,
                str(self._run_dir()),
                *argv,
            ]
        log = open_private(self.log_path, "wb", encoding=None)
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log_tail()
                self._proc = None
                raise PcscdError(f"pcscd exited at start: {tail}", "pcscd 启动时退出")
            log_text = self.log_path.read_bytes()
            if b"daemon ready" in log_text:
                if b"init failed" in log_text:  # the vpcd reader did not come up
                    tail = self.log_tail(8)
                    self.stop()
                    raise PcscdError(
                        f"pcscd started without its vpcd readers: {tail}",
                        "pcscd 已启动但 vpcd 读卡器初始化失败",
                    )
                return
            time.sleep(0.02)
        self.stop()
        raise PcscdError(f"pcscd not ready after {timeout:.1f} s", "pcscd 启动超时")

    def _point_clients(self) -> None:
        """Make this process (and what it starts) talk to this pcscd.

        libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once, on a process's first PC/SC
        call, so a process that already talked to the host's pcscd keeps talking
        to it: set the variable before that call (``tests/conftest.py`` does at
        start-up). A live daemon already at that socket is another pcscd's.
        """
        wanted = self.socket_path
        if socket_live(wanted):
            raise PcscdError(
                f"another pcscd already serves {wanted} ({SOCKET_ENV})",
                f"已有另一个 pcscd 在 {wanted} 提供服务",
            )
        os.environ[SOCKET_ENV] = str(wanted)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by pid, wait, SIGKILL as a last resort; leave no socket behind."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._clean_stale_files()

    def kill(self) -> None:
        """SIGKILL (a crash, for tests): pcscd cannot clean up, so we do."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait(5.0)
        self._clean_stale_files()

    def restart(self, timeout: float = 5.0) -> None:
        self.stop()
        self.start(timeout)

    def _clean_stale_files(self) -> None:
        """Remove socket/pid files only when no pcscd is alive to own them."""
        if self._isolated():
            paths = [self._run_dir() / "pcscd.comm", self._run_dir() / "pcscd.pid"]
            if self.is_running():
                return
        else:
            if running_pcscd_pids():
                return
            paths = [SOCKET_PATH, PID_PATH]
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        self.stop()
        if self._own_workdir is not None:
            self._own_workdir.cleanup()
            self._own_workdir = None
            self.workdir = None

    def __enter__(self) -> PrivatePcscd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

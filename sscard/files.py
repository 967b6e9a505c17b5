"""The one way sscard reads a file named by its user, and creates a file holding secrets.

Reading (hostile input): every file a command line or a configuration
names (card images, key sets, traces, identity policies, validator and desk
configurations, fare tables, fee CSVs, trust stores) goes through :func:`read_bytes`
/ :func:`read_text`. They open the path without blocking (a FIFO cannot hang us),
accept only a regular file, and refuse one larger than the caller's bound before
reading it, so ``fare_table = "/dev/zero"`` or a 20 GB file is one bilingual line
(:class:`InputFileRejected`, exit status 2), not a process the kernel kills.
:func:`parse_json` and :func:`parse_toml` bound what a file may contain: nesting
depth, integer length, no ``NaN``/``Infinity`` literals; a violation is reported as
the parser's own decode error, so every caller's existing "not JSON/TOML" message
covers it.

Writing (regulation Art. 18, personal data at terminals): every file that holds
personal data or keys is created mode 0600 (:func:`create_private`,
:func:`open_private`, :func:`private_umask`); SQLite creates a database's ``-wal``
and ``-shm`` files with the mode of the database file, so creating that file 0600
first is enough for all three (checked by tests/test_file_modes.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sscard.errors import ConfigError

#: Default bound of a file read from user input: far above any card image, key set,
#: policy or configuration sscard writes (kilobytes), far below a memory problem.
MAX_INPUT_BYTES = 8 * 1024 * 1024
#: Traces and fee lists may be long (one line per APDU / per item).
MAX_TRACE_BYTES = 64 * 1024 * 1024
#: Black and trust lists are streamed line by line; a million entries is ~40 MB.
MAX_LIST_BYTES = 512 * 1024 * 1024
#: Deeper than anything sscard writes (card images nest about 5 levels).
MAX_NESTING = 32
#: Longer than any amount, counter or time stamp in sscard's files (2**64 has 20 digits).
MAX_INT_DIGITS = 24

PRIVATE_MODE = 0o600


class InputFileRejected(ConfigError):
    """A file named on the command line or in a configuration is not one we will read."""

    message_en = "input file rejected"
    message_zh = "输入文件被拒绝"


# =========================================================================== reading


def _open_regular(path: str | os.PathLike[str], max_bytes: int) -> tuple[int, str]:
    """An fd on the regular file ``path`` no larger than ``max_bytes`` (else rejected)."""
    name = Path(path).name or str(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileRejected(
                f"{name} is not a regular file", f"{name} 不是普通文件", code=-14
            )
        if info.st_size > max_bytes:
            raise _too_large(name, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, name


def open_text(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", max_bytes: int = MAX_LIST_BYTES
) -> IO[str]:
    """A text stream on a regular file of at most ``max_bytes`` (for line-by-line readers,
    e.g. a blacklist of a million lines that is never held whole)."""
    fd, _name = _open_regular(path, max_bytes)
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, encoding=encoding)
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Raises :class:`InputFileRejected` for a device, FIFO, socket or directory, or a
    file larger than ``max_bytes``; ``OSError`` (missing, no permission) propagates
    as from ``open`` so callers keep their own "cannot read" messages.
    """
    fd, name = _open_regular(path, max_bytes)
    try:
        chunks: list[bytes] = []
        left = max_bytes + 1  # one byte more tells a file that grew since fstat
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise _too_large(name, max_bytes)
        return data
    finally:
        os.close(fd)


def _too_large(name: str, max_bytes: int) -> InputFileRejected:
    return InputFileRejected(
        f"{name} is larger than {max_bytes} bytes", f"{name} 超过 {max_bytes} 字节", code=-14
    )


def read_text(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", max_bytes: int = MAX_INPUT_BYTES
) -> str:
    """:func:`read_bytes` decoded; ``UnicodeDecodeError`` propagates (callers name the byte)."""
    return read_bytes(path, max_bytes=max_bytes).decode(encoding)


# =========================================================================== parsing


class _TooComplex(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooComplex(f"integer longer than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constant(name: str) -> Any:
    raise _TooComplex(f"{name} is not a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _TooComplex(f"{text[:24]} is out of range")
    return value


def depth_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """True if lists/dicts nest deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` for untrusted text; a too-deep, too-long or non-finite document
    raises ``json.JSONDecodeError`` (position 0) like any other malformed one."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    kwargs.setdefault("parse_int", _bounded_int)
    kwargs.setdefault("parse_constant", _no_constant)
    kwargs.setdefault("parse_float", _finite_float)
    try:
        value = json.loads(text, **kwargs)
    except (RecursionError, _TooComplex) as exc:
        raise json.JSONDecodeError(_reason(exc), text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # e.g. Python's own integer-length limit
        raise json.JSONDecodeError(str(exc)[:80], text, 0) from None
    if depth_exceeds(value):
        raise json.JSONDecodeError(f"nested deeper than {MAX_NESTING} levels", text, 0)
    return value


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with the same bounds (nesting; ``inf``/``nan`` stay the caller's
    to refuse, since TOML defines them)."""
    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError(f"nested deeper than {MAX_NESTING} levels") from None
    if depth_exceeds(value):
        raise tomllib.TOMLDecodeError(f"nested deeper than {MAX_NESTING} levels")
    return value


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"nested deeper than {MAX_NESTING} levels"
    return str(exc)


# =========================================================================== writing

_umask_lock = threading.Lock()


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside are 0600 and directories 0700 (umask 077), whatever the caller's.

    The umask is per process, so this holds a lock; use it only around the call
    that creates the file (a library that opens files itself, e.g. an image encoder).
    """
    with _umask_lock:
        old = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(old)


def restrict(path: str | os.PathLike[str]) -> None:
    """Make an existing file 0600 (a file made by an older sscard); no-op if not ours."""
    with contextlib.suppress(OSError):
        info = os.stat(path)
        if info.st_mode & 0o077 and stat.S_ISREG(info.st_mode):
            os.chmod(path, PRIVATE_MODE)


def create_private(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty and 0600 if missing; tighten it (and a SQLite ``-wal``/``-shm``
    next to it) to 0600 if it exists. Call before ``sqlite3.connect``: SQLite gives the
    WAL and shared-memory files the database file's mode."""
    if str(path) in ("", ":memory:") or str(path).startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    except IsADirectoryError:
        return  # let the caller's own open report it
    os.close(fd)
    for suffix in ("", "-wal", "-shm", "-journal"):
        restrict(f"{os.fspath(path)}{suffix}")


def open_private(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8"
) -> IO[Any]:
    """``open(path, mode)`` for ``w``/``a``/``x`` (text or binary) with a new file made 0600."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    if "a" in mode:
        flags |= os.O_APPEND
    elif "x" in mode:
        flags |= os.O_EXCL
    else:
        flags |= os.O_TRUNC
    fd = os.open(path, flags, PRIVATE_MODE)
    try:
        restrict(path)
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding, newline="\n" if "w" in mode else None)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` (created or truncated), mode 0600."""
    if isinstance(data, str):
        with open_private(path, "w") as fh:
            fh.write(data)
    else:
        with open_private(path, "wb", encoding=None) as fh:
            fh.write(data)

"""The debug REPL's server: a Unix socket (mode 0600) that answers command lines.

The daemon starts it next to the tree and stops it before the tree::

    path = socket_path_for(config.data_dir, config.api.repl_socket)   # ops.repl_wire
    server = ReplServer(runtime, store, path, ops.redact.redact).start()
    ...
    server.stop()           # joins every thread, removes the socket

or ``with ReplServer(...) as server:``. ``start`` refuses (``ReplSecurityError``) when the socket's
directory is not owned by this user or is writable by group or others: whoever can write there
could swap the socket for their own. The socket is bound inside a fresh 0700 directory, set to
0600, then linked into place, so it is never reachable with wider permissions. A stale socket
(nobody listening) is replaced; a live one or any other file is left alone and refused. A peer
running as another user than the daemon or root (``SO_PEERCRED``, where the platform has it) is
turned away.

Each connection gets its own thread, at most ``max_clients`` at once; each request frame
``{"line": str}`` gets an answer ``{"ok": bool, "text": str}`` (``ops.repl_wire``), redacted
again here whatever ``Commands`` did. A bad frame ends that connection, never the server.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ops.redact import redact as default_redact
from ops.repl_commands import Commands
from ops.repl_wire import MAX_REQUEST, Closed, WireError, recv_frame, send_frame
from storage import Store
from supervision import Runtime

log = logging.getLogger(__name__)
MAX_SOCKET_PATH = 107
"""Bytes of a Unix socket path, without the final NUL (Linux ``sun_path`` is 108)."""
POLL_S = 0.2
SEND_TIMEOUT_S = 30.0


class ReplSecurityError(RuntimeError):
    """The socket could not be placed safely; the message says why and what to change."""


def check_directory(directory: Path) -> None:
    """Raise ``ReplSecurityError`` unless ``directory`` is ours and closed to group and others."""
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        raise ReplSecurityError(f"the REPL socket's directory {directory} does not exist") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ReplSecurityError(f"{directory} is not a directory")
    if info.st_uid != os.geteuid():
        raise ReplSecurityError(
            f"refusing to start the REPL: {directory} is owned by uid {info.st_uid}, "
            f"not by this process (uid {os.geteuid()})"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ReplSecurityError(
            f"refusing to start the REPL: {directory} is writable by group or others "
            f"(mode {mode:04o}), so anyone there could replace the socket; "
            f"run `chmod go-w {directory}` or choose another directory"
        )


def _check_length(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ReplSecurityError(
            f"socket path {path} is longer than {MAX_SOCKET_PATH} bytes; choose a shorter one"
        )


def _clear_stale(path: Path) -> None:
    """Remove a socket nobody listens on; refuse a live one or any other kind of file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ReplSecurityError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    finally:
        probe.close()
    raise ReplSecurityError(f"another REPL server is listening on {path}")


def _bind_private(path: Path) -> socket.socket:
    """A listening socket at ``path`` that was never reachable with a mode wider than 0600."""
    private = Path(tempfile.mkdtemp(prefix=".repl-", dir=path.parent))  # mode 0700
    staging = private / "s"
    _check_length(staging)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(staging))
        os.chmod(staging, 0o600)
        try:
            os.link(staging, path)  # fails if something appeared there meanwhile
        except FileExistsError:
            raise ReplSecurityError(f"{path} appeared while the REPL was starting") from None
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        with contextlib.suppress(OSError):
            os.rmdir(private)
    return sock


def _send(conn: socket.socket, value: Any) -> None:
    """Send a whole frame: reads poll every ``POLL_S``, a large answer may take longer."""
    conn.settimeout(SEND_TIMEOUT_S)
    try:
        send_frame(conn, value)
    finally:
        conn.settimeout(POLL_S)


def _peer_uid(conn: socket.socket) -> int | None:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ReplServer:
    """Serves ``Commands`` on a Unix socket from its own threads."""

    def __init__(
        self,
        runtime: Runtime,
        store: Store | None,
        socket_path: str | os.PathLike[str],
        redact: Callable[[str], str] = default_redact,
        *,
        max_clients: int = 4,
        ask_timeout_s: float = 5.0,
    ) -> None:
        self.path = Path(socket_path).absolute()
        self.redact = redact
        self.max_clients = max_clients
        self.commands = Commands(runtime, store, redact, ask_timeout_s=ask_timeout_s)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._acceptor: threading.Thread | None = None
        self._clients: dict[threading.Thread, socket.socket] = {}
        self._ids = itertools.count(1)

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> ReplServer:
        if self._sock is not None:
            raise RuntimeError("the REPL server is already started")
        _check_length(self.path)
        check_directory(self.path.parent)
        _clear_stale(self.path)
        sock = _bind_private(self.path)
        info = os.lstat(self.path)
        self._inode = (info.st_dev, info.st_ino)
        sock.listen(self.max_clients)
        sock.settimeout(POLL_S)
        self._sock = sock
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept, name="repl-accept", daemon=True)
        self._acceptor.start()
        log.info("REPL listening on %s", self.path)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the socket, end every connection, join the threads, remove the socket file."""
        self._stopping.set()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.join(timeout)  # it polls every POLL_S; after this no client is admitted
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        with self._lock:
            clients = dict(self._clients)
        for conn in clients.values():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in clients:
            thread.join(timeout)
        threads = [*clients, *([acceptor] if acceptor is not None else [])]
        self._remove_socket()
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning("REPL threads still running after stop: %s", alive)

    def __enter__(self) -> ReplServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _remove_socket(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (info.st_dev, info.st_ino) == self._inode:  # only ours, never a successor's
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    # --- connections ---------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("REPL accept failed")
                continue
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        conn.settimeout(POLL_S)
        uid = _peer_uid(conn)
        if uid is not None and uid not in (os.geteuid(), 0):
            log.warning("REPL connection from uid %d refused", uid)
            conn.close()
            return
        with self._lock:
            self._clients = {t: c for t, c in self._clients.items() if t.is_alive()}
            room = len(self._clients) < self.max_clients and not self._stopping.is_set()
            if room:
                name = f"repl-client-{next(self._ids)}"
                thread = threading.Thread(target=self._serve, args=(conn,), name=name, daemon=True)
                self._clients[thread] = conn
                thread.start()
                return
        if not self._stopping.is_set():
            with contextlib.suppress(OSError):
                text = f"too many REPL clients (at most {self.max_clients}); try again later"
                send_frame(conn, {"ok": False, "text": text})
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while not self._stopping.is_set():
                try:
                    request = recv_frame(conn, MAX_REQUEST, stop=self._stopping.is_set)
                except Closed:
                    return
                except (WireError, OSError) as exc:
                    with contextlib.suppress(OSError):
                        _send(conn, {"ok": False, "text": f"bad request: {exc}"})
                    return
                ok, text = self._answer(request)
                try:
                    _send(conn, {"ok": ok, "text": self.redact(text)})
                except OSError:
                    return

    def _answer(self, request: Any) -> tuple[bool, str]:
        if not isinstance(request, dict) or not isinstance(request.get("line"), str):
            return False, 'expected a frame {"line": "<command>"}'
        try:
            return self.commands.run(request["line"])
        except Exception as exc:  # Commands.run does not raise; this keeps the thread if it does
            log.exception("REPL command failed")
            return False, f"internal error: {type(exc).__name__}: {exc}"

"""The REPL wire: length-prefixed msgpack frames over a stream socket.

A frame is a 4-byte big-endian length and that many bytes of ``protocol.codec.pack`` data.
Requests are ``{"line": "state('scheduler')"}``, answers ``{"ok": True, "text": "..."}``::

    send_frame(sock, {"line": "actors()"})
    answer = recv_frame(sock, MAX_ANSWER)      # raises Closed at a clean end of stream

A frame larger than the reader's limit, a stream cut mid-frame, or bytes that are not msgpack
raise ``WireError``; the connection cannot be resynchronised after that and should be closed.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocol.codec import pack, unpack

HEADER = struct.Struct(">I")
MAX_REQUEST = 64 * 1024
MAX_ANSWER = 16 * 1024 * 1024


def socket_path_for(data_dir: Path, configured: Path | None = None) -> Path:
    """Where the daemon's socket is: ``api.repl_socket`` if set, else ``<data_dir>/repl.sock``."""
    return configured if configured is not None else data_dir / "repl.sock"


class WireError(Exception):
    """The peer sent something that is not a frame, or a frame too large."""


class Closed(WireError):
    """The stream ended cleanly between frames (or the reader was asked to stop)."""


def send_frame(sock: socket.socket, value: Any) -> None:
    data = pack(value)
    sock.sendall(HEADER.pack(len(data)) + data)


def recv_frame(sock: socket.socket, max_size: int, stop: Callable[[], bool] | None = None) -> Any:
    """The next frame's value. With ``stop``, socket timeouts are polls: it returns ``Closed``
    when ``stop()`` is true, and keeps waiting otherwise."""
    (size,) = HEADER.unpack(_exact(sock, HEADER.size, stop, at_boundary=True))
    if size > max_size:
        raise WireError(f"frame of {size} bytes exceeds the limit of {max_size}")
    body = _exact(sock, size, stop, at_boundary=False)
    try:
        return unpack(body)
    except Exception as exc:
        raise WireError(f"frame is not msgpack: {exc}") from exc


def _exact(
    sock: socket.socket, n: int, stop: Callable[[], bool] | None, *, at_boundary: bool
) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except TimeoutError:
            if stop is None:
                raise
            if stop():
                raise Closed("stopping") from None
            continue
        if not chunk:
            if at_boundary and not buf:
                raise Closed("end of stream")
            raise WireError(f"stream closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)

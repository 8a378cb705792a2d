"""Serve an ASGI app with uvicorn in a background thread of this process.

    server = HttpServer(app)              # 127.0.0.1, a free port
    url = server.start()                  # "http://127.0.0.1:41873"; raises if it cannot bind
    ...
    server.stop()                         # graceful, then forced; joins the thread

The socket is bound in ``start`` (so a port in use fails there, in the caller's thread) and
handed to uvicorn. uvicorn leaves the process's signal handlers and logging alone: it runs outside
the main thread and gets ``log_config=None``. Its access log is off by default.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class HttpServer:
    """One uvicorn server on ``host:port`` (port 0: any free port), started and stopped once."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_log: bool = False,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.access_log = access_log
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        """Bind, serve in a daemon thread, and return the base URL once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("HttpServer.start called twice")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(False)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=self.access_log,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=max(1, int(self.stop_timeout_s / 2)),
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="http-api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise RuntimeError(f"the HTTP server on {self.url} exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the HTTP server on {self.url} did not start in time")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        """Ask uvicorn to finish (force it after half the timeout) and join its thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(self.stop_timeout_s / 2)
        if thread.is_alive():
            server.force_exit = True
            thread.join(self.stop_timeout_s / 2)
        self._close_socket()
        if thread.is_alive():
            raise RuntimeError(f"the HTTP server on {self.url} did not stop in time")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _close_socket(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> HttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

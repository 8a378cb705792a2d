"""``oracle-runner repl``: a line-editing prompt attached to the daemon's REPL socket.

    $ oracle-runner repl --socket data/repl.sock
    connected to data/repl.sock; help() lists the commands, exit or Ctrl-D leaves
    oracle> sta<TAB>           ->  oracle> state(
    oracle> state("sch<TAB>    ->  oracle> state("scheduler"

``oracle-runner repl -c 'jobs(state="dead")'`` runs one line and exits (status 1 if it failed).
TAB asks the server (``complete(prefix)``) for command names, actor names and message kinds.
A missing socket, a refused connection or a lost daemon is one clear line on stderr and status 1.
Programs can use ``ReplClient`` directly::

    with ReplClient("data/repl.sock").connect() as client:
        ok, text = client.request("actors()")
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from ops.repl_wire import MAX_ANSWER, WireError, recv_frame, send_frame

PROMPT = "oracle> "
DELIMS = " \t\n()[]{},:="
"""Word breaks for TAB: quotes are not among them, so a quoted prefix reaches the server."""
EXIT_WORDS = frozenset({"exit", "quit", "exit()", "quit()"})


class ReplConnectError(Exception):
    """The daemon's socket cannot be reached; the message says why, for a person."""


class ReplClient:
    """One connection to a ``ReplServer``."""

    def __init__(self, path: str | os.PathLike[str], timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None

    def connect(self) -> ReplClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(os.fspath(self.path))
        except FileNotFoundError:
            sock.close()
            raise ReplConnectError(
                f"no REPL socket at {self.path}: is the daemon running, and is this its "
                "api.repl_socket (default <data_dir>/repl.sock)?"
            ) from None
        except ConnectionRefusedError:
            sock.close()
            raise ReplConnectError(
                f"the REPL socket at {self.path} refused the connection: "
                "the daemon that made it is not running"
            ) from None
        except PermissionError:
            sock.close()
            raise ReplConnectError(
                f"permission denied on {self.path}: only the daemon's user may attach"
            ) from None
        except OSError as exc:
            sock.close()
            raise ReplConnectError(f"cannot connect to {self.path}: {exc}") from None
        self._sock = sock
        return self

    def request(self, line: str) -> tuple[bool, str]:
        """Send one line, return the server's ``(ok, text)``; ``WireError``/``OSError`` if lost."""
        if self._sock is None:
            raise WireError("not connected")
        send_frame(self._sock, {"line": line})
        answer: Any = recv_frame(self._sock, MAX_ANSWER)
        if not isinstance(answer, dict):
            raise WireError(f"unexpected answer: {answer!r}")
        return bool(answer.get("ok")), str(answer.get("text", ""))

    def complete(self, prefix: str) -> list[str]:
        ok, text = self.request(f"complete({prefix!r})")
        return text.splitlines() if ok and text else []

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> ReplClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Completer:
    """A ``readline`` completer that asks the server once per TAB."""

    def __init__(self, client: ReplClient) -> None:
        self.client = client
        self.matches: list[str] = []

    def __call__(self, text: str, state: int) -> str | None:
        if state == 0:
            try:
                self.matches = self.client.complete(text)
            except (WireError, OSError):
                self.matches = []
        return self.matches[state] if state < len(self.matches) else None


def _line_editing(client: ReplClient) -> None:
    try:
        import readline
    except ImportError:  # no readline on this platform: plain input() still works
        return
    readline.set_completer(Completer(client))
    readline.set_completer_delims(DELIMS)
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")


def interact(client: ReplClient, out: TextIO) -> int:
    """Read lines until EOF or ``exit``; print each answer. 0, or 1 if the daemon went away."""
    _line_editing(client)
    print(f"connected to {client.path}; help() lists the commands, exit or Ctrl-D leaves", file=out)
    while True:
        try:
            line = input(PROMPT).strip()
        except EOFError:
            print(file=out)
            return 0
        except KeyboardInterrupt:
            print("^C", file=out)
            continue
        if not line:
            continue
        if line in EXIT_WORDS:
            return 0
        try:
            ok, text = client.request(line)
        except (WireError, OSError) as exc:
            print(f"error: connection to the daemon lost: {exc}", file=sys.stderr)
            return 1
        print(text if ok else f"error: {text}", file=out, flush=True)


def main(socket_path: str | os.PathLike[str], command: str | None = None) -> int:
    """Attach to ``socket_path``; run ``command`` alone, or a prompt. The exit status."""
    try:
        client = ReplClient(socket_path).connect()
    except ReplConnectError as exc:
        print(f"oracle-runner repl: {exc}", file=sys.stderr)
        return 1
    with client:
        if command is None:
            try:
                return interact(client, sys.stdout)
            except KeyboardInterrupt:
                return 130
        try:
            ok, text = client.request(command)
        except (WireError, OSError) as exc:
            print(f"oracle-runner repl: connection to the daemon lost: {exc}", file=sys.stderr)
            return 1
        print(text if ok else f"error: {text}")
        return 0 if ok else 1

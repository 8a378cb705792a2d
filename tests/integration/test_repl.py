"""The debug REPL end to end: a real runtime and store behind a ReplServer, the real client
(``python -m runner repl``) as a subprocess on a pseudo-terminal, typed at like a person."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.config import ApiConfig, Config
from ops.daemon import Daemon
from ops.redact import Redactor
from ops.repl_commands import OPERATOR_KINDS
from ops.repl_server import ReplSecurityError, ReplServer
from ops.repl_wire import HEADER, MAX_ANSWER, recv_frame, send_frame
from storage import Store
from supervision import FaultPlan, Runtime
from tests.unit.markets import discovered
from tests.unit.markets import key as market
from tests.unit.ops_actors import ops_runtime

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]
SECRET = "5e" * 32
SNAPSHOTS = {
    "signer:dev": {"chain": "dev", "nonce": 7, "key": "0x" + SECRET},
    "listener:dev": {"chain": "dev", "head": 10, "cursor": 8},
}
PROMPT = "oracle> "
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|[\r\x07]")


class Terminal:
    """A subprocess on a pseudo-terminal; ``expect`` reads until a pattern shows."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        env = {**os.environ, "TERM": "dumb", "INPUTRC": "/dev/null", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.fd = master
        self.pending = ""
        self.transcript = ""

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        text = _ESCAPES.sub("", data.decode(errors="replace"))
        self.pending += text
        self.transcript += text
        return bool(data)

    def expect(self, pattern: str, timeout: float = 15.0) -> str:
        """Everything up to and including the first match of the regex ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.pending)
            if found:
                seen, self.pending = self.pending[: found.end()], self.pending[found.end() :]
                return seen
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.2)):
                raise AssertionError(f"{pattern!r} not seen; got: {self.pending[-3000:]!r}")

    def command(self, line: str) -> str:
        """Type ``line`` + Enter; the answer (the text before the next prompt)."""
        self.send(line + "\r")
        self.expect(re.escape(line[-20:]) + r"\n")  # the echo of the line itself
        return self.expect(re.escape(PROMPT))[: -len(PROMPT)]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        os.close(self.fd)


def private_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "sock"
    directory.mkdir(exist_ok=True)
    directory.chmod(0o700)
    return directory


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Runtime, Store, ReplServer]]:
    """Runtime (no redaction of its own: the REPL must do it) + store + a started server."""
    redactor = Redactor([SECRET])
    with ops_runtime(tmp_path, SNAPSHOTS, faults=FaultPlan()) as (rt, store):
        rt.ask("scheduler", discovered(market(1)))
        server = ReplServer(rt, store, private_dir(tmp_path) / "repl.sock", redactor.redact)
        server.commands.allowed_kinds = OPERATOR_KINDS | {"test_ops_leak"}  # the stand-in's crash
        with server:
            yield rt, store, server


@pytest.fixture
def terminal(served: tuple[Runtime, Store, ReplServer]) -> Iterator[Terminal]:
    server = served[2]
    term = Terminal([sys.executable, "-m", "runner", "repl", "--socket", str(server.path)])
    try:
        yield term
    finally:
        term.close()


def test_a_person_at_the_prompt(
    served: tuple[Runtime, Store, ReplServer], terminal: Terminal
) -> None:
    rt = served[0]
    terminal.expect("(?s)connected to .*" + re.escape(PROMPT))

    actors = terminal.command("actors()")
    rows = {line.split()[0]: line.split() for line in actors.splitlines()[3:] if line.strip()}
    assert {"scheduler", "signer:dev", "listener:dev", "resolvers", "root"} <= set(rows)
    assert rows["scheduler"][1:3] == ["scheduler", "running"]

    assert '"waiting": 1' in terminal.command('state("scheduler")')
    signer = terminal.command('state("signer:dev")')
    assert '"nonce": 7' in signer and '"key": "[REDACTED]"' in signer
    assert str(market(1)) in terminal.command("jobs()")
    assert "0 of 0 dead jobs" in terminal.command('jobs(state="dead")')

    # an actor that crashes with the key in its exception, told and then asked
    assert "told signer:dev: test_ops_leak" in terminal.command(
        'tell("signer:dev", {"kind": "test_ops_leak"})'
    )
    rt.wait_for(lambda: rt.restarts("signer:dev") == 1 and rt.alive("signer:dev"))
    entry = rt.registry.entry("signer:dev")
    assert entry is not None and SECRET in entry.last_error  # the raw text is there ...
    after = terminal.command("actors()")
    assert "RuntimeError: leaking [REDACTED]" in after  # ... and never shown
    asked = terminal.command('ask("signer:dev", {"kind": "test_ops_leak"})')
    assert "error: signer:dev failed on test_ops_leak: RuntimeError: leaking [REDACTED]" in asked

    # lines that are not commands, and messages that do not validate
    assert "error: only calls of a command" in terminal.command('__import__("os").getcwd()')
    assert "error: syntax error" in terminal.command("state(")
    assert "error: unknown command 'open'" in terminal.command('open("/etc/passwd")')
    assert "field bogus: Extra inputs are not permitted" in terminal.command(
        'tell("scheduler", {"kind": "get_state", "bogus": 2})'
    )
    assert "unknown message kind 'nope'" in terminal.command('ask("scheduler", {"kind": "nope"})')
    assert "fault rule added" in terminal.command(
        'inject({"actor": "listener:dev", "message": "test_ops_hang", "action": "drop"})'
    )

    # TAB completes a command name, an actor name and a message kind
    terminal.send("sta\t")
    terminal.expect(re.escape("state("))
    terminal.send('"sch\t')
    terminal.expect(re.escape('"scheduler"'))  # readline writes what it inserts
    terminal.send(")\r")
    assert '"halted_chains"' in terminal.expect(re.escape(PROMPT))
    terminal.send('tell("scheduler", {"kind": "get_st\t')
    terminal.expect(re.escape('"get_state"'))
    terminal.send("})\r")
    assert "told scheduler: get_state" in terminal.expect(re.escape(PROMPT))

    terminal.send("exit\r")
    assert terminal.proc.wait(timeout=10) == 0
    assert SECRET not in terminal.transcript.lower()


def test_a_lost_daemon_is_reported(
    served: tuple[Runtime, Store, ReplServer], terminal: Terminal
) -> None:
    terminal.expect(re.escape(PROMPT))
    served[2].stop()
    terminal.send("actors()\r")
    terminal.expect("connection to the daemon lost")
    assert terminal.proc.wait(timeout=10) == 1


def test_ctrl_d_exits_cleanly(terminal: Terminal) -> None:
    terminal.expect(re.escape(PROMPT))
    terminal.send("\x04")
    assert terminal.proc.wait(timeout=10) == 0


def test_one_line_mode_and_clear_connection_errors(
    served: tuple[Runtime, Store, ReplServer], tmp_path: Path
) -> None:
    def repl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "runner", "repl", *args]
        return subprocess.run(
            argv, check=False, cwd=REPO, capture_output=True, text=True, timeout=30
        )

    done = repl("--socket", str(served[2].path), "-c", 'state("listener:dev")')
    assert done.returncode == 0 and '"head": 10' in done.stdout
    failed = repl("--socket", str(served[2].path), "-c", 'state("nobody")')
    assert failed.returncode == 1 and "error: no actor named 'nobody'" in failed.stdout

    missing = repl("--socket", str(tmp_path / "absent.sock"))
    assert missing.returncode == 1 and "no REPL socket at" in missing.stderr

    stale = private_dir(tmp_path) / "stale.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()  # a socket file with nobody listening, as after a daemon's crash
    refused = repl("--socket", str(stale))
    assert refused.returncode == 1 and "refused the connection" in refused.stderr


@pytest.mark.parametrize("enabled", [False, True])
def test_inject_on_a_daemon_follows_its_setting(tmp_path: Path, enabled: bool) -> None:
    """``inject`` reaches the live actors of ``oracle-runner run`` only when the config says
    ``api.repl_fault_injection``; otherwise it says fault injection is off."""
    api = ApiConfig(enabled=False, repl_fault_injection=enabled)
    daemon = Daemon(Config(data_dir=private_dir(tmp_path) / "data", api=api)).start()
    try:
        assert daemon.repl is not None and daemon.runtime is not None
        line = 'inject({"actor": "scheduler", "message": "get_state", "action": "drop"})'
        argv = [sys.executable, "-m", "runner", "repl", "--socket", str(daemon.repl.path)]
        done = subprocess.run(
            [*argv, "-c", line], check=False, cwd=REPO, capture_output=True, text=True, timeout=30
        )
        if enabled:
            assert done.returncode == 0, done.stdout + done.stderr
            assert "fault rule added (1 in the plan)" in done.stdout
            assert daemon.runtime.faults is not None and len(daemon.runtime.faults.rules()) == 1
        else:
            assert done.returncode == 1
            assert "fault injection is off" in done.stdout
            assert daemon.runtime.faults is None
    finally:
        daemon.stop()


# --- the server on its own --------------------------------------------------------------


def raw_client(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    return sock


def test_the_socket_is_private_and_removed_on_stop(tmp_path: Path) -> None:
    with ops_runtime(tmp_path) as (rt, store):
        path = private_dir(tmp_path) / "repl.sock"
        server = ReplServer(rt, store, path, Redactor().redact).start()
        try:
            info = os.stat(path)
            assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
            assert [p.name for p in path.parent.iterdir()] == ["repl.sock"]  # no staging left
            idle = raw_client(path)  # a connected client must not keep stop() waiting
        finally:
            server.stop()
        assert not path.exists()
        assert idle.recv(1) == b""  # its connection was closed
        idle.close()
        assert not [t for t in server._clients if t.is_alive()]


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o720, 0o702])
def test_refuses_a_directory_others_can_write(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(mode)
    with ops_runtime(tmp_path) as (rt, store):
        server = ReplServer(rt, store, directory / "repl.sock")
        with pytest.raises(ReplSecurityError, match="writable by group or others"):
            server.start()
    assert not (directory / "repl.sock").exists()


def test_refuses_a_directory_of_another_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    directory = private_dir(tmp_path)
    os.chown(directory, 65534, 65534)
    with (
        ops_runtime(tmp_path) as (rt, store),
        pytest.raises(ReplSecurityError, match="owned by uid 65534"),
    ):
        ReplServer(rt, store, directory / "repl.sock").start()


def test_refuses_to_replace_a_file_or_a_live_server(tmp_path: Path) -> None:
    directory = private_dir(tmp_path)
    with ops_runtime(tmp_path) as (rt, store):
        (directory / "file.sock").write_text("not a socket")
        with pytest.raises(ReplSecurityError, match="not a socket"):
            ReplServer(rt, store, directory / "file.sock").start()
        with (
            ReplServer(rt, store, directory / "repl.sock"),
            pytest.raises(ReplSecurityError, match="another REPL server is listening"),
        ):
            ReplServer(rt, store, directory / "repl.sock").start()
        with pytest.raises(ReplSecurityError, match="does not exist"):
            ReplServer(rt, store, tmp_path / "nowhere" / "repl.sock").start()


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = private_dir(tmp_path) / "repl.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    with ops_runtime(tmp_path) as (rt, store), ReplServer(rt, store, path):
        client = raw_client(path)
        send_frame(client, {"line": "help()"})
        assert recv_frame(client, MAX_ANSWER)["ok"] is True
        client.close()


def test_bad_frames_end_one_connection_not_the_server(tmp_path: Path) -> None:
    path = private_dir(tmp_path) / "repl.sock"
    with ops_runtime(tmp_path) as (rt, store), ReplServer(rt, store, path, max_clients=2):
        garbage = raw_client(path)
        garbage.sendall(HEADER.pack(3) + b"\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
        answer = recv_frame(garbage, MAX_ANSWER)
        assert answer["ok"] is False and "not msgpack" in answer["text"]
        assert garbage.recv(1) == b""
        garbage.close()

        huge = raw_client(path)
        huge.sendall(HEADER.pack(10**9))
        assert "exceeds" in recv_frame(huge, MAX_ANSWER)["text"]
        huge.close()

        wrong = raw_client(path)
        send_frame(wrong, ["not", "a", "map"])
        assert recv_frame(wrong, MAX_ANSWER) == {
            "ok": False,
            "text": 'expected a frame {"line": "<command>"}',
        }
        send_frame(wrong, {"line": "actors()"})  # the same connection goes on
        assert recv_frame(wrong, MAX_ANSWER)["ok"] is True

        second = raw_client(path)
        send_frame(second, {"line": "help()"})
        assert recv_frame(second, MAX_ANSWER)["ok"] is True
        third = raw_client(path)  # max_clients=2: wrong and second are still connected
        third_answer = recv_frame(third, MAX_ANSWER)
        assert third_answer["ok"] is False and "too many REPL clients" in third_answer["text"]
        for sock in (wrong, second, third):
            sock.close()

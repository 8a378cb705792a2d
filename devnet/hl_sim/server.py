"""The Hyperliquid simulator: a real HTTP server on 127.0.0.1 answering ``POST /info``.

Standard-library ``ThreadingHTTPServer`` (a thread per connection, keep-alive), so it starts and
stops in a test thread in milliseconds and needs no event loop. In-process::

    sim = HlSimulator(Dataset.from_cassettes(path), port=0, clock=ManualClock(t0_ms))
    url = sim.start()                 # "http://127.0.0.1:<free port>", serving in a thread
    sim.set_faults(p_5xx=0.2, seed=7) # or POST {url}/_sim/faults {"p_5xx": 0.2, "seed": 7}
    sim.stats()                       # or GET {url}/_sim/stats
    sim.stop()                        # closes open connections, joins every thread

As a process: ``python -m devnet.hl_sim --data DIR --port 0`` prints the URL as its first line.

Per ``/info`` request, in order: latency; a drawn fault; the rate limit (``X-Sim-Client`` header
or the remote IP is the client; over budget: 429 with ``Retry-After``, nothing charged); the
answer, possibly replaced by a 503 or mangled (malformed: not JSON; truncated: the first half);
then the per-item weight of the body actually sent is charged (``sources.hl_weights``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devnet.hl_sim.clock import Clock, wall_ms
from devnet.hl_sim.dataset import Dataset
from devnet.hl_sim.faults import FaultConfig, Faults
from devnet.hl_sim.handlers import answer
from devnet.hl_sim.history import CANDLE_RETENTION
from devnet.hl_sim.ratelimit import WeightLimiter
from sources.hl_weights import WEIGHT_LIMIT_PER_MINUTE, base_weight, response_weight

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - the names we refuse
MALFORMED_BODY = b"<html><body>502 Bad Gateway</body></html>"

Reply = tuple[int, bytes, str, dict[str, str]]


class HlSimulator:
    """One simulated Hyperliquid info API; see the module docstring."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = wall_ms,
        faults: FaultConfig | None = None,
        weight_limit: int = WEIGHT_LIMIT_PER_MINUTE,
        window_ms: int = 60_000,
        candle_retention: int | None = CANDLE_RETENTION,
        client_header: str = "X-Sim-Client",
    ) -> None:
        if host in WILDCARD_HOSTS:
            raise ValueError(f"refusing to listen on {host!r}: bind a loopback address")
        self.dataset = dataset
        self.clock = clock
        self.faults = Faults(faults)
        self.limiter = WeightLimiter(weight_limit, window_ms)
        self.candle_retention = candle_retention
        self.client_header = client_header
        self._host, self._port = host, port
        self._requests: Counter[tuple[str, int]] = Counter()
        self._cut_short = 0
        """Requests whose body ended before its ``Content-Length`` (the client hung up)."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def bind(self) -> str:
        """Open the listening socket (port 0: a free one) and return the URL."""
        if self._server is None:
            self._server = _Server((self._host, self._port), _Handler, self)
        return self.url

    def start(self) -> str:
        """Bind and serve in a background thread; return the URL."""
        url = self.bind()
        self._stopping.clear()
        if self._thread is None:
            assert self._server is not None
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"hl-sim {url}",
                daemon=True,
            )
            self._thread.start()
        return url

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving, close open connections, join the threads. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        if self._thread is not None:
            server.shutdown()
            self._thread.join(timeout_s)
            self._thread = None
        server.close_connections()
        server.server_close()

    def __enter__(self) -> HlSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- knobs and stats -------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> FaultConfig:
        """Change fault knobs at run time, e.g. ``set_faults(p_429=0.1, seed=3)``."""
        self.faults.update(changes)
        return self.faults.config

    def stats(self) -> dict[str, Any]:
        """Requests by type and status, weight charged by client, faults injected."""
        with self._lock:
            requests: dict[str, dict[str, int]] = {}
            for (rtype, status), n in sorted(self._requests.items()):
                requests.setdefault(rtype, {})[str(status)] = n
        return {
            "requests": requests,
            "weight_by_client": self.limiter.totals(),
            "faults_injected": self.faults.injected_counts(),
            "bodies_cut_short": self._cut_short,
            "faults": self.faults.config.to_json(),
            "now_ms": self.clock(),
        }

    def count_cut_short(self) -> None:
        """A request whose client hung up before its whole body arrived."""
        with self._lock:
            self._cut_short += 1

    def reset(self) -> None:
        """Forget stats and every client's spent weight (not the fault knobs)."""
        with self._lock:
            self._requests.clear()
            self._cut_short = 0
        self.limiter.reset()
        self.faults.reset_counts()

    # -- /info -----------------------------------------------------------------------------

    def handle_info(self, raw: bytes, client: str) -> Reply:
        """Answer one ``POST /info`` body for ``client``: (status, body, content type, headers)."""
        rtype = _peek_type(raw)
        if self.faults.latency_s > 0:
            self._stopping.wait(self.faults.latency_s)
        fault = self.faults.draw()
        now = self.clock()
        reply: Reply
        if fault == "429":
            reply = (429, b"rate limited (simulated fault)", "text/plain", {})
        elif (wait_ms := self.limiter.admit(client, base_weight(rtype), now)) is not None:
            retry_after = str(-(-wait_ms // 1000))
            reply = (429, b"rate limited", "text/plain", {"Retry-After": retry_after})
        elif fault == "5xx":
            reply = (503, b"service unavailable (simulated fault)", "text/plain", {})
        else:
            ans = answer(self.dataset, raw, now, candle_retention=self.candle_retention)
            body = ans.body
            if fault == "malformed":
                body = MALFORMED_BODY
            elif fault == "truncated":
                body = body[: len(body) // 2] or b"["
            reply = (ans.status, body, ans.content_type, {})
        status, body = reply[0], reply[1]
        if status != 429:
            self.limiter.charge(
                client, response_weight(rtype, status, body) - base_weight(rtype), now
            )
        with self._lock:
            self._requests[(rtype, status)] += 1
        return reply


def _peek_type(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "<invalid>"
    rtype = body.get("type") if isinstance(body, dict) else None
    return rtype if isinstance(rtype, str) else "<invalid>"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], sim: HlSimulator) -> None:
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (or a stop that closed its socket) is not an error to print."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        log.exception("hl-sim: error answering %s", client_address)

    def close_connections(self) -> None:
        """Wake every handler blocked on an idle keep-alive connection."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # else headers and body wait on the client's delayed ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``GET /_sim/stats`` tells what happened."""

    def do_GET(self) -> None:
        sim = self.server.sim
        if self.path == "/_sim/stats":
            self._json(200, sim.stats())
        elif self.path == "/_sim/faults":
            self._json(200, sim.faults.config.to_json())
        elif self.path == "/_sim/health":
            self._send(200, b"ok", "text/plain")
        else:
            self._send(404 if self.path != "/info" else 405, b"not found", "text/plain")

    def do_POST(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        sim = self.server.sim
        if self.path == "/info":
            client = self.headers.get(sim.client_header) or self.client_address[0]
            status, body, ctype, headers = sim.handle_info(raw, client)
            self._send(status, body, ctype, headers)
        elif self.path == "/_sim/faults":
            try:
                changes = json.loads(raw)
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object of fault knobs")
                config = sim.set_faults(**changes)
            except (ValueError, TypeError) as exc:
                self._send(400, str(exc).encode(), "text/plain")
                return
            self._json(200, config.to_json())
        elif self.path == "/_sim/reset":
            sim.reset()
            self._json(200, {"reset": True})
        else:
            self._send(404, b"not found", "text/plain")

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._send(411, b"Content-Length required", "text/plain")
            return None
        if int(length) > MAX_BODY:
            self.close_connection = True
            self._send(413, b"request body too large", "text/plain")
            return None
        raw = self.rfile.read(int(length))
        if len(raw) < int(length):
            # The client hung up part way through its body (a process killed mid-request): no
            # request arrived, so none is answered or counted, as a real server would not.
            self.close_connection = True
            self.server.sim.count_cut_short()
            return None
        return raw

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, sort_keys=True).encode(), "application/json")

    def _send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

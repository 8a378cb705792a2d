"""A JSON-RPC HTTP proxy with seeded faults, to put between a client and anvil.

::

    with RpcProxy(anvil.rpc_url, seed=7, faults=Faults(error_rate=0.2)) as proxy:
        client = EvmClient([proxy.url], chain_id=31337, timeout_s=1.0)
        proxy.set_faults(error_rate=0.0, head_lag=5, max_logs_range=100)   # at run time
        proxy.stats()["error_5xx"]                                          # faults injected

or at run time over HTTP: ``POST {proxy.url}/_proxy/faults`` with a JSON object of knobs (the
answer is the knobs now in force) and ``GET {proxy.url}/_proxy/stats``.

Per HTTP request (a JSON-RPC batch is one request) the proxy draws from ``random.Random(seed)``:
first the added latency (``latency_s`` plus up to ``latency_jitter_s``), then at most one of the
exclusive faults, by rate:

- ``error_rate``: HTTP ``error_status`` (503) and a text body; the request is NOT forwarded.
- ``timeout_rate``: the reply is held ``timeout_hold_s`` (past the client's timeout), then the
  connection is closed without a reply.
- ``drop_rate``: the connection is closed without a reply.
- ``malformed_rate``: a 200 reply whose body is not JSON.

With ``forward_on_fault`` (default) timeouts, drops and malformed replies happen AFTER the request
reached anvil, so its effect happened and only the answer is lost (a sent transaction is in the
pool): the hard case for a signer. ``methods`` limits these random faults to requests holding one
of the named methods. Rewrites, applied to every request and to each call of a batch:

- ``head_lag=N``: ``eth_blockNumber`` answers head - N; ``eth_getBlockByNumber("latest")`` and
  ``eth_getLogs`` ``"latest"`` mean that block; a block above it is ``null``.
- ``max_logs_range=K``: ``eth_getLogs`` over more than K blocks gets the JSON-RPC error
  ``{"code": -32005, "message": "block range too large: N blocks, max K"}``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import random
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

MAX_HOLD_S = 30.0
RANGE_ERROR_CODE = -32005


@dataclass(frozen=True)
class Faults:
    """The proxy's knobs; every rate is a probability per HTTP request."""

    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    timeout_rate: float = 0.0
    timeout_hold_s: float = 2.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    forward_on_fault: bool = True
    methods: tuple[str, ...] = ()
    head_lag: int = 0
    max_logs_range: int | None = None

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.timeout_rate, self.drop_rate, self.malformed_rate)
        if any(r < 0 for r in rates) or sum(rates) > 1.0:
            raise ValueError(f"fault rates must be >= 0 and add up to <= 1: {rates}")
        if not 0 <= self.timeout_hold_s <= MAX_HOLD_S:
            raise ValueError(f"timeout_hold_s must be within [0, {MAX_HOLD_S}]")
        if self.head_lag < 0 or (self.max_logs_range is not None and self.max_logs_range < 1):
            raise ValueError("head_lag must be >= 0 and max_logs_range >= 1")

    def replace(self, **changes: Any) -> Faults:
        if "methods" in changes:
            changes["methods"] = tuple(changes["methods"])
        return dataclasses.replace(self, **changes)


STAT_KEYS = (
    "requests",
    "calls",
    "batches",
    "forwarded",
    "latency",
    "error_5xx",
    "timeout",
    "drop",
    "malformed",
    "head_lag",
    "range_too_large",
    "upstream_error",
)


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, proxy: RpcProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 30  # an idle keep-alive connection is closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/_proxy/stats":
            self.reply(200, json.dumps(self.server.proxy.stats()).encode())
        elif self.path == "/_proxy/faults":
            self.reply(200, json.dumps(dataclasses.asdict(self.server.proxy.faults)).encode())
        else:
            self.reply(404, b"not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_proxy/faults":
            try:
                faults = self.server.proxy.set_faults(**json.loads(body or b"{}"))
            except (TypeError, ValueError) as exc:
                self.reply(400, str(exc).encode())
                return
            self.reply(200, json.dumps(dataclasses.asdict(faults)).encode())
            return
        self.server.proxy.handle(self, body)

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def hang_up(self) -> None:
        """Close the connection without a reply."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class RpcProxy:
    """A fault-injecting JSON-RPC proxy on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        faults: Faults | None = None,
        upstream_timeout_s: float = 10.0,
    ) -> None:
        self.upstream = upstream
        self._faults = faults or Faults()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        self._methods: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._http = httpx.Client(timeout=upstream_timeout_s)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("proxy not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RpcProxy:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="rpc-proxy"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections (held replies end at once), join every thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        with server.connections_lock:
            for conn in list(server.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the request threads
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._http.close()

    def __enter__(self) -> RpcProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- knobs and stats ---------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change some knobs (validated as a whole); returns the knobs now in force."""
        with self._lock:
            self._faults = self._faults.replace(**changes)
            return self._faults

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def method_counts(self) -> dict[str, int]:
        """Calls seen per JSON-RPC method (each call of a batch counts)."""
        with self._lock:
            return dict(self._methods)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = dict.fromkeys(STAT_KEYS, 0)
            self._methods.clear()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    # --- request path ------------------------------------------------------------------------

    def _draw(self, calls: list[Any]) -> tuple[Faults, float, str | None]:
        """The faults for one request: (knobs, added latency, exclusive fault or None)."""
        with self._lock:
            f = self._faults
            if f.methods and not any(_method(c) in f.methods for c in calls):
                return f, 0.0, None
            jitter = self._rng.uniform(0, f.latency_jitter_s) if f.latency_jitter_s else 0.0
            latency = f.latency_s + jitter
            r = self._rng.random()
        fault = None
        for name, rate in (
            ("error_5xx", f.error_rate),
            ("timeout", f.timeout_rate),
            ("drop", f.drop_rate),
            ("malformed", f.malformed_rate),
        ):
            if r < rate:
                fault = name
                break
            r -= rate
        return f, latency, fault

    def handle(self, h: _Handler, body: bytes) -> None:
        self._count("requests")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        batch = isinstance(payload, list)
        calls = payload if batch else [payload]
        self._count("calls", len(calls))
        with self._lock:
            self._methods.update(_method(c) for c in calls)
        if batch:
            self._count("batches")
        f, latency, fault = self._draw(calls)
        if latency > 0:
            self._count("latency")
            self._stop.wait(latency)
        if fault is not None:
            self._count(fault)
        if fault == "error_5xx":
            h.reply(f.error_status, b"injected upstream error", "text/plain")
            return
        if fault is not None and not f.forward_on_fault:
            self._fail(h, f, fault)
            return
        try:
            answer = self._answer(payload, calls, batch, f) if payload is not None else None
            out = json.dumps(answer).encode() if answer is not None else self._forward_raw(body)
        except (httpx.HTTPError, ValueError) as exc:
            self._count("upstream_error")
            h.reply(502, f"upstream error: {type(exc).__name__}".encode(), "text/plain")
            return
        if fault is not None:
            self._fail(h, f, fault)
        else:
            h.reply(200, out)

    def _fail(self, h: _Handler, f: Faults, fault: str) -> None:
        if fault == "timeout":
            self._stop.wait(f.timeout_hold_s)
            h.hang_up()
        elif fault == "drop":
            h.hang_up()
        else:
            h.reply(200, b'{"jsonrpc":"2.0","id":1,"result":0x<malformed')

    def _forward_raw(self, body: bytes) -> bytes:
        self._count("forwarded")
        resp = self._http.post(
            self.upstream, content=body, headers={"Content-Type": "application/json"}
        )
        return resp.content

    def _rpc(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": 0, "method": method, "params": params}
        return self._http.post(self.upstream, json=body).json().get("result")

    def _answer(self, payload: Any, calls: list[Any], batch: bool, f: Faults) -> Any:
        """Rewrite and answer locally what the knobs say, forward the rest as one request."""
        head: int | None = None
        if (f.head_lag or f.max_logs_range) and any(_method(c) in _HEAD_METHODS for c in calls):
            head = max(0, int(self._rpc("eth_blockNumber", []), 16) - f.head_lag)
        results: dict[int, Any] = {}
        forward: list[tuple[int, Any]] = []
        for i, call in enumerate(calls):
            answer, rewritten = self._rewrite(call, f, head)
            if answer is not None:
                results[i] = answer
            else:
                forward.append((i, rewritten))
        if forward:
            self._count("forwarded")
            body = [c for _, c in forward] if batch else forward[0][1]
            data = self._http.post(self.upstream, json=body).json()
            if not batch:
                return data
            if not isinstance(data, list):  # the node refused the batch as a whole
                return data
            by_id = {json.dumps(r.get("id")): r for r in data if isinstance(r, dict)}
            for i, call in forward:
                if isinstance(call, dict) and json.dumps(call.get("id")) in by_id:
                    results[i] = by_id[json.dumps(call.get("id"))]
        ordered = [results[i] for i in sorted(results)]
        return ordered if batch else ordered[0]

    def _rewrite(self, call: Any, f: Faults, head: int | None) -> tuple[Any, Any]:
        """(local answer or None, call to forward)."""
        if not isinstance(call, dict) or head is None:
            return None, call
        if call.get("method") == "eth_getLogs":
            return self._rewrite_logs(call, f, head)
        if f.head_lag:
            return self._rewrite_head(call, head)
        return None, call

    def _rewrite_head(self, call: dict[str, Any], head: int) -> tuple[Any, Any]:
        method, params, cid = call.get("method"), list(call.get("params") or []), call.get("id")
        if method == "eth_blockNumber":
            self._count("head_lag")
            return {"jsonrpc": "2.0", "id": cid, "result": hex(head)}, call
        if method != "eth_getBlockByNumber" or not params:
            return None, call
        number = _block_number(params[0], head)
        if number is None:
            return None, call
        self._count("head_lag")
        if number > head:
            return {"jsonrpc": "2.0", "id": cid, "result": None}, call
        return None, {**call, "params": [hex(number), *params[1:]]}

    def _rewrite_logs(self, call: dict[str, Any], f: Faults, head: int) -> tuple[Any, Any]:
        params = list(call.get("params") or [])
        if not params or not isinstance(params[0], dict) or "blockHash" in params[0]:
            return None, call
        flt = dict(params[0])
        lo = _block_number(flt.get("fromBlock", "latest"), head)
        hi = _block_number(flt.get("toBlock", "latest"), head)
        if f.max_logs_range and lo is not None and hi is not None:
            span = hi - lo + 1
            if span > f.max_logs_range:
                self._count("range_too_large")
                msg = f"block range too large: {span} blocks, max {f.max_logs_range}"
                error = {"code": RANGE_ERROR_CODE, "message": msg}
                return {"jsonrpc": "2.0", "id": call.get("id"), "error": error}, call
        if f.head_lag:
            for key in ("fromBlock", "toBlock"):
                if flt.get(key, "latest") in _TAGS:
                    flt[key] = hex(head)
            return None, {**call, "params": [flt, *params[1:]]}
        return None, call


_HEAD_METHODS = ("eth_blockNumber", "eth_getBlockByNumber", "eth_getLogs")
_TAGS = ("latest", "pending", "safe", "finalized")


def _method(call: Any) -> str:
    return str(call.get("method")) if isinstance(call, dict) else ""


def _block_number(tag: Any, head: int) -> int | None:
    """A block tag or hex number as a number, "latest" meaning ``head``; None if unknown."""
    if tag in _TAGS:
        return head
    if tag == "earliest":
        return 0
    if isinstance(tag, str) and tag.startswith("0x"):
        try:
            return int(tag, 16)
        except ValueError:
            return None
    return None

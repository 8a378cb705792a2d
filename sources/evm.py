"""EVM JSON-RPC client: a timeout on every call, failover across nodes, batches, typed answers
and classified errors.

::

    client = EvmClient(["http://node-a", "http://node-b"], chain_id=999, timeout_s=5.0,
                       abis=[oracle_abi])       # ABIs whose custom errors a revert may carry
    client.verify()                             # ConfigurationError if a node is on another chain
    head = client.block_number()
    block = client.get_block(head)              # Block(number, hash, parent_hash, timestamp, ...)
    try:
        logs = client.get_logs(factory, [MARKET_CREATED_TOPIC], lo, hi)
    except RangeTooLarge:
        ...                                     # the node refuses the range: ask for less
    try:
        client.call({"to": oracle, "data": calldata})
    except RevertError as exc:
        exc.reason                              # "AlreadyCommitted(market=0x...)"
    blocks = client.get_blocks(range(lo, hi))   # one JSON-RPC batch per 100 calls

Errors carry ``failure`` (``protocol.messages.FailureClass``): ``TransientError`` (timeout,
connection, HTTP 5xx/429, malformed reply, and node-side JSON-RPC errors such as "header not
found"), ``RpcError``/``RevertError``/``RangeTooLarge`` (permanent: the node answered and retrying
the same request cannot help), ``ConfigurationError`` (a node on the wrong chain, HTTP 401/403/404).

Transport is httpx (one stack for single calls and batches, the same classification for both);
``eth_abi`` decodes reverts. Failover: a call tries the nodes in health order (fewest consecutive
failures, then configuration order), each at most once per pass, and returns the first answer;
when every node failed, one of them transiently, it makes up to ``retries`` (2) more passes after
a short pause (``call_budget_s`` bounds the whole call). All our calls are safe to repeat. A
node with ``failure_threshold`` consecutive failures rests for ``cooldown_s``; when every node
rests, the one that recovers soonest is tried. Each node's ``eth_chainId`` is checked before its
first use and after each rest; a node on another chain (a "lying node") is never used again, and
when no node is left the call raises ``ConfigurationError``. URLs are shown only as
scheme://host:port, because provider URLs often carry an API key in the path.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

import httpx
import orjson
from eth_abi.abi import decode
from eth_utils.abi import collapse_if_tuple
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from protocol.messages import FailureClass
from protocol.spec import checksum_address
from sources.bounded_post import bounded_post

T = TypeVar("T")
_JSON_HEADERS = {"content-type": "application/json"}
BlockId = int | str
"""A block number or a tag: "latest", "pending", "safe", "finalized", "earliest"."""

# --- errors --------------------------------------------------------------------------------


class EvmError(Exception):
    """Base of every client error; ``failure`` says what a caller should do about it."""

    failure = FailureClass.TRANSIENT


class TransientError(EvmError):
    """No usable answer: timeout, connection refused or reset, HTTP 5xx/429, malformed reply."""


class ConfigurationError(EvmError):
    """The client is set up wrong: a node on another chain, or refusing us (HTTP 401/403/404)."""

    failure = FailureClass.CONFIGURATION


class RpcError(EvmError):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: [{code}] {message}")
        self.method, self.code, self.message, self.data = method, code, message, data
        self.failure = (
            FailureClass.TRANSIENT if _TRANSIENT_RPC.search(message) else FailureClass.PERMANENT
        )

    @property
    def tx_rejection(self) -> str | None:
        """For ``eth_sendRawTransaction``: "nonce_too_low", "already_known", "underpriced",
        "insufficient_funds" or None."""
        for kind, pattern in _TX_REJECTIONS:
            if pattern.search(self.message):
                return kind
        return None


class RevertError(RpcError):
    """The call or gas estimate reverted; ``reason`` is decoded (Error(string), Panic, custom)."""

    failure = FailureClass.PERMANENT

    def __init__(self, method: str, code: int, message: str, data: bytes, abis: _ErrorBook):
        super().__init__(method, code, message, "0x" + data.hex())
        self.failure = FailureClass.PERMANENT
        self.revert_data = data
        self.error_name, self.error_args, self.reason = abis.decode(data, message)
        self.args = (f"{method} reverted: {self.reason}",)


class RangeTooLarge(RpcError):
    """``eth_getLogs``: the node refuses a block range this large; ask for a smaller one."""

    failure = FailureClass.PERMANENT


_TRANSIENT_RPC = re.compile(
    r"header not found|unknown block|missing trie node|timeout|timed out|rate limit|"
    r"too many requests|busy|try again|temporarily|internal error|service unavailable",
    re.IGNORECASE,
)
_RANGE_TOO_LARGE = re.compile(
    r"range (is )?too (large|wide|big)|exceed(s|ed)? (the )?max(imum)? (block )?range|"
    r"max(imum)? block range|block range limit|range limit exceeded|query returned more than|"
    r"response size (exceeded|should not)|too many blocks|limited to (a )?[\d,]+ (block )?range|"
    r"limited to [\d,]+ blocks|up to a [\w,]+ block range",
    re.IGNORECASE,
)


def is_range_too_large(message: str) -> bool:
    """Whether an ``eth_getLogs`` error message means "ask for fewer blocks" (known providers'
    wordings; an unknown wording is a plain ``RpcError``)."""
    return _RANGE_TOO_LARGE.search(message) is not None


_TX_REJECTIONS = [
    ("nonce_too_low", re.compile(r"nonce too low|nonce has already been used", re.I)),
    ("already_known", re.compile(r"already known|known transaction|already imported", re.I)),
    ("underpriced", re.compile(r"underpriced|fee too low|max fee per gas less than", re.I)),
    ("insufficient_funds", re.compile(r"insufficient funds", re.I)),
]
_PANICS = {
    0x01: "assert failed",
    0x11: "arithmetic overflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to uninitialised function",
}


class _ErrorBook:
    """Custom errors by selector, from ABIs; decodes revert data into (name, args, reason)."""

    def __init__(self, abis: Iterable[Sequence[dict[str, Any]]]) -> None:
        self.by_selector: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in abis:
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                types = [collapse_if_tuple(i) for i in entry.get("inputs", [])]
                names = [i.get("name") or f"arg{n}" for n, i in enumerate(entry.get("inputs", []))]
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                self.by_selector[selector] = (entry["name"], types, names)

    def decode(self, data: bytes, message: str) -> tuple[str, tuple[Any, ...], str]:
        if len(data) < 4:
            text = message.split("execution reverted", 1)[-1].lstrip(": ").strip()
            return "", (), text or "execution reverted without a reason"
        selector, body = data[:4], data[4:]
        try:
            if selector == bytes.fromhex("08c379a0"):
                (text,) = decode(["string"], body)
                return "Error", (text,), str(text)
            if selector == bytes.fromhex("4e487b71"):
                (code,) = decode(["uint256"], body)
                return "Panic", (code,), f"Panic(0x{code:02x}: {_PANICS.get(code, 'unknown')})"
            if selector in self.by_selector:
                name, types, names = self.by_selector[selector]
                values = tuple(_show(v) for v in decode(types, body))
                shown = ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))
                return name, values, f"{name}({shown})"
        except Exception:  # noqa: S110 - undecodable data falls through to the raw selector
            pass
        return "", (), f"unknown error 0x{selector.hex()} (data 0x{data.hex()})"


def _show(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return value


def _revert_data(data: Any) -> bytes:
    """Revert bytes from a JSON-RPC error's ``data`` (a hex string, or nested in an object)."""
    if isinstance(data, dict):
        data = data.get("data") or data.get("result") or ""
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


# --- typed answers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee_per_gas: int | None
    gas_limit: int
    gas_used: int


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[str, ...]
    data: bytes
    block_number: int
    block_hash: str
    transaction_hash: str
    log_index: int
    removed: bool


@dataclass(frozen=True)
class Receipt:
    transaction_hash: str
    status: int
    block_number: int
    block_hash: str
    gas_used: int
    effective_gas_price: int
    contract_address: str | None
    logs: tuple[Log, ...]


@dataclass(frozen=True)
class FeeHistory:
    oldest_block: int
    base_fee_per_gas: tuple[int, ...]
    """One more entry than blocks: the last is the next block's base fee."""
    gas_used_ratio: tuple[float, ...]
    reward: tuple[tuple[int, ...], ...]


MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError)
"""What reading a node's reply may raise when the reply is not what JSON-RPC promises (a
string where an object belongs, a missing field, too deep a nesting): a malformed reply."""
_QUANTITY = re.compile(r"(0[xX])?[0-9a-fA-F]{1,64}")


def _int(v: Any) -> int:
    """A JSON-RPC quantity (hex string; a non-negative int is taken as is); anything else,
    a sign or blanks included, is malformed."""
    if isinstance(v, str) and _QUANTITY.fullmatch(v):
        return int(v, 16)
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    raise ValueError(f"not a quantity: {v!r:.40}")


def _block(raw: dict[str, Any]) -> Block:
    fee = raw.get("baseFeePerGas")
    return Block(
        number=_int(raw["number"]),
        hash=_hash(raw["hash"]),
        parent_hash=_hash(raw["parentHash"]),
        timestamp=_int(raw["timestamp"]),
        base_fee_per_gas=None if fee is None else _int(fee),
        gas_limit=_int(raw["gasLimit"]),
        gas_used=_int(raw["gasUsed"]),
    )


def _log(raw: dict[str, Any]) -> Log:
    return Log(
        address=checksum_address(raw["address"]),
        topics=tuple(_hash(t) for t in raw["topics"]),
        data=_hex_bytes(raw["data"]),
        block_number=_int(raw["blockNumber"]),
        block_hash=_hash(raw["blockHash"]),
        transaction_hash=_hash(raw["transactionHash"]),
        log_index=_int(raw["logIndex"]),
        removed=bool(raw.get("removed", False)),
    )


def _receipt(raw: dict[str, Any]) -> Receipt:
    created = raw.get("contractAddress")
    return Receipt(
        transaction_hash=_hash(raw["transactionHash"]),
        status=_int(raw["status"]),
        block_number=_int(raw["blockNumber"]),
        block_hash=_hash(raw["blockHash"]),
        gas_used=_int(raw["gasUsed"]),
        effective_gas_price=_int(raw.get("effectiveGasPrice") or 0),
        contract_address=to_checksum_address(created) if created else None,
        logs=tuple(_log(x) for x in raw.get("logs", [])),
    )


def _fee_history(raw: dict[str, Any]) -> FeeHistory:
    base_fees = tuple(_int(x) for x in raw["baseFeePerGas"])
    if not base_fees:
        raise ValueError("no baseFeePerGas in eth_feeHistory")
    return FeeHistory(
        oldest_block=_int(raw["oldestBlock"]),
        base_fee_per_gas=base_fees,
        gas_used_ratio=tuple(float(x) for x in raw["gasUsedRatio"]),
        reward=tuple(tuple(_int(x) for x in row) for row in raw.get("reward") or []),
    )


def _maybe(parse: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda raw: None if raw is None else parse(raw)


def _hex_bytes(raw: Any) -> bytes:
    if not isinstance(raw, str) or not raw.startswith("0x"):
        raise ValueError(f"not 0x-hex: {raw!r:.20}")
    return bytes.fromhex(raw[2:])


def _hash(raw: Any) -> str:
    if len(_hex_bytes(raw)) != 32:
        raise ValueError(f"not a 32-byte hash: {raw!r:.70}")
    return str(raw)


def _block_id(block: BlockId) -> str:
    return hex(block) if isinstance(block, int) else block


def _tx_params(tx: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            out[key] = hex(value)
        elif isinstance(value, bytes | bytearray):
            out[key] = "0x" + bytes(value).hex()
        else:
            out[key] = value
    return out


# --- nodes ---------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``scheme://host:port`` of ``url``: paths and queries often hold API keys."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


@dataclass
class NodeHealth:
    """A snapshot of one node's health (``EvmClient.health()``)."""

    label: str
    healthy: bool
    consecutive_failures: int
    resting_s: float
    verified: bool
    wrong_chain_id: int | None
    calls: int
    failures: int
    last_error: str


@dataclass
class _Node:
    index: int
    url: str
    label: str
    failures_in_row: int = 0
    rest_until: float = 0.0
    verified: bool = False
    wrong_chain_id: int | None = None
    calls: int = 0
    failures: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class _NodeFailure(Exception):
    def __init__(self, error: EvmError) -> None:
        super().__init__(str(error))
        self.error = error


class EvmClient:
    """A JSON-RPC client over several nodes of one chain; see the module docstring."""

    def __init__(
        self,
        urls: Sequence[str],
        chain_id: int,
        timeout_s: float,
        *,
        abis: Iterable[Sequence[dict[str, Any]]] = (),
        failure_threshold: int = 2,
        cooldown_s: float = 30.0,
        max_batch: int = 100,
        retries: int = 2,
        retry_pause_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ConfigurationError("EvmClient needs at least one RPC URL")
        self.expected_chain_id = chain_id
        self.timeout_s = timeout_s
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.max_batch = max_batch
        self.retries = retries
        self.retry_pause_s = retry_pause_s
        self._clock = clock
        self._errors = _ErrorBook(abis)
        self._nodes = [
            _Node(index=i, url=u, label=f"node{i}({redact_url(u)})") for i, u in enumerate(urls)
        ]
        self._lock = threading.Lock()
        self._ids = 0
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EvmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- health ------------------------------------------------------------------------------

    def health(self) -> list[NodeHealth]:
        now = self._clock()
        with self._lock:
            return [
                NodeHealth(
                    label=n.label,
                    healthy=n.wrong_chain_id is None and n.rest_until <= now,
                    consecutive_failures=n.failures_in_row,
                    resting_s=max(0.0, n.rest_until - now),
                    verified=n.verified,
                    wrong_chain_id=n.wrong_chain_id,
                    calls=n.calls,
                    failures=n.failures,
                    last_error=n.last_error,
                )
                for n in self._nodes
            ]

    def verify(self) -> None:
        """Check every node's chain id now; ``ConfigurationError`` names each node that lies.

        An unreachable node is not an error here (it is checked again before its first use).
        """
        for node in self._nodes:
            try:
                self._ensure_chain(node)
            except _NodeFailure:
                continue
        liars = [n for n in self._nodes if n.wrong_chain_id is not None]
        if liars:
            raise ConfigurationError(self._lying_message(liars))

    def _lying_message(self, liars: list[_Node]) -> str:
        told = ", ".join(f"{n.label} says {n.wrong_chain_id}" for n in liars)
        return f"RPC node on the wrong chain (configured chain id {self.expected_chain_id}): {told}"

    def _order(self) -> list[_Node]:
        now = self._clock()
        with self._lock:
            usable = [n for n in self._nodes if n.wrong_chain_id is None]
            if not usable:
                raise ConfigurationError(self._lying_message(self._nodes))
            awake = sorted(
                (n for n in usable if n.rest_until <= now),
                key=lambda n: (n.failures_in_row, n.index),
            )
            if awake:
                return awake
            return [min(usable, key=lambda n: n.rest_until)]

    def _failed(self, node: _Node, error: EvmError) -> None:
        with self._lock:
            node.failures_in_row += 1
            node.failures += 1
            node.last_error = str(error)[:300]
            if node.failures_in_row >= self.failure_threshold:
                node.rest_until = self._clock() + self.cooldown_s
                node.verified = False

    def _succeeded(self, node: _Node) -> None:
        with self._lock:
            node.failures_in_row = 0
            node.rest_until = 0.0

    def _ensure_chain(self, node: _Node) -> None:
        """Raise ``_NodeFailure`` if the node is unreachable or on the wrong chain."""
        if node.verified:
            return
        reply = self._post(node, self._body("eth_chainId", []))
        try:
            got = _int(reply["result"])
        except MALFORMED as exc:
            raise _NodeFailure(TransientError(f"{node.label}: bad eth_chainId reply")) from exc
        with self._lock:
            if got != self.expected_chain_id:
                node.wrong_chain_id = got
                node.last_error = f"chain id {got}, configured {self.expected_chain_id}"
                raise _NodeFailure(ConfigurationError(self._lying_message([node])))
            node.verified = True

    # --- transport ---------------------------------------------------------------------------

    def _body(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        with self._lock:
            self._ids += 1
            return {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)}

    def _post(self, node: _Node, body: Any) -> Any:
        """POST one JSON-RPC request or batch; a transport problem raises ``_NodeFailure``."""
        with self._lock:
            node.calls += 1
        try:
            resp = bounded_post(
                self._http,
                node.url,
                deadline_s=self.timeout_s,
                content=orjson.dumps(body),
                headers=_JSON_HEADERS,
            )
        except httpx.TimeoutException as exc:
            timeout = TransientError(f"{node.label}: timeout after {self.timeout_s}s")
            raise _NodeFailure(timeout) from exc
        except httpx.HTTPError as exc:
            raise _NodeFailure(TransientError(f"{node.label}: {type(exc).__name__}")) from exc
        status = resp.status
        if status in (401, 403, 404, 405):
            raise _NodeFailure(ConfigurationError(f"{node.label}: HTTP {status}"))
        if status >= 500 or status in (408, 429):
            raise _NodeFailure(TransientError(f"{node.label}: HTTP {status}"))
        try:
            data = orjson.loads(resp.body)
        except orjson.JSONDecodeError:  # also what it raises nested too deep
            data = None
        if not isinstance(data, dict | list):  # a 4xx may still carry a JSON-RPC error: use it
            what = f"HTTP {status}" if status != 200 else "malformed reply"
            raise _NodeFailure(TransientError(f"{node.label}: {what}"))
        return data

    @property
    def call_budget_s(self) -> float:
        """The longest one call can take: every node timing out on every pass, and the pauses."""
        passes = self.retries + 1
        pauses = sum(self._pause(n) for n in range(1, passes))
        return self.timeout_s * len(self._nodes) * passes + pauses

    def _pause(self, pass_no: int) -> float:
        return min(self.retry_pause_s * 2.0 ** (pass_no - 1), 1.0)

    def _with_failover(self, attempt: Callable[[_Node], T]) -> T:
        """``attempt`` on the nodes in health order until one answers; when every node failed and
        one of them transiently, up to ``retries`` more passes after a short pause (all our calls
        are safe to repeat: reads, and raw transactions, whose repeat is "already known")."""
        errors: list[EvmError] = []
        for pass_no in range(self.retries + 1):
            if pass_no:
                time.sleep(self._pause(pass_no))
            failed: list[EvmError] = []
            for node in self._order():
                try:
                    self._ensure_chain(node)
                    result = attempt(node)
                except _NodeFailure as exc:
                    if not isinstance(exc.error, ConfigurationError) or node.wrong_chain_id is None:
                        self._failed(node, exc.error)
                    failed.append(exc.error)
                    continue
                except RpcError as exc:
                    if exc.failure is FailureClass.TRANSIENT:
                        self._failed(node, exc)
                        failed.append(exc)
                        continue
                    self._succeeded(node)  # the node answered; the request was the problem
                    raise
                self._succeeded(node)
                return result
            errors += failed
            if not any(e.failure is FailureClass.TRANSIENT for e in failed):
                break  # no node failed in a way that another pass could cure
        config = [e for e in errors if isinstance(e, ConfigurationError)]
        if config and len(config) == len(errors):
            raise ConfigurationError("; ".join(dict.fromkeys(str(e) for e in config)))
        last = errors[-1] if errors else TransientError("no RPC node available")
        if isinstance(last, RpcError):
            raise last
        raise TransientError("; ".join(dict.fromkeys(str(e) for e in errors))) from last

    def _error(self, method: str, err: Any) -> RpcError:
        if not isinstance(err, dict):
            return RpcError(method, -1, f"malformed error {err!r:.100}")
        code = err.get("code", 0)
        if not isinstance(code, int):  # a lying node's code: keep the message, mark the code
            code = -1
        message, data = str(err.get("message", "")), err.get("data")
        reverted = code == 3 or "revert" in message.lower()
        if method in ("eth_call", "eth_estimateGas") and reverted:
            return RevertError(method, code, message, _revert_data(data), self._errors)
        if method == "eth_getLogs" and is_range_too_large(message):
            return RangeTooLarge(method, code, message, data)
        return RpcError(method, code, message, data)

    def _result(self, node: _Node, method: str, reply: Any) -> Any:
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise _NodeFailure(TransientError(f"{node.label}: malformed reply to {method}"))
        if "error" in reply:
            raise self._error(method, reply["error"])
        return reply["result"]

    # --- generic calls -----------------------------------------------------------------------

    @overload
    def request(self, method: str, params: Sequence[Any] = ()) -> Any: ...

    @overload
    def request(self, method: str, params: Sequence[Any], parse: Callable[[Any], T]) -> T: ...

    def request(
        self, method: str, params: Sequence[Any] = (), parse: Callable[[Any], Any] | None = None
    ) -> Any:
        """One JSON-RPC call with failover; returns ``parse(result)`` (default: the raw result).

        A result that ``parse`` cannot read (``MALFORMED``) is a malformed reply: that node fails
        and the next one is asked.
        """

        def attempt(node: _Node) -> Any:
            result = self._result(node, method, self._post(node, self._body(method, params)))
            if parse is None:
                return result
            try:
                return parse(result)
            except MALFORMED as exc:
                err = TransientError(f"{node.label}: malformed result of {method}: {exc}")
                raise _NodeFailure(err) from exc

        return self._with_failover(attempt)

    def batch(
        self, calls: Sequence[tuple[str, Sequence[Any]]], *, return_errors: bool = False
    ) -> list[Any]:
        """Many calls as JSON-RPC batches of at most ``max_batch``; results in call order.

        An item's JSON-RPC error is raised (the first one) unless ``return_errors``, which puts
        the ``RpcError`` in its place. Each chunk fails over as a whole.
        """
        results: list[Any] = []
        for start in range(0, len(calls), self.max_batch):
            results += self._batch_chunk(calls[start : start + self.max_batch])
        if not return_errors:
            for r in results:
                if isinstance(r, RpcError):
                    raise r
        return results

    def _batch_chunk(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        def attempt(node: _Node) -> list[Any]:
            bodies = [self._body(m, p) for m, p in calls]
            reply = self._post(node, bodies)
            if isinstance(reply, dict):  # the batch refused as a whole
                raise self._error("batch", reply.get("error"))
            by_id = {
                r["id"]: r for r in reply if isinstance(r, dict) and type(r.get("id")) is int
            }  # our ids are ints (not bools); any other id matches no call
            out: list[Any] = []
            for body, (method, _) in zip(bodies, calls, strict=True):
                item = by_id.get(body["id"])
                if item is None:
                    raise _NodeFailure(TransientError(f"{node.label}: batch reply lacks an item"))
                try:
                    out.append(self._result(node, method, item))
                except RpcError as exc:
                    out.append(exc)
            return out

        return self._with_failover(attempt)

    # --- typed helpers -----------------------------------------------------------------------

    def chain_id(self) -> int:
        return self.request("eth_chainId", [], _int)

    def block_number(self) -> int:
        return self.request("eth_blockNumber", [], _int)

    def get_block(self, block: BlockId) -> Block | None:
        """The block (without transactions), or None when the node has no such block yet."""
        return self.request("eth_getBlockByNumber", [_block_id(block), False], _maybe(_block))

    def get_block_by_hash(self, block_hash: str) -> Block | None:
        return self.request("eth_getBlockByHash", [block_hash, False], _maybe(_block))

    def get_blocks(self, numbers: Iterable[int]) -> list[Block | None]:
        """Many blocks by number in batches."""
        raws = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        try:
            return [None if r is None else _block(r) for r in raws]
        except MALFORMED as exc:
            raise TransientError(f"malformed block in a batch reply: {exc}") from exc

    def get_logs(
        self,
        address: str | Sequence[str],
        topics: Sequence[str | Sequence[str] | None],
        from_block: BlockId,
        to_block: BlockId,
    ) -> list[Log]:
        """Logs in ``[from_block, to_block]``; ``RangeTooLarge`` when the node refuses the range."""
        flt = {
            "address": address if isinstance(address, str) else list(address),
            "topics": list(topics),
            "fromBlock": _block_id(from_block),
            "toBlock": _block_id(to_block),
        }
        return list(self.request("eth_getLogs", [flt], lambda r: [_log(x) for x in r]))

    def call(self, tx: dict[str, Any], block: BlockId = "latest") -> bytes:
        """``eth_call``; a revert raises ``RevertError`` with the decoded reason."""
        return bytes(self.request("eth_call", [_tx_params(tx), _block_id(block)], _hex_bytes))

    def call_many(
        self, txs: Sequence[dict[str, Any]], block: BlockId = "latest"
    ) -> list[bytes | EvmError]:
        """``eth_call`` of each of ``txs`` in JSON-RPC batches; each item's answer or its own
        error (a revert is a ``RevertError``). A transport failure raises for the whole batch."""
        results = self.batch(
            [("eth_call", [_tx_params(tx), _block_id(block)]) for tx in txs], return_errors=True
        )
        out: list[bytes | EvmError] = []
        for result in results:
            if isinstance(result, EvmError):
                out.append(result)
                continue
            try:
                out.append(_hex_bytes(str(result)))
            except ValueError as exc:
                out.append(TransientError(f"malformed result of eth_call: {exc}"))
        return out

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        return self.request("eth_estimateGas", [_tx_params(tx)], _int)

    def fee_history(
        self, block_count: int, newest: BlockId = "latest", percentiles: Sequence[float] = ()
    ) -> FeeHistory:
        params = [hex(block_count), _block_id(newest), list(percentiles)]
        return self.request("eth_feeHistory", params, _fee_history)

    def max_priority_fee(self) -> int:
        return self.request("eth_maxPriorityFeePerGas", [], _int)

    def get_transaction_count(self, address: str, block: BlockId = "latest") -> int:
        return self.request("eth_getTransactionCount", [address, _block_id(block)], _int)

    def get_balance(self, address: str, block: BlockId = "latest") -> int:
        return self.request("eth_getBalance", [address, _block_id(block)], _int)

    def send_raw_transaction(self, raw_tx: bytes) -> str:
        """Broadcast a signed transaction; returns its hash. Rejections raise ``RpcError``
        (see ``RpcError.tx_rejection``)."""
        return str(self.request("eth_sendRawTransaction", ["0x" + raw_tx.hex()], _hash))

    def get_transaction_receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt, or None while the transaction is not mined (or was reorged out)."""
        return self.request("eth_getTransactionReceipt", [tx_hash], _maybe(_receipt))

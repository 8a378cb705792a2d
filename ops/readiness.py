"""``/readyz``: is every part of the daemon able to do its work right now?

    checker = ReadinessChecker(runtime, store, chains=["hyperevm"])
    verdict = checker.check()            # a Readiness; never takes much more than deadline_s
    verdict.ready, [(c.name, c.status) for c in verdict.components]

Components, each ``ok``, ``fail`` or ``unknown`` (unknown never makes the daemon unready):

- ``actors``: every name in the registry is running (a name down or gone fails).
- ``scheduler``: answers, and has halted no chain.
- ``listener:<chain>``: answers; not halted; head lag (``head - cursor`` of its state) at most
  ``max_head_lag``; the cursor moved within ``max_cursor_age_s`` if the head moved since (the age is
  measured from the first probe that saw this cursor). No head yet: unknown.
- ``signer:<chain>``: ``halted``, ``funded`` false or ``stuck`` above 0 fails; ``phase`` other
  than ``running`` (syncing) or keys absent: unknown; no signer registered: unknown.
- ``hyperliquid``: from ``price_cache``'s state: ``reachable`` false or ``breaker == "open"`` fails;
  absent: unknown.
- ``lmdb``: a write transaction commits (a key put and deleted in ``meta``; at most once per
  ``write_probe_every_s``, so a busy prober does not cost a sync per probe) and the map is below
  ``max_map_fill`` of its maximum size.

Each check runs in its own daemon thread with a deadline: a slow actor or a stuck disk makes its
component fail ("no answer"), it never hangs the probe, and a check still running from an earlier
probe is not started again.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ops.api_models import Component, Health, Readiness
from protocol.records import SchemaVersion
from storage import Store, Txn
from supervision import Runtime
from supervision.registry import Status

PROBE_KEY = b"ops.readyz.probe"
MAX_DETAIL = 300
MAX_LISTED = 10
SIGNER_KEYS = ("phase", "funded", "stuck", "in_flight", "queued", "nonce", "head")


@dataclass
class _CursorSeen:
    cursor: int
    since: float
    head: int


class ReadinessChecker:
    """Runs the checks; keeps only what it needs across probes (when each cursor last moved)."""

    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        chains: list[str],
        *,
        clock: Callable[[], float] = time.time,
        ask_timeout_s: float = 0.5,
        deadline_s: float = 2.0,
        max_head_lag: int = 100,
        max_cursor_age_s: float = 300.0,
        max_map_fill: float = 0.95,
        write_probe_every_s: float = 10.0,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.chains = list(chains)
        self.clock = clock
        self.ask_timeout_s = ask_timeout_s
        self.deadline_s = deadline_s
        self.max_head_lag = max_head_lag
        self.max_cursor_age_s = max_cursor_age_s
        self.max_map_fill = max_map_fill
        self.write_probe_every_s = write_probe_every_s
        self._written_at: float | None = None
        self._cursors: dict[str, _CursorSeen] = {}
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def checks(self) -> dict[str, Callable[[], Component]]:
        found: dict[str, Callable[[], Component]] = {
            "actors": self._actors,
            "scheduler": self._scheduler,
        }
        for chain in self.chains:
            found[f"listener:{chain}"] = functools.partial(self._listener, chain)
            found[f"signer:{chain}"] = functools.partial(self._signer, chain)
        found["hyperliquid"] = self._hyperliquid
        found["lmdb"] = self._lmdb
        return found

    def check(self) -> Readiness:
        """Run every check at once; answers within about ``deadline_s``."""
        results: dict[str, Component] = {}
        threads: dict[str, threading.Thread] = {}
        for name, fn in self.checks().items():
            with self._lock:
                previous = self._running.get(name)
                if previous is not None and previous.is_alive():
                    results[name] = _fail(name, "the previous check has not finished")
                    continue
                thread = threading.Thread(
                    target=_run, args=(name, fn, results), name=f"readyz:{name}", daemon=True
                )
                self._running[name] = thread
            threads[name] = thread
            thread.start()
        deadline = time.monotonic() + self.deadline_s
        for name, thread in threads.items():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                results[name] = _fail(name, f"no answer within {self.deadline_s:g} s")
        components = [results[name] for name in self.checks() if name in results]
        return Readiness(
            ready=all(c.status is not Health.FAIL for c in components), components=components
        )

    # --- the checks ----------------------------------------------------------------------

    def _actors(self) -> Component:
        entries = self.runtime.registry.entries()
        down = [
            e
            for e in entries
            if e.status is not Status.RUNNING or e.ref is None or not e.ref.is_alive()
        ]
        data: dict[str, Any] = {"registered": len(entries), "down": len(down)}
        if not down:
            return Component(name="actors", status=Health.OK, detail="all running", data=data)
        listed = "; ".join(
            f"{e.name} ({e.status.value}{': ' + e.last_error if e.last_error else ''})"
            for e in down[:MAX_LISTED]
        )
        more = f" and {len(down) - MAX_LISTED} more" if len(down) > MAX_LISTED else ""
        return _fail("actors", f"not running: {listed}{more}", data)

    def _scheduler(self) -> Component:
        state = self._state("scheduler")
        if state is None:
            return _fail("scheduler", "no scheduler registered")
        jobs = state.get("jobs", {}) if isinstance(state, Mapping) else {}
        data = {f"jobs_{k}": int(v) for k, v in dict(jobs).items()}
        halted = list(state.get("halted_chains", [])) if isinstance(state, Mapping) else []
        if halted:
            return _fail("scheduler", f"chains halted: {', '.join(map(str, halted))}", data)
        return Component(name="scheduler", status=Health.OK, data=data)

    def _listener(self, chain: str) -> Component:
        name = f"listener:{chain}"
        state = self._state(name)
        if state is None:
            return _fail(name, "no listener registered for this chain")
        if not isinstance(state, Mapping):
            return Component(name=name, status=Health.UNKNOWN, detail="state is not a mapping")
        head, cursor = state.get("head"), state.get("cursor")
        if state.get("halted"):
            return _fail(name, f"halted: {state['halted']}")
        if not isinstance(head, int) or not isinstance(cursor, int) or head <= 0:
            return Component(name=name, status=Health.UNKNOWN, detail="no head or cursor yet")
        now = self.clock()
        seen = self._cursors.get(chain)
        if seen is None or seen.cursor != cursor:
            seen = self._cursors[chain] = _CursorSeen(cursor=cursor, since=now, head=head)
        lag, age = head - cursor, max(0.0, now - seen.since)
        data = {"head": head, "cursor": cursor, "lag": lag, "cursor_age_s": round(age, 1)}
        if lag > self.max_head_lag:
            return _fail(name, f"head lag {lag} blocks exceeds {self.max_head_lag}", data)
        if age > self.max_cursor_age_s and head > seen.head:
            return _fail(
                name, f"cursor stuck at {cursor} for {age:.0f} s while the head moved", data
            )
        return Component(name=name, status=Health.OK, data=data)

    def _signer(self, chain: str) -> Component:
        name = f"signer:{chain}"
        state = self._state(name)
        if not isinstance(state, Mapping):
            detail = "no signer registered" if state is None else "state is not a mapping"
            return Component(name=name, status=Health.UNKNOWN, detail=detail)
        data = {k: state[k] for k in SIGNER_KEYS if k in state}
        data = {k: v if isinstance(v, int | float | bool) else str(v) for k, v in data.items()}
        stuck = state.get("stuck")
        if state.get("halted"):
            return _fail(name, f"halted: {state['halted']}", data)
        if state.get("funded") is False:
            return _fail(name, "the key's balance is too low to pay for gas", data)
        if isinstance(stuck, int) and stuck > 0:
            return _fail(name, f"{stuck} transaction(s) not making progress", data)
        if state.get("phase") != "running":
            detail = f"phase {state['phase']}" if "phase" in state else "not reported"
            return Component(name=name, status=Health.UNKNOWN, detail=detail, data=data)
        return Component(name=name, status=Health.OK, data=data)

    def _hyperliquid(self) -> Component:
        name = "hyperliquid"
        state = self._state("price_cache")
        if not isinstance(state, Mapping):
            return Component(name=name, status=Health.UNKNOWN, detail="no price cache state")
        breaker, reachable = state.get("breaker"), state.get("reachable")
        data = {"breaker": str(breaker) if breaker is not None else None}
        if reachable is False or breaker == "open":
            return _fail(name, "unreachable (circuit breaker open)", data)
        if reachable is None and breaker is None:
            return Component(name=name, status=Health.UNKNOWN, detail="not reported")
        return Component(name=name, status=Health.OK, data=data)

    def _lmdb(self) -> Component:
        def probe(txn: Txn) -> None:
            txn.put("meta", PROBE_KEY, SchemaVersion(version=0))
            txn.delete("meta", PROBE_KEY)

        now = self.clock()
        last = self._written_at
        if last is None or not 0 <= now - last < self.write_probe_every_s:
            self.store.write(probe)
            self._written_at = last = now
        stats = self.store.stats()
        fill = stats.used_bytes / stats.max_map_size
        data = {"used_bytes": stats.used_bytes, "max_map_size": stats.max_map_size}
        if fill >= self.max_map_fill:
            return _fail("lmdb", f"map {fill:.0%} full", data)
        detail = f"writable (written {now - last:.0f} s ago)" if now > last else "writable"
        return Component(name="lmdb", status=Health.OK, detail=detail, data=data)

    def _state(self, name: str) -> Any:
        """The actor's state, or ``None`` if no such name is registered."""
        if self.runtime.registry.entry(name) is None:
            return None
        return self.runtime.state(name, timeout=self.ask_timeout_s)


def _fail(name: str, detail: str, data: Mapping[str, Any] | None = None) -> Component:
    return Component(
        name=name, status=Health.FAIL, detail=detail[:MAX_DETAIL], data=dict(data or {})
    )


def _run(name: str, fn: Callable[[], Component], results: dict[str, Component]) -> None:
    try:
        results[name] = fn()
    except Exception as exc:
        results[name] = _fail(name, f"{type(exc).__name__}: {exc}")

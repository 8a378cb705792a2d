"""The daemon: config -> store -> clients -> supervisor tree (DESIGN.md section 3).

    daemon = Daemon(load_config("runner.toml")).start()   # ConfigurationError: exit status 2
    code = daemon.wait()                                   # until SIGTERM/SIGINT or root failure
    daemon.stop()                                          # reverse order, within the deadline

The tree::

    root                    one_for_one, 5 restarts in 30 s, else the daemon exits non-zero
    |- price_cache          permanent
    |- chain:<name>         one_for_one supervisor per chain
    |  |- signer:<name>     permanent; the only user of the key on that chain
    |  `- listener:<name>   permanent
    |- scheduler            permanent
    `- resolvers            dynamic, transient children, at most limits.max_resolvers
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.listener import Listener
from actors.price_cache import PriceCache
from actors.resolver import Resolver
from actors.scheduler import Scheduler
from actors.signer import Signer
from ops.api import create_app
from ops.config import Config, KeySource
from ops.http_server import HttpServer
from ops.metrics import renderer
from ops.process_tuning import limit_recursion
from ops.redact import MIN_SECRET_LEN, REDACTOR, redact
from ops.repl_server import ReplServer
from ops.repl_wire import socket_path_for
from protocol.supervision import ChildSpec, Intensity, RestartType, Strategy, SupervisorSpec
from sources.artifacts import all_abis
from sources.batcher import Batcher
from sources.evm import EvmClient
from sources.hyperliquid import HyperliquidClient, Timeouts
from sources.keys import KeyLoadError, SigningKey
from sources.oracle import OracleClient
from storage import Checkpoints, Store, Txn
from supervision import Clock, FaultPlan, Runtime, SupervisedActor, SystemClock

log = logging.getLogger(__name__)

ACTOR_TYPES: dict[str, type[SupervisedActor]] = {
    "price_cache": PriceCache,
    "signer": Signer,
    "listener": Listener,
    "scheduler": Scheduler,
    "resolver": Resolver,
}


def tree(config: Config) -> SupervisorSpec:
    """The supervisor tree for ``config``, as data."""
    limits, hl = config.limits, config.hyperliquid
    chains = tuple(
        ChildSpec(
            id=f"chain:{name}",
            actor="supervisor",
            supervisor=SupervisorSpec(
                strategy=Strategy.ONE_FOR_ONE,
                intensity=Intensity(max_restarts=5, period_s=30),
                children=(
                    ChildSpec(id=f"signer:{name}", actor="signer", args={"chain": name}),
                    ChildSpec(id=f"listener:{name}", actor="listener", args={"chain": name}),
                ),
            ),
        )
        for name in sorted(config.chains)
    )
    return SupervisorSpec(
        strategy=Strategy.ONE_FOR_ONE,
        intensity=Intensity(max_restarts=5, period_s=30),
        children=(
            ChildSpec(
                id="price_cache",
                actor="price_cache",
                args={
                    "weight_per_minute": hl.weight_per_minute,
                    "headroom_pct": hl.weight_headroom_pct,
                    "tolerance": hl.disagreement_tolerance,
                },
            ),
            *chains,
            ChildSpec(
                id="scheduler",
                actor="scheduler",
                args={
                    "settle_delay_s": limits.settle_delay_s,
                    "retry_base_s": limits.retry_base_s,
                    "retry_cap_s": limits.retry_cap_s,
                    "max_attempts": limits.max_attempts,
                    "max_age_s": limits.max_age_s,
                    "resolver_args": {"query_timeout_s": limits.data_timeout_s},
                },
            ),
            ChildSpec(
                id="resolvers",
                actor="supervisor",
                restart=RestartType.PERMANENT,
                supervisor=SupervisorSpec(
                    intensity=Intensity(max_restarts=max(10, limits.max_resolvers), period_s=10),
                    max_children=limits.max_resolvers,
                ),
            ),
        ),
    )


@dataclass
class Daemon:
    config: Config
    clock: Clock | None = None
    faults: FaultPlan | None = None
    runtime: Runtime | None = None
    store: Store | None = None
    repl: ReplServer | None = None
    http: HttpServer | None = None
    api_url: str = ""
    _clients: list[Any] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Daemon:
        """Open the store, verify every chain, start the tree and the operator surfaces;
        raises on configuration errors."""
        config = self.config
        limit_recursion()  # before any untrusted JSON is parsed: see ops.process_tuning
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config.data_dir.chmod(0o700)  # the REPL socket lives here: owner only
        if self.clock is None:
            self.clock = SystemClock(offset_s=config.clock_offset_s)
        if self.faults is None and config.api.repl_fault_injection:
            self.faults = FaultPlan()  # empty: the REPL's inject() adds its rules
            log.warning("fault injection is on (api.repl_fault_injection): not for production")
        self.store = Store.open(config.data_dir)
        try:
            extra = self._services(self.store)
            self.runtime = Runtime(
                tree(config),
                actor_types=ACTOR_TYPES,
                clock=self.clock,
                faults=self.faults,
                checkpoints=Checkpoints(self.store),
                extra=extra,
                redact=redact,
                pooled_threads=config.limits.resolver_threads,
            ).start()
            self._start_surfaces(self.runtime, self.store)
        except BaseException:
            self._stop_surfaces()
            if self.runtime is not None:
                self.runtime.stop(timeout=config.limits.shutdown_deadline_s)
            self._close_clients()
            self.store.close()
            raise
        log.info("daemon started: chains %s, data %s", sorted(config.chains), config.data_dir)
        return self

    def _start_surfaces(self, runtime: Runtime, store: Store) -> None:
        """The debug REPL on its Unix socket and, if enabled, the HTTP API with metrics."""
        api = self.config.api
        self.repl = ReplServer(
            runtime, store, socket_path_for(self.config.data_dir, api.repl_socket)
        )
        self.repl.start()
        if not api.enabled:
            return
        token = os.environ.get(api.token_env) or None
        secret = os.environ.get(api.webhook_secret_env) or None
        for value in (token, secret):
            if value is not None and len(value) >= MIN_SECRET_LEN:
                REDACTOR.add_secret(value)
        app = create_app(
            runtime,
            store,
            token=token,
            webhook_secret=secret,
            chains=sorted(self.config.chains),
            factories={name: c.factory for name, c in self.config.chains.items()},
            metrics_renderer=renderer(runtime, store),
            max_body_bytes=api.max_body_bytes,
            rate_limit_per_s=api.rate_limit_per_s,
            rate_limit_burst=api.rate_limit_burst,
            webhook_tolerance_s=api.webhook_tolerance_s,
        )
        self.http = HttpServer(app, host=api.host, port=api.port)
        self.api_url = self.http.start()
        log.info("HTTP API on %s", self.api_url)

    def _stop_surfaces(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.repl is not None:
            self.repl.stop()
            self.repl = None

    def _services(self, store: Store) -> dict[str, Any]:
        config = self.config
        keys = {name: _load_key(name, c.key) for name, c in config.chains.items()}
        for key in keys.values():
            key.register_secret(REDACTOR.add_secret)  # before anything can log it
        abis = all_abis()
        evms: dict[str, EvmClient] = {}
        for name, chain in config.chains.items():
            evm = EvmClient(
                chain.rpc_urls,
                chain.chain_id,
                chain.rpc_timeout_s,
                abis=abis,
                retries=chain.rpc_retries,
            )
            self._clients.append(evm)
            evm.verify()  # a node on another chain id is a configuration error
            evms[name] = evm
        hl = config.hyperliquid
        timeouts = Timeouts(connect_s=hl.timeout_s, read_s=hl.timeout_s, write_s=hl.timeout_s)
        clock = self.clock
        assert clock is not None

        def now_ms() -> int:
            return int(clock.now() * 1000)

        hl_clients = [
            HyperliquidClient(url, timeouts=timeouts, clock_ms=now_ms) for url in hl.base_urls
        ]
        self._clients.extend(hl_clients)
        oracles = {name: OracleClient(evms[name], c.oracle) for name, c in config.chains.items()}
        self._clients.extend(oracles.values())  # their read threads stop with the clients
        # the resolvers' checkpoints, group-committed on a thread of their own (ADR 0022)
        writes: Batcher[Callable[[Txn], object], object] = Batcher(
            store.write_many, max_batch=256, name="checkpoint-writes"
        )
        self._clients.append(writes)
        return {
            "store": store,
            "config": config,
            "chains": dict(config.chains),
            "evms": evms,
            "oracles": oracles,
            "writes": writes,
            "signer_keys": keys,
            "hl_clients": hl_clients,
        }

    def wait(self) -> int:
        """Block until ``stop_soon()`` (a signal) or the root's failure; the exit status."""
        assert self.runtime is not None
        while not self._stopping.wait(0.2):
            if self.runtime.failed.is_set():
                log.error("root supervisor failed: %s", self.runtime.failure)
                return 1
        return 0

    def stop_soon(self) -> None:
        """Ask ``wait`` to return (safe from a signal handler)."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop the tree in reverse order within the deadline, then close the store."""
        try:
            self._stop_surfaces()
            if self.runtime is not None:
                self.runtime.stop(timeout=self.config.limits.shutdown_deadline_s)
        finally:
            self._close_clients()
            if self.store is not None:
                self.store.close()

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


def _load_key(chain: str, source: KeySource) -> SigningKey:
    """The chain's key; a ``KeyLoadError`` names the setting (``chains.<chain>.key``)."""
    try:
        return SigningKey.load(source)
    except KeyLoadError as exc:
        raise KeyLoadError(f"chains.{chain}.key: {exc}") from None

"""The daemon's configuration: one TOML file, overridden by ``ORACLE_RUNNER_*`` variables.

    config = load_config("runner.toml")      # raises ConfigError listing every problem
    config.chains["hyperevm"].rpc_urls

Nested fields are overridden with ``__``: ``ORACLE_RUNNER_LIMITS__MAX_RESOLVERS=128``,
``ORACLE_RUNNER_CHAINS__HYPEREVM__CONFIRMATIONS=3``. Every field, its default and its variable
are listed in ``docs/configuration.md``. The private key is never in the file: it comes from an
encrypted keystore with a password file, or from the environment variable the chain names.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from protocol.spec import Address

ENV_PREFIX = "ORACLE_RUNNER_"


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` holds one ``path: message`` per error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class KeySource(Section):
    """Where a chain's signing key comes from: a keystore + password file, or an env variable."""

    keystore: Path | None = None
    """An encrypted JSON keystore (eth-account, scrypt or pbkdf2)."""
    password_file: Path | None = None
    """The keystore's password, alone in a file readable only by the runner."""
    env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """The name of an environment variable holding the key as 0x-hex."""

    @field_validator("env")
    @classmethod
    def _a_name_not_a_key(cls, value: str | None) -> str | None:
        # the pattern lets 64 upper-case hex digits through: a key pasted into the wrong field
        if value is not None and re.fullmatch(r"[0-9A-F]{64}", value):
            raise ValueError(
                "this looks like a private key (64 hex digits): give the name of the "
                "environment variable that holds it"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> KeySource:
        if (self.keystore is None) == (self.env is None):
            raise ValueError("set either keystore (with password_file) or env")
        if self.keystore is not None and self.password_file is None:
            raise ValueError("a keystore needs a password_file")
        return self


class ChainConfig(Section):
    rpc_urls: Annotated[list[str], Field(min_length=1)]
    """JSON-RPC endpoints, in order of preference; unhealthy ones are skipped for a while."""
    chain_id: Annotated[int, Field(gt=0)]
    """The chain id every endpoint must report; a node that differs is refused."""
    factory: Address
    """The MarketFactory whose MarketCreated logs are listened to."""
    oracle: Address
    """The SimpleOracle that commits and finalizes go to."""
    confirmations: Annotated[int, Field(ge=0, le=1000)] = 2
    """Blocks behind the head before logs are read and transactions count as confirmed."""
    start_block: Annotated[int, Field(ge=0)] = 0
    """Where a new data directory starts scanning."""
    key: KeySource
    """The signing key of the runner on this chain."""
    rpc_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    """Timeout of every JSON-RPC call."""
    rpc_retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Further passes over the endpoints when all failed transiently (a 5xx, a dropped
    connection, a timeout); a call then takes at most rpc_timeout_s x endpoints x (1 + this)."""
    poll_s: Annotated[float, Field(gt=0, le=600)] = 2.0
    """How often the listener and the signer look at the chain."""
    max_log_range: Annotated[int, Field(ge=1)] = 5_000
    """Largest eth_getLogs range; shrunk automatically when a node refuses it."""
    max_fee_gwei: Annotated[Decimal, Field(gt=0, decimal_places=9)] = Decimal(500)
    """Cap of maxFeePerGas; no attempt is signed above it (exact: at most 9 decimals)."""
    bump_after_blocks: Annotated[int, Field(ge=1)] = 3
    """Blocks without inclusion before a transaction is re-signed with higher fees."""
    gas_margin_pct: Annotated[int, Field(ge=0, le=500)] = 20
    """Added to every gas estimate."""
    bundle_max: Annotated[int, Field(ge=1, le=200)] = 20
    """Most commits (or finalizes) one transaction carries (``commitBatch``, all or nothing;
    ADR 0021); 1 sends each alone. A commit costs about 70,000 gas: keep
    ``bundle_max`` x 70,000 well under the chain's block gas limit."""


class HyperliquidConfig(Section):
    base_urls: Annotated[list[str], Field(min_length=1, max_length=2)] = [
        "https://api.hyperliquid.xyz"
    ]
    """The primary source, and optionally a fallback that is cross-checked."""
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    """Connect, read and write timeout of every request."""
    weight_per_minute: Annotated[int, Field(gt=0)] = 1200
    """Hyperliquid's request weight limit per minute and IP."""
    weight_headroom_pct: Annotated[int, Field(ge=0, lt=100)] = 10
    """Part of the weight limit left unused, so that the runner never earns a 429."""
    disagreement_tolerance: Annotated[str, Field(pattern=r"^\d+(\.\d+)?$")] = "0"
    """Largest relative difference between the sources that still counts as agreement."""


class LimitsConfig(Section):
    max_resolvers: Annotated[int, Field(ge=1, le=100_000)] = 256
    """Markets worked at once; due markets beyond it wait in due order."""
    resolver_threads: Annotated[int, Field(ge=0, le=4096)] = 64
    """Threads the resolvers run on (ADR 0015); 0: a thread for each resolver."""
    settle_delay_s: Annotated[float, Field(ge=0)] = 60.0
    """Seconds after a window's end before its market is evaluated (candles closed)."""
    retry_base_s: Annotated[float, Field(gt=0)] = 5.0
    """Backoff ceiling after a market's first transient failure, doubled at each further one
    (full jitter: the wait is uniform below the ceiling)."""
    retry_cap_s: Annotated[float, Field(gt=0)] = 300.0
    """Largest backoff ceiling."""
    max_attempts: Annotated[int, Field(ge=1)] = 8
    """Attempts before a market with transient failures goes to the dead-letter queue."""
    max_age_s: Annotated[float, Field(gt=0)] = 86_400.0
    """Seconds after a market's first attempt (its due time if it has none) before retrying
    stops, whatever the attempts."""
    data_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    """Seconds a resolver waits for the price cache's answer (queued behind the Hyperliquid
    weight budget included) before the attempt fails as transient and is retried."""
    shutdown_deadline_s: Annotated[float, Field(gt=0)] = 30.0
    """Time allowed to stop the tree on SIGTERM."""
    gc_young_threshold: Annotated[int, Field(ge=0)] = 200_000
    """New objects between young garbage collections of ``oracle-runner run`` (Python's default:
    700), whose heap is frozen once the tree is up; 0 leaves the collector alone (ADR 0009)."""


class ApiConfig(Section):
    host: str = "127.0.0.1"
    """Address of the HTTP API; loopback unless a proxy in front needs otherwise."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """Port of the HTTP API (0: any free port)."""
    token_env: str = "ORACLE_RUNNER_API_TOKEN"
    """Environment variable with the bearer token of mutating routes (unset: they are off)."""
    webhook_secret_env: str = "ORACLE_RUNNER_WEBHOOK_SECRET"
    """Environment variable with the HMAC secret of POST /webhooks/markets (unset: off)."""
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65536
    """Largest request body."""
    rate_limit_per_s: Annotated[float, Field(gt=0)] = 20.0
    """Requests per second per client address."""
    rate_limit_burst: Annotated[int, Field(ge=1)] = 40
    """Burst allowance per client address."""
    webhook_tolerance_s: Annotated[float, Field(gt=0, le=3600)] = 300.0
    """Largest difference between a webhook's timestamp and now."""
    enabled: bool = True
    """Serve the HTTP API at all."""
    repl_socket: Path | None = None
    """Unix socket of the debug REPL (default: repl.sock in the data directory)."""
    repl_fault_injection: bool = False
    """Let the REPL's ``inject(...)`` add fault rules to the live actors (raise, drop, delay
    their messages): for rehearsing failures on a test deployment, never in production."""


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    data_dir: Path = Path("data")
    """The LMDB data directory; one daemon per directory."""
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    """Level of the JSON logs on stderr."""
    chains: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], ChainConfig] = {}
    """One table per chain, by the name used in market keys (``[chains.hyperevm]``)."""
    hyperliquid: HyperliquidConfig = HyperliquidConfig()
    limits: LimitsConfig = LimitsConfig()
    api: ApiConfig = ApiConfig()
    clock_offset_s: float = 0.0
    """Shifts the daemon's clock, to replay recorded data on a devnet whose chain runs at the
    same offset (the demo). Leave it 0 anywhere real."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment overrides the file (passed as init values)
        return env_settings, init_settings


def _problems(exc: ValidationError) -> list[str]:
    found = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "(top level)"
        found.append(f"{path}: {error['msg']}")
    return found


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; every problem is reported at once in one ``ConfigError``."""
    try:
        # every TOML float as the decimal it spells (a fee cap is money: never a binary float)
        raw: dict[str, Any] = tomllib.loads(
            Path(path).read_text(encoding="utf-8"), parse_float=Decimal
        )
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    try:
        return Config(**raw)
    except ValidationError as exc:
        raise ConfigError(_problems(exc)) from exc

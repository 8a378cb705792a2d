"""The daemon's configuration: one TOML file, overridden by ``ORACLE_RUNNER_*`` variables.

    config = load_config("runner.toml")      # raises ConfigError listing every problem
    config.chains["hyperevm"].rpc_urls

Nested fields are overridden with ``__``: ``ORACLE_RUNNER_LIMITS__MAX_RESOLVERS=128``,
``ORACLE_RUNNER_CHAINS__HYPEREVM__CONFIRMATIONS=3``. Every field, its default and its variable
are listed in ``docs/configuration.md``. The private key is never in the file: it comes from an
encrypted keystore with a password file, or from the environment variable the chain names.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from protocol.spec import Address

ENV_PREFIX = "ORACLE_RUNNER_"


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` holds one ``path: message`` per error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeySource(Section):
    """Where a chain's signing key comes from: a keystore + password file, or an env variable."""

    keystore: Path | None = None
    password_file: Path | None = None
    env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")

    @model_validator(mode="after")
    def _one_source(self) -> KeySource:
        if (self.keystore is None) == (self.env is None):
            raise ValueError("set either keystore (with password_file) or env")
        if self.keystore is not None and self.password_file is None:
            raise ValueError("a keystore needs a password_file")
        return self


class ChainConfig(Section):
    rpc_urls: Annotated[list[str], Field(min_length=1)]
    chain_id: Annotated[int, Field(gt=0)]
    factory: Address
    oracle: Address
    confirmations: Annotated[int, Field(ge=0, le=1000)] = 2
    start_block: Annotated[int, Field(ge=0)] = 0
    key: KeySource
    rpc_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    poll_s: Annotated[float, Field(gt=0, le=600)] = 2.0
    max_log_range: Annotated[int, Field(ge=1)] = 5_000
    max_fee_gwei: Annotated[float, Field(gt=0)] = 500.0
    bump_after_blocks: Annotated[int, Field(ge=1)] = 3
    gas_margin_pct: Annotated[int, Field(ge=0, le=500)] = 20


class HyperliquidConfig(Section):
    base_urls: Annotated[list[str], Field(min_length=1, max_length=2)] = [
        "https://api.hyperliquid.xyz"
    ]
    """The primary source, and optionally a fallback that is cross-checked."""
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    weight_per_minute: Annotated[int, Field(gt=0)] = 1200
    weight_headroom_pct: Annotated[int, Field(ge=0, lt=100)] = 10
    disagreement_tolerance: Annotated[str, Field(pattern=r"^\d+(\.\d+)?$")] = "0"
    """Largest relative difference between the sources that still counts as agreement."""


class LimitsConfig(Section):
    max_resolvers: Annotated[int, Field(ge=1, le=100_000)] = 256
    settle_delay_s: Annotated[float, Field(ge=0)] = 60.0
    retry_base_s: Annotated[float, Field(gt=0)] = 5.0
    retry_cap_s: Annotated[float, Field(gt=0)] = 300.0
    max_attempts: Annotated[int, Field(ge=1)] = 8
    max_age_s: Annotated[float, Field(gt=0)] = 86_400.0
    shutdown_deadline_s: Annotated[float, Field(gt=0)] = 30.0


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    token_env: str = "ORACLE_RUNNER_API_TOKEN"
    webhook_secret_env: str = "ORACLE_RUNNER_WEBHOOK_SECRET"
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65536
    rate_limit_per_s: Annotated[float, Field(gt=0)] = 20.0
    rate_limit_burst: Annotated[int, Field(ge=1)] = 40
    webhook_tolerance_s: Annotated[float, Field(gt=0, le=3600)] = 300.0
    enabled: bool = True
    repl_socket: Path | None = None


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Path("data")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    chains: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], ChainConfig] = {}
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
        raw: dict[str, Any] = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    try:
        return Config(**raw)
    except ValidationError as exc:
        raise ConfigError(_problems(exc)) from exc

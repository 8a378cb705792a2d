"""Generates ``docs/configuration.md`` from the configuration models: every field, its default,
its environment variable and its description. ``python -m ops.config_doc`` rewrites the file; a
test fails when the committed file differs from what this module generates."""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ops.config import ENV_PREFIX, ChainConfig, Config

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

HEADER = """# Configuration

One TOML file, given as `oracle-runner run --config FILE`, validated at start: every problem is
reported at once with its field path, and the process exits with status 2. Any field can be
overridden by an environment variable: `ORACLE_RUNNER_` and the path in capitals joined by `__`
(a chain's fields: `ORACLE_RUNNER_CHAINS__<NAME>__<FIELD>`). The private key is never in the file.

```toml
data_dir = "/var/lib/oracle-runner"

[chains.hyperevm]
rpc_urls = ["https://rpc.example/evm", "https://backup.example/evm"]
chain_id = 999
factory = "0x..."
oracle = "0x..."
key = { keystore = "/etc/oracle-runner/key.json", password_file = "/etc/oracle-runner/key.pass" }

[hyperliquid]
base_urls = ["https://api.hyperliquid.xyz"]
```

This page is generated from `ops/config.py` by `python -m ops.config_doc`.
"""


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    if isinstance(info.default, BaseModel):
        return "(table)"
    value = info.default if info.default_factory is None else info.default_factory()  # type: ignore[call-arg]
    return f"`{value}`" if value not in ("", None, {}) else "—"


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("pathlib.", "").replace("Annotated", "")
    if typing.get_origin(annotation) is typing.Annotated:
        text = _type(typing.get_args(annotation)[0])
    return text


def _rows(model: type[BaseModel], path: str, env: str) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        field_path = f"{path}.{name}" if path else name
        field_env = f"{env}__{name.upper()}" if env else f"{ENV_PREFIX}{name.upper()}"
        nested = _model(info.annotation)
        description = (info.description or "").replace("\n", " ").replace("|", "\\|")
        if nested is not None:
            if description:
                rows.append(f"| `{field_path}` | table | | | {description} |")
            rows.extend(_rows(nested, field_path, field_env))
            continue
        rows.append(
            f"| `{field_path}` | {_type(info.annotation)} | {_default(info)} | `{field_env}` | "
            f"{description} |"
        )
    return rows


def render() -> str:
    table = ["| field | type | default | environment | meaning |", "|---|---|---|---|---|"]
    top = [n for n in Config.model_fields if n != "chains"]
    for name in top:
        info = Config.model_fields[name]
        nested = _model(info.annotation)
        if nested is None:
            table.extend(r for r in _rows(Config, "", "") if r.startswith(f"| `{name}`"))
        else:
            table.extend(_rows(nested, name, f"{ENV_PREFIX}{name.upper()}"))
    chain = ["| field | type | default | environment | meaning |", "|---|---|---|---|---|"]
    chain.extend(_rows(ChainConfig, "chains.<name>", f"{ENV_PREFIX}CHAINS__<NAME>"))
    return (
        HEADER
        + "\n## Fields\n\n"
        + "\n".join(table)
        + "\n\n## Each chain (`[chains.<name>]`)\n\n"
        + "\n".join(chain)
        + "\n"
    )


def main() -> int:
    DOC.write_text(render())
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

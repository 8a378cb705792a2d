"""Market keys and discoveries for the scheduler, metrics and REPL tests."""

from __future__ import annotations

from protocol.messages import MarketDiscovered
from protocol.spec import MarketKey, MarketSpec

H = "0x" + "00" * 32
T_END = 1_700_000_000


def key(n: int, chain: str = "dev") -> MarketKey:
    """The ``n``-th test market of ``chain``."""
    return MarketKey(chain=chain, address=f"0x{n:040x}")


def discovered(k: MarketKey, t_end: int = T_END) -> MarketDiscovered:
    """A ``MarketDiscovered`` for ``k``: a TOKEN_PRICE snapshot at ``t_end``."""
    spec = MarketSpec.model_validate(
        {
            "title": "t",
            "subject": {"kind": "TOKEN_PRICE", "token_identifier": "BTC", "value_decimals": 2},
            "predicate": {"op": "GT", "threshold": 1},
            "window": {"kind": "SNAPSHOT_AT", "t_start": t_end, "t_end": t_end},
            "cutoff_time": t_end,
            "creator": "0x" + "11" * 20,
        }
    )
    return MarketDiscovered(key=k, spec=spec, block_number=1, block_hash=H, tx_hash=H, log_index=0)

"""What the runner's key mined on a devnet, call by call: the check behind "at most one commit
and one finalize per market, no nonce gap" when one transaction may carry many calls.

    mined = runner_calls(net)
    assert mined.per_market("commit") == dict.fromkeys(markets, 1)
    assert mined.transactions == signer_nonce and not mined.reverted
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from web3 import Web3

from devnet.environment import Devnet
from protocol.spec import MarketKey
from sources.bundles import COMMIT, FINALIZE, carrier_rule, rule_for


@dataclass
class RunnerCalls:
    transactions: int = 0
    """Transactions from the runner's address, mined."""
    nonces: list[int] = field(default_factory=list)
    reverted: int = 0
    """Of those, with status 0 (each would be a commit or finalize mined in vain)."""
    carriers: int = 0
    """Of those, carrying several calls (``commitBatch``, ``finalizeBatch``)."""
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    """``(action, market)`` -> how many mined calls made it, successful or not."""
    other: int = 0
    """Transactions that are no oracle call (fillers, say)."""

    def per_market(self, action: str) -> dict[str, int]:
        return {market: n for (act, market), n in self.calls.items() if act == action}


def runner_calls(net: Devnet) -> RunnerCalls:
    """Scan every block for the runner's transactions and decode their oracle calls."""
    w3, sender = net.w3, net.deployment.resolver.lower()
    out = RunnerCalls()
    for number in range(w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if str(tx["from"]).lower() != sender:
                continue
            out.transactions += 1
            out.nonces.append(int(tx["nonce"]))
            if w3.eth.get_transaction_receipt(tx["hash"])["status"] != 1:
                out.reverted += 1
            data = bytes(tx["input"])
            rule = carrier_rule(data)
            calls = rule.members(data) if rule is not None else [data]
            out.carriers += rule is not None
            for call in calls:
                if rule_for(call) is None or str(tx["to"]).lower() != net.deployment.oracle.lower():
                    out.other += 1
                    continue
                action = {COMMIT: "commit", FINALIZE: "finalize"}[call[:4]]
                market = Web3.to_checksum_address(call[4 + 12 : 4 + 32])
                out.calls[(action, market)] += 1
    return out


def assert_once_each(mined: RunnerCalls, keys: list[MarketKey]) -> None:
    """One commit and one finalize mined per market, nothing reverted, no nonce skipped."""
    once = dict.fromkeys((k.address for k in keys), 1)
    assert mined.per_market("commit") == once
    assert mined.per_market("finalize") == once
    assert mined.reverted == 0 and mined.other == 0
    assert sorted(mined.nonces) == list(range(mined.transactions))

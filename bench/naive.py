"""The baseline of ``bench burst``: a plain sequential resolver, as a user would write one.

For each market, in turn: fetch the data from the Hyperliquid API (the same requests and paging
the runner makes), evaluate it, hash the proof, then sign ``commit`` with eth-account, send it
through web3.py and wait for its receipt. No actors, no batching, no concurrency.
"""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account
from web3 import Web3

from protocol.evaluation import evaluate, next_page, plan
from protocol.proof import build_proof, data_hash
from protocol.spec import MarketKey, MarketSpec
from sources.hyperliquid import HyperliquidClient

COMMIT_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "commit",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "market", "type": "address"},
            {"name": "outcome", "type": "uint8"},
            {"name": "dataHash", "type": "bytes32"},
        ],
        "outputs": [],
    }
]


def resolve_all(
    w3: Web3,
    oracle: str,
    private_key: str,
    hl_url: str,
    now_ms: int,
    markets: list[tuple[MarketKey, MarketSpec]],
) -> list[float]:
    """Commit every market in turn; the seconds each commit took from the start."""
    account = Account.from_key(private_key)
    contract = w3.eth.contract(address=Web3.to_checksum_address(oracle), abi=COMMIT_ABI)
    nonce = w3.eth.get_transaction_count(account.address)
    began = time.perf_counter()
    done: list[float] = []
    with HyperliquidClient(hl_url, clock_ms=lambda: now_ms) as client:
        for key, spec in markets:
            pages = []
            for request in plan(spec, now_ms).requests:
                pages += client.fetch_pages(request, next_page)
            result = evaluate(spec, pages)
            digest = data_hash(build_proof(spec, pages, result))
            tx = contract.functions.commit(key.address, result.outcome, digest).build_transaction(
                {
                    "from": account.address,
                    "nonce": nonce,
                    "gas": 200_000,
                    "maxFeePerGas": 10**11,
                    "maxPriorityFeePerGas": 10**9,
                }
            )
            signed = account.sign_transaction(tx)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
            if receipt["status"] != 1:
                raise RuntimeError(f"commit of {key} reverted")
            nonce += 1
            done.append(time.perf_counter() - began)
    return done

"""The baseline of ``bench burst``: a plain sequential resolver, as a user would write one.

For each market, in turn: fetch the data from the Hyperliquid API (the same requests and paging
the runner makes), evaluate it, hash the proof, then sign ``commit`` with eth-account, send it
through web3.py and wait for its receipt. No actors, no batching, no concurrency.
"""

from __future__ import annotations

import re
import time
from typing import Any

import requests
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import Nonce, TxParams, Wei

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


def _send_and_wait(w3: Web3, raw: bytes, tx_hash: bytes, tries: int = 3) -> Any:
    """Send ``raw`` and wait for its receipt; a dropped connection is retried, as a careful
    user's script would (the node may have taken the transaction before it dropped)."""
    for attempt in range(tries):
        try:
            try:
                w3.eth.send_raw_transaction(raw)
            except Web3RPCError as exc:  # "already known" after an answer lost on the way
                if not attempt or not re.search(r"known|nonce too low", str(exc)):
                    raise
            return w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=60)
        except requests.exceptions.ConnectionError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def resolve_all(
    w3: Web3,
    oracle: str,
    private_key: str,
    hl_url: str,
    now_ms: int,
    markets: list[tuple[MarketKey, MarketSpec]],
    done: list[float] | None = None,
    budget_s: float = float("inf"),
) -> list[float]:
    """Commit every market in turn; the seconds each commit took from the start (also
    appended to ``done`` as they happen, so a caller keeps them if a later market fails)."""
    account = Account.from_key(private_key)
    contract = w3.eth.contract(address=Web3.to_checksum_address(oracle), abi=COMMIT_ABI)
    nonce = int(w3.eth.get_transaction_count(account.address))
    began = time.perf_counter()
    done = [] if done is None else done
    with HyperliquidClient(hl_url, clock_ms=lambda: now_ms) as client:
        for key, spec in markets:
            if time.perf_counter() - began > budget_s:
                break  # the caller scales what was timed
            pages = []
            for request in plan(spec, now_ms).requests:
                pages += client.fetch_pages(request, next_page)
            result = evaluate(spec, pages)
            digest = data_hash(build_proof(spec, pages, result))
            params: TxParams = {
                "from": account.address,
                "nonce": Nonce(nonce),
                "gas": 200_000,
                "maxFeePerGas": Wei(10**11),
                "maxPriorityFeePerGas": Wei(10**9),
            }
            tx = contract.functions.commit(key.address, result.outcome, digest).build_transaction(
                params
            )
            signed = account.sign_transaction(tx)
            receipt = _send_and_wait(w3, signed.raw_transaction, signed.hash)
            if receipt["status"] != 1:
                raise RuntimeError(f"commit of {key} reverted")
            nonce += 1
            done.append(time.perf_counter() - began)
    return done

"""A node that answers JSON-RPC with nonsense: every answer becomes a clear ``EvmError`` naming
what was wrong, never a ``TypeError`` or ``ValueError`` out of the client (which would crash an
actor into a restart loop instead of a counted, retried RPC failure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ops.process_tuning import limit_recursion
from sources.evm import EvmClient, EvmError, RpcError, TransientError
from tests.integration.scripted_node import Script

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def reply(body: Any, **fields: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": body["id"], **fields}


def each(body: Any, **fields: Any) -> list[dict[str, Any]]:
    return [reply(item, **fields) for item in body]


HASH = "0x" + "ab" * 32
BLOCK = {
    "number": "0x1",
    "hash": HASH,
    "parentHash": HASH,
    "timestamp": "0x10",
    "gasLimit": "0x1c9c380",
    "gasUsed": "0x0",
}
RECEIPT = {
    "transactionHash": HASH,
    "status": "0x1",
    "blockNumber": "0x1",
    "blockHash": HASH,
    "gasUsed": "0x5208",
}
LOG = {
    "address": "0x" + "00" * 20,
    "topics": [HASH],
    "data": "0x",
    "blockNumber": "0x1",
    "blockHash": HASH,
    "transactionHash": HASH,
    "logIndex": "0x0",
}


def test_the_well_formed_answers_of_the_cases_parse(node: Callable[[Script], str]) -> None:
    """The cases below break one field of these; as they are, they parse."""
    answers = {
        "eth_getBlockByNumber": BLOCK,
        "eth_getTransactionReceipt": RECEIPT,
        "eth_getLogs": [LOG],
    }
    with EvmClient(
        [node(lambda b: reply(b, result=answers[b["method"]]))], 31337, timeout_s=2.0
    ) as c:
        assert c.get_block("latest") is not None
        assert c.get_transaction_receipt(HASH) is not None
        assert len(c.get_logs("0x" + "00" * 20, [], 0, 1)) == 1


CASES: dict[str, tuple[Script, Callable[[EvmClient], Any], str]] = {
    "an error whose code is not a number": (
        lambda b: reply(b, error={"code": "oops", "message": "x"}),
        lambda c: c.block_number(),
        "x",
    ),
    "an error that is a string": (
        lambda b: reply(b, error="broken"),
        lambda c: c.block_number(),
        "malformed error",
    ),
    "neither result nor error": (
        lambda b: {"jsonrpc": "2.0", "id": b["id"]},
        lambda c: c.block_number(),
        "malformed reply to eth_blockNumber",
    ),
    "a JSON string for a reply": (
        lambda b: "hello",
        lambda c: c.block_number(),
        "malformed reply",
    ),
    "batch items with unhashable ids": (
        lambda b: [{"jsonrpc": "2.0", "id": [i["id"]], "result": "0x1"} for i in b],
        lambda c: c.batch([("eth_blockNumber", []), ("eth_blockNumber", [])]),
        "batch reply lacks an item",
    ),
    "batch items that are not objects": (
        lambda b: [1, "two", None],
        lambda c: c.batch([("eth_blockNumber", []), ("eth_blockNumber", [])]),
        "batch reply lacks an item",
    ),
    "a batch refused with an error whose code is null": (
        lambda b: {"jsonrpc": "2.0", "id": None, "error": {"code": None, "message": "too big"}},
        lambda c: c.batch([("eth_blockNumber", []), ("eth_blockNumber", [])]),
        "too big",
    ),
    "a block without its fields, in a batch": (
        lambda b: each(b, result={"number": "0x1"}),
        lambda c: c.get_blocks([1, 2]),
        "malformed block",
    ),
    "a block number that is not hex": (
        lambda b: reply(b, result={"number": "zz", "hash": "0x" + "ab" * 32}),
        lambda c: c.get_block("latest"),
        "malformed result of eth_getBlockByNumber",
    ),
    "an eth_call result that is a number": (
        lambda b: reply(b, result=5),
        lambda c: c.call({"to": "0x" + "00" * 20}),
        "malformed result of eth_call",
    ),
    "a block hash that is a number": (
        lambda b: reply(b, result={**BLOCK, "hash": 7}),
        lambda c: c.get_block("latest"),
        "malformed result of eth_getBlockByNumber",
    ),
    "a block quantity that is a float": (
        lambda b: reply(b, result={**BLOCK, "timestamp": 1.5}),
        lambda c: c.get_block("latest"),
        "malformed result of eth_getBlockByNumber",
    ),
    "a receipt whose block hash is short": (
        lambda b: reply(b, result={**RECEIPT, "blockHash": "0x12"}),
        lambda c: c.get_transaction_receipt("0x" + "cd" * 32),
        "malformed result of eth_getTransactionReceipt",
    ),
    "a log whose topic is not a hash": (
        lambda b: reply(b, result=[{**LOG, "topics": ["0x01"]}]),
        lambda c: c.get_logs("0x" + "00" * 20, [], 0, 1),
        "malformed result of eth_getLogs",
    ),
    "a log whose address is not one": (
        lambda b: reply(b, result=[{**LOG, "address": "0x12"}]),
        lambda c: c.get_logs("0x" + "00" * 20, [], 0, 1),
        "malformed result of eth_getLogs",
    ),
    "a log whose address is a list": (
        lambda b: reply(b, result=[{**LOG, "address": ["0x" + "00" * 20]}]),
        lambda c: c.get_logs("0x" + "00" * 20, [], 0, 1),
        "malformed result of eth_getLogs",
    ),
    "a block that is a string": (
        lambda b: reply(b, result="0x1"),
        lambda c: c.get_block("latest"),
        "malformed result of eth_getBlockByNumber",
    ),
    "a receipt that is a list": (
        lambda b: reply(b, result=[RECEIPT]),
        lambda c: c.get_transaction_receipt("0x" + "cd" * 32),
        "malformed result of eth_getTransactionReceipt",
    ),
    "blocks that are strings, in a batch": (
        lambda b: each(b, result="0x1"),
        lambda c: c.get_blocks([1, 2]),
        "malformed block",
    ),
    "a reply nested deeper than any parser goes": (
        lambda b: b"[" * 100_000 + b"]" * 100_000,
        lambda c: c.block_number(),
        "malformed reply",
    ),
    "a negative quantity": (
        lambda b: reply(b, result="-0x1"),
        lambda c: c.block_number(),
        "malformed result of eth_blockNumber",
    ),
    "a fee history without base fees": (
        lambda b: reply(b, result={"oldestBlock": "0x1", "baseFeePerGas": [], "gasUsedRatio": []}),
        lambda c: c.fee_history(1, "latest", [50.0]),
        "malformed result of eth_feeHistory",
    ),
    "logs that are not a list": (
        lambda b: reply(b, result={"not": "a list"}),
        lambda c: c.get_logs("0x" + "00" * 20, [], 0, 1),
        "malformed result of eth_getLogs",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_answer_is_a_clear_rpc_error(node: Callable[[Script], str], case: str) -> None:
    limit_recursion()  # as Daemon.start does: a deeply nested reply then raises, not crashes
    script, use, says = CASES[case]
    with (
        EvmClient([node(script)], 31337, timeout_s=2.0, retries=0) as client,
        pytest.raises(EvmError) as err,
    ):
        use(client)
    assert isinstance(err.value, TransientError | RpcError)
    assert says in str(err.value)


def test_call_many_keeps_a_malformed_item_in_its_place(node: Callable[[Script], str]) -> None:
    script = lambda b: [reply(b[0], result="0x01"), reply(b[1], result="not-hex")]  # noqa: E731
    with EvmClient([node(script)], 31337, timeout_s=2.0, retries=0) as client:
        first, second = client.call_many([{"to": "0x" + "00" * 20}, {"to": "0x" + "00" * 20}])
    assert first == b"\x01"
    assert isinstance(second, TransientError) and "malformed result of eth_call" in str(second)

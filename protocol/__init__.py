"""The pure domain of the oracle runner: specs, messages, codec.

No IO, and nothing of the project is imported here.

Importing the package registers every message and record kind with ``protocol.codec.CODEC``.
"""

from protocol import hyperliquid, messages, override, records, tx_records

__all__ = ["hyperliquid", "messages", "override", "records", "tx_records"]

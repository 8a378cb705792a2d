"""The pure domain of the oracle runner: specs, messages, codec. No IO; imports nothing of the project.

Importing the package registers every message and record kind with ``protocol.codec.CODEC``.
"""

from protocol import hyperliquid, messages, records

__all__ = ["hyperliquid", "messages", "records"]

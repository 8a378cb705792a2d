"""Checking that every response handed to a registry entry is one it asked for.

    >>> from protocol.hyperliquid import InfoRequest, RawResponse
    >>> r = RawResponse(request=InfoRequest(body={"type": "fundingHistory", "coin": "BTC",
    ...                 "startTime": 0}), url="u", fetched_at_ms=0, status=200, body=b"[]")
    >>> len(belonging([r], "fundingHistory", {"coin": "BTC"}))
    1

A response of another type or for another coin, user or interval is a transient error naming it
(a caller mistake: evaluating from responses that the plan did not ask for is never silent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from protocol.evaluation.errors import transient
from protocol.evaluation.jsonbody import describe
from protocol.evaluation.paging import params_of
from protocol.hyperliquid import RawResponse


def belonging(
    responses: Sequence[RawResponse], request_type: str, params: Mapping[str, object]
) -> list[RawResponse]:
    """All ``responses``, after checking that each is of ``request_type`` with ``params``."""
    for i, response in enumerate(responses):
        request = response.request
        if request.type != request_type:
            raise transient(f"response {i} ({describe(request)}) is not a {request_type} response")
        actual = params_of(request)
        for key, value in params.items():
            found = actual.get(key)
            if isinstance(found, str) and isinstance(value, str) and key == "user":
                found = found.lower()
            if found != value:
                raise transient(
                    f"response {i} ({describe(request)}) has {key}={found!r}, "
                    f"this market needs {value!r}"
                )
    if not responses:
        raise transient(f"no {request_type} responses")
    return list(responses)

"""Errors of an HTTP data source, classified the way the scheduler retries them.

- ``TransientSourceError``: the source may answer later (timeouts, connection errors, 5xx, 429);
  raised only once the client's own retry budget is spent. Retry later with backoff.
- ``PermanentSourceError``: asking the same again at once will not help (4xx other than 429,
  a malformed body, paging that does not advance). Dead-letter with the message as the reason.
- ``MalformedResponse``: the one error for a body that is not JSON, has the wrong shape or lacks a
  field; its message names the request type and what was wrong. The client does not repeat the
  request, but the price cache reports it as transient: a body cut short or a proxy's error page
  passes, and a body that stays malformed ends in the dead-letter queue once the market's retry
  budget is spent (ADR 0012).

Every error carries ``request_type`` so that logs and metrics can group by it::

    >>> err = MalformedResponse("candleSnapshot", "body is not JSON")
    >>> str(err)
    'candleSnapshot: malformed response: body is not JSON'
    >>> isinstance(err, PermanentSourceError)
    True
"""

from __future__ import annotations


class SourceError(Exception):
    """Base of every error a data source client raises."""

    def __init__(self, request_type: str, message: str) -> None:
        super().__init__(f"{request_type}: {message}")
        self.request_type = request_type


class TransientSourceError(SourceError):
    """The source failed in a way that may pass; the client's retry budget is exhausted."""

    def __init__(self, request_type: str, message: str, *, attempts: int) -> None:
        super().__init__(request_type, message)
        self.attempts = attempts


class PermanentSourceError(SourceError):
    """The source refused the request or answered nonsense; retrying will not help."""

    def __init__(self, request_type: str, message: str, *, status: int | None = None) -> None:
        super().__init__(request_type, message)
        self.status = status


class MalformedResponse(PermanentSourceError):
    """A 2xx body that is not JSON, has the wrong shape, or lacks a field."""

    def __init__(self, request_type: str, what: str) -> None:
        super().__init__(request_type, f"malformed response: {what}")
        self.what = what


class PagingError(PermanentSourceError):
    """Paging did not advance, or did not finish within the page bound."""

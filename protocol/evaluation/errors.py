"""The one error evaluation raises, classified the way the scheduler needs it.

    >>> err = EvaluationError("no 1h candles for BTC in [0, 3600000)", permanent=True)
    >>> err.permanent, str(err)
    (True, 'no 1h candles for BTC in [0, 3600000)')

``permanent=True``: retrying cannot help (unsupported subject, no data for the window, data that
ends before the window end). ``permanent=False``: a later attempt may succeed (a body that does not
parse, a response fetched before the window closed, responses that leave a gap).
"""

from __future__ import annotations


class EvaluationError(Exception):
    """Why a market cannot be evaluated from the responses at hand."""

    def __init__(self, reason: str, *, permanent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent

    def __repr__(self) -> str:
        return f"EvaluationError({self.reason!r}, permanent={self.permanent})"


def transient(reason: str) -> EvaluationError:
    """An error worth retrying later."""
    return EvaluationError(reason, permanent=False)


def permanent(reason: str) -> EvaluationError:
    """An error no retry can fix."""
    return EvaluationError(reason, permanent=True)

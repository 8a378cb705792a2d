"""The subject registry: which entry measures a (subject kind, metric, window kind) triple.

A new metric is one line here (plus its entry, if no existing one fits)::

    >>> from protocol.spec import SubjectKind, WindowKind
    >>> REGISTRY[(SubjectKind.HL_METRIC, "volume", WindowKind.WINDOW_SUM)].name
    'candle_volume_sum'

Any triple not listed is a permanent failure naming what is supported, never a guess.
"""

from __future__ import annotations

from protocol.evaluation import candles, fills, funding
from protocol.evaluation.errors import permanent
from protocol.evaluation.model import Method
from protocol.evaluation.open_interest import OPEN_INTEREST
from protocol.spec import Subject, SubjectKind, Window, WindowKind

HL = SubjectKind.HL_METRIC
SNAPSHOT, SUM, COUNT = WindowKind.SNAPSHOT_AT, WindowKind.WINDOW_SUM, WindowKind.WINDOW_COUNT

REGISTRY: dict[tuple[SubjectKind, str, WindowKind], Method] = {
    (SubjectKind.TOKEN_PRICE, "", SNAPSHOT): candles.CLOSE,
    (HL, "volume", SUM): candles.VOLUME,
    (HL, "volume", COUNT): candles.TRADES,
    (HL, "funding", SNAPSHOT): funding.LAST,
    (HL, "funding", SUM): funding.SUM,
    (HL, "funding", COUNT): funding.COUNT,
    (HL, "open_interest", SNAPSHOT): OPEN_INTEREST,
    (HL, "user_volume", SUM): fills.NOTIONAL,
    (HL, "user_volume", COUNT): fills.COUNT,
    (HL, "user_pnl", SUM): fills.CLOSED_PNL,
}


def subject_name(subject: Subject) -> str:
    """``TOKEN_PRICE`` or ``HL_METRIC:volume``."""
    if subject.kind is SubjectKind.TOKEN_PRICE:
        return str(subject.kind)
    return f"{subject.kind}:{subject.metric_id}"


def method_for(subject: Subject, window: Window) -> Method:
    """The entry for this subject and window; a permanent ``EvaluationError`` if there is none."""
    method = REGISTRY.get((subject.kind, subject.metric_id, window.kind))
    if method is None:
        supported = sorted(
            f"{kind}{':' + metric if metric else ''}/{wkind}" for kind, metric, wkind in REGISTRY
        )
        raise permanent(
            f"unsupported subject and window: {subject_name(subject)} with {window.kind} "
            f"(supported: {', '.join(supported)})"
        )
    return method

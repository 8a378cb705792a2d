"""Structured logs: one JSON object per line, correlation ids, secrets redacted.

Set up once at start; then log as usual and tag work with the market or intent it is about::

    setup_logging("INFO", sys.stderr)                  # level from config.log_level
    log = logging.getLogger("actors.resolver")
    with correlate(market="hyperevm:0xAbc…"):
        with correlate(intent="hyperevm:0xo:0xm:commit"):
            log.info("commit sent", extra={"tx": {"hash": "0x…"}})

writes::

    {"ts": "2024-05-01T12:00:00.123Z", "level": "INFO", "logger": "actors.resolver",
     "msg": "commit sent", "thread": "Resolver-7", "market": "hyperevm:0xAbc…",
     "intent": "hyperevm:0xo:0xm:commit", "extra": {"tx": {"hash": "0x…"}}}

plus ``exc`` (the formatted traceback) and ``stack`` when present. The handler's
``RedactionFilter`` renders the message with its arguments and replaces every registered secret
(``ops.redact.REDACTOR``) in it, in the traceback, in ``stack_info`` and in every ``extra`` value,
nested or not, before anything is written; the formatter redacts the finished line once more.
Correlation ids live in a ``contextvars.ContextVar``: they follow the code that runs inside the
``with`` block, in its own thread, and never leak into another actor's thread.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from ops.redact import REDACTOR, Redactor
from supervision.actor import message_ids

_EMPTY: Mapping[str, str] = MappingProxyType({})
_CORRELATION: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "oracle_runner_correlation", default=_EMPTY
)
_FIELDS = ("ts", "level", "logger", "msg", "thread", "exc", "stack", "extra")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "correlation",
    "taskName",
}
_MARK = "_oracle_runner_handler"


# --- correlation ids -----------------------------------------------------------------------


@contextmanager
def correlate(**ids: object) -> Iterator[Mapping[str, str]]:
    """Tag every log record made inside the block with ``ids`` (added to the outer ones).

    ``None`` values are skipped, so ``correlate(market=key, intent=None)`` is fine.
    """
    for name in ids:
        if name in _FIELDS:
            raise ValueError(f"correlation id {name!r} would shadow a log field")
    merged = {**_CORRELATION.get(), **{k: str(v) for k, v in ids.items() if v is not None}}
    token = _CORRELATION.set(MappingProxyType(merged))
    try:
        yield _CORRELATION.get()
    finally:
        _CORRELATION.reset(token)


def correlation() -> dict[str, str]:
    """The correlation ids in effect here and now."""
    return dict(_CORRELATION.get())


class CorrelationFilter(logging.Filter):
    """Copies the current correlation ids into ``record.correlation`` (once per record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation"):
            record.correlation = {**message_ids(), **_CORRELATION.get()}
        return True


# --- redaction -----------------------------------------------------------------------------


class RedactionFilter(logging.Filter):
    """Rewrites a record so that no registered secret survives in any of its texts.

    The message is rendered with its arguments first (``record.args`` becomes empty), so a
    secret passed as a ``%s`` argument, as bytes, or inside a dict is caught too. The traceback
    is formatted here and kept, redacted, in ``record.exc_text`` (``exc_info`` is dropped, so no
    later formatter can render the raw exception again).
    """

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        try:
            message = record.getMessage()
        except Exception as exc:  # bad %-args must not lose the record
            message = f"{record.msg!r} % {record.args!r} (unformattable: {exc})"
        record.msg, record.args = r.redact(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = r.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = r.redact(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD:
                record.__dict__[name] = r.redact_value(value)
        correlation = getattr(record, "correlation", None)
        if isinstance(correlation, dict):
            record.correlation = r.redact_value(correlation)
        return True


# --- JSON lines ----------------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return repr(bytes(value))
    if isinstance(value, set | frozenset):
        return sorted(map(str, value))
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; keys in ``_FIELDS`` order, correlation ids after ``thread``."""

    def __init__(self, redactor: Redactor | None = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=UTC)
        line: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "thread": record.threadName,
        }
        line.update(getattr(record, "correlation", None) or {})
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extra:
            line["extra"] = extra
        text = json.dumps(line, default=_plain, ensure_ascii=False)
        return self.redactor.redact(text) if self.redactor is not None else text


# --- set-up --------------------------------------------------------------------------------


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value


QUIET_LIBRARIES = ("httpx", "httpcore", "uvicorn.access")


def setup_logging(
    level: str | int = "INFO", stream: TextIO | None = None, redactor: Redactor = REDACTOR
) -> logging.Handler:
    """Send the root logger's records, as redacted JSON lines, to ``stream`` (stderr).

    Calling it again replaces the handler it installed before (never adds a second one).
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(CorrelationFilter())
    handler.addFilter(RedactionFilter(redactor))
    handler.setFormatter(JsonFormatter(redactor))
    root.addHandler(handler)
    root.setLevel(_level(level))
    for chatty in QUIET_LIBRARIES:  # one line per HTTP request is noise, not an event
        logging.getLogger(chatty).setLevel(max(logging.WARNING, _level(level)))
    return handler

"""The redaction filter against every way a key can reach a log line (DESIGN.md section 8.6)."""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.logs import RedactionFilter, setup_logging
from ops.redact import MASK, Redactor, redact

pytestmark = pytest.mark.timeout(60)

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KEY_BYTES = bytes.fromhex(KEY)
TOKEN = "api-token-Zq8vX2"


def leaked(text: str) -> list[str]:
    """Every spelling of the key or token found in ``text`` (case-insensitive)."""
    lower = text.lower()
    forms = {
        "hex": KEY,
        "bytes repr": repr(KEY_BYTES)[2:-1].lower(),
        "base64": base64.b64encode(KEY_BYTES).decode().lower(),
        "decimal": str(int(KEY, 16)),
        "token": TOKEN.lower(),
    }
    found = [name for name, form in forms.items() if form in lower]
    # a key cut by JSON escaping of its repr (backslashes doubled) still counts as leaked
    if repr(KEY_BYTES)[2:-1].replace("\\", "\\\\").lower() in lower:
        found.append("escaped bytes repr")
    return found


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.add_secret("0x" + KEY)
    r.add_secret(TOKEN)
    return r


@pytest.fixture
def logged(redactor: Redactor) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    level = logging.getLogger().level
    handler = setup_logging("DEBUG", out, redactor)
    try:
        yield logging.getLogger("test.redact"), out
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)


def mixed_case(text: str) -> str:
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(text))


def test_every_way_of_logging_the_key_is_redacted(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = logged
    key0x = "0x" + KEY
    log.info("key in the message " + key0x)
    log.info("key in a %%-arg %s and %r", key0x, KEY.upper())
    log.info(f"key in an f-string {KEY}")
    log.info("key split case %s", mixed_case(key0x))
    log.info("key split in two args %s%s", KEY[:32], KEY[32:])
    log.info("key as bytes %s / %r", KEY_BYTES, KEY_BYTES)
    log.info(f"key as bytes in an f-string {KEY_BYTES!r}, as int {int(KEY, 16)}")
    log.info("key in a dict arg %(k)s", {"k": {"nested": key0x}})
    log.info("key in extra", extra={"ctx": {"a": [{"b": key0x}], "raw": KEY_BYTES}})
    log.info("token header Authorization: Bearer %s", TOKEN)
    try:
        try:
            raise KeyError(KEY_BYTES)
        except KeyError as inner:
            raise ValueError(f"cannot sign with {key0x}") from inner
    except ValueError:
        log.exception("signing failed for %s", KEY.upper())
    log.warning("with a stack", stack_info=True, extra={"key": key0x})
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 12
    assert leaked(text) == []
    assert all(MASK in line["msg"] or "extra" in line or "stack" in line for line in lines)
    failure = lines[10]
    assert "ValueError: cannot sign with [REDACTED]" in failure["exc"]
    assert "KeyError" in failure["exc"]  # the chained cause is there, redacted too
    assert lines[8]["extra"]["ctx"]["a"][0]["b"] == MASK


def test_the_filter_covers_records_built_by_hand(redactor: Redactor) -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "k=%s", (KEY,), None, sinfo=f"Stack: {KEY}"
    )
    record.exc_text = f"Traceback: {KEY}"
    record.__dict__["payload"] = {"deep": [[[KEY_BYTES]]]}
    assert RedactionFilter(redactor).filter(record) is True
    payload = record.__dict__["payload"]
    texts = [record.getMessage(), record.exc_text, record.stack_info, str(payload)]
    assert leaked("\n".join(map(str, texts))) == []


def test_a_real_exception_logged_without_a_filter_would_leak() -> None:
    """The control: without the filter the same record does contain the key."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    log = logging.getLogger("test.redact.control")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.error("key %s", KEY)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert leaked(out.getvalue()) == ["hex"]


def test_other_hex_strings_stay_readable(redactor: Redactor) -> None:
    tx_hash = "0x" + "ab" * 32
    assert redactor.redact(f"tx {tx_hash} mined") == f"tx {tx_hash} mined"
    assert redactor.redact(f"key {KEY}!") == f"key {MASK}!"


def test_credentials_are_hidden_even_when_not_registered() -> None:
    r = Redactor()
    assert r.redact("Authorization: Bearer abc.def-ghi") == f"Authorization: Bearer {MASK}"
    assert r.redact("{'authorization': 'Basic dXNlcjpwdw=='}") == (
        f"{{'authorization': 'Basic {MASK}'}}"
    )
    assert r.redact("curl -H 'bearer xyz123456'") == f"curl -H 'bearer {MASK}'"
    assert r.redact("no credentials here") == "no credentials here"


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        Redactor().add_secret("abc")


def test_raw_bytes_can_be_registered_and_values_are_redacted_deeply(redactor: Redactor) -> None:
    r = Redactor()
    r.add_secret(KEY_BYTES)
    value = {"a": (KEY, {KEY_BYTES}), KEY: 1, "n": int(KEY, 16), "ok": 3}
    cleaned = r.redact_value(value)
    assert leaked(repr(cleaned)) == []
    assert cleaned["ok"] == 3


def test_module_function_uses_the_process_redactor() -> None:
    from ops.redact import REDACTOR

    REDACTOR.add_secret("module-level-" + KEY[:20])
    try:
        assert redact("x module-level-" + KEY[:20].upper()) == f"x {MASK}"
    finally:
        REDACTOR.clear()


@given(
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    flips=st.lists(st.booleans(), min_size=64, max_size=64),
    prefix=st.sampled_from(["", "0x", "0X"]),
)
def test_any_casing_in_any_surrounding_is_redacted(
    before: str, after: str, flips: list[bool], prefix: str
) -> None:
    r = Redactor([KEY])
    cased = "".join(c.upper() if f else c for c, f in zip(KEY, flips, strict=True))
    out = r.redact(before + prefix + cased + after)
    assert KEY not in out.lower()


def test_setup_logging_writes_to_stderr_by_default(
    capsys: pytest.CaptureFixture[str], redactor: Redactor
) -> None:
    level = logging.getLogger().level
    handler = setup_logging("INFO", redactor=redactor)
    try:
        assert getattr(handler, "stream", None) is sys.stderr
        logging.getLogger("t").info("k %s", KEY)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
    err = capsys.readouterr().err
    assert MASK in err
    assert leaked(err) == []

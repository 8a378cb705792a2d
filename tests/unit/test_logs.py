"""JSON log lines, correlation ids per market and intent, levels."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ops.logs import correlate, correlation, setup_logging
from ops.redact import Redactor

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _root_level() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = setup_logging("INFO", stream, Redactor())
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_the_standard_fields(out: io.StringIO) -> None:
    logging.getLogger("ops.test").info("hello %s", "world", extra={"n": 3, "b": b"\x00"})
    [line] = lines(out)
    assert line["level"] == "INFO"
    assert line["logger"] == "ops.test"
    assert line["msg"] == "hello world"
    assert line["ts"].endswith("Z")
    assert line["extra"] == {"n": 3, "b": "b'\\x00'"}
    assert "exc" not in line


def test_multi_line_messages_stay_one_line(out: io.StringIO) -> None:
    logging.getLogger("ops.test").warning("a\nb")
    assert out.getvalue().count("\n") == 1
    assert lines(out)[0]["msg"] == "a\nb"


def test_exceptions_are_in_exc(out: io.StringIO) -> None:
    try:
        raise RuntimeError("bad thing")
    except RuntimeError:
        logging.getLogger("ops.test").exception("failed")
    [line] = lines(out)
    assert line["level"] == "ERROR"
    assert line["exc"].startswith("Traceback")
    assert line["exc"].endswith("RuntimeError: bad thing")


def test_correlation_ids_nest_and_unwind(out: io.StringIO) -> None:
    log = logging.getLogger("ops.test")
    with correlate(market="dev:0x01"):
        log.info("a")
        with correlate(intent="dev:0xo:0x01:commit", other=None):
            assert correlation() == {"market": "dev:0x01", "intent": "dev:0xo:0x01:commit"}
            log.info("b")
        log.info("c")
    log.info("d")
    a, b, c, d = lines(out)
    assert a["market"] == "dev:0x01" and "intent" not in a
    assert (b["market"], b["intent"]) == ("dev:0x01", "dev:0xo:0x01:commit")
    assert "intent" not in c and c["market"] == "dev:0x01"
    assert "market" not in d


def test_correlation_ids_do_not_leak_between_threads(out: io.StringIO) -> None:
    log = logging.getLogger("ops.test")
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        inside.wait(5)
        log.info("other thread")
        release.set()

    thread = threading.Thread(target=other)
    thread.start()
    with correlate(market="dev:0x02"):
        inside.set()
        release.wait(5)
    thread.join(5)
    [line] = lines(out)
    assert line["msg"] == "other thread" and "market" not in line


def test_correlation_names_cannot_shadow_fields() -> None:
    with pytest.raises(ValueError, match="shadow"), correlate(msg="x"):
        pass


def test_levels_come_from_configuration(out: io.StringIO) -> None:
    log = logging.getLogger("ops.test")
    log.debug("hidden")
    log.info("shown")
    assert [line["msg"] for line in lines(out)] == ["shown"]
    stream = io.StringIO()
    handler = setup_logging("debug", stream, Redactor())
    try:
        log.debug("now shown")
    finally:
        logging.getLogger().removeHandler(handler)
    assert [line["msg"] for line in lines(stream)] == ["now shown"]


def test_setup_twice_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("INFO", first, Redactor())
    handler = setup_logging("INFO", second, Redactor())
    try:
        logging.getLogger("ops.test").info("once")
    finally:
        logging.getLogger().removeHandler(handler)
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging("LOUD", io.StringIO(), Redactor())


def test_bad_format_arguments_do_not_lose_the_record(out: io.StringIO) -> None:
    logging.getLogger("ops.test").info("%d items", "many")
    [line] = lines(out)
    assert "unformattable" in line["msg"]


def test_lines_logged_while_an_actor_handles_a_message_carry_its_market_and_intent() -> None:
    import io
    import json as _json
    from typing import Any as _Any

    from protocol.messages import TxFailed
    from protocol.spec import MarketKey
    from protocol.supervision import ChildSpec, SupervisorSpec
    from supervision import ManualClock, Runtime, SupervisedActor

    class Talker(SupervisedActor):
        def handle(self, message: _Any) -> _Any:
            logging.getLogger("talker").warning("handling %s", message.kind)

    stream = io.StringIO()
    setup_logging("INFO", stream)
    key = MarketKey(chain="dev", address="0x" + "ab" * 20)
    tree = SupervisorSpec(children=(ChildSpec(id=f"resolver:{key}", actor="talker"),))
    with Runtime(tree, actor_types={"talker": Talker}, clock=ManualClock()) as rt:
        rt.ask(f"resolver:{key}", TxFailed(intent_id="dev:o:m:commit", reason="r", permanent=False))
    lines = [_json.loads(line) for line in stream.getvalue().splitlines()]
    (line,) = [x for x in lines if x["logger"] == "talker"]
    assert line["actor"] == f"resolver:{key}"
    assert line["intent"] == "dev:o:m:commit"

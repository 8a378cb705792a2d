"""The HTTP API over HTTP, on a real runtime (real scheduler, real LMDB), via ``HttpServer``."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import httpx
import pytest

from ops.api import OPENAPI_PATH, render_openapi
from protocol.hyperliquid import InfoRequest, RawResponse
from protocol.messages import StopChild
from protocol.proof import Proof, canonical_bytes, data_hash_hex
from protocol.records import AuditEntry, Resolution, Stage
from protocol.spec import MarketKey
from tests.integration.api_harness import (
    CHAIN,
    FAKE_PRIVATE_KEY,
    TOKEN,
    Boom,
    api_daemon,
    market_key,
    market_log,
    spec,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def path(key: object, suffix: str = "") -> str:
    chain, address = str(key).split(":")
    return f"/markets/{chain}/{address}{suffix}"


def audit_actions(d: object, key: object) -> list[tuple[str, dict[str, str]]]:
    store = d.store  # type: ignore[attr-defined]
    return [
        (e.action, dict(e.detail))
        for _, e in store.items("audit", expect=AuditEntry)
        if e.subject == str(key)
    ]


# --- health and metrics ----------------------------------------------------------------------


def test_livez_readyz_and_metrics_when_healthy(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        assert d.client.get("/livez").json() == {"status": "ok", "detail": ""}
        ready = d.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        components = {c["name"]: c for c in ready.json()["components"]}
        assert components["actors"]["status"] == "ok"
        assert components["scheduler"]["status"] == "ok"
        assert components[f"listener:{CHAIN}"]["status"] == "ok"
        assert components[f"listener:{CHAIN}"]["data"]["lag"] == 2
        assert components[f"signer:{CHAIN}"]["status"] == "unknown"  # no signer in this tree
        assert components["hyperliquid"]["status"] == "unknown"
        assert components["lmdb"]["status"] == "ok"
        metrics = d.client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert b"oracle_runner_up 1" in metrics.content


def test_readyz_is_503_while_an_actor_is_down(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        assert d.client.get("/readyz").status_code == 200
        d.rt.tell("probe", Boom())
        d.rt.wait_for(lambda: not d.rt.alive("probe"), timeout=5)
        ready = d.client.get("/readyz")
        assert ready.status_code == 503
        actors = next(c for c in ready.json()["components"] if c["name"] == "actors")
        assert actors["status"] == "fail"
        assert "probe" in actors["detail"] and "probe killed by the test" in actors["detail"]
        assert d.client.get("/livez").status_code == 200  # alive, just not ready


def test_metrics_without_a_renderer_is_404(tmp_path: Path) -> None:
    with api_daemon(tmp_path, metrics_renderer=None) as d:
        answer = d.client.get("/metrics")
        assert answer.status_code == 404
        assert answer.json()["error"] == "metrics are not configured"


# --- reading markets -------------------------------------------------------------------------


def test_list_filter_and_page_markets(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        keys = d.seed(5)
        dead = market_key(99)
        d.dead_market(dead)
        everything = d.client.get("/markets").json()
        assert [m["key"] for m in everything["markets"]] == sorted(str(k) for k in [*keys, dead])
        assert everything["next"] is None
        assert everything["markets"][0]["title"] == "BTC above 300"

        first = d.client.get("/markets", params={"limit": 2, "state": "waiting"}).json()
        assert [m["key"] for m in first["markets"]] == [str(k) for k in keys[:2]]
        rest = d.client.get(
            "/markets", params={"limit": 10, "state": "waiting", "after": first["next"]}
        ).json()
        assert [m["key"] for m in rest["markets"]] == [str(k) for k in keys[2:]]
        assert rest["next"] is None

        dead_only = d.client.get("/markets", params={"state": "dead"}).json()["markets"]
        assert [m["key"] for m in dead_only] == [str(dead)]
        assert d.client.get("/markets", params={"chain": "other"}).json()["markets"] == []

        bad = d.client.get("/markets", params={"state": "bogus"})
        assert bad.status_code == 422 and bad.json()["field"] == "state"
        bad = d.client.get("/markets", params={"limit": 0})
        assert bad.status_code == 422 and bad.json()["field"] == "limit"


def test_one_market_and_the_dead_letter_queue(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        (key,) = d.seed(1)
        dead = market_key(99)
        d.dead_market(dead)

        one = d.client.get(path(key)).json()
        assert one["key"] == str(key)
        assert one["spec"]["title"] == "BTC above 300"
        assert one["job"]["state"] == "waiting" and one["job"]["attempts"] == 0
        assert one["resolution"] is None
        assert [a["action"] for a in one["audit"]] == ["discovered"]
        # an address in lower case finds the same market
        assert d.client.get(path(key).lower()).json()["key"] == str(key)

        dlq = d.client.get("/dlq").json()
        assert [(e["key"], e["reason"], e["failure"]) for e in dlq["entries"]] == [
            (str(dead), "no data for the window", "permanent")
        ]
        missing = d.client.get(path(market_key(12345)))
        assert missing.status_code == 404 and missing.json()["field"] == "address"
        bad = d.client.get("/markets/dev/0x1234")
        assert bad.status_code == 422 and bad.json()["field"] == "address"


def test_proof_as_json_and_as_raw_bytes(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        (key,) = d.seed(1)
        response = RawResponse(
            request=InfoRequest(body={"type": "candleSnapshot", "req": {"coin": "BTC"}}),
            url="https://api.hyperliquid.xyz/info",
            fetched_at_ms=1_700_000_100_000,
            status=200,
            body=b'[{"c": "301.25"}]\xff',  # not UTF-8: must still render
        )
        proof = Proof(
            spec=spec(),
            responses=(response,),
            rule={"method": "close", "interval": "1m"},
            value="301.25",
            scaled=30125,
            outcome=1,
        )
        hash_hex = data_hash_hex(proof)
        d.store.put("proofs", key.db_key(), proof)
        resolution = Resolution(
            key=key, stage=Stage.COMMITTED, value="301.25", scaled=30125, outcome=1,
            data_hash=hash_hex, commit_tx="0x" + "77" * 32, commit_time=1_700_000_200,
        )  # fmt: skip
        d.store.put("resolutions", key.db_key(), resolution)

        doc = d.client.get(path(key, "/proof")).json()
        assert doc["data_hash"] == hash_hex == doc["committed_hash"]
        assert doc["proof"]["scaled"] == 30125 and doc["proof"]["outcome"] == 1
        body = base64.b64decode(doc["proof"]["responses"][0]["body_base64"])
        assert body == response.body

        raw = d.client.get(path(key, "/proof"), params={"format": "raw"})
        assert raw.headers["content-type"] == "application/octet-stream"
        assert raw.content == canonical_bytes(proof)
        assert raw.headers["x-data-hash"] == hash_hex
        by_accept = d.client.get(
            path(key, "/proof"), headers={"Accept": "application/octet-stream"}
        )
        assert by_accept.content == raw.content

        market = d.client.get(path(key)).json()
        assert market["resolution"]["stage"] == "COMMITTED"
        assert market["resolution"]["data_hash"] == hash_hex
        assert d.client.get(path(market_key(2), "/proof")).status_code == 404


# --- operator actions ------------------------------------------------------------------------


def test_operator_actions_need_the_token_and_are_audited(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        (key,) = d.seed(1)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = d.client.post(path(key, "/pause"), headers=headers)
            assert refused.status_code == 401
            assert refused.json()["field"] == "authorization"
            assert refused.headers["www-authenticate"] == "Bearer"
        assert d.job_state(key) == "waiting"
        assert [a for a, _ in audit_actions(d, key)] == ["discovered"]

        paused = d.client.post(
            path(key, "/pause"), headers=d.auth(), json={"operator": "ana", "reason": "checking"}
        )
        assert paused.status_code == 200, paused.text
        assert paused.json() == {"key": str(key), "action": "pause", "state": "paused"}
        assert d.job_state(key) == "paused"
        assert audit_actions(d, key)[-1] == ("pause", {"operator": "ana", "reason": "checking"})

        again = d.client.post(path(key, "/pause"), headers=d.auth())
        assert again.status_code == 409
        assert "paused" in again.json()["error"]

        unpaused = d.client.post(path(key, "/unpause"), headers=d.auth())
        assert unpaused.json()["state"] == "waiting"
        assert audit_actions(d, key)[-1] == ("unpause", {"operator": "api"})
        assert d.client.post(path(key, "/resolve-now"), headers=d.auth()).status_code == 200
        assert d.client.post(path(key, "/retry"), headers=d.auth()).status_code == 409
        cancelled = d.client.post(path(key, "/cancel"), headers=d.auth())
        assert cancelled.json()["state"] == "cancelled"

        unknown = d.client.post(path(market_key(4242), "/cancel"), headers=d.auth())
        assert unknown.status_code == 404


def test_retry_revives_a_dead_market(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        dead = market_key(99)
        d.dead_market(dead)
        retried = d.client.post(path(dead, "/retry"), headers=d.auth())
        assert retried.status_code == 200 and retried.json()["state"] == "waiting"
        assert ("retry", {"operator": "api"}) in audit_actions(d, dead)
        assert d.client.get("/dlq").json()["entries"] == []


def test_override_needs_an_outcome_and_a_reason(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        (key,) = d.seed(1)
        url = path(key, "/override")
        for body, field in (
            ({"outcome": 1}, "reason"),
            ({"outcome": 1, "reason": "   "}, "reason"),
            ({"reason": "oracle outage"}, "outcome"),
            ({"outcome": 2, "reason": "oracle outage"}, "outcome"),
            ({"outcome": 1, "reason": "x", "extra": True}, "extra"),
        ):
            answer = d.client.post(url, headers=d.auth(), json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["field"] == field, answer.json()
        no_body = d.client.post(url, headers=d.auth())
        assert no_body.status_code == 422 and no_body.json()["field"] is not None
        not_json = d.client.post(
            url, headers={**d.auth(), "Content-Type": "application/json"}, content=b"{oops"
        )
        assert not_json.status_code == 422 and not_json.json()["field"] == "body"

        done = d.client.post(
            url, headers=d.auth(), json={"outcome": 0, "reason": "source outage", "operator": "bo"}
        )
        assert done.status_code == 200, done.text
        job = d.client.get(path(key)).json()["job"]
        assert (job["override_outcome"], job["override_reason"]) == (0, "source outage")
        assert audit_actions(d, key)[-1] == (
            "override",
            {"operator": "bo", "reason": "source outage", "outcome": "0"},
        )


def test_mutating_routes_are_disabled_without_a_configured_token(tmp_path: Path) -> None:
    with api_daemon(tmp_path, token=None) as d:
        (key,) = d.seed(1)
        for headers in ({}, {"Authorization": "Bearer anything"}):
            answer = d.client.post(path(key, "/cancel"), headers=headers)
            assert answer.status_code == 503
            assert "no API token" in answer.json()["error"]
        assert d.job_state(key) == "waiting"


def test_without_a_scheduler_acts_are_503_and_nothing_changes(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        (key,) = d.seed(1)
        d.rt.ask("root", StopChild(child_id="scheduler"))
        refused = d.client.post(path(key, "/pause"), headers=d.auth())
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert "scheduler did not answer" in refused.json()["error"]
        hooked = d.post_webhook(market_log("0x" + "5e" * 20))
        assert hooked.status_code == 503
        assert d.client.get("/readyz").status_code == 503
        assert d.job_state(key) == "waiting"
        assert d.client.get(path(key)).status_code == 200  # reads need no actor


# --- webhooks --------------------------------------------------------------------------------


def test_a_signed_webhook_creates_a_job_once(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        market = "0x" + "5e" * 20
        first = d.post_webhook(market_log(market))
        assert first.status_code == 200, first.text
        (entry,) = first.json()["markets"]
        assert entry["detail"] == "new"
        key = entry["key"]
        assert d.job_state(MarketKey.parse(key)) == "waiting"
        discovered = [detail for action, detail in audit_actions(d, key) if action == "discovered"]
        assert discovered == [{"via": "webhook", "block": "42"}]

        again = d.post_webhook([market_log(market)])
        assert again.json()["markets"] == [{"key": key, "detail": "known"}]
        goldsky_topics = market_log(market)
        goldsky_topics["topics"] = ",".join(goldsky_topics["topics"])
        assert d.post_webhook(goldsky_topics).json()["markets"][0]["detail"] == "known"


def test_webhook_signatures_and_timestamps_are_checked(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        log = market_log("0x" + "5e" * 20)
        wrong = d.post_webhook(log, secret="not-the-secret")
        assert wrong.status_code == 401 and wrong.json()["error"] == "bad signature"
        stale = d.post_webhook(log, timestamp=int(d.now[0]) - 301)
        assert stale.status_code == 401 and stale.json()["field"] == "x-timestamp"
        future = d.post_webhook(log, timestamp=int(d.now[0]) + 301)
        assert future.status_code == 401
        unsigned = d.client.post("/webhooks/markets", json=log)
        assert unsigned.status_code == 401
        # a signature over other bytes than those sent
        body = json.dumps(log).encode()
        from ops.auth import sign_webhook

        headers = sign_webhook("hook-secret-0c1d2e3f", body + b" ", int(d.now[0]))
        tampered = d.client.post("/webhooks/markets", content=body, headers=headers)
        assert tampered.status_code == 401
        assert d.client.get("/markets").json()["markets"] == []


def test_malformed_webhooks_are_422_naming_the_problem(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        market = "0x" + "5e" * 20
        good = market_log(market)
        cases = [
            (market_log(market, chain="nope"), "chain", "not configured"),
            (market_log(market, address="0x" + "01" * 20), "address", "not the factory"),
            (market_log(market, data="0x1234"), "data", "not an ABI-encoded"),
            (market_log(market, topics=good["topics"][:1]), "topics", "not a MarketCreated"),
            ({**good, "block_hash": "0x12"}, "block_hash", "pattern"),
            ({k: v for k, v in good.items() if k != "log_index"}, "log_index", "required"),
            ([good, market_log(market, data="0x")], "[1].data", "not an ABI-encoded"),
            ([], "body", "list"),
            ("just a string", "body", "log object"),
        ]
        for payload, field, words in cases:
            answer = d.post_webhook(payload)
            assert answer.status_code == 422, (payload, answer.text)
            assert answer.json()["field"] == field, answer.json()
            assert words in answer.json()["error"], answer.json()
        body = b"{not json"
        from ops.auth import sign_webhook

        headers = sign_webhook("hook-secret-0c1d2e3f", body, int(d.now[0]))
        broken = d.client.post("/webhooks/markets", content=body, headers=headers)
        assert broken.status_code == 422 and broken.json()["field"] == "body"
        assert d.client.get("/markets").json()["markets"] == []  # nothing handed off


def test_webhooks_are_disabled_without_a_secret(tmp_path: Path) -> None:
    with api_daemon(tmp_path, webhook_secret=None) as d:
        answer = d.post_webhook(market_log("0x" + "5e" * 20))
        assert answer.status_code == 503 and "no webhook secret" in answer.json()["error"]


# --- limits ----------------------------------------------------------------------------------


def test_a_body_too_large_is_413(tmp_path: Path) -> None:
    with api_daemon(tmp_path, max_body_bytes=1024) as d:
        (key,) = d.seed(1)
        big = {"outcome": 1, "reason": "x" * 2000}
        answer = d.client.post(path(key, "/override"), headers=d.auth(), json=big)
        assert answer.status_code == 413 and answer.json()["field"] == "body"

        def chunks() -> object:  # no Content-Length: the limit counts what arrives
            yield b'{"outcome": 1, "reason": "'
            for _ in range(10):
                yield b"y" * 200
            yield b'"}'

        streamed = d.client.post(
            path(key, "/override"),
            headers=d.auth(),
            content=chunks(),  # type: ignore[arg-type]
        )
        assert streamed.status_code == 413
        assert d.post_webhook([market_log("0x" + "5e" * 20)] * 5).status_code == 413
        assert d.job_state(key) == "waiting"


def test_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    with api_daemon(tmp_path, rate_limit_per_s=0.5, rate_limit_burst=3) as d:
        assert [d.client.get("/markets").status_code for _ in range(3)] == [200] * 3
        limited = d.client.get("/markets")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert d.client.get("/livez").status_code == 200  # exempt
        d.now[0] += 2  # the bucket refills
        assert d.client.get("/markets").status_code == 200


# --- secrets and the OpenAPI document ---------------------------------------------------------


def test_secrets_never_appear_in_answers_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with api_daemon(tmp_path) as d:
        (key,) = d.seed(1)
        # every answer of d.client is checked by the harness; these make the API talk a lot
        d.client.post(path(key, "/pause"), headers={"Authorization": f"Bearer {TOKEN}x"})
        d.client.post(path(key, "/pause"), headers=d.auth(), json={"reason": 5})
        d.client.post(path(key, "/override"), headers=d.auth(), json={"outcome": 1, "reason": "r"})
        d.client.get(path(key))
        d.client.get("/readyz")
        d.client.get("/nowhere")
        d.client.put("/markets")
        d.post_webhook(market_log("0x" + "5e" * 20, data="0xzz"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in logged and FAKE_PRIVATE_KEY not in logged


def test_unknown_routes_and_methods_answer_json(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        nowhere = d.client.get("/nowhere")
        assert nowhere.status_code == 404 and nowhere.json() == {
            "error": "Not Found",
            "field": None,
        }
        wrong_method = d.client.delete("/markets")
        assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_served_openapi_is_the_committed_document(tmp_path: Path) -> None:
    with api_daemon(tmp_path) as d:
        served = d.client.get("/openapi.json").json()
    committed = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render_openapi(), (
        "docs/openapi.json is stale: run `python -m ops.api` and commit it"
    )
    assert served == committed


def test_http_server_binds_loopback_and_stops(tmp_path: Path) -> None:
    from ops.http_server import HttpServer

    with api_daemon(tmp_path) as d:
        assert d.url.startswith("http://127.0.0.1:")
        from fastapi import FastAPI

        server = HttpServer(FastAPI())
        url = server.start()
        try:
            taken = HttpServer(FastAPI(), port=server.port)
            with pytest.raises(OSError):
                taken.start()
        finally:
            server.stop()
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/openapi.json", timeout=2)

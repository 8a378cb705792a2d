"""Schemathesis against the served OpenAPI document: no input makes the API answer 5xx.

Every operation gets up to 30 generated requests (valid and invalid), once without credentials
and once with the bearer token; answers are checked against the document (status codes, content
types, schemas). The daemon behind it is real (scheduler, LMDB) and healthy, so a 503 from
``/readyz`` or the scheduler would be a finding too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES as REJECTIONS

from ops.api import OPENAPI_PATH
from tests.integration.api_harness import CHAIN, FACTORY, TOKEN, Daemon, api_daemon

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    no_limit = {"rate_limit_per_s": 1e9, "rate_limit_burst": 1_000_000_000}
    with api_daemon(tmp_path_factory.mktemp("api"), **no_limit) as d:
        d.seed(3)
        yield d


# The committed document, which test_api proves equal to the served one. (Loading the served one
# through ``schemathesis.pytest.from_fixture`` fails on pytest 9: it sets ``node._nodeid``.)
# A body over the size limit is refused with 413 before validation: that is a rejection too.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REJECTIONS, "413"]}}}
)
schema = schemathesis.openapi.from_path(OPENAPI_PATH, config=CONFIG)


@schema.parametrize()
@EXAMPLES
def test_no_server_errors_without_credentials(case: schemathesis.Case[Any], daemon: Daemon) -> None:
    case.call_and_validate(base_url=daemon.url)


@schema.parametrize()
@EXAMPLES
def test_no_server_errors_with_the_token(case: schemathesis.Case[Any], daemon: Daemon) -> None:
    case.call_and_validate(base_url=daemon.url, headers={"Authorization": f"Bearer {TOKEN}"})


@settings(EXAMPLES, max_examples=40)
@given(
    case=st.one_of(
        schema["/webhooks/markets"]["POST"].as_strategy(),
        schema["/webhooks/markets"]["POST"].as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ),
    ours=st.booleans(),
)
def test_signed_webhooks_never_fail_with_5xx(
    case: schemathesis.Case[Any], ours: bool, daemon: Daemon
) -> None:
    """Generated bodies, correctly signed, reach log decoding: 200 or a 4xx naming a field."""
    body = case.body
    if ours and isinstance(body, dict):  # past the chain and factory checks, into decoding
        body = {**body, "chain": CHAIN, "address": FACTORY}
    try:
        answer = daemon.post_webhook(body)
    except (TypeError, ValueError):  # not JSON-serialisable: nothing a sender could sign
        return
    assert answer.status_code < 500, answer.text
    if answer.status_code != 200:
        assert answer.status_code in (413, 422), answer.text
        assert set(answer.json()) == {"error", "field"}

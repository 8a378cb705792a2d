"""``devnet.scenario.generated_specs`` makes only markets the recorded data can resolve (the
demo's ``--markets N`` and the chaos test use them: one that cannot be resolved would never be
finalized)."""

from __future__ import annotations

import pytest

from devnet.keys import CREATOR
from devnet.scenario import generated_specs
from tests.fixtures import rows

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_every_generated_funding_window_holds_recorded_rows(seed: int) -> None:
    times = [int(r["time"]) for r in rows("test_get_funding_history", "fundingHistory")]
    funding = [
        s
        for s in generated_specs(CREATOR.address, 80, seed=seed)
        if s.subject.metric_id == "funding"
    ]
    assert funding
    for spec in funding:
        start, end = spec.window.t_start * 1000, spec.window.t_end * 1000
        assert any(start <= t < end for t in times), f"{spec.title}: no rows in [{start}, {end})"

"""sample_data/expected/ is exactly what the main job writes for sample_data/ (regenerate with
``python -m tests.standins.golden`` after an intended change, and review the diff)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.standins.golden import EXPECTED, expected_outputs


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    return expected_outputs(REPO)


def test_every_output_has_a_golden_file(outputs: dict[str, str]) -> None:
    assert sorted(p.name for p in (REPO / EXPECTED).iterdir()) == sorted(outputs)


@pytest.mark.parametrize(
    "name", ["recommendation.json", "egress.tf", "removals.sh", "summary.md", "report.html"]
)
def test_output_matches_its_golden_file(outputs: dict[str, str], name: str) -> None:
    golden = (REPO / EXPECTED / name).read_text(encoding="utf-8")
    assert outputs[name] == golden, (
        f"{name} differs from sample_data/expected/{name}: if the change is intended, run "
        "`python -m tests.standins.golden` and review the diff"
    )

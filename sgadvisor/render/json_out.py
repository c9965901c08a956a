"""recommendation.json: the model itself, canonical and byte-stable (DESIGN §5)."""

from __future__ import annotations

from sgadvisor.models import Recommendation
from sgadvisor.render import RenderContext, Rendered

FILE_NAME = "recommendation.json"


def render(recommendation: Recommendation, context: RenderContext) -> Rendered:
    return Rendered({FILE_NAME: recommendation.to_json()})

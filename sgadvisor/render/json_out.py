"""recommendation.json: the model itself, canonical and byte-stable (DESIGN §5)."""

from __future__ import annotations

from sgadvisor.models import Recommendation
from sgadvisor.render import RenderContext, Rendered
from sgadvisor.render.quoting import json_safe

FILE_NAME = "recommendation.json"


def recommendation_json(recommendation: Recommendation) -> str:
    """The file text, safe to print in a CI log: hidden characters and the ``#`` that completes a CI
    command are JSON escapes, so every parser reads exactly the model's values."""
    return json_safe(recommendation.to_json())


def render(recommendation: Recommendation, context: RenderContext) -> Rendered:
    return Rendered({FILE_NAME: recommendation_json(recommendation)})

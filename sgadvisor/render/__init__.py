"""Renderers: one module per output format, each reading only the Recommendation (recommendation.json).

Every renderer is a function ``render(recommendation, context) -> Rendered`` (file name → text, plus
warnings for the user). They run in memory first and the files are written only when all succeeded, so
a failing run leaves nothing half-written (DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sgadvisor.models import Recommendation


class OutputFormat(StrEnum):
    """What ``--format`` chooses; each value names one renderer module."""

    JSON = "json"
    TERRAFORM = "terraform"
    HTML = "html"
    MARKDOWN = "markdown"


@dataclass(frozen=True)
class RenderContext:
    """What a renderer may need beyond the recommendation: only things about the user's environment."""

    terraform_dir: Path | None = None


@dataclass(frozen=True)
class Rendered:
    """Files by name (text), which of them are executable, and warnings for stderr."""

    files: Mapping[str, str]
    executable: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = field(default=())


Renderer = Callable[[Recommendation, RenderContext], Rendered]


def renderer_for(fmt: OutputFormat) -> Renderer:
    """The renderer of one format (imported lazily: the JSON path never loads Jinja2)."""
    if fmt is OutputFormat.JSON:
        from sgadvisor.render.json_out import render as render_json

        return render_json
    if fmt is OutputFormat.TERRAFORM:
        from sgadvisor.render.terraform import render as render_terraform

        return render_terraform
    if fmt is OutputFormat.HTML:
        from sgadvisor.render.html import render as render_html

        return render_html
    from sgadvisor.render.markdown import render as render_markdown

    return render_markdown


def render_all(
    recommendation: Recommendation, formats: Sequence[OutputFormat], context: RenderContext | None = None
) -> Rendered:
    """Render every requested format in memory; one Rendered holding all their files."""
    context = context or RenderContext()
    files: dict[str, str] = {}
    executable: set[str] = set()
    warnings: list[str] = []
    for fmt in dict.fromkeys(formats):
        rendered = renderer_for(fmt)(recommendation, context)
        files.update(rendered.files)
        executable.update(rendered.executable)
        warnings.extend(rendered.warnings)
    return Rendered(files, frozenset(executable), tuple(warnings))

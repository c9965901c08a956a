"""Find the files that ship beside the code: the Jinja2 templates, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """``sgadvisor/templates`` inside an installed wheel, else ``templates/`` of a source checkout."""
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"sgadvisor templates not found beside {_PACKAGE}: reinstall sgadvisor")

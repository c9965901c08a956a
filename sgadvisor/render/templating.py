"""The two Jinja2 environments: HTML with autoescape always on, and plain text (Terraform, shell,
Markdown) where every value goes through an explicit quoting filter of its target language instead."""

from __future__ import annotations

from functools import cache

import jinja2
from markupsafe import Markup

from sgadvisor.render.quoting import (
    clip,
    hcl_string,
    html_text,
    inline_text,
    markdown_text,
    shell_comment,
    shell_quote,
)
from sgadvisor.resources import templates_dir


@cache
def html_environment() -> jinja2.Environment:
    """Autoescape on for every template, whatever its name: nothing user-controlled reaches the page raw.
    Every plain text value is also made inert (``_inert``): a page printed in a CI log starts no command
    and hides no character."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        finalize=_inert,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class Structured(str):
    """Text the renderer built with its own separators (tabs and newlines between fields that were each
    made inert already): ``_inert`` leaves it whole. Still autoescaped, unlike Markup."""


def _inert(value: object) -> object:
    """A plain text value on one line, without control or invisible characters, that no CI runner reads
    as a command (no template line starts with a value); markup, structured data and numbers pass
    unchanged."""
    if isinstance(value, str) and not isinstance(value, (Markup, Structured)):
        return inline_text(value)
    return value


@cache
def text_environment() -> jinja2.Environment:
    """For non-HTML outputs; templates must quote values with the filters their renderer registers."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        hcl=hcl_string, sh=shell_quote, comment=shell_comment, md=markdown_text, html=html_text
    )
    return env


MARKDOWN_VALUE_LIMIT = 500  # characters of one value in summary.md before escaping (AWS allows 255/256)


@cache
def markdown_environment() -> jinja2.Environment:
    """The text environment for Markdown, where ``md`` and ``html`` also cut each value to
    MARKDOWN_VALUE_LIMIT characters: one hostile value cannot take the whole size budget of summary.md."""
    env = text_environment().overlay()
    env.filters = {
        **env.filters,
        "md": lambda value: markdown_text(clip(value, MARKDOWN_VALUE_LIMIT)),
        "html": lambda value: html_text(clip(value, MARKDOWN_VALUE_LIMIT)),
    }
    return env

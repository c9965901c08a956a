"""Quoting for the text outputs: each target language gets its own escaping, never string pasting."""

from __future__ import annotations

import json
import re
import shlex

import markupsafe

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")  # inline text only: line-start markup never occurs


def hcl_string(value: object) -> str:
    """A quoted HCL string literal. JSON escaping covers quotes, backslashes and control characters;
    ``${`` and ``%{`` would start a template interpolation or directive in HCL, so they are doubled."""
    text = json.dumps(str(value), ensure_ascii=False)
    return text.replace("${", "$${").replace("%{", "%%{")


def shell_quote(value: object) -> str:
    """A POSIX shell word (single-quoted when it needs to be)."""
    return shlex.quote(str(value))


def shell_comment(value: object) -> str:
    """Text safe on one ``#`` comment line: newlines and carriage returns would end the comment."""
    return " ".join(str(value).split())


def markdown_text(value: object) -> str:
    """Inline Markdown (also inside a table cell): markup characters escaped, pipes too, one line."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def html_text(value: object) -> str:
    """Text inside raw HTML of a Markdown file (``<summary>``): Markdown escapes do not apply there, so
    it is HTML-escaped, on one line."""
    return str(markupsafe.escape(" ".join(str(value).split())))

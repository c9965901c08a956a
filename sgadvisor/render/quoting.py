"""Quoting for the text outputs: each target language gets its own escaping, never string pasting.

Untrusted text is anything that comes from the inventory or the flows (group names, Name and other tags,
descriptions, prefix-list names, interface ids) and file names echoed back. Two functions guard the
terminal and CI-log outputs, and every other output escapes for its own language on top of them:

- :func:`safe_text` for each untrusted value: one value is one visible line that cannot move the cursor,
  recolour the terminal, reorder the text around it or hide characters;
- :func:`safe_line` for each line printed: the line cannot be read as a CI workflow command.
"""

from __future__ import annotations

import re
import shlex
import unicodedata

import markupsafe

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")  # inline text only: line-start markup never occurs

# ------------------------------------------------------------------------------- terminals and CI logs

# Characters that are invisible or act instead of showing: categories Cc (C0 including \t \n \r, DEL,
# C1), Cf (format: bidi embeddings, overrides and isolates, zero-width characters, soft hyphen, BOM, tag
# characters), Zl/Zp (U+2028, U+2029: line breaks to many viewers), Cs (lone surrogates, which cannot even
# be encoded), plus the remaining Unicode Default_Ignorable_Code_Points (variation selectors, combining
# grapheme joiner, Hangul fillers, Mongolian free variation selectors, reserved ranges).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]"
)
_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# CI systems that read commands from a job's output (researched in their runners' sources):
# - GitHub Actions (actions/runner ActionCommand.TryParseV2): a line whose TrimStart() (any Unicode
#   white space) starts with ``::``, e.g. ``::error::``, ``::add-mask::``, ``::stop-commands::``;
# - GitHub Actions, legacy form (ActionCommand.TryParse): ``##[command]`` ANYWHERE in the line; Azure
#   Pipelines and GitHub also render ``##[group]``, ``##[error]``, ``##[section]`` … lines in their logs;
# - Azure Pipelines (azure-pipelines-agent Command.TryParse): ``##vso[area.action …]`` ANYWHERE in the line;
# - TeamCity service messages: ``##teamcity[…]`` anywhere in the output;
# - Buildkite: a line starting ``--- ``, ``+++ `` or ``~~~ `` opens a log group, ``^^^ +++`` expands the
#   previous one.
# GitLab's collapsible sections (``section_start:…`` followed by ``\r\e[0K``), Travis folds and terminal
# escapes all need control characters, which safe_text already makes visible.
# The runners are .NET and use culture-sensitive IndexOf/StartsWith, which skip ignorable characters:
# that is why safe_line first makes every hidden character visible, then matches.
_COMMAND_ANYWHERE = re.compile(r"#(?=#(?:vso|teamcity)?\[)", re.IGNORECASE)
_COMMAND_AT_START = re.compile(r"::|(?:---|\+\+\+|~~~)\s|\^\^\^\s+\+\+\+")
_HCL_COMMAND_HASH = re.compile(r"(?<=#)#(?=(?:vso|teamcity)?\[)", re.IGNORECASE)


def _escape_char(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def is_hidden(char: str) -> bool:
    """Whether safe_text escapes this character (a control, format, separator or ignorable one)."""
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or _DEFAULT_IGNORABLE.match(char) is not None


def safe_text(text: object) -> str:
    """An untrusted value made safe to show: every control character (C0 including newline, carriage
    return and tab, DEL, C1), every format character (bidi embeddings, overrides and isolates U+202A to U+202E
    and U+2066 to U+2069, zero-width characters, BOM, soft hyphen, tag characters), the line and paragraph
    separators U+2028/U+2029, lone surrogates and the other default-ignorable code points are written as
    visible escapes in Python's spelling: ``\\n``, ``\\r``, ``\\t``, ``\\x1b``, ``\\u2028``, ``\\U000e0041``.

    So one value is one line, cannot move the cursor, recolour or retitle the terminal, reorder the
    characters around it, or hide characters from the reader. Everything else, including non-Latin
    letters and emoji, is kept as it is. Backslashes are not doubled: the function is idempotent
    (``safe_text(safe_text(x)) == safe_text(x)``), so a value that passes through two layers that each
    apply it is not mangled; the price is that a literal backslash followed by ``n`` reads like an escaped
    newline."""
    text = str(text)
    if text.isascii():
        if _ASCII_CONTROL.search(text) is None:
            return text
        return _ASCII_CONTROL.sub(lambda m: _escape_char(m.group()), text)
    return "".join(_escape_char(char) if is_hidden(char) else char for char in text)


def inline_text(value: object) -> str:
    """An untrusted value shown inside a line that markup of our own starts (an HTML cell, a data field):
    ``safe_text``, and the CI commands runners find anywhere in a line broken. What only counts at the
    start of a line (``::``) is left alone: the value never starts one."""
    return _break_commands_anywhere(safe_text(value))


def _break_commands_anywhere(text: str) -> str:
    """``##[``, ``##vso[``, ``##teamcity[`` (any case) become ``#\\#[`` …: no runner finds them."""
    return _COMMAND_ANYWHERE.sub("#\\\\", text)


def safe_line(line: object) -> str:
    """One output line made unable to start a CI workflow command, visibly: a backslash is inserted just
    before what a runner would read. Read the line without that backslash to get the original text.

    - a line whose text after leading white space starts with ``::`` (GitHub Actions), ``--- ``, ``+++ ``,
      ``~~~ `` or ``^^^ +++`` (Buildkite groups) gets the backslash before that text: ``  \\::error::x``
      (indentation is kept);
    - ``##[`` (GitHub's legacy commands, Azure's log formatting), ``##vso[`` (Azure Pipelines) and
      ``##teamcity[`` (TeamCity), which runners find anywhere in a line, get it between the two ``#``:
      ``#\\#vso[task.setvariable …]``.

    Control and invisible characters are escaped first (see safe_text), so a line stays one line and a
    trigger cannot be hidden from this check by a zero-width character that the runner's culture-aware
    matching would skip. Idempotent, like safe_text. Values should still go through safe_text on their
    own; this is the last guard on the whole line."""
    text = _break_commands_anywhere(safe_text(line))
    stripped = text.lstrip()
    if _COMMAND_AT_START.match(stripped):
        cut = len(text) - len(stripped)
        text = f"{text[:cut]}\\{stripped}"
    return text


def safe_lines(text: str) -> str:
    """safe_line applied to every ``\\n``-separated line of a block of output (a trailing newline stays)."""
    return "\n".join(safe_line(line) for line in text.split("\n"))


# ------------------------------------------------------------------------------------------- Terraform


def hcl_string(value: object) -> str:
    """A quoted HCL string literal that Terraform reads back as exactly ``value``, on one line.

    Only the escapes HCL knows are used: ``\\n \\r \\t \\" \\\\`` and ``\\uNNNN``/``\\UNNNNNNNN`` for
    every other control, format or invisible character (JSON's ``\\b`` and ``\\f`` are not HCL and fail
    ``terraform fmt``). ``${`` and ``%{`` would start a template interpolation or directive, so they are
    written ``$${`` and ``%%{``. A lone surrogate cannot be encoded at all: it becomes U+FFFD. The ``#``
    that would complete a ``##[``/``##vso[``/``##teamcity[`` CI command is written ``\\u0023`` — the
    same value, but the file itself no longer carries the command text."""
    out = []
    for char in str(value):
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif "\ud800" <= char <= "\udfff":
            out.append("\\ufffd")
        elif is_hidden(char):
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    text = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return '"' + _HCL_COMMAND_HASH.sub(r"\\u0023", text) + '"'


# ------------------------------------------------------------------------------------------------ JSON

_NOT_PLAIN_ASCII = re.compile("[^\x00-\x7e]")


def _json_escape(char: str) -> str:
    if not is_hidden(char):
        return char
    code = ord(char)
    if code > 0xFFFF:  # a UTF-16 surrogate pair, as JSON spells it
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def json_safe(json_text: str) -> str:
    """Serialised JSON (``ensure_ascii=False``) that prints safely: DEL, C1, bidi, line-separator and the
    other characters safe_text escapes are written as ``\\uNNNN`` escapes, and the ``#`` that would
    complete a ``##[``/``##vso[``/``##teamcity[`` CI command as ``\\u0023``. A JSON parser reads exactly
    the same value (those characters only ever occur inside strings); other text stays readable."""
    escaped = _NOT_PLAIN_ASCII.sub(lambda m: _json_escape(m.group()), json_text)
    return _HCL_COMMAND_HASH.sub(r"\\u0023", escaped)


# -------------------------------------------------------------------------------------------- shell


def shell_quote(value: object) -> str:
    """A POSIX shell word (single-quoted when it needs to be)."""
    return shlex.quote(str(value))


def shell_comment(value: object) -> str:
    """Text safe on one ``#`` comment line: control characters are escaped (a newline or carriage return
    would end the comment), white space runs become one space, CI command prefixes are broken."""
    return _break_commands_anywhere(" ".join(safe_text(value).split()))


# ------------------------------------------------------------------------------------------ Markdown

# What GitHub turns into a link or a notification after the Markdown is parsed: @mentions and team
# mentions (also inside e-mail addresses), bare URLs (cmark-gfm's autolink extension: http://, https://,
# ftp://, www., mailto:, xmpp:) and issue references (#123, GH-123, owner/repo#123: they add a
# cross-reference to the issue). These filters work on the text nodes of the rendered HTML and skip
# text inside <code>, <pre> and <a>: a backslash escape or an HTML entity is decoded before they run and
# does not stop them, but a code span does.
_LINKY = re.compile(r"@|://|\bwww\.|#\d|\bgh-\d|\b(?:mailto|xmpp):", re.IGNORECASE)


def _code_span(token: str) -> str:
    """``token`` (no white space) as a Markdown code span, also valid inside a GFM table cell."""
    runs = [len(run) for run in re.findall(r"`+", token)]
    fence = "`" * (max(runs, default=0) + 1)
    # A GFM table splits cells before parsing inlines, reading "\\x" as one escaped pair: every pipe is
    # written "\\|" (shown as "|", even in code), and a run of backslashes just before it is doubled so
    # that it cannot pair with that escape (shown doubled; the cell stays one cell).
    body = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", _break_commands_anywhere(token))
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def markdown_text(value: object) -> str:
    """Inline Markdown (also inside a table cell), on one line: control characters escaped (safe_text),
    markup characters and pipes backslash-escaped; a word that GitHub would turn into a mention, a link
    or an issue reference is put in a code span instead, where GitHub does neither."""
    words = safe_text(value).split()
    return " ".join(_code_span(w) if _LINKY.search(w) else _MD_SPECIAL.sub(r"\\\1", w) for w in words)


def html_text(value: object) -> str:
    """Text inside raw HTML of a Markdown file (``<summary>``): Markdown escapes do not apply there, so
    it is HTML-escaped, on one line, control characters escaped (safe_text); ``[`` is written ``&#91;`` so
    the raw file carries no ``##[``/``##vso[`` CI command; text GitHub would turn into a mention, link or
    issue reference is wrapped in ``<code>``."""
    text = " ".join(safe_text(value).split())
    escaped = str(markupsafe.escape(text)).replace("[", "&#91;")
    return f"<code>{escaped}</code>" if _LINKY.search(text) else escaped


def clip(value: object, limit: int) -> str:
    """``value`` cut to at most ``limit`` characters, ending with an ellipsis when cut (before escaping,
    so an escape sequence is never cut in half)."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Parse JSON from the user's files without letting hostile input crash the run.

``json.loads`` alone turns three kinds of valid-looking input into tracebacks or worse:

- nesting thousands of levels deep raises RecursionError (and deep recursion can take the interpreter
  down), so the depth is checked up front, cheaply, before the parser sees the text;
- an integer of thousands of digits raises a bare ValueError (Python's int max-str-digits limit);
- a lone surrogate (``"\\ud800"``) parses fine but cannot be written as UTF-8, so the run crashes later,
  while writing its outputs.

All three become an InputError naming the file, the line and, for strings, the key. Syntax errors stay
``json.JSONDecodeError`` and undecodable bytes ``UnicodeDecodeError``: each caller has its own policy for
those (a malformed line is counted, a malformed document is an error).
"""

from __future__ import annotations

import json
import re
import sys
from itertools import accumulate, count
from operator import sub
from typing import Any

from sgadvisor.errors import InputError

MAX_DEPTH = 256  # AWS CLI and `terraform show -json` output nest a few dozen levels at most

# A JSON string (an unterminated one runs to the end: the pattern never fails, so it never backtracks).
_STRING = r'"[^"\\]*(?:\\.?[^"\\]*)*"?'
_NOT_MARKS = bytes(c for c in range(256) if c not in b'"[]{}')
_STRINGS = re.compile(rb'"[^"]*"?')  # in the marks: a string, or an unterminated one to the end
_BRACKET_TOKENS = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
# Opening brackets count 2, closing 0: the running sum minus the position is the depth.
_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")
_LONE_SURROGATE = re.compile(
    r"(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    "|[\ud800-\udfff]"
)

_HINT = (
    "AWS and Terraform do not write such JSON: check that the path names the intended file, or regenerate it"
)


def load_json_text(text: str | bytes, *, source: str, first_line: int = 1) -> Any:
    """Parse one JSON document (or one JSON Lines line: pass its number as ``first_line``).

    Bytes are decoded as ``json.loads`` does (UTF-8/16/32, with or without BOM). Raises InputError for
    nesting deeper than MAX_DEPTH, integers beyond Python's digit limit and lone surrogates;
    ``json.JSONDecodeError`` for invalid JSON and ``UnicodeDecodeError`` for undecodable bytes.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode(json.detect_encoding(text))
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(text):
        raise _error(
            source, text, first_line, _deep_position(text), f"JSON nested deeper than {MAX_DEPTH} levels"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits()
        digits = sys.get_int_max_str_digits()
        raise _error(
            source,
            text,
            first_line,
            _long_number_position(text, digits),
            f"a number of more than {digits} digits",
        ) from exc
    except RecursionError as exc:  # only when the stack is already deep: the guard above caps the nesting
        raise _error(source, text, first_line, None, "JSON nested too deep to read") from exc
    if _may_have_surrogate(text):
        found = _find_lone_surrogate(value)
        if found is not None:
            key, string = found
            match = _LONE_SURROGATE.search(text)
            where = f"{key}: " if key else ""
            raise _error(
                source,
                text,
                first_line,
                match.start() if match else None,
                f"{where}string {_show(string)} has a lone surrogate (not valid Unicode text)",
            )
    return value


def has_surrogate(text: str) -> bool:
    """Whether a decoded string holds a surrogate code point (one JSON-style escape decoded alone)."""
    return _SURROGATE_CHAR.search(text) is not None


def _error(source: str, text: str, first_line: int, position: int | None, what: str) -> InputError:
    line = f"line {first_line + text.count(chr(10), 0, position)}: " if position is not None else ""
    return InputError(f"{source}: {line}{what}", hint=_HINT)


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_DEPTH: a few linear passes in C."""
    data = text.encode("utf-8", "surrogatepass")  # UTF-8: multi-byte characters hold no ASCII bytes
    if b"\\" in data:
        # Valid JSON has backslashes only inside strings, where only escaped backslashes and quotes
        # matter here: without them every quote opens or closes a string.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = data.translate(None, _NOT_MARKS)  # only quotes and brackets are left
    # Dropping two adjacent quotes keeps every other quote's parity: an empty string goes, or two
    # strings merge into one. What is left in quotes is the few strings that hold brackets.
    marks = _STRINGS.sub(b"", marks.replace(b'""', b""))
    depths = map(sub, accumulate(marks.translate(_STEPS)), count(1))
    return max(depths, default=0) > MAX_DEPTH


def _deep_position(text: str) -> int | None:
    """Where the nesting first goes deeper than MAX_DEPTH (for the message only)."""
    depth = 0
    for match in _BRACKET_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif token in ("]", "}"):
            depth -= 1
    return None


def _long_number_position(text: str, digits: int) -> int | None:
    if digits <= 0:
        return None
    for match in re.finditer(_STRING + rf"|\d{{{digits + 1},}}", text, re.DOTALL):
        if not match.group().startswith('"'):
            return match.start()
    return None


def _may_have_surrogate(text: str) -> bool:
    """Cheap: no ``\\uD8..`` to ``\\uDF..`` escape and no surrogate character means no lone surrogate."""
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        return True
    return not text.isascii() and _SURROGATE_CHAR.search(text) is not None


def _find_lone_surrogate(value: Any) -> tuple[str, str] | None:
    """(key path, string) of the first string or key holding a surrogate, in document order. Pairs of
    escapes were already joined by the parser, so any surrogate left is a lone one."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE_CHAR.search(item):
                return path, item
        elif isinstance(item, dict):
            children: list[tuple[str, Any]] = []
            for key, child in item.items():
                child_path = f"{path}.{_printable(key)}" if path else _printable(key)
                if _SURROGATE_CHAR.search(key):
                    return child_path, key
                children.append((child_path, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    return None


def _printable(text: str) -> str:
    """The text itself when it prints as one line, else JSON's escapes (a message must be one line and
    writable, and a lone surrogate is neither)."""
    return text if text.isprintable() else json.dumps(text)[1:-1]


def _show(string: str) -> str:
    shown = json.dumps(string)  # quoted, ASCII: escapes the surrogate and any line break
    return shown if len(shown) <= 40 else shown[:36] + '..."'

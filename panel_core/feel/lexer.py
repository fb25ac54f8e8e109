"""Splitting a FEEL expression into tokens, as lezer-feel (feelin's parser) splits it.

Only what the supported subset needs is recognised; anything else (temporal ``@`` literals,
backtick names, comments, exponent notation, unusual white space) is refused here with the
offset where it starts, so that nothing outside the subset reaches the parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from panel_core.feel.errors import FeelError

TokenKind = Literal["number", "string", "name", "keyword", "op", "end"]

# Words lezer-feel turns into keywords wherever they appear; they can never be names.
KEYWORDS = frozenset(
    {
        "true",
        "false",
        "null",
        "and",
        "or",
        "in",
        "if",
        "then",
        "else",
        "for",
        "return",
        "some",
        "every",
        "satisfies",
        "between",
        "instance",
        "function",
        "external",
    }
)

# The white space accepted between tokens. lezer-feel skips more (no-break and other
# Unicode spaces), but those are invisible in the Modeler and so refused.
WHITESPACE = frozenset(" \t\r\n")

_OPERATORS = ("**", "!=", "<=", ">=", "..", "^", "*", "/", "+", "-", "=", "<", ">")
_PUNCTUATION = frozenset("()[]{},:.")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    start: int
    end: int
    number: float = 0.0
    string: str = ""


def _is_start_char(char: str) -> bool:
    """lezer-feel's ``isStartChar`` without ``?``, which the subset does not allow in names."""
    code = ord(char)
    return (
        0x41 <= code <= 0x5A
        or code == 0x5F
        or 0x61 <= code <= 0x7A
        or 0xC0 <= code <= 0xD6
        or 0xD8 <= code <= 0xF6
        or 0xF8 <= code <= 0x2FF
        or 0x370 <= code <= 0x37D
        or 0x37F <= code <= 0x1FFF
        or 0x200C <= code <= 0x200D
        or 0x2070 <= code <= 0x218F
        or 0x2C00 <= code <= 0x2FEF
        or 0x3001 <= code <= 0xD7FF
        or 0xF900 <= code <= 0xFDCF
        or 0xFDF0 <= code <= 0xFFFD
        # lezer-feel reads UTF-16, where a character beyond the BMP is a surrogate pair,
        # and surrogates are start characters.
        or code > 0xFFFF
    )


def _is_part_char(char: str) -> bool:
    code = ord(char)
    return (
        _is_start_char(char)
        or 0x30 <= code <= 0x39
        or code == 0xB7
        or 0x300 <= code <= 0x36F
        or 0x203F <= code <= 0x2040
    )


def _is_digit(char: str) -> bool:
    return len(char) == 1 and "0" <= char <= "9"


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(char) <= 0xDFFF for char in text)


def tokenize(source: str, start: int = 0) -> list[Token]:
    """The tokens of ``source`` from ``start`` on (past a leading ``=``); offsets are in it."""
    if _has_surrogate(source):
        raise FeelError("the expression is not valid Unicode text (lone surrogate)")
    tokens: list[Token] = []
    length = len(source)
    index = start

    def fail(reason: str, at: int) -> FeelError:
        return FeelError(reason, position=at, expression=source)

    while index < length:
        char = source[index]
        if char in WHITESPACE:
            index += 1
            continue
        if source.startswith(("//", "/*"), index):
            raise fail("comments are not supported", index)
        if _is_digit(char) or (char == "." and _is_digit(source[index + 1 : index + 2])):
            match = _NUMBER.match(source, index)
            if match is None:
                raise fail("malformed number", index)
            end = match.end()
            following = source[end : end + 1]
            if following in {"e", "E"}:
                raise fail("exponent notation is not supported (feelin reads 1e3 as 1)", index)
            if following and (_is_part_char(following) or following == "?"):
                raise fail("a number cannot be directly followed by a name", index)
            text = match.group()
            tokens.append(Token("number", text, index, end, float(text)))
            index = end
            continue
        if char == '"':
            index = _string(source, index, tokens)
            continue
        if _is_start_char(char):
            end = index + 1
            while end < length and _is_part_char(source[end]):
                end += 1
            if source[end : end + 1] == "?":
                raise fail("'?' in names is not supported", end)
            word = source[index:end]
            kind: TokenKind = "keyword" if word in KEYWORDS else "name"
            tokens.append(Token(kind, word, index, end))
            index = end
            continue
        operator = next((op for op in _OPERATORS if source.startswith(op, index)), None)
        if operator == ".." and source[index + 2 : index + 3] == ".":
            raise fail("'...' is not a FEEL operator", index)
        if operator is not None:
            tokens.append(Token("op", operator, index, index + len(operator)))
            index += len(operator)
            continue
        if char in _PUNCTUATION:
            tokens.append(Token("op", char, index, index + 1))
            index += 1
            continue
        raise fail(_unsupported_character(char), index)
    tokens.append(Token("end", "", length, length))
    return tokens


def _unsupported_character(char: str) -> str:
    if char == "@":
        return 'temporal literals (@"…") are not supported'
    if char == "`":
        return "backtick names are not supported"
    if char == "?":
        return "the implicit input '?' is not supported (it belongs to unary tests)"
    if char == "!":
        return "'!' is not a FEEL operator (use not(…) or !=)"
    if char == "'":
        return 'single quotes do not delimit strings in FEEL (use "…")'
    if char.isspace():
        return f"the white space character U+{ord(char):04X} is not supported"
    return f"unexpected character {char!r}"


def _string(source: str, start: int, tokens: list[Token]) -> int:
    """Read the string literal opening at ``start``; return the index after it."""
    parts: list[str] = []
    index = start + 1
    while index < len(source):
        char = source[index]
        if char == '"':
            tokens.append(
                Token(
                    "string",
                    source[start : index + 1],
                    start,
                    index + 1,
                    string="".join(parts),
                )
            )
            return index + 1
        if char in "\r\n":
            raise FeelError(
                "line breaks inside strings are not supported (write \\n)",
                position=index,
                expression=source,
            )
        if char == "\\":
            escaped = source[index + 1 : index + 2]
            if escaped not in _ESCAPES:
                raise FeelError(
                    'only the escapes \\" \\\\ \\n \\r \\t are supported in strings',
                    position=index,
                    expression=source,
                )
            parts.append(_ESCAPES[escaped])
            index += 2
            continue
        parts.append(char)
        index += 1
    raise FeelError("unterminated string", position=start, expression=source)

"""JavaScript regular expressions, translated to Python's :mod:`re` with their JS meaning.

form-js tests a field's ``validate.pattern`` with ``new RegExp(pattern).test(value)`` and
feelin builds ``matches``, ``replace`` and ``split`` on ``new RegExp(pattern, "u" + flags)``.
The two dialects look alike but differ where it matters: JavaScript's ``.`` stops at four
line terminators, its ``\\s`` knows more spaces than Python's, ``$`` never matches before a
final line break, ``\\d``/``\\w``/``\\b`` are ASCII, a backreference to a group that took no
part matches the empty text, and without the ``u`` flag a pattern sees UTF-16 code units, so
an emoji is two "characters". Python accepts syntax JavaScript refuses (``(?P<n>…)``,
possessive quantifiers, atomic groups) and gives other escapes another meaning (``\\A`` and
``\\Z`` are anchors in Python, the letters A and Z in JavaScript).

So the pattern is parsed with JavaScript's grammar (with the web-compatibility rules of
Annex B when there is no ``u`` flag) and written out as an equivalent Python pattern in
which every class is explicit. What JavaScript refuses raises :class:`JsSyntaxError`; what
is valid JavaScript but has no faithful translation, or is valid only by accident (the
escape ``\\A`` meaning "A"), raises :class:`JsUnsupportedError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeAlias

from panel_core.feel._js import JS_SPACE

Ranges: TypeAlias = list[tuple[int, int]]

_LINE_TERMINATORS = "\n\r\u2028\u2029"
_SYNTAX_CHARACTERS = frozenset("^$\\.*+?()[]{}|")
_CONTROL_ESCAPES = {"f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_HEX = frozenset("0123456789abcdefABCDEF")
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DECIMAL = frozenset("0123456789")
# Python's re keeps repeat counts below this.
_MAX_REPEAT = 4294967295
_MAX_CODE_POINT = 0x10FFFF
_MAX_CODE_UNIT = 0xFFFF
_FLAGS = frozenset("dgimsuy")
# Sets rather than strings, so that the empty text at the end of a pattern is in none.
_REPEATS = frozenset("*+?")
_LOOKBEHIND_MARKS = frozenset("=!")
_MODIFIERS = frozenset("imsx-")
_LONE_BRACKETS = frozenset("}]")
_PROPERTY_ESCAPES = frozenset("pP")


class JsRegexError(ValueError):
    """A pattern the server cannot use; the message says why."""


class JsSyntaxError(JsRegexError):
    """JavaScript itself refuses the pattern (``new RegExp`` throws a SyntaxError)."""


class JsUnsupportedError(JsRegexError):
    """Valid JavaScript that has no faithful Python translation, or that means something
    other than it seems (an escape Python and other dialects give a meaning JavaScript
    does not)."""


def _ranges_of(chars: str) -> Ranges:
    return _normalise([(ord(c), ord(c)) for c in chars])


def _normalise(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _complement(ranges: Ranges, top: int) -> Ranges:
    result: Ranges = []
    start = 0
    for low, high in _normalise(ranges):
        if low > start:
            result.append((start, low - 1))
        start = high + 1
    if start <= top:
        result.append((start, top))
    return result


_DIGITS = [(0x30, 0x39)]
_WORD = _normalise([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
# With both u and i, \w also takes the two characters whose case folding is ASCII.
_WORD_UNICODE_IGNORE_CASE = _normalise([*_WORD, (0x17F, 0x17F), (0x212A, 0x212A)])
_SPACE = _ranges_of(JS_SPACE)


def _char(code: int) -> str:
    """One code point (or unit) as a Python pattern character, escaped."""
    if code < 0x80:
        char = chr(code)
        return re.escape(char) if char.isprintable() else f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _class(ranges: Ranges, negated: bool = False) -> str:
    """A Python character class for these ranges; an empty one never matches."""
    if not ranges:
        return r"[\s\S]" if negated else "(?!)"
    body = "".join(
        _char(low) if low == high else f"{_char(low)}-{_char(high)}" for low, high in ranges
    )
    return f"[{'^' if negated else ''}{body}]"


@dataclass(slots=True)
class _ClassPart:
    """One part of a character class: a single character or a set (``\\d``, ``\\S``…)."""

    ranges: Ranges
    single: int | None = None


def to_code_units(text: str) -> str:
    """The text as a string of UTF-16 code units: what a pattern without ``u`` sees."""
    if all(ord(char) <= _MAX_CODE_UNIT for char in text):
        return text
    units = []
    for char in text:
        code = ord(char)
        if code > _MAX_CODE_UNIT:
            code -= 0x10000
            units.append(chr(0xD800 + (code >> 10)))
            units.append(chr(0xDC00 + (code & 0x3FF)))
        else:
            units.append(char)
    return "".join(units)


def from_code_units(units: str) -> str:
    """The inverse of :func:`to_code_units` (a pair of surrogates becomes one character)."""
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


@dataclass(frozen=True, slots=True)
class JsRegex:
    """A compiled JavaScript pattern. Positions and texts passed to :meth:`search` and
    :meth:`match` are in :meth:`units` (code points with ``u``, UTF-16 code units without)."""

    source: str
    flags: str
    python: re.Pattern[str]
    group_names: tuple[str | None, ...]

    @property
    def unicode(self) -> bool:
        return "u" in self.flags

    def units(self, text: str) -> str:
        return text if self.unicode else to_code_units(text)

    def text(self, units: str) -> str:
        return units if self.unicode else from_code_units(units)

    def test(self, text: str) -> bool:
        """``RegExp.prototype.test`` of a regex without ``g`` or ``y``: found anywhere."""
        return self.python.search(self.units(text)) is not None

    def search(self, units: str, position: int) -> re.Match[str] | None:
        return self.python.search(units, position)

    def match(self, units: str, position: int) -> re.Match[str] | None:
        """A match starting exactly at ``position``, as the sticky flag makes one."""
        return self.python.match(units, position)


def compile_js(source: str, flags: str = "") -> JsRegex:
    """``new RegExp(source, flags)`` as a Python pattern with the same meaning."""
    return _compile(source, flags)


@lru_cache(maxsize=512)
def _compile(source: str, flags: str) -> JsRegex:
    if any(flag not in _FLAGS for flag in flags) or len(set(flags)) != len(flags):
        raise JsSyntaxError(f"invalid regular expression flags {flags!r}")
    if "y" in flags or "d" in flags:
        raise JsUnsupportedError(f"the regular expression flags {flags!r} are not supported")
    unicode = "u" in flags
    if "i" in flags and not unicode:
        # Without u, JavaScript folds case by upper-casing; Python folds another way.
        raise JsUnsupportedError("the i flag is supported only together with u")
    translator = _Translator(source if unicode else to_code_units(source), flags)
    translated = translator.translate()
    try:
        python = re.compile(translated, re.IGNORECASE if "i" in flags else 0)
    except re.error as error:
        if "look-behind" in str(error):
            raise JsUnsupportedError(
                "a lookbehind (?<=…) or (?<!…) whose length varies is not supported"
            ) from None
        raise JsUnsupportedError(f"the pattern cannot be translated: {error}") from None
    return JsRegex(source, flags, python, tuple(translator.names))


@dataclass(slots=True)
class _Translator:
    source: str
    flags: str
    position: int = 0
    # JavaScript's name of each capturing group, in order (None for an unnamed one).
    names: list[str | None] = field(default_factory=list)
    # Groups closed so far: a backreference to any other matches the empty text in JS.
    closed: set[int] = field(default_factory=set)
    total_groups: int = 0
    named: dict[str, int] = field(default_factory=dict)

    @property
    def unicode(self) -> bool:
        return "u" in self.flags

    @property
    def top(self) -> int:
        return _MAX_CODE_POINT if self.unicode else _MAX_CODE_UNIT

    def fail(self, reason: str) -> JsSyntaxError:
        return JsSyntaxError(f"{reason} (at offset {self.position})")

    def refuse(self, reason: str) -> JsUnsupportedError:
        return JsUnsupportedError(f"{reason} (at offset {self.position})")

    def peek(self, ahead: int = 0) -> str:
        index = self.position + ahead
        return self.source[index] if index < len(self.source) else ""

    def at(self, text: str) -> bool:
        return self.source.startswith(text, self.position)

    def translate(self) -> str:
        self.total_groups, self.named = _scan_groups(self.source)
        translated = self.disjunction()
        if self.position < len(self.source):
            if self.peek() == ")":
                raise self.fail("unmatched ')'")
            raise self.fail(f"unexpected {self.peek()!r}")
        return translated

    def disjunction(self) -> str:
        alternatives = [self.alternative()]
        while self.peek() == "|":
            self.position += 1
            alternatives.append(self.alternative())
        return "|".join(alternatives)

    def alternative(self) -> str:
        terms = []
        while self.position < len(self.source) and self.peek() not in "|)":
            terms.append(self.term())
        return "".join(terms)

    def term(self) -> str:
        start = self.position
        assertion = self.assertion()
        if assertion is not None:
            text, quantifiable = assertion
            if self.quantifier_ahead():
                if not quantifiable:
                    raise self.fail("nothing to repeat")
                # Annex B lets a lookahead be repeated; Python needs it wrapped.
                return f"(?:{text}){self.quantifier()}"
            return text
        atom = self.atom(start)
        if self.quantifier_ahead():
            return f"(?:{atom}){self.quantifier()}"
        return atom

    def assertion(self) -> tuple[str, bool] | None:
        """A JavaScript assertion as Python, and whether Annex B lets it be repeated."""
        multiline = "m" in self.flags
        terminators = _class(_ranges_of(_LINE_TERMINATORS), negated=True)
        if self.peek() == "^":
            self.position += 1
            return (f"(?<!{terminators})" if multiline else r"\A"), False
        if self.peek() == "$":
            self.position += 1
            return (f"(?!{terminators})" if multiline else r"\Z"), False
        if self.at("\\b") or self.at("\\B"):
            negate = self.peek(1) == "B"
            self.position += 2
            word = _WORD_UNICODE_IGNORE_CASE if self.unicode and "i" in self.flags else _WORD
            inside = _class(word)
            edge = (
                f"(?:(?<={inside})(?!{inside})|(?<!{inside})(?={inside}))"
                if not negate
                else f"(?:(?<={inside})(?={inside})|(?<!{inside})(?!{inside}))"
            )
            return edge, False
        for opening, python in (("(?=", "(?="), ("(?!", "(?!"), ("(?<=", "(?<="), ("(?<!", "(?<!")):
            if self.at(opening):
                self.position += len(opening)
                inner = self.disjunction()
                self.expect_close()
                lookahead = opening in ("(?=", "(?!")
                return f"{python}{inner})", lookahead and not self.unicode
        return None

    def expect_close(self) -> None:
        if self.peek() != ")":
            raise self.fail("unterminated group")
        self.position += 1

    def atom(self, start: int) -> str:
        char = self.peek()
        if char == ".":
            self.position += 1
            if "s" in self.flags:
                return r"[\s\S]"
            return _class(_ranges_of(_LINE_TERMINATORS), negated=True)
        if char == "(":
            return self.group()
        if char == "[":
            return self.character_class()
        if char == "\\":
            return self.atom_escape()
        if char in _REPEATS:
            raise self.fail("nothing to repeat")
        if char == "{":
            if self.braced_quantifier_at(self.position) is not None:
                raise self.fail("nothing to repeat")
            if self.unicode:
                raise self.fail("lone quantifier brackets")
        if char in _LONE_BRACKETS and self.unicode:
            raise self.fail("lone quantifier brackets" if char == "}" else "lone ']'")
        self.position += 1
        return _char(ord(char))

    def group(self) -> str:
        if self.at("(?:"):
            self.position += 3
            inner = self.disjunction()
            self.expect_close()
            return f"(?:{inner})"
        if self.at("(?<") and self.peek(3) not in _LOOKBEHIND_MARKS:
            self.position += 3
            name = self.group_name()
            return self.capture(name)
        if self.at("(?"):
            follower = self.peek(2)
            if follower == "P":
                raise self.fail(
                    "(?P…) is Python syntax, which JavaScript refuses; write a named "
                    "group as (?<name>…)"
                )
            if follower == ">":
                raise self.fail("atomic groups (?>…) are not JavaScript")
            if follower in _MODIFIERS:
                raise self.refuse("inline flags and modifiers (?i…) are not supported")
            raise self.fail("invalid group")
        self.position += 1
        return self.capture(None)

    def capture(self, name: str | None) -> str:
        if name is not None and name in self.names:
            raise self.refuse(f"the group name {name!r} is used twice")
        self.names.append(name)
        number = len(self.names)
        inner = self.disjunction()
        self.expect_close()
        self.closed.add(number)
        return f"(?P<g{number}>{inner})"

    def group_name(self) -> str:
        end = self.source.find(">", self.position)
        if end < 0:
            raise self.fail("invalid capture group name")
        name = self.source[self.position : end]
        if not re.fullmatch(r"[$_\w][$\w\u200c\u200d]*", name) or name[0].isdigit():
            raise self.fail(f"invalid capture group name {name!r}")
        self.position = end + 1
        return name

    def quantifier_ahead(self) -> bool:
        char = self.peek()
        return char in _REPEATS or (
            char == "{" and self.braced_quantifier_at(self.position) is not None
        )

    def braced_quantifier_at(self, index: int) -> tuple[int, int | None, int] | None:
        """(min, max, end) of ``{n}``, ``{n,}`` or ``{n,m}`` starting at ``index``."""
        match = re.compile(r"\{(\d+)(?:(,)(\d*))?\}").match(self.source, index)
        if not match:
            return None
        low = int(match[1])
        high = low if match[2] is None else (int(match[3]) if match[3] else None)
        return low, high, match.end()

    def quantifier(self) -> str:
        char = self.peek()
        if char in _REPEATS:
            self.position += 1
            text = char
        else:
            braced = self.braced_quantifier_at(self.position)
            assert braced is not None
            low, high, end = braced
            if high is not None and high < low:
                raise self.fail("numbers out of order in {} quantifier")
            if max(low, high or 0) > _MAX_REPEAT:
                raise self.refuse("a repeat count this large is not supported")
            self.position = end
            text = f"{{{low}}}" if high == low else f"{{{low},{'' if high is None else high}}}"
        if self.peek() == "?":
            self.position += 1
            text += "?"
        if self.quantifier_ahead():
            raise self.fail("nothing to repeat")
        return text

    # Escapes.

    def atom_escape(self) -> str:
        self.position += 1
        char = self.peek()
        if not char:
            raise self.fail("\\ at end of pattern")
        if char in "123456789":
            return self.backreference()
        if char == "k" and (self.unicode or self.named):
            self.position += 1
            if self.peek() != "<":
                raise self.fail("invalid named reference")
            self.position += 1
            name = self.group_name()
            if name not in self.named:
                raise self.fail(f"invalid named capture referenced: {name!r}")
            return self.reference(self.named[name])
        part = self.class_escape(in_class=False)
        if part.single is not None:
            return _char(part.single)
        return _class(part.ranges)

    def backreference(self) -> str:
        match = re.compile(r"\d+").match(self.source, self.position)
        assert match is not None
        number = int(match[0])
        if number > self.total_groups:
            if self.unicode:
                raise self.fail("invalid escape")
            raise self.refuse(
                f"\\{match[0]} is an old octal escape in JavaScript (there is no group "
                f"{number}); write the character as \\xHH or \\uHHHH"
            )
        self.position = match.end()
        return self.reference(number)

    def reference(self, number: int) -> str:
        if number not in self.closed:
            # A group not yet closed here has captured nothing: JavaScript matches "".
            return "(?:)"
        return f"(?(g{number})(?P=g{number}))"

    def class_escape(self, *, in_class: bool) -> _ClassPart:
        """The escape after a backslash (already consumed) as one character or a set."""
        char = self.peek()
        self.position += 1
        sets = {
            "d": _DIGITS,
            "w": _WORD_UNICODE_IGNORE_CASE if self.unicode and "i" in self.flags else _WORD,
            "s": _SPACE,
        }
        if char.lower() in sets:
            ranges = sets[char.lower()]
            return _ClassPart(_complement(ranges, self.top) if char.isupper() else ranges)
        if char in _CONTROL_ESCAPES:
            return _ClassPart([], ord(_CONTROL_ESCAPES[char]))
        if char == "b" and in_class:
            return _ClassPart([], 0x08)
        if char == "-" and in_class and self.unicode:
            return _ClassPart([], ord("-"))
        if char == "c":
            letter = self.peek()
            if letter in _ASCII_LETTERS or (
                in_class and not self.unicode and (letter in _DECIMAL or letter == "_")
            ):
                self.position += 1
                return _ClassPart([], ord(letter) % 32)
            if self.unicode:
                raise self.fail("invalid unicode escape")
            # Annex B: a backslash before a "c" that starts no control escape is itself.
            self.position -= 1
            return _ClassPart([], ord("\\"))
        if char == "0" and self.peek() not in _DECIMAL:
            return _ClassPart([], 0)
        if char in _DECIMAL:
            if self.unicode:
                raise self.fail("invalid class escape" if in_class else "invalid escape")
            raise self.refuse(
                f"\\{char} is an old octal escape in JavaScript; write the character as "
                "\\xHH or \\uHHHH"
            )
        if char == "x":
            digits = self.source[self.position : self.position + 2]
            if len(digits) == 2 and set(digits) <= _HEX:
                self.position += 2
                return _ClassPart([], int(digits, 16))
            if self.unicode:
                raise self.fail("invalid escape")
        if char == "u":
            code = self.unicode_escape()
            if code is not None:
                return _ClassPart([], code)
            if self.unicode:
                raise self.fail("invalid unicode escape")
        if char in _PROPERTY_ESCAPES and self.unicode:
            raise self.refuse("Unicode property escapes \\p{…} are not supported")
        if self.unicode:
            if char in _SYNTAX_CHARACTERS or char == "/":
                return _ClassPart([], ord(char))
            raise self.fail("invalid escape")
        if char == "u" and self.peek() == "{":
            raise self.refuse(
                "\\u{…} needs the u flag, which a form's pattern does not have; write "
                "\\uHHHH or the character itself"
            )
        if char in _ASCII_LETTERS:
            raise self.refuse(
                f"\\{char} means just the letter {char!r} in JavaScript (other dialects give "
                f"it a meaning); write {char!r} without the backslash"
            )
        return _ClassPart([], ord(char))

    def unicode_escape(self) -> int | None:
        """The code of ``\\uHHHH`` (joined with a following low surrogate under ``u``) or,
        under ``u``, ``\\u{H…}``; None if there is no such escape here."""
        if self.unicode and self.peek() == "{":
            match = re.compile(r"\{([0-9a-fA-F]+)\}").match(self.source, self.position)
            if not match or int(match[1], 16) > _MAX_CODE_POINT:
                raise self.fail("invalid unicode escape")
            self.position = match.end()
            return int(match[1], 16)
        digits = self.source[self.position : self.position + 4]
        if len(digits) != 4 or not set(digits) <= _HEX:
            return None
        self.position += 4
        code = int(digits, 16)
        if self.unicode and 0xD800 <= code <= 0xDBFF and self.at("\\u"):
            low = self.source[self.position + 2 : self.position + 6]
            if len(low) == 4 and set(low) <= _HEX and 0xDC00 <= int(low, 16) <= 0xDFFF:
                self.position += 6
                return 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00)
        return code

    # Character classes.

    def character_class(self) -> str:
        self.position += 1
        negated = self.peek() == "^"
        if negated:
            self.position += 1
        ranges: Ranges = []
        while True:
            if self.position >= len(self.source):
                raise self.fail("unterminated character class")
            if self.peek() == "]":
                self.position += 1
                break
            first = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.position += 1
                second = self.class_atom()
                if first.single is None or second.single is None:
                    if self.unicode:
                        raise self.fail("invalid character class")
                    # Annex B: a set on either side makes the dash a plain character.
                    ranges += [*first.ranges, *second.ranges, (ord("-"), ord("-"))]
                    ranges += [
                        (p.single, p.single) for p in (first, second) if p.single is not None
                    ]
                    continue
                if first.single > second.single:
                    raise self.fail("range out of order in character class")
                ranges.append((first.single, second.single))
                continue
            ranges += first.ranges if first.single is None else [(first.single, first.single)]
        return _class(_normalise(ranges), negated)

    def class_atom(self) -> _ClassPart:
        char = self.peek()
        if char == "\\":
            self.position += 1
            if not self.peek():
                raise self.fail("\\ at end of pattern")
            return self.class_escape(in_class=True)
        self.position += 1
        return _ClassPart([], ord(char))


def _scan_groups(source: str) -> tuple[int, dict[str, int]]:
    """How many capturing groups the pattern has, and the number of each named one."""
    count = 0
    named: dict[str, int] = {}
    index = 0
    in_class = False
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            if not source.startswith("(?", index):
                count += 1
            elif (
                source.startswith("(?<", index)
                and source[index + 3 : index + 4] not in _LOOKBEHIND_MARKS
            ):
                count += 1
                end = source.find(">", index)
                if end > 0:
                    named.setdefault(source[index + 3 : end], count)
        index += 1
    return count, named


def substitution(regex: JsRegex, match: re.Match[str], units: str, replacement: str) -> str:
    """ECMAScript ``GetSubstitution``: the replacement text with ``$&``, ``$1``, ``$<n>``…"""
    groups = len(regex.group_names)
    result = []
    index = 0
    while index < len(replacement):
        char = replacement[index]
        following = replacement[index + 1 : index + 2]
        if char != "$" or not following:
            result.append(char)
            index += 1
            continue
        if following == "$":
            result.append("$")
            index += 2
        elif following == "&":
            result.append(regex.text(match[0]))
            index += 2
        elif following == "`":
            result.append(regex.text(units[: match.start()]))
            index += 2
        elif following == "'":
            result.append(regex.text(units[match.end() :]))
            index += 2
        elif following in _DECIMAL:
            two = replacement[index + 1 : index + 3]
            if len(two) == 2 and two.isdigit() and 1 <= int(two) <= groups:
                number, width = int(two), 3
            elif following != "0" and int(following) <= groups:
                number, width = int(following), 2
            else:
                result.append("$")
                index += 1
                continue
            captured = match.group(f"g{number}")
            result.append(regex.text(captured) if captured is not None else "")
            index += width
        elif following == "<" and any(name is not None for name in regex.group_names):
            end = replacement.find(">", index + 2)
            if end < 0:
                result.append("$<")
                index += 2
                continue
            name = replacement[index + 2 : end]
            if name in regex.group_names:
                captured = match.group(f"g{regex.group_names.index(name) + 1}")
                result.append(regex.text(captured) if captured is not None else "")
            index = end + 1
        else:
            result.append("$")
            index += 1
    return "".join(result)


def matches_of(regex: JsRegex, units: str) -> Iterator[re.Match[str]]:
    """The matches a global regex finds, stepping past empty ones as JavaScript does."""
    position = 0
    while position <= len(units):
        found = regex.search(units, position)
        if found is None:
            return
        yield found
        position = found.end() if found.end() > found.start() else found.end() + 1


def replace_all(regex: JsRegex, text: str, replacement: str) -> str:
    """``text.replace(regex, replacement)`` for a regex with the ``g`` flag."""
    units = regex.units(text)
    parts = []
    position = 0
    for found in matches_of(regex, units):
        parts.append(regex.text(units[position : found.start()]))
        parts.append(substitution(regex, found, units, replacement))
        position = found.end()
    parts.append(regex.text(units[position:]))
    return "".join(parts)


def split(regex: JsRegex, text: str) -> list[str | None]:
    """``text.split(regex)``: ECMAScript's ``@@split``, captures included (None if unset)."""
    units = regex.units(text)
    size = len(units)
    if size == 0:
        return [] if regex.match(units, 0) is not None else [text]
    pieces: list[str | None] = []
    start = 0
    position = 0
    while position < size:
        found = regex.match(units, position)
        if found is None or min(found.end(), size) == start:
            position += 1
            continue
        pieces.append(regex.text(units[start:position]))
        start = min(found.end(), size)
        for number in range(1, len(regex.group_names) + 1):
            captured = found.group(f"g{number}")
            pieces.append(None if captured is None else regex.text(captured))
        position = start
    pieces.append(regex.text(units[start:]))
    return pieces

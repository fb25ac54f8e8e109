"""Parsing the supported subset of FEEL, with feelin's precedence and associativity.

Precedence, loosest first: ``if``/``for``/``some``/``every`` (whose last part runs to the end
of the enclosing expression), ``or``, ``and``, comparisons (``= != < <= > >=``, ``between``,
``in``; left-associative, so ``1 < 2 = true`` is ``(1 < 2) = true``), ``+ -``, ``* /``,
``**`` (left-associative: ``2 ** 3 ** 2`` is 64), prefix ``-``/``+`` (binding tighter than
``**``: ``-2 ** 2`` is 4), then ``.name``, ``[filter]`` and calls.

Where feelin reads an expression differently from what it looks like, the parser refuses it
rather than pick a reading: feelin takes everything after ``in`` as the list, so
``x in [1, 2] and y`` means ``x in ([1, 2] and y)``; such an ``in`` must be parenthesised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from panel_core.feel import jsregex
from panel_core.feel import nodes as n
from panel_core.feel._js import normalize_context_key
from panel_core.feel.builtins import (
    FEELIN_BUILTINS,
    SUPPORTED_FUNCTIONS,
    TEMPORAL_FUNCTIONS,
)
from panel_core.feel.errors import FeelError
from panel_core.feel.lexer import KEYWORDS, Token, tokenize

# Words lezer-feel makes keywords in some places only (types, unary tests, temporal
# constructors); refused as variable names so that no reading can depend on the place.
SOFT_KEYWORDS = frozenset(
    {"of", "not", "list", "context", "date", "time", "duration", "days", "years", "months"}
)

# The functions whose second argument is a regular expression, with the position of their
# flags argument.
REGEX_FUNCTIONS = {"matches": 2, "replace": 3, "split": 2}
_COMPARISON_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_MAX_NESTING = 40
_MAX_TREE_DEPTH = 200


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression. ``text`` is the FEEL text, without form-js's leading ``=``."""

    text: str
    # The string given to parse(), to which the offsets in the tree and in errors refer.
    source: str = field(repr=False)
    root: n.Node = field(repr=False)
    # Every name and keyword of the text: feelin's tokenizer glues words to context keys
    # such as "a-b" or "a b", and evaluate() must know which words occur to rule that out.
    words: frozenset[str] = field(repr=False)
    variables: frozenset[str] = field(repr=False)
    uses_in: bool = field(repr=False)

    def __str__(self) -> str:
        return self.text

    def nodes(self) -> Iterator[n.Node | n.Interval]:
        """Every node of the tree."""
        return _walk(self.root)


def parse(expression: str) -> Expression:
    """Parse ``expression`` (optionally starting with ``=``) or raise :class:`FeelError`."""
    if not isinstance(expression, str):
        raise FeelError(f"an expression must be a string, not {type(expression).__name__}")
    start = 1 if expression.startswith("=") else 0
    parser = _Parser(expression, start)
    if parser.peek().kind == "end":
        raise FeelError("the expression is empty", position=start, expression=expression)
    root = parser.expression()
    if parser.peek().kind != "end":
        raise parser.unexpected(parser.peek())
    if _depth(root) > _MAX_TREE_DEPTH:
        raise FeelError("the expression is nested too deeply", expression=expression)
    words = frozenset(t.text for t in parser.tokens if t.kind in {"name", "keyword"})
    for key, position in parser.string_keys:
        problem = key_conflict(key, words)
        if problem:
            raise FeelError(problem, position=position, expression=expression)
    return Expression(
        text=expression[start:],
        source=expression,
        root=root,
        words=words,
        variables=frozenset(_free_names(root, frozenset())),
        uses_in=any(isinstance(node, n.In) for node in _walk(root)),
    )


def key_conflict(key: str, words: frozenset[str]) -> str | None:
    """Why a context key would make feelin tokenize an expression with ``words`` differently.

    lezer-feel reads a run of words and symbols (``a-b``, ``a b``) as one name when a key in
    scope is spelt so, and a key named like a keyword turns that keyword into a name.
    """
    normalized = normalize_context_key(key)
    if normalized in KEYWORDS and normalized in words:
        return f"the context key {key!r} would turn the keyword {normalized!r} into a name"
    parts = normalized.split(" ")
    if len(parts) > 1 and parts[0] in words:
        return (
            f"the context key {key!r} would make feelin read {parts[0]!r} and what follows "
            "it as one name"
        )
    return None


class _Parser:
    def __init__(self, source: str, start: int) -> None:
        self.source = source
        self.tokens = tokenize(source, start)
        self.index = 0
        self.nesting = 0
        self.in_for_body = 0
        self.filterless_nesting = -1
        self.string_keys: list[tuple[str, int]] = []

    # Token access.

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def at(self, text: str, kind: Literal["op", "keyword"] = "op") -> bool:
        token = self.peek()
        return token.kind == kind and token.text == text

    def expect(self, text: str, kind: Literal["op", "keyword"] = "op") -> Token:
        if not self.at(text, kind):
            raise self.unexpected(self.peek(), expected=text)
        return self.advance()

    def error(self, reason: str, token: Token) -> FeelError:
        return FeelError(reason, position=token.start, expression=self.source)

    def unexpected(self, token: Token, expected: str | None = None) -> FeelError:
        wanted = f"expected {expected!r}" if expected else None
        if token.kind == "end":
            reason = "the expression ends too early"
        elif token.text == "instance":
            reason = "'instance of' is not supported"
        elif token.text == ":":
            reason = "named arguments and ':' outside a context {…} are not supported"
        elif token.text == "..":
            reason = "ranges are only supported as the list of 'in' (x in [a..b])"
        elif token.kind == "name":
            reason = f"unexpected name {token.text!r}"
        else:
            reason = f"unexpected {token.text!r}"
        return self.error(f"{wanted}: {reason}" if wanted else reason, token)

    def gap(self, before: Token, after: Token) -> str:
        return self.source[before.end : after.start]

    # Grammar, loosest binding first.

    def expression(self) -> n.Node:
        self.nesting += 1
        if self.nesting > _MAX_NESTING:
            raise self.error("the expression is nested too deeply", self.peek())
        try:
            return self.disjunction()
        finally:
            self.nesting -= 1

    def disjunction(self) -> n.Node:
        left = self.conjunction()
        while self.at("or", "keyword"):
            token = self.advance()
            left = n.Logical("or", left, self.conjunction(), token.start)
        return left

    def conjunction(self) -> n.Node:
        left = self.comparison()
        while self.at("and", "keyword"):
            token = self.advance()
            left = n.Logical("and", left, self.comparison(), token.start)
        return left

    def comparison(self) -> n.Node:
        left = self.additive()
        while True:
            token = self.peek()
            if token.kind == "op" and token.text in _COMPARISON_OPERATORS:
                self.advance()
                operator = _comparison_operator(token.text)
                left = n.Comparison(operator, left, self.additive(), token.start)
            elif self.at("between", "keyword"):
                self.advance()
                low = self.additive()
                self.expect("and", "keyword")
                left = n.Between(left, low, self.additive(), token.start)
            elif self.at("in", "keyword"):
                self.advance()
                left = n.In(left, self.in_target(), token.start)
                following = self.peek()
                if (following.kind == "op" and following.text in _COMPARISON_OPERATORS) or (
                    following.kind == "keyword" and following.text in {"and", "or", "in", "between"}
                ):
                    raise self.error(
                        f"feelin reads everything after 'in' as its list, so this "
                        f"{following.text!r} would be part of the list; put the 'in' test "
                        "in parentheses",
                        following,
                    )
            else:
                return left

    def in_target(self) -> n.Node | n.Interval:
        token = self.peek()
        if token.kind == "op" and (
            token.text == "]" or (token.text in {"[", "("} and self.interval_ahead())
        ):
            self.advance()
            low = self.additive()
            self.expect("..")
            # A "[" after the upper bound closes the interval (as in "]1..5["), so that
            # bound takes no filter unless it is parenthesised.
            outer, self.filterless_nesting = self.filterless_nesting, self.nesting
            high_start = self.index
            try:
                high = self.additive()
            finally:
                self.filterless_nesting = outer
            closing = self.peek()
            if not (closing.kind == "op" and closing.text in {"]", ")", "["}):
                raise self.unexpected(closing, expected="]")
            self.advance()
            if closing.text == "[":
                self.check_open_end(high, high_start, closing)
            return n.Interval(low, high, token.text == "[", closing.text == "]", token.start)
        return self.additive()

    def check_open_end(self, high: n.Node, high_start: int, closing: Token) -> None:
        """Refuse the places where feelin cannot parse an interval closed by ``[``."""
        if self.at("]"):
            raise self.error(
                "feelin cannot parse an interval closed by '[' right before ']'; "
                "close it with ')' instead",
                closing,
            )
        bracketed = (
            self.tokens[high_start].text == "("
            and _group_end(self.tokens, high_start, 0)[0] == self.index - 1
        )
        if isinstance(high, n.Arithmetic | n.Unary) and not bracketed:
            raise self.error(
                "feelin cannot parse an interval closed by '[' after a calculated upper "
                "bound; put the bound in parentheses or close the interval with ')'",
                closing,
            )

    def interval_ahead(self) -> bool:
        """Whether the bracket at the current token opens an interval rather than a list."""
        return _group_end(self.tokens, self.index, 0)[1]

    def additive(self) -> n.Node:
        left = self.multiplicative()
        while self.peek().kind == "op" and self.peek().text in {"+", "-"}:
            token = self.advance()
            operator: Literal["+", "-"] = "+" if token.text == "+" else "-"
            left = n.Arithmetic(operator, left, self.multiplicative(), token.start)
        return left

    def multiplicative(self) -> n.Node:
        left = self.power()
        while self.peek().kind == "op" and self.peek().text in {"*", "/"}:
            token = self.advance()
            operator: Literal["*", "/"] = "*" if token.text == "*" else "/"
            left = n.Arithmetic(operator, left, self.power(), token.start)
        return left

    def power(self) -> n.Node:
        left = self.unary()
        while self.peek().kind == "op" and self.peek().text in {"**", "^"}:
            token = self.advance()
            left = n.Arithmetic("**", left, self.unary(), token.start)
        return left

    def unary(self) -> n.Node:
        token = self.peek()
        if token.kind == "op" and token.text == "-":
            following = self.peek(1)
            if following.kind == "number":
                # feelin reads a minus sign before a number as part of the number literal.
                if following.start != token.end:
                    raise self.error(
                        "a space between '-' and a number is not supported (feelin "
                        "evaluates '- 1' to NaN); write -1",
                        token,
                    )
                self.advance()
                self.advance()
                return self.postfix(n.Constant(-following.number, token.start))
            self.advance()
            return n.Unary("-", self.unary(), token.start)
        if token.kind == "op" and token.text == "+":
            self.advance()
            return n.Unary("+", self.unary(), token.start)
        return self.postfix(self.primary())

    def postfix(self, node: n.Node) -> n.Node:
        while True:
            token = self.peek()
            if token.kind == "op" and token.text == ".":
                self.advance()
                name = self.peek()
                if name.kind != "name":
                    raise self.unexpected(name, expected="a name after '.'")
                self.advance()
                node = n.Path(node, name.text, token.start)
            elif token.kind == "op" and token.text == "[":
                if self.filterless_nesting == self.nesting:
                    return node
                self.advance()
                predicate = self.expression()
                self.expect("]")
                node = n.Filter(node, predicate, token.start)
            else:
                return node

    def primary(self) -> n.Node:
        token = self.peek()
        if token.kind == "number":
            self.advance()
            return n.Constant(token.number, token.start)
        if token.kind == "string":
            self.advance()
            return n.Constant(token.string, token.start)
        if token.kind == "name":
            return self.name_or_call()
        if token.kind == "keyword":
            return self.keyword_expression(token)
        if token.kind == "op" and token.text == "(":
            self.advance()
            inner = self.expression()
            self.expect(")")
            return inner
        if token.kind == "op" and token.text == "[":
            return self.list_literal()
        if token.kind == "op" and token.text == "{":
            return self.context_literal()
        previous = self.tokens[self.index - 1] if self.index else None
        if (
            token.kind == "op"
            and token.text in _COMPARISON_OPERATORS
            and previous is not None
            and previous.text in {"[", "(", ",", "in"}
        ):
            raise self.error(
                "unary tests such as '> 5' are not supported; write the comparison out "
                "(x > 5), or an interval (x in [a..b])",
                token,
            )
        raise self.unexpected(token, expected="an expression")

    def keyword_expression(self, token: Token) -> n.Node:
        if token.text in {"true", "false"}:
            self.advance()
            return n.Constant(token.text == "true", token.start)
        if token.text == "null":
            self.advance()
            return n.Constant(None, token.start)
        if token.text == "if":
            self.advance()
            condition = self.expression()
            self.expect("then", "keyword")
            then = self.expression()
            self.expect("else", "keyword")
            return n.If(condition, then, self.expression(), token.start)
        if token.text == "for":
            self.advance()
            variable = self.binding_name()
            self.expect("in", "keyword")
            source = self.iteration_source()
            self.expect("return", "keyword")
            self.in_for_body += 1
            try:
                body = self.expression()
            finally:
                self.in_for_body -= 1
            return n.For(variable, source, body, token.start)
        if token.text in {"some", "every"}:
            self.advance()
            quantifier: Literal["some", "every"] = "some" if token.text == "some" else "every"
            variable = self.binding_name()
            self.expect("in", "keyword")
            source = self.iteration_source()
            self.expect("satisfies", "keyword")
            return n.Quantified(quantifier, variable, source, self.expression(), token.start)
        if token.text == "function":
            raise self.error("function definitions are not supported", token)
        raise self.unexpected(token, expected="an expression")

    def iteration_source(self) -> n.Node:
        source = self.expression()
        token = self.peek()
        if token.kind == "op" and token.text == "..":
            raise self.error("iterating over a range (a..b) is not supported", token)
        if token.kind == "op" and token.text == ",":
            raise self.error("iterating over several lists at once is not supported", token)
        return source

    def binding_name(self) -> str:
        token = self.peek()
        if token.kind != "name":
            raise self.unexpected(token, expected="a variable name")
        self.check_variable_name(token)
        self.advance()
        return token.text

    def check_variable_name(self, token: Token) -> None:
        word = token.text
        if word in TEMPORAL_FUNCTIONS:
            raise self.error("date and time values are not supported", token)
        if word in FEELIN_BUILTINS:
            raise self.error(
                f"{word!r} is the name of a FEEL built-in function, which feelin uses "
                "whenever the context has no such variable; rename the variable",
                token,
            )
        if word in SOFT_KEYWORDS:
            raise self.error(f"{word!r} is reserved in FEEL; rename the variable", token)
        if word == "partial" and self.in_for_body:
            raise self.error("'partial' inside 'for … return' is not supported", token)

    def name_or_call(self) -> n.Node:
        first = self.advance()
        words = [first]
        while self.peek().kind == "name" and not _has_line_break(self.gap(words[-1], self.peek())):
            words.append(self.advance())
        name = " ".join(word.text for word in words)
        following = self.peek()
        if following.kind == "op" and following.text == "(":
            if _has_line_break(self.gap(words[-1], following)):
                raise self.error(
                    "a line break between a function name and '(' is not supported", following
                )
            return self.call(name, first)
        if len(words) > 1:
            raise self.error(
                f"names with spaces ({name!r}) are only supported for built-in functions",
                first,
            )
        self.check_variable_name(first)
        return n.Name(first.text, first.start)

    def call(self, name: str, token: Token) -> n.Node:
        function = SUPPORTED_FUNCTIONS.get(name)
        if function is None:
            if name == "is defined":
                raise self.error(
                    "'is defined' is not a function of feelin, form-js' FEEL engine (the "
                    "browser evaluates it to null); compare with null instead",
                    token,
                )
            if name in TEMPORAL_FUNCTIONS:
                raise self.error(
                    f"date and time functions such as {name!r} are not supported", token
                )
            if name == "sort":
                raise self.error(
                    "'sort' needs a function to order by, and function definitions are not "
                    "supported",
                    token,
                )
            if name in FEELIN_BUILTINS:
                raise self.error(f"the built-in function {name!r} is not supported", token)
            raise self.error(f"unknown function {name!r}", token)
        self.expect("(")
        args: list[n.Node] = []
        if not self.at(")"):
            args.append(self.expression())
            while self.at(","):
                self.advance()
                args.append(self.expression())
        self.expect(")")
        if not function.min_args <= len(args) <= function.max_args:
            if function.min_args == function.max_args:
                wanted = str(function.min_args)
            elif function.max_args > 99:
                wanted = f"at least {function.min_args}"
            else:
                wanted = f"{function.min_args} to {function.max_args}"
            raise self.error(
                f"{name!r} takes {wanted} argument(s), not {len(args)}"
                + (f" ({function.note})" if function.note else ""),
                token,
            )
        self.check_pattern(name, args)
        return n.Call(name, tuple(args), token.start)

    def check_pattern(self, name: str, args: list[n.Node]) -> None:
        """Refuse a written-out regular expression the server cannot evaluate as feelin."""
        if name not in REGEX_FUNCTIONS:
            return
        pattern = args[1]
        if not (isinstance(pattern, n.Constant) and isinstance(pattern.value, str)):
            return
        flags = args[REGEX_FUNCTIONS[name]] if len(args) > REGEX_FUNCTIONS[name] else None
        given = flags.value if isinstance(flags, n.Constant) else ""
        # Other flags make feelin answer null or throw whatever the pattern.
        wanted = "".join(dict.fromkeys(given)) if isinstance(given, str) else ""
        try:
            jsregex.compile_js(
                pattern.value, "u" + (wanted if set(wanted) <= {"s", "m", "i"} else "")
            )
        except jsregex.JsUnsupportedError as error:
            raise FeelError(
                f"the regular expression {pattern.value!r} is not supported: {error}",
                position=pattern.pos,
                expression=self.source,
            ) from None
        except jsregex.JsSyntaxError:
            # JavaScript refuses it too: feelin evaluates the call to null.
            return

    def list_literal(self) -> n.Node:
        opening = self.advance()
        items: list[n.Node] = []
        if not self.at("]"):
            items.append(self.expression())
            while self.at(","):
                self.advance()
                items.append(self.expression())
        self.expect("]")
        return n.ListLiteral(tuple(items), opening.start)

    def context_literal(self) -> n.Node:
        opening = self.advance()
        entries: list[tuple[str, n.Node]] = []
        if not self.at("}"):
            entries.append(self.context_entry())
            while self.at(","):
                self.advance()
                entries.append(self.context_entry())
        self.expect("}")
        return n.ContextLiteral(tuple(entries), opening.start)

    def context_entry(self) -> tuple[str, n.Node]:
        token = self.peek()
        if token.kind == "string":
            key = token.string
            self.string_keys.append((key, token.start))
        elif token.kind == "name":
            if token.text in SOFT_KEYWORDS:
                raise self.error(
                    f"{token.text!r} is reserved in FEEL; write the key as a string", token
                )
            key = token.text
        else:
            raise self.unexpected(token, expected="a context key")
        if key == "__proto__":
            raise self.error("the context key '__proto__' is not supported", token)
        self.advance()
        self.expect(":")
        return key, self.expression()


def _group_end(tokens: list[Token], start: int, depth: int) -> tuple[int, bool]:
    """The index after the bracketed group opening at ``start``, and whether it is an interval.

    An interval is a group right after ``in`` with ``..`` at its own level; it may close with
    ``]``, ``)`` or ``[`` and open with ``]``, which plain bracket matching would misread.
    """
    after_in = start > 0 and tokens[start - 1].kind == "keyword" and tokens[start - 1].text == "in"
    ranged = False
    index = start + 1
    while index < len(tokens) and depth < _MAX_NESTING:
        token = tokens[index]
        if token.kind == "end":
            break
        if token.kind == "op":
            if ranged and token.text in {"]", ")", "["}:
                return index + 1, True
            opens_interval = token.text == "]" and tokens[index - 1].text == "in"
            if token.text in {"(", "[", "{"} or opens_interval:
                index = _group_end(tokens, index, depth + 1)[0]
                continue
            if token.text in {")", "]", "}"}:
                return index + 1, False
            if token.text == ".." and after_in:
                ranged = True
        index += 1
    return index, False


def _comparison_operator(text: str) -> Literal["=", "!=", "<", "<=", ">", ">="]:
    if text == "=":
        return "="
    if text == "!=":
        return "!="
    if text == "<":
        return "<"
    if text == "<=":
        return "<="
    if text == ">":
        return ">"
    return ">="


def _has_line_break(text: str) -> bool:
    return "\n" in text or "\r" in text


def _children(node: n.Node | n.Interval) -> tuple[n.Node | n.Interval, ...]:
    if isinstance(node, n.Constant | n.Name):
        return ()
    if isinstance(node, n.Path):
        return (node.target,)
    if isinstance(node, n.Filter):
        return (node.target, node.predicate)
    if isinstance(node, n.Call):
        return node.args
    if isinstance(node, n.Unary):
        return (node.operand,)
    if isinstance(node, n.Arithmetic | n.Comparison | n.Logical):
        return (node.left, node.right)
    if isinstance(node, n.Between):
        return (node.value, node.low, node.high)
    if isinstance(node, n.Interval):
        return (node.low, node.high)
    if isinstance(node, n.In):
        return (node.value, node.target)
    if isinstance(node, n.If):
        return (node.condition, node.then, node.otherwise)
    if isinstance(node, n.ListLiteral):
        return node.items
    if isinstance(node, n.ContextLiteral):
        return tuple(value for _, value in node.entries)
    if isinstance(node, n.For):
        return (node.source, node.body)
    return (node.source, node.condition)


def _walk(root: n.Node) -> Iterator[n.Node | n.Interval]:
    stack: list[n.Node | n.Interval] = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(_children(node))


def _depth(root: n.Node) -> int:
    deepest = 0
    stack: list[tuple[n.Node | n.Interval, int]] = [(root, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in _children(node))
    return deepest


def _free_names(node: n.Node | n.Interval, bound: frozenset[str]) -> Iterator[str]:
    """Names read from the context; inside filters, items may also supply them."""
    if isinstance(node, n.Name):
        if node.name not in bound:
            yield node.name
        return
    if isinstance(node, n.For):
        yield from _free_names(node.source, bound)
        yield from _free_names(node.body, bound | {node.variable, "partial"})
        return
    if isinstance(node, n.Quantified):
        yield from _free_names(node.source, bound)
        yield from _free_names(node.condition, bound | {node.variable})
        return
    if isinstance(node, n.Filter):
        yield from _free_names(node.target, bound)
        yield from _free_names(node.predicate, bound | {"item"})
        return
    if isinstance(node, n.ContextLiteral):
        # Each entry sees the entries before it as variables.
        for key, value in node.entries:
            yield from _free_names(value, bound)
            bound = bound | {key}
        return
    for child in _children(node):
        yield from _free_names(child, bound)
